"""Stateless user objects for ``request.user``: no database, no query."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clerk_guard import SessionAuth

__all__ = ["AnonymousClerkUser", "ClerkUser"]


class ClerkUser:
    """The signed-in Clerk user, shaped like a Django user but backed by the session token only.

    ``pk``, ``id`` and ``username`` are the Clerk user id. ``is_staff`` and ``is_superuser`` are
    always false: a Clerk session never grants the Django admin. Permission checks map to the
    active organization's permissions: ``has_perm("org:invoices:read")`` (or
    ``"invoices:read"``) asks Clerk's ``has(permission=...)``.

    To work with your own user model instead, set ``CLERK_GUARD_USER`` (see the README).
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, auth: SessionAuth) -> None:
        #: The verified session this user comes from.
        self.auth = auth

    @property
    def pk(self) -> str:
        """The Clerk user id (``sub``)."""
        return self.auth.user_id

    @property
    def id(self) -> str:
        """The Clerk user id (``sub``)."""
        return self.auth.user_id

    @property
    def username(self) -> str:
        """The Clerk user id: the token carries no user name."""
        return self.auth.user_id

    def get_username(self) -> str:
        return self.auth.user_id

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """Whether the active organization grants ``perm``; object permissions are never granted."""
        if obj is not None:
            return False
        return self.auth.has(permission=perm)

    def has_perms(self, perm_list: Iterable[str], obj: Any = None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        """Whether any organization permission is about the feature ``app_label``."""
        prefix = f"org:{app_label}:"
        return any(perm.startswith(prefix) for perm in self.auth.org_permissions)

    def get_all_permissions(self, obj: Any = None) -> set[str]:
        return set() if obj is not None else set(self.auth.org_permissions)

    def save(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("ClerkUser is not stored in the database.")

    def delete(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("ClerkUser is not stored in the database.")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClerkUser) and other.auth.user_id == self.auth.user_id

    def __hash__(self) -> int:
        return hash(("ClerkUser", self.auth.user_id))

    def __str__(self) -> str:
        return self.auth.user_id

    def __repr__(self) -> str:
        return f"<ClerkUser {self.auth.user_id}>"


class AnonymousClerkUser:
    """Stands in for ``django.contrib.auth.models.AnonymousUser`` when ``django.contrib.auth`` is
    not installed (importing it would then fail)."""

    pk = None
    id = None
    username = ""
    is_authenticated = False
    is_anonymous = True
    is_active = False
    is_staff = False
    is_superuser = False

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perm_list: Iterable[str], obj: Any = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False

    def get_all_permissions(self, obj: Any = None) -> set[str]:
        return set()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnonymousClerkUser)

    def __hash__(self) -> int:
        return 1

    def __str__(self) -> str:
        return "AnonymousUser"
