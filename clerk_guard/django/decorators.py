"""View decorators: require a Clerk session, optionally with an organization role or
permission. Refusals are contract §5's JSON answers (401/403/503), never redirects to
``LOGIN_URL``. Sync and async views both work; without the middleware the decorator verifies
the token itself."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, overload

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest

from clerk_guard.django._request import aauthenticate, authenticate, refusal, to_response
from clerk_guard.django.middleware import EXEMPT_ATTRIBUTE

__all__ = [
    "clerk_optional",
    "clerk_permission_required",
    "clerk_required",
    "clerk_role_required",
]

ViewT = TypeVar("ViewT", bound=Callable[..., Any])


def _protect(view: ViewT, conditions: dict[str, str], *, optional: bool = False) -> ViewT:
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            await aauthenticate(request)
            answer = refusal(request, conditions, optional=optional)
            if answer is not None:
                return to_response(answer)
            return await view(request, *args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        authenticate(request)
        answer = refusal(request, conditions, optional=optional)
        if answer is not None:
            return to_response(answer)
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@overload
def clerk_required(view: ViewT, /) -> ViewT: ...


@overload
def clerk_required(
    view: None = None,
    /,
    *,
    role: str | None = None,
    permission: str | None = None,
    feature: str | None = None,
    plan: str | None = None,
) -> Callable[[ViewT], ViewT]: ...


def clerk_required(
    view: ViewT | None = None,
    /,
    *,
    role: str | None = None,
    permission: str | None = None,
    feature: str | None = None,
    plan: str | None = None,
) -> ViewT | Callable[[ViewT], ViewT]:
    """Require a verified Clerk session; use bare (``@clerk_required``) or with conditions.

    ``@clerk_required(role="org:admin")``: the conditions are those of
    :meth:`SessionAuth.has <clerk_guard.SessionAuth.has>`, judged by
    :func:`~clerk_guard.check_requirements`, and all must hold. No or a bad token: 401; signed
    in without a condition: 403; keys unavailable: 503.
    """
    given = {"role": role, "permission": permission, "feature": feature, "plan": plan}
    conditions = {name: value for name, value in given.items() if value is not None}

    def decorate(func: ViewT) -> ViewT:
        return _protect(func, conditions)

    if view is not None:
        return decorate(view)
    return decorate


def clerk_role_required(role: str) -> Callable[[ViewT], ViewT]:
    """Require a session whose active organization role is ``role`` (``org:`` optional)."""
    return clerk_required(role=role)


def clerk_permission_required(permission: str) -> Callable[[ViewT], ViewT]:
    """Require a session whose active organization grants ``permission``."""
    return clerk_required(permission=permission)


def clerk_optional(view: ViewT) -> ViewT:
    """Verify a session if one is sent, but let anonymous requests through.

    ``request.clerk`` is the session, or ``None`` without a token (or with a pending session,
    which is signed out). A token that is sent and fails is answered 401, as everywhere else:
    a forged or expired token never passes as signed out; keys unavailable: 503. The view is
    also exempt from ``CLERK_GUARD_PROTECT_ALL``.
    """
    wrapped = _protect(view, {}, optional=True)
    setattr(wrapped, EXEMPT_ATTRIBUTE, True)
    return wrapped
