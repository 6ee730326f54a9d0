"""Django REST framework: an authentication class and permission classes.

::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["clerk_guard.django.drf.ClerkAuthentication"],
    }

    class InvoiceView(APIView):
        permission_classes = [IsAuthenticated, HasOrgPermission("org:invoices:read")]

``request.user`` is then a :class:`~clerk_guard.django.users.ClerkUser` (or your
``CLERK_GUARD_USER``'s object) and ``request.auth`` the :class:`~clerk_guard.SessionAuth`.

A token from the session cookie is sent by the browser on its own, so requests authenticated
by it are checked for CSRF as DRF's ``SessionAuthentication`` checks them (unsafe methods need
Django's CSRF token); a token in the ``Authorization`` header is not.
"""

from __future__ import annotations

from typing import Any

# DRF ships no type hints; the ignores stay quiet when djangorestframework-stubs is installed.
try:
    from rest_framework import exceptions  # type: ignore[import-untyped, unused-ignore]
    from rest_framework.authentication import (  # type: ignore[import-untyped, unused-ignore]
        BaseAuthentication,
        SessionAuthentication,
    )
    from rest_framework.permissions import BasePermission  # type: ignore[import-untyped, unused-ignore]
except ImportError as exc:  # the extra is not installed: say which one
    from clerk_guard.adapter import missing_extra

    raise missing_extra("clerk_guard.django.drf", "Django REST framework", "drf", exc) from exc

from clerk_guard import (
    AuthenticationError,
    ClerkGuardError,
    KeysUnavailableError,
    PermissionDeniedError,
    SessionAuth,
    SessionPendingError,
    check_requirements,
    error_response,
)
from clerk_guard.django._request import CLERK_USER, ERROR, authenticate
from clerk_guard.django.conf import state

__all__ = ["ClerkAuthentication", "HasOrgPermission", "HasOrgRole", "ServiceUnavailable"]


class ServiceUnavailable(exceptions.APIException):  # type: ignore[misc, unused-ignore]
    """503: the signing keys cannot be loaded; DRF adds ``Retry-After`` from ``wait``."""

    status_code = 503
    default_detail = "Authentication is temporarily unavailable; try again shortly."
    default_code = "service_unavailable"

    def __init__(self, detail: Any = None, *, wait: int = 5) -> None:
        super().__init__(detail)
        self.wait = wait


class ClerkAuthentication(BaseAuthentication):  # type: ignore[misc, unused-ignore]
    """Authenticate with a Clerk session token (``Authorization: Bearer`` or the session cookie).

    No token: ``None``, so the next authentication class may try. A bad token:
    ``AuthenticationFailed``, answered 401 with ``WWW-Authenticate: Bearer error="invalid_token"``
    and contract §5's body. Keys unavailable: 503 with ``Retry-After``. A token from the session
    cookie on an unsafe method without a valid CSRF token: 403, as ``SessionAuthentication``.

    Reuses the middleware's result when ``ClerkGuardMiddleware`` already ran.
    """

    def authenticate(self, request: Any) -> tuple[Any, SessionAuth] | None:
        django_request = request._request
        auth = authenticate(django_request)
        if auth is not None:
            if auth.token_source == "cookie":
                # The browser sends cookies on its own: a cross-site form could ride on them.
                SessionAuthentication().enforce_csrf(request)
            return getattr(django_request, CLERK_USER), auth
        error: ClerkGuardError | None = getattr(django_request, ERROR, None)
        if error is None or isinstance(error, SessionPendingError):
            return None  # anonymous: a pending session is signed out, as Clerk treats it
        answer = error_response(error, path=django_request.path, debug=state.config.debug)
        if isinstance(error, KeysUnavailableError):
            raise ServiceUnavailable(answer.data, wait=error.retry_after)
        if isinstance(error, AuthenticationError):
            raise exceptions.AuthenticationFailed(answer.data)
        raise ServiceUnavailable(answer.data)  # pragma: no cover - no other error reaches here

    def authenticate_header(self, request: Any) -> str:
        """``Bearer``, plus ``error="invalid_token"`` when this request's token failed; DRF
        answers 401 (not 403) because this is not empty."""
        error = getattr(request._request, ERROR, None)
        if isinstance(error, AuthenticationError):
            return 'Bearer error="invalid_token"'
        return "Bearer"


class _OrgCheck(BasePermission):  # type: ignore[misc, unused-ignore]
    conditions: dict[str, str] = {}  # noqa: RUF012 - set once per generated class

    def has_permission(self, request: Any, view: Any) -> bool:
        auth = request.auth
        if not isinstance(auth, SessionAuth):
            return False  # DRF answers 401 for an unauthenticated request
        try:
            check_requirements(auth, **self.conditions)
        except PermissionDeniedError as exc:
            # contract §5's 403 body; DRF raises PermissionDenied with ``message`` as its detail.
            path = request._request.path
            self.message = error_response(exc, path=path, debug=state.config.debug).data
            return False
        return True


def HasOrgRole(role: str) -> type[BasePermission]:  # noqa: N802 - reads as a class in lists
    """A permission class requiring the active organization role ``role`` (``org:`` optional).

    ``permission_classes = [HasOrgRole("org:admin")]``; unauthenticated requests get 401,
    signed-in ones without the role 403.
    """
    return type(f"HasOrgRole_{role}", (_OrgCheck,), {"conditions": {"role": role}})


def HasOrgPermission(permission: str) -> type[BasePermission]:  # noqa: N802
    """A permission class requiring the organization permission ``permission``."""
    return type(
        f"HasOrgPermission_{permission}", (_OrgCheck,), {"conditions": {"permission": permission}}
    )
