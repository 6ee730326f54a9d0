"""An aiohttp app protected by a middleware written on clerk-guard's public API alone: the routes
of contract §8.

aiohttp is not ASGI, so no shipped adapter fits it: this file is the adapter, and it imports
nothing but the names ``clerk_guard`` exports (see the README, "Writing an adapter").

Configured from the environment (``GuardConfig.from_env()``): set ``CLERK_PUBLISHABLE_KEY``
(enough on its own), and optionally ``CLERK_AUTHORIZED_PARTIES``, ``CLERK_JWKS_URL``, ...
Set ``CLERK_GUARD_WARM_UP=1`` to fetch the keys at start-up.

Run it with ``python -m examples.aiohttp_app`` (on 127.0.0.1, port ``PORT`` or 8080).

- ``GET /public``: no token needed (an excluded path).
- ``GET /me``: a valid session token (``Authorization: Bearer …`` or the ``__session`` cookie).
- ``GET /admin``: a session in an organization with the role ``org:admin``; 403 otherwise.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Collection

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from clerk_guard import (
    AsyncGuard,
    ClerkGuardError,
    ErrorResponse,
    GuardConfig,
    SessionAuth,
    check_requirements,
    error_response,
    missing_token,
)
from examples import session_summary

#: The application's guard: built once with the app, closed at its cleanup.
GUARD = web.AppKey("clerk_guard", AsyncGuard)
#: The request's verified session, or ``None`` (an excluded path, or no token when optional).
CLERK = web.RequestKey[SessionAuth | None]("clerk")


def render(error: ErrorResponse) -> web.Response:
    """The neutral answer of contract §5 as an aiohttp response: status, body and headers as is."""
    return web.Response(body=error.body, status=error.status, headers=dict(error.headers))


def clerk_middleware(
    guard: AsyncGuard, *, exclude: Collection[str] = (), required: bool = True
) -> Middleware:
    """A middleware verifying the session of every request except the ``exclude`` paths (and,
    when ``required``, CORS preflights).

    :param required: refuse requests without a token (401); when false they go through with no
        session, and a handler that needs one calls :func:`session`. A token that is sent and
        fails is refused either way.

    A :class:`~clerk_guard.ClerkGuardError` raised by a handler (``check_requirements``: 403) is
    answered the same way as the middleware's own refusals.
    """

    @web.middleware
    async def clerk_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            auth = None
            # Browsers send CORS preflights without credentials: protect-all lets them through.
            preflight = request.method == "OPTIONS" and (
                "Access-Control-Request-Method" in request.headers
            )
            if request.path not in exclude and not (required and preflight):
                # Every line of each header: two Authorization lines are refused (contract §2).
                auth = await guard.authenticate(
                    request.headers.getall("Authorization", []),
                    request.headers.getall("Cookie", []),
                    required=required,
                )
            request[CLERK] = auth
            return await handler(request)
        except ClerkGuardError as exc:  # logged by error_response(), with the reason code
            return render(error_response(exc, path=request.path, debug=guard.config.debug))

    return clerk_guard_middleware


def session(request: web.Request) -> SessionAuth:
    """The request's verified session; without one, the missing-token 401."""
    auth: SessionAuth | None = request.get(CLERK)
    if auth is None:
        raise missing_token()  # answered by the middleware
    return auth


async def public(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def me(request: web.Request) -> web.Response:
    return web.json_response(session_summary(session(request)))


async def admin(request: web.Request) -> web.Response:
    auth = session(request)
    check_requirements(auth, role="org:admin")  # PermissionDeniedError: 403
    return web.json_response(session_summary(auth))


async def guard_lifetime(app: web.Application) -> AsyncIterator[None]:
    """Warm the keys up at start-up when asked; close the guard's HTTP client at cleanup."""
    guard = app[GUARD]
    if os.environ.get("CLERK_GUARD_WARM_UP") == "1":
        await guard.try_warm_up()  # a failure is logged; requests fetch again
    yield
    await guard.aclose()


def create_app(config: GuardConfig | None = None) -> web.Application:
    """The example app; ``config`` defaults to :meth:`GuardConfig.from_env`.

    :raises ConfigurationError: the configuration cannot work (at start-up, not at a request).
    """
    guard = AsyncGuard(config if config is not None else GuardConfig.from_env())
    app = web.Application(middlewares=[clerk_middleware(guard, exclude={"/public"})])
    app[GUARD] = guard
    app.cleanup_ctx.append(guard_lifetime)
    app.router.add_get("/public", public)
    app.router.add_get("/me", me)
    app.router.add_get("/admin", admin)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
