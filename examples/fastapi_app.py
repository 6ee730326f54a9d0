"""A FastAPI app protected by clerk-guard's dependencies: the routes of contract §8.

Configured from the environment (``GuardConfig.from_env()``): set ``CLERK_PUBLISHABLE_KEY``
(enough on its own), and optionally ``CLERK_AUTHORIZED_PARTIES``, ``CLERK_JWKS_URL``, ...
Set ``CLERK_GUARD_WARM_UP=1`` to fetch the keys at start-up.

Run it with ``uvicorn examples.fastapi_app:app``; ``/docs`` shows an *Authorize* button.

- ``GET /public``: no token needed.
- ``GET /me``: a valid session token (``Authorization: Bearer …`` or the ``__session`` cookie).
- ``GET /admin``: a session in an organization with the role ``org:admin``; 403 otherwise.
- ``GET /hello``: works signed in or out (an optional dependency).
- ``WS /ws``: a WebSocket that needs a valid session; refused with close code 1008 otherwise.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, WebSocket

from clerk_guard import GuardConfig, SessionAuth
from clerk_guard.fastapi import ClerkAuth, install_error_handler
from examples import session_summary

clerk = ClerkAuth(config=GuardConfig.from_env())
clerk_admin = clerk.require(role="org:admin")
clerk_optional = clerk.optional()

Session = Annotated[SessionAuth, Depends(clerk)]
AdminSession = Annotated[SessionAuth, Depends(clerk_admin)]
MaybeSession = Annotated[SessionAuth | None, Depends(clerk_optional)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if os.environ.get("CLERK_GUARD_WARM_UP") == "1" and clerk.guard is not None:
        await clerk.guard.warm_up()
    yield
    await clerk.aclose()


app = FastAPI(title="clerk-guard FastAPI example", lifespan=lifespan)
# Needed for contract §5's exact bodies; FastAPI's own handler would answer {"detail": ...}.
install_error_handler(app)


@app.get("/public")
async def public() -> dict[str, Any]:
    return {"ok": True}


@app.get("/me")
async def me(auth: Session) -> dict[str, Any]:
    return session_summary(auth)


@app.get("/admin")
async def admin(auth: AdminSession) -> dict[str, Any]:
    return session_summary(auth)


@app.get("/hello")
async def hello(auth: MaybeSession) -> dict[str, Any]:
    return {"user_id": auth.user_id if auth is not None else None}


@app.websocket("/ws")
async def ws(websocket: WebSocket, auth: Session) -> None:
    await websocket.accept()
    await websocket.send_json(session_summary(auth))
    await websocket.close()
