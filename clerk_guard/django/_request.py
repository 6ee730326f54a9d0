"""What the middleware, the decorators and the DRF class share: verify a request once, attach
the result, and render refusals (DESIGN §7)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.apps import apps
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from clerk_guard._claims import SessionAuth
from clerk_guard._errors import ClerkGuardError, TokenMissingError
from clerk_guard._http import ErrorResponse, error_response, forbidden
from clerk_guard.django.conf import state
from clerk_guard.django.users import AnonymousClerkUser, ClerkUser

# Request attributes. ``clerk`` is public; the others are ours.
CHECKED = "_clerk_guard_checked"
ERROR = "_clerk_guard_error"


def header_lines(request: HttpRequest) -> tuple[list[str], list[str]]:
    """The raw ``Authorization`` and ``Cookie`` values.

    Django folds repeated header lines into one value before we see them (ASGI joins them with
    commas, WSGI servers likewise), so at most one line each reaches the core.
    """
    meta = request.META
    authorization = meta.get("HTTP_AUTHORIZATION")
    cookie = meta.get("HTTP_COOKIE")
    return (
        [authorization] if authorization is not None else [],
        [cookie] if cookie is not None else [],
    )


def authenticate(request: HttpRequest) -> SessionAuth | None:
    """Verify the request's token once (sync), attach the result, and return it."""
    if getattr(request, CHECKED, False):
        return getattr(request, "clerk", None)
    authorization, cookies = header_lines(request)
    auth: SessionAuth | None = None
    error: ClerkGuardError | None = None
    try:
        auth = state.guard.authenticate(authorization, cookies, required=False)
    except ClerkGuardError as exc:
        error = exc
    attach(request, auth, error)
    return auth


async def aauthenticate(request: HttpRequest) -> SessionAuth | None:
    """Verify the request's token once (async, on the running loop), attach it, return it."""
    if getattr(request, CHECKED, False):
        return getattr(request, "clerk", None)
    authorization, cookies = header_lines(request)
    auth: SessionAuth | None = None
    error: ClerkGuardError | None = None
    try:
        auth = await state.async_guard.authenticate(authorization, cookies, required=False)
    except ClerkGuardError as exc:
        error = exc
    attach(request, auth, error)
    return auth


def anonymous_user() -> Any:
    """Django's ``AnonymousUser`` when ``django.contrib.auth`` is installed (importing it needs
    that), else a look-alike."""
    if apps.is_installed("django.contrib.auth"):
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser()
    return AnonymousClerkUser()


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


def attach(request: HttpRequest, auth: SessionAuth | None, error: ClerkGuardError | None) -> None:
    """Put the result on the request: ``request.clerk``, ``request.user`` and ``request.auser``.

    When no session is verified, a ``request.user`` set earlier (by Django's
    ``AuthenticationMiddleware``, say) is left alone.
    """
    setattr(request, CHECKED, True)
    setattr(request, ERROR, error)
    setattr(request, "clerk", auth)  # noqa: B010 - HttpRequest does not declare it
    if auth is None:
        if not hasattr(request, "user"):
            user = anonymous_user()
            request.user = user

            async def auser_anonymous() -> Any:
                return user

            setattr(request, "auser", auser_anonymous)  # noqa: B010
        return
    user = user_for(request, auth)
    request.user = user

    async def auser() -> Any:
        if isinstance(user, SimpleLazyObject):
            # Resolve a mapped user off the event loop: it may query the database.
            await sync_to_async(lambda: user.pk)()
        return user

    setattr(request, "auser", auser)  # noqa: B010


def refusal(request: HttpRequest, conditions: dict[str, Any] | None = None) -> ErrorResponse | None:
    """Why the (already authenticated) request may not proceed, or ``None`` when it may.

    No session: the stored failure (invalid token 401, keys unavailable 503) or the missing-token
    401. A session failing ``conditions`` (``SessionAuth.has`` arguments): 403.
    """
    debug = state.config.debug
    auth: SessionAuth | None = getattr(request, "clerk", None)
    if auth is None:
        error: ClerkGuardError | None = getattr(request, ERROR, None)
        if error is None:
            error = TokenMissingError(
                "No session token in the Authorization header or the session cookie."
            )
        return error_response(error, path=request.path, debug=debug)
    if conditions and not auth.has(**conditions):
        return forbidden(debug, path=request.path)
    return None


def to_response(answer: ErrorResponse) -> HttpResponse:
    """Render an :class:`ErrorResponse` as a Django response."""
    response = HttpResponse(answer.body, status=answer.status, content_type="application/json")
    for name, value in answer.headers:
        if name.lower() != "content-type":
            response[name] = value
    return response
