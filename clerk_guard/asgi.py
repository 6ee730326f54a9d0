"""Pure ASGI middleware: verify the Clerk session of every HTTP request and WebSocket handshake.

Works under any ASGI application (Starlette, FastAPI, Quart, Django's ASGI handler, ...) and
imports no framework::

    from clerk_guard import GuardConfig
    from clerk_guard.asgi import ClerkGuardMiddleware

    app.add_middleware(
        ClerkGuardMiddleware, config=GuardConfig.from_env(), exclude=("/health",)
    )

The verified :class:`~clerk_guard.SessionAuth` is put in the ASGI scope twice:
``scope["state"]["clerk"]`` (so ``request.state.clerk`` works in Starlette and FastAPI) and
``scope["clerk_guard.auth"]`` (for other ASGI code). The middleware's guard is in
``scope["clerk_guard.guard"]`` on every request, excluded paths included, so that dependencies
and backends further in can verify with it where the middleware did not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import httpx

from clerk_guard import (
    AsyncGuard,
    ClerkGuardError,
    ErrorResponse,
    GuardConfig,
    SessionAuth,
    SessionPendingError,
    TokenMissingError,
    error_response,
    missing_token,
)
from clerk_guard.adapter import ExcludedPaths, build_guard

__all__ = [
    "GUARD_KEY",
    "PENDING_KEY",
    "SCOPE_KEY",
    "STATE_KEY",
    "WS_POLICY_VIOLATION",
    "ClerkGuardMiddleware",
    "authenticate_scope",
    "close_websocket",
    "get_auth",
    "header_lines",
    "is_preflight",
    "route_path",
    "scope_debug",
    "send_error",
]

# Private ASGI aliases, so this module needs no framework (as starlette/types.py defines them).
_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]

#: Where the middleware puts its result in the ASGI scope: a :class:`SessionAuth`, or ``None``
#: (attach-only mode, no token). Absent when the middleware did not check the request.
SCOPE_KEY = "clerk_guard.auth"
#: Where the middleware puts its :class:`~clerk_guard.AsyncGuard`, on every HTTP request and
#: WebSocket, checked or not: dependencies without a guard of their own verify with it.
GUARD_KEY = "clerk_guard.guard"
#: Where the attach-only middleware keeps the refusal of a pending session's token, which it let
#: through as signed out: a route that requires a session answers it as a refused token.
PENDING_KEY = "clerk_guard.pending"
#: The key in ``scope["state"]``: ``request.state.clerk`` in Starlette and FastAPI.
STATE_KEY = "clerk"
#: RFC 6455 §7.4.1: "policy violation", the close code for a refused handshake.
WS_POLICY_VIOLATION = 1008


def header_lines(scope: _Scope) -> tuple[list[str], list[str]]:
    """Every ``Authorization`` and every ``Cookie`` field line of a request, decoded latin-1.

    The core needs all of them: two ``Authorization`` lines are an error, and cookies may be
    split over several lines (HTTP/2).
    """
    authorization: list[str] = []
    cookies: list[str] = []
    # One pass; names are compared as the raw bytes servers send (the ASGI spec asks for
    # lower case), and only a name holding capitals is lowered. Only the two values we need
    # are decoded.
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            authorization.append(value.decode("latin-1"))
        elif name == b"cookie":
            cookies.append(value.decode("latin-1"))
        elif not name.islower():
            lowered = name.lower()
            if lowered == b"authorization":
                authorization.append(value.decode("latin-1"))
            elif lowered == b"cookie":
                cookies.append(value.decode("latin-1"))
    return authorization, cookies


def is_preflight(scope: _Scope) -> bool:
    """Whether the request is a CORS preflight: ``OPTIONS`` with ``Access-Control-Request-Method``.

    Browsers never send credentials on a preflight, so protect-everything modes let it through.
    """
    if scope.get("method") != "OPTIONS":
        return False
    return any(
        name.lower() == b"access-control-request-method" for name, _ in scope.get("headers") or ()
    )


def route_path(scope: _Scope) -> str:
    """The path the application routes on: ``scope["path"]`` less any ``root_path``.

    Mirrors Starlette's routing, so excluded paths match what the router will match.
    """
    path: str = scope.get("path") or "/"
    root_path: str = scope.get("root_path") or ""
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if rest.startswith("/"):
            return rest
        if not rest:
            return "/"
    return path


def get_auth(scope: _Scope) -> SessionAuth | None:
    """The session the middleware verified for this request, or ``None``."""
    auth = scope.get(SCOPE_KEY)
    return auth if isinstance(auth, SessionAuth) else None


def _guard_for(scope: _Scope, guard: AsyncGuard | None) -> AsyncGuard | None:
    if guard is None:
        guard = scope.get(GUARD_KEY)
    return guard if isinstance(guard, AsyncGuard) else None


async def authenticate_scope(
    scope: _Scope, guard: AsyncGuard | None, *, required: bool, owner: str
) -> SessionAuth | None:
    """The session of a request, for dependencies and backends running inside the middleware.

    The middleware's result when it checked the request; otherwise the token is verified now
    with ``guard``, or with the middleware's guard (found in the scope on the paths it skips).

    :raises ClerkGuardError: as :meth:`AsyncGuard.authenticate`; with ``required``, also when
        the middleware found no token.
    :raises RuntimeError: no ``guard`` and no middleware: ``owner`` names what to configure.
    """
    if SCOPE_KEY in scope:
        auth: SessionAuth | None = scope[SCOPE_KEY]
        if auth is None and required:
            raise scope.get(PENDING_KEY) or missing_token()
        return auth
    verifier = _guard_for(scope, guard)
    if verifier is None:
        raise RuntimeError(
            f"ClerkGuardMiddleware must be installed to use {owner}() without a configuration; "
            "or pass it config=GuardConfig.from_env() (or guard=...)."
        )
    authorization, cookies = header_lines(scope)
    return await verifier.authenticate(authorization, cookies, required=required)


def scope_debug(scope: _Scope, guard: AsyncGuard | None) -> bool:
    """Whether rejections carry their reason: ``guard``'s ``debug``, else the middleware's."""
    verifier = _guard_for(scope, guard)
    return verifier is not None and verifier.config.debug


async def send_error(send: _Send, error: ErrorResponse) -> None:
    """Send an :class:`ErrorResponse` as a complete HTTP response."""
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in error.headers]
    headers.append((b"content-length", str(len(error.body)).encode("latin-1")))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": error.body})


async def close_websocket(receive: _Receive, send: _Send, error: ErrorResponse) -> None:
    """Refuse a WebSocket handshake with close code 1008, before it is accepted.

    The server answers the handshake with an HTTP 403; the reason names the failure class
    (``Invalid Token``, ``Forbidden``, ``Service Unavailable``), never why a token failed.
    """
    message = await receive()  # websocket.connect comes first (ASGI spec)
    if message.get("type") != "websocket.connect":
        return  # the client already went away
    reason = error.data.get("error", "")
    await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": reason})


class ClerkGuardMiddleware:
    """ASGI middleware verifying the Clerk session token of HTTP requests and WebSockets.

    Give either ``guard`` (an :class:`~clerk_guard.AsyncGuard` you share and close yourself),
    ``config`` (a :class:`~clerk_guard.GuardConfig`), or the ``GuardConfig`` fields as keyword
    arguments. With none of them, the configuration is read with
    :meth:`GuardConfig.from_env`. A guard built here is closed at lifespan shutdown.

    Failures are answered as contract §5 says: 401 with ``WWW-Authenticate`` for a missing or
    invalid token, 503 with ``Retry-After`` when no keys can be loaded. A refused WebSocket
    handshake is closed with code 1008 before it is accepted.

    :param exclude: exact paths that are never checked (``"/health"`` does not cover
        ``"/health/"``). No result is attached there (``request.state.clerk`` is ``None``).
    :param exclude_prefixes: path prefixes that are never checked, matched on whole segments:
        ``"/static"`` covers ``/static`` and ``/static/app.js`` but not ``/staticky``.
    :param required: when false (attach-only mode), a request without a token goes through
        with ``None`` attached and the routes decide. A token that is sent and fails is still
        answered with 401 in this mode: a forged or expired token never passes as signed out.
        When true, CORS preflights (``OPTIONS`` with ``Access-Control-Request-Method``, which
        browsers send without credentials) pass unverified, as excluded paths do.
    :param warm_up: fetch the keys during lifespan start-up, so the first request does not
        wait. A failure there is logged and the first request tries again.
    :param transport: an ``httpx`` transport for the key fetch, when the guard is built here.

    .. note::
        Excluded paths are compared with the decoded ``scope["path"]`` less ``root_path``,
        as Starlette routes. Where a request is not checked (an excluded path, a preflight),
        ``request.state.clerk`` is ``None``, ``scope["clerk_guard.auth"]`` is absent and
        ``scope["clerk_guard.guard"]`` still holds the guard. Put ``CORSMiddleware`` outside
        this middleware (add it after) so that it answers the preflights.
    """

    def __init__(
        self,
        app: _ASGIApp,
        /,
        *,
        guard: AsyncGuard | None = None,
        config: GuardConfig | None = None,
        exclude: str | Iterable[str] = (),
        exclude_prefixes: str | Iterable[str] = (),
        required: bool = True,
        warm_up: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.guard, self._owns_guard = build_guard(
            AsyncGuard, guard, config, transport, options, owner="ClerkGuardMiddleware"
        )
        self.excluded = ExcludedPaths(exclude, exclude_prefixes)
        self.required = required
        self.warm_up = warm_up
        # A guard whose authenticate() is its own (extra checks) decides every request: the
        # supported way to extend a guard (see AsyncGuard), so the fast path below steps aside.
        self._own_authenticate = type(self.guard).authenticate is not AsyncGuard.authenticate
        self._debug = self.guard.config.debug
        # Without exclusions (and with is_excluded not overridden) no path can match: requests
        # then skip the call.
        self._may_exclude = bool(self.excluded) or (
            type(self).is_excluded is not ClerkGuardMiddleware.is_excluded
        )

    def is_excluded(self, path: str) -> bool:
        """Whether requests to ``path`` skip verification."""
        return path in self.excluded

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        scope[GUARD_KEY] = guard = self.guard
        if (
            (self._may_exclude and self.is_excluded(route_path(scope)))
            # Only an OPTIONS request can be a preflight: skip the header scan otherwise.
            or (self.required and scope.get("method") == "OPTIONS" and is_preflight(scope))
        ):
            state[STATE_KEY] = None
            await self.app(scope, receive, send)
            return
        authorization, cookies = header_lines(scope)
        try:
            if self._own_authenticate:
                auth = await guard.authenticate(authorization, cookies, required=True)
            else:
                # AsyncGuard.authenticate() in its two steps, so that a cached token (most
                # requests) costs no coroutine.
                found, auth = guard.lookup(authorization, cookies)
                if auth is None:
                    if found is None:
                        raise missing_token()
                    auth = await guard.verify(found[0], source=found[1])
        except TokenMissingError as exc:
            if self.required:
                await self._refuse(scope, receive, send, exc)
                return
            auth = None
        except SessionPendingError as exc:
            if self.required:
                await self._refuse(scope, receive, send, exc)
                return
            # Signed out, as Clerk treats a pending session; a route that requires a session
            # answers it as the refused token it is, not as a missing one.
            state[STATE_KEY] = scope[SCOPE_KEY] = None
            scope[PENDING_KEY] = exc
            await self.app(scope, receive, send)
            return
        except ClerkGuardError as exc:
            await self._refuse(scope, receive, send, exc)
            return
        state[STATE_KEY] = auth
        scope[SCOPE_KEY] = auth
        await self.app(scope, receive, send)

    async def _refuse(
        self, scope: _Scope, receive: _Receive, send: _Send, exc: ClerkGuardError
    ) -> None:
        error = error_response(exc, path=route_path(scope), debug=self._debug)
        if scope["type"] == "websocket":
            await close_websocket(receive, send, error)
        else:
            await send_error(send, error)

    async def _lifespan(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        async def receive_and_warm_up() -> _Message:
            message = await receive()
            if message.get("type") == "lifespan.startup" and self.warm_up:
                await self.guard.try_warm_up()  # a failure is logged; requests fetch again
            return message

        async def send_and_close(message: _Message) -> None:
            if message.get("type") == "lifespan.shutdown.complete" and self._owns_guard:
                await self.guard.aclose()
            await send(message)

        await self.app(scope, receive_and_warm_up, send_and_close)
