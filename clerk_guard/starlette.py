"""Starlette authentication: ``request.user``, ``request.auth`` and ``@requires`` from Clerk.

::

    from starlette.applications import Starlette
    from starlette.authentication import requires

    from clerk_guard import GuardConfig
    from clerk_guard.starlette import ClerkAuthBackend

    backend = ClerkAuthBackend(config=GuardConfig.from_env())
    app = Starlette(routes=[...], middleware=[backend.middleware()])

    @requires("org:admin")            # the organization role and permissions are scopes
    async def admin(request): ...

``request.user`` is a :class:`ClerkUser` (``request.user.auth`` is the
:class:`~clerk_guard.SessionAuth`) or Starlette's ``UnauthenticatedUser`` when no token was sent.
A token that is sent and fails is answered with the 401 of contract §5 (see :func:`on_error`).

In routes, :func:`get_auth` (``SessionAuth | None``) and :func:`require_auth` (``SessionAuth``)
read the session typed, whether :class:`~clerk_guard.asgi.ClerkGuardMiddleware` or the backend
verified it (``request.state.clerk`` itself is typed ``Any``).

.. note::
    Starlette's ``AuthenticationMiddleware`` closes a refused WebSocket with code 1000. For the
    1008 close of contract §5, install :class:`~clerk_guard.asgi.ClerkGuardMiddleware` outside it
    (``required=False`` lets the routes decide): the backend then reuses its result.
"""

from __future__ import annotations

from typing import Any

import httpx

try:
    from starlette.authentication import (
        AuthCredentials,
        AuthenticationBackend,
        AuthenticationError,
        BaseUser,
    )
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.requests import HTTPConnection
    from starlette.responses import Response
except ImportError as exc:  # the extra is not installed: say which one
    from clerk_guard.adapter import missing_extra

    raise missing_extra("clerk_guard.starlette", "Starlette", "starlette", exc) from exc

from clerk_guard import (
    AsyncGuard,
    ClerkGuardError,
    ErrorResponse,
    GuardConfig,
    SessionAuth,
    TokenInvalidError,
    error_response,
)
from clerk_guard.adapter import build_guard

from .asgi import GUARD_KEY, SCOPE_KEY, authenticate_scope, route_path, scope_debug

__all__ = [
    "ClerkAuthBackend",
    "ClerkAuthenticationError",
    "ClerkUser",
    "get_auth",
    "on_error",
    "render_error",
    "require_auth",
    "scopes_for",
]

#: The scope every signed-in request has, as in Starlette's documentation.
AUTHENTICATED = "authenticated"


def scopes_for(auth: SessionAuth) -> list[str]:
    """``"authenticated"``, then the organization role, then the organization permissions."""
    scopes = [AUTHENTICATED]
    if auth.org_role:
        scopes.append(auth.org_role)
    scopes.extend(auth.org_permissions)
    return scopes


class ClerkUser(BaseUser):
    """A signed-in Clerk user: ``identity`` and ``display_name`` are the user id."""

    def __init__(self, auth: SessionAuth) -> None:
        #: The verified session.
        self.auth = auth

    def __repr__(self) -> str:
        return f"<ClerkUser {self.auth.user_id}>"

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.auth.user_id

    @property
    def identity(self) -> str:
        return self.auth.user_id

    @property
    def user_id(self) -> str:
        return self.auth.user_id


def get_auth(conn: HTTPConnection) -> SessionAuth | None:
    """The verified session of a request or WebSocket, typed: ``request.state.clerk``.

    The session :class:`~clerk_guard.asgi.ClerkGuardMiddleware` verified, else the one of
    :class:`ClerkAuthBackend` (``request.user.auth``). ``None`` when the request has none: no
    token in attach-only mode (``required=False``), a pending session, an excluded path.

    :raises RuntimeError: neither the middleware nor an ``AuthenticationMiddleware`` ran for
        this request.
    """
    scope = conn.scope
    auth = scope.get(SCOPE_KEY)
    if isinstance(auth, SessionAuth):
        return auth
    user = scope.get("user")
    if isinstance(user, ClerkUser):
        return user.auth
    # The middleware marks every request it sees, excluded ones too; Starlette's
    # AuthenticationMiddleware sets scope["user"].
    if SCOPE_KEY in scope or GUARD_KEY in scope or "user" in scope:
        return None
    raise RuntimeError(
        "ClerkGuardMiddleware (or ClerkAuthBackend().middleware()) must be installed to use "
        "get_auth()."
    )


