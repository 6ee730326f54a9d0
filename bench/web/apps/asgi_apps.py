"""ASGI variants, as uvicorn factories (``uvicorn --factory apps.asgi_apps:<name>``).

Only the factory that is asked for runs, so a bare app builds no guard. The FastAPI parameters
use ``= Depends(...)`` defaults: with postponed annotations FastAPI resolves the annotation
strings in the module's globals, where an ``Annotated[..., Depends(local)]`` cannot be found.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi_clerk_auth import HTTPAuthorizationCredentials
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apps import ANONYMOUS, sdk_options
from clerk_guard import SessionAuth

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# Starlette ---------------------------------------------------------------------------------------


async def _bare_me(request: Request) -> Response:
    return JSONResponse(ANONYMOUS)


def starlette_bare() -> Starlette:
    """The ceiling: Starlette, one route, no authentication."""
    return Starlette(routes=[Route("/me", _bare_me)])


async def _guard_me(request: Request) -> Response:
    return JSONResponse({"user_id": request.state.clerk.user_id})


def starlette_guard() -> Starlette:
    """Starlette + clerk_guard.asgi.ClerkGuardMiddleware (keys from the loopback JWKS server)."""
    from clerk_guard import GuardConfig
    from clerk_guard.asgi import ClerkGuardMiddleware

    return Starlette(
        routes=[Route("/me", _guard_me)],
        middleware=[Middleware(ClerkGuardMiddleware, config=GuardConfig.from_env())],
    )


class ClerkSDKMiddleware:
    """Pure ASGI middleware around clerk-backend-api's ``authenticate_request_async``.

    Signed out (missing or invalid token) is answered 401; the payload goes to
    ``scope["state"]["clerk_payload"]``.
    """

    def __init__(self, app: ASGIApp) -> None:
        from clerk_backend_api.security import authenticate_request_async

        self.app = app
        self.options = sdk_options()
        self.authenticate = authenticate_request_async

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = await self.authenticate(HTTPConnection(scope), self.options)
        if not state.is_signed_in:
            body = b'{"error":"Unauthorized"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["clerk_payload"] = state.payload
        await self.app(scope, receive, send)


async def _sdk_me(request: Request) -> Response:
    return JSONResponse({"user_id": request.state.clerk_payload["sub"]})


def starlette_clerk_sdk() -> Starlette:
    """Starlette + clerk-backend-api ``authenticate_request_async`` (PEM key, networkless)."""
    return Starlette(routes=[Route("/me", _sdk_me)], middleware=[Middleware(ClerkSDKMiddleware)])


# FastAPI -----------------------------------------------------------------------------------------


def fastapi_bare() -> FastAPI:
    """The FastAPI ceiling: one route, no authentication."""
    app = FastAPI(openapi_url=None)

    @app.get("/me")
    async def me():  # type: ignore[no-untyped-def]  # no return model, as the others
        return ANONYMOUS

    return app


def fastapi_guard() -> FastAPI:
    """FastAPI + the clerk-guard dependency ``ClerkAuth`` (no middleware)."""
    from clerk_guard import GuardConfig
    from clerk_guard.fastapi import ClerkAuth, install_error_handler

    clerk = ClerkAuth(config=GuardConfig.from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await clerk.aclose()

    app = FastAPI(openapi_url=None, lifespan=lifespan)
    install_error_handler(app)

    @app.get("/me")
    async def me(auth: SessionAuth = Depends(clerk)):  # type: ignore[no-untyped-def]
        return {"user_id": auth.user_id}

    return app


def fastapi_clerk_auth() -> FastAPI:
    """FastAPI + fastapi-clerk-auth's ``ClerkHTTPBearer`` (PyJWKClient on the loopback JWKS).

    Its defaults: the key set is cached (300 s), every request verifies the signature; a bad
    token is answered 403 (its behaviour, not 401).
    """
    from fastapi_clerk_auth import ClerkConfig, ClerkHTTPBearer

    bearer = ClerkHTTPBearer(ClerkConfig(jwks_url=os.environ["BENCH_JWKS_URL"]))
    app = FastAPI(openapi_url=None)

    @app.get("/me")
    async def me(credentials: HTTPAuthorizationCredentials = Depends(bearer)):  # type: ignore[no-untyped-def]
        assert credentials.decoded is not None
        return {"user_id": credentials.decoded["sub"]}

    return app
