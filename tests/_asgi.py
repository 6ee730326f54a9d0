"""Shared by the ASGI tests: contract §5 bodies, request helpers, fixtures, and drivers for what
httpx.ASGITransport cannot do (lifespan and WebSockets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import httpx
import pytest

from clerk_guard import AsyncGuard
from clerk_guard._http import FORBIDDEN_MESSAGE, INVALID_MESSAGE, MISSING_MESSAGE

MISSING = {"error": "Invalid Token", "message": MISSING_MESSAGE}
INVALID = {"error": "Invalid Token", "message": INVALID_MESSAGE}
FORBIDDEN = {"error": "Forbidden", "message": FORBIDDEN_MESSAGE}


def client(app: Any) -> httpx.AsyncClient:
    """An in-process client for ``app``."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://testserver")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def asgi_fixtures() -> tuple[Any, Any, Any]:
    """The fixtures every in-process ASGI test module uses: ``anyio_backend`` (asyncio), the
    issuer's counting ``transport``, and an ``AsyncGuard`` on it, closed after the test.

    ``anyio_backend, transport, guard = asgi_fixtures()`` at module level registers them.
    """

    @pytest.fixture
    def anyio_backend() -> str:
        return "asyncio"

    @pytest.fixture
    def transport(clerk_issuer: Any) -> Any:
        return clerk_issuer.transport()

    @pytest.fixture
    async def guard(clerk_issuer: Any, transport: Any) -> Any:
        guard = AsyncGuard(clerk_issuer.config(), transport=transport)
        yield guard
        await guard.aclose()

    return anyio_backend, transport, guard


async def websocket_handshake(
    app: Any,
    *,
    path: str = "/ws",
    headers: Sequence[tuple[bytes, bytes]] = (),
    timeout: float = 10.0,
) -> list[dict[str, Any]]:
    """Open a WebSocket to ``app`` and return every message it sends until it closes.

    The client sends ``websocket.connect`` first, then ``websocket.disconnect`` when asked again.
    """
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "state": {},
    }
    incoming = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    with anyio.fail_after(timeout):
        await app(scope, receive, send)
    return sent


async def run_lifespan(app: Any, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Run ``app``'s lifespan start-up then shut-down; return the messages it sends."""
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    with anyio.fail_after(timeout):
        await app(scope, receive, send)
    return sent
