"""What the middleware, the decorators and the DRF class share: verify a request once, attach
the result, and render refusals (contract §5)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.apps import apps
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from clerk_guard import (
    ClerkGuardError,
    ErrorResponse,
    PermissionDeniedError,
    SessionAuth,
    SessionPendingError,
    TokenMissingError,
    asgi,
    check_requirements,
    error_response,
    missing_token,
    wsgi,
)
from clerk_guard.django.conf import state
from clerk_guard.django.users import AnonymousClerkUser, ClerkUser

# Request attributes. ``clerk`` is public; the others are ours.
CHECKED = "_clerk_guard_checked"
ERROR = "_clerk_guard_error"
#: The user object made from the Clerk session (``request.user`` may be another one: a user
#: signed in with a Django session keeps ``request.user``).
CLERK_USER = "_clerk_guard_user"


def header_lines(request: HttpRequest) -> tuple[list[str], list[str]]:
    """The raw ``Authorization`` and ``Cookie`` lines of a request.

    Under ASGI, the field lines of the scope as the server received them; under WSGI,
    ``request.META``, whose joined duplicates :func:`clerk_guard.wsgi.header_lines` splits again.
    Either way two ``Authorization`` lines reach the guard as two, and are refused.
    """
    scope = getattr(request, "scope", None)  # ASGIRequest keeps the ASGI scope
    if isinstance(scope, dict) and "headers" in scope:
        return asgi.header_lines(scope)
    return wsgi.header_lines(request.META)


def authenticate(request: HttpRequest) -> SessionAuth | None:
    """Verify the request's token once (sync), attach the result, and return it."""
    if getattr(request, CHECKED, False):
        return getattr(request, "clerk", None)
    authorization, cookies = header_lines(request)
    try:
        auth = state.guard.authenticate(authorization, cookies, required=True)
    except TokenMissingError:
        return attach(request, None, None)
    except ClerkGuardError as exc:  # a pending session's token included: refused, kept
        return attach(request, None, exc)
    return attach(request, auth, None)


async def aauthenticate(request: HttpRequest) -> SessionAuth | None:
    """Verify the request's token once (async, on the running loop), attach it, return it."""
    if getattr(request, CHECKED, False):
        return getattr(request, "clerk", None)
    authorization, cookies = header_lines(request)
    try:
        auth = await state.async_guard.authenticate(authorization, cookies, required=True)
    except TokenMissingError:
        return attach(request, None, None)
    except ClerkGuardError as exc:  # a pending session's token included: refused, kept
        return attach(request, None, exc)
    return attach(request, auth, None)


@functools.cache
def _anonymous_class() -> Callable[[], Any]:
    """Django's ``AnonymousUser`` when ``django.contrib.auth`` is installed (importing it needs
    that), else a look-alike. Resolved once: the app registry does not change while serving."""
    if apps.is_installed("django.contrib.auth"):
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser
    return AnonymousClerkUser


def anonymous_user() -> Any:
    """A new anonymous user: ``AnonymousUser``, or a look-alike without ``django.contrib.auth``."""
    return _anonymous_class()()


def user_for(request: HttpRequest, auth: SessionAuth) -> Any:
    """The object for ``request.user``: a :class:`ClerkUser`, or ``CLERK_GUARD_USER``'s answer
    (lazily, so a view that never reads ``request.user`` costs no query)."""
    factory = state.user_factory
    if factory is None:
        return ClerkUser(auth)

    def load() -> Any:
        user = factory(request, auth)
        return anonymous_user() if user is None else user

    return SimpleLazyObject(load)


def _signed_in(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def attach(
    request: HttpRequest, auth: SessionAuth | None, error: ClerkGuardError | None
) -> SessionAuth | None:
    """Put the result on the request: ``request.clerk``, ``request.user`` and ``request.auser``.

    ``request.user`` becomes the Clerk user only where no one is signed in already: a user that
    an earlier middleware set and that is authenticated (a Django session login, for the admin
    say) is kept, and checked lazily, on first use. Without a session, an earlier
    ``request.user`` is left alone. Returns ``auth``.
    """
    setattr(request, CHECKED, True)
    setattr(request, ERROR, error)
    setattr(request, "clerk", auth)  # noqa: B010 - HttpRequest does not declare it
    # Django's lazy user is not resolved here (no session query unless the view needs it).
    earlier = getattr(request, "user", None)
    earlier_auser = getattr(request, "auser", None)
    if auth is None:
        if earlier is None:
            user = anonymous_user()
            request.user = user

            async def auser_anonymous() -> Any:
                return user

            setattr(request, "auser", auser_anonymous)  # noqa: B010
        return None
    clerk_user = user_for(request, auth)
    setattr(request, CLERK_USER, clerk_user)
    if earlier is None:
        request.user = clerk_user
    else:
        either: Any = SimpleLazyObject(lambda: earlier if _signed_in(earlier) else clerk_user)
        request.user = either

    async def auser() -> Any:
        if earlier_auser is not None:
            user = await earlier_auser()
            if _signed_in(user):
                return user
        if isinstance(clerk_user, SimpleLazyObject):
            # Resolve a mapped user off the event loop: it may query the database.
            await sync_to_async(lambda: clerk_user.pk)()
        return clerk_user

    setattr(request, "auser", auser)  # noqa: B010
    return auth


def refusal(
    request: HttpRequest,
    conditions: Mapping[str, str] | None = None,
    *,
    optional: bool = False,
) -> ErrorResponse | None:
    """Why the (already authenticated) request may not proceed, or ``None`` when it may.

    No session: the stored failure (invalid token 401, keys unavailable 503), else the
    missing-token 401, or nothing when ``optional`` (no token, or a pending session). A session
    failing ``conditions`` (judged by :func:`~clerk_guard.check_requirements`): 403.
    """
    debug = state.config.debug
    auth: SessionAuth | None = getattr(request, "clerk", None)
    if auth is None:
        error: ClerkGuardError | None = getattr(request, ERROR, None)
        # A pending session is signed out (as Clerk treats it): no session where one is
        # optional, and where one is required, the refused token it is.
        if optional and (error is None or isinstance(error, SessionPendingError)):
            return None
        if error is None:
            error = missing_token()
        return error_response(error, path=request.path, debug=debug)
    try:
        check_requirements(auth, **(conditions or {}))
    except PermissionDeniedError as exc:
        return error_response(exc, path=request.path, debug=debug)
    return None


def to_response(answer: ErrorResponse) -> HttpResponse:
    """Render an :class:`ErrorResponse` as a Django response."""
    response = HttpResponse(answer.body, status=answer.status, content_type="application/json")
    for name, value in answer.headers:
        if name.lower() != "content-type":
            response[name] = value
    return response
