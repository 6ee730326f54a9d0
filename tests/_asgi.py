"""Drive an ASGI app in-process for what httpx.ASGITransport cannot do: lifespan and WebSockets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio


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