def require_auth(conn: HTTPConnection) -> SessionAuth:
    """:func:`get_auth`, typed without ``None``: for routes the middleware protects.

    Behind :class:`~clerk_guard.asgi.ClerkGuardMiddleware` in its default mode, a route it does
    not exclude runs only with a verified session, so there this never raises.

    :raises RuntimeError: the request has no session: an excluded path, attach-only mode
        (``required=False``) without a token, or no middleware at all. Use :func:`get_auth`
        there and answer the signed-out case yourself.
    """
    auth = get_auth(conn)
    if auth is None:
        raise RuntimeError(
            f"require_auth(): no Clerk session on {route_path(conn.scope)!r}; the path is "
            "excluded from ClerkGuardMiddleware or it runs with required=False. Use get_auth() "
            "there, which gives None."
        )
    return auth


class ClerkAuthenticationError(AuthenticationError):
    """Raised by :class:`ClerkAuthBackend`; :attr:`error` is the answer :func:`on_error` sends."""

    def __init__(self, error: ErrorResponse) -> None:
        super().__init__(error.data["message"])
        self.error = error


def render_error(error: ErrorResponse) -> Response:
    """An :class:`ErrorResponse` as a Starlette ``Response``."""
    return Response(content=error.body, status_code=error.status, headers=dict(error.headers))


def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    """``on_error`` for ``AuthenticationMiddleware``: our 401/503 instead of a plain-text 400."""
    if isinstance(exc, ClerkAuthenticationError):
        return render_error(exc.error)
    # Another backend's failure: answer it as an invalid token, without its message.
    invalid = TokenInvalidError(str(exc) or "Authentication failed.", code="token-invalid")
    return render_error(error_response(invalid, path=route_path(conn.scope)))


class ClerkAuthBackend(AuthenticationBackend):
    """Starlette ``AuthenticationBackend`` verifying the request's Clerk session token.

    No token: ``None`` (Starlette then sets ``UnauthenticatedUser``). A token that fails, or
    keys that cannot be loaded: :class:`ClerkAuthenticationError`, which :func:`on_error` turns
    into the 401 or 503 of contract §5.

    Give ``guard``, ``config`` or the ``GuardConfig`` fields; with none of them,
    :class:`~clerk_guard.asgi.ClerkGuardMiddleware` must run before it: its result is used, and
    on the paths it skips its guard verifies the token.
    """

    def __init__(
        self,
        guard: AsyncGuard | None = None,
        *,
        config: GuardConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        self._owns_guard = False
        if guard is not None or config is not None or options:
            guard, self._owns_guard = build_guard(
                AsyncGuard, guard, config, transport, options, owner="ClerkAuthBackend"
            )
        #: The guard verifying requests the middleware did not check; ``None`` to rely on the
        #: middleware alone.
        self.guard = guard

    def middleware(self) -> Middleware:
        """``Middleware(AuthenticationMiddleware, backend=self, on_error=on_error)``."""
        return Middleware(AuthenticationMiddleware, backend=self, on_error=on_error)

    async def aclose(self) -> None:
        """Close the key client of a guard built here (call it at application shutdown); a
        guard passed in is left to its owner."""
        if self.guard is not None and self._owns_guard:
            await self.guard.aclose()

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        scope = conn.scope
        try:
            auth = await authenticate_scope(
                scope, self.guard, required=False, owner="ClerkAuthBackend"
            )
        except ClerkGuardError as exc:
            debug = scope_debug(scope, self.guard)
            error = error_response(exc, path=route_path(scope), debug=debug)
            raise ClerkAuthenticationError(error) from None
        if auth is None:
            return None
        return AuthCredentials(scopes_for(auth)), ClerkUser(auth)
