"""A minimal ASGI app for the key-outage test under real uvicorn (tests/test_jwks_network.py).

``ClerkGuardMiddleware`` over an app answering ``{"user_id": ...}``, configured from the
environment as the examples are, but with a 1-second cooldown and back-off cap, so that the
test's real clock only needs seconds.
"""

from __future__ import annotations

import json
from typing import Any

from clerk_guard import GuardConfig
from clerk_guard.asgi import SCOPE_KEY, ClerkGuardMiddleware


async def _whoami(scope: dict[str, Any], receive: Any, send: Any) -> None:
    auth = scope.get(SCOPE_KEY)
    body = json.dumps({"user_id": auth.user_id if auth is not None else None}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = ClerkGuardMiddleware(
    _whoami,
    config=GuardConfig.from_env(jwks_cooldown=1, jwks_max_backoff=1),
    exclude=("/public",),
)
