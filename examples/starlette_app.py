"""A Starlette app protected by clerk-guard's ASGI middleware alone: the routes of contract §8.

Configured from the environment (``GuardConfig.from_env()``): set ``CLERK_PUBLISHABLE_KEY``
(enough on its own), and optionally ``CLERK_AUTHORIZED_PARTIES``, ``CLERK_JWKS_URL``, ...
Set ``CLERK_GUARD_WARM_UP=1`` to fetch the keys at start-up.

Run it with ``uvicorn examples.starlette_app:app``.

- ``GET /public``: no token needed (an excluded path).
- ``GET /me``: a valid session token (``Authorization: Bearer …`` or the ``__session`` cookie).
- ``GET /admin``: a session in an organization with the role ``org:admin``; 403 otherwise.
- ``WS /ws``: a WebSocket that needs a valid session; refused with close code 1008 otherwise.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from clerk_guard import (
    GuardConfig,
    PermissionDeniedError,
    SessionAuth,
    check_requirements,
    error_response,
)
from clerk_guard.asgi import ClerkGuardMiddleware
from clerk_guard.starlette import render_error
from examples import session_summary

config = GuardConfig.from_env()


async def public(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def me(request: Request) -> Response:
    auth: SessionAuth = request.state.clerk  # the middleware rejected requests without one
    return JSONResponse(session_summary(auth))


async def admin(request: Request) -> Response:
    auth: SessionAuth = request.state.clerk
    try:
        check_requirements(auth, role="org:admin")
    except PermissionDeniedError as denied:
        return render_error(error_response(denied, path=request.url.path, debug=config.debug))
    return JSONResponse(session_summary(auth))


async def ws(websocket: WebSocket) -> None:
    auth: SessionAuth = websocket.state.clerk
    await websocket.accept()
    await websocket.send_json(session_summary(auth))
    await websocket.close()


app = Starlette(
    routes=[
        Route("/public", public),
        Route("/me", me),
        Route("/admin", admin),
        WebSocketRoute("/ws", ws),
    ],
    middleware=[
        Middleware(
            ClerkGuardMiddleware,
            config=config,
            exclude=("/public",),
            warm_up=os.environ.get("CLERK_GUARD_WARM_UP") == "1",
        )
    ],
)
