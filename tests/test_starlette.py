"""Starlette AuthenticationBackend: request.user, request.auth, @requires, on_error."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.authentication import AuthenticationError, requires  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.middleware.authentication import AuthenticationMiddleware  # noqa: E402
from starlette.requests import HTTPConnection  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route, WebSocketRoute  # noqa: E402

from clerk_guard import AsyncGuard, ConfigurationError, SessionAuth  # noqa: E402
from clerk_guard.asgi import ClerkGuardMiddleware  # noqa: E402
from clerk_guard.starlette import (  # noqa: E402
    ClerkAuthBackend,
    ClerkUser,
    on_error,
    scopes_for,
)
from tests._asgi import (  # noqa: E402
    INVALID,
    asgi_fixtures,
    bearer,
    client,
    websocket_handshake,
)

pytestmark = pytest.mark.anyio

anyio_backend, transport, guard = asgi_fixtures()


async def whoami(request):
    user = request.user
    return JSONResponse(
        {
            "authenticated": user.is_authenticated,
            "user": user.display_name,
            "scopes": request.auth.scopes,
        }
    )


@requires("org:admin")
async def admin(request):
    return JSONResponse({"user": request.user.identity})


@requires("authenticated")
async def private(request):
    return JSONResponse({"user": request.user.user_id})


async def ws(websocket):
    await websocket.accept()
    await websocket.send_text(websocket.user.display_name)
    await websocket.close()


ROUTES = [
    Route("/whoami", whoami),
    Route("/admin", admin),
    Route("/private", private),
    WebSocketRoute("/ws", ws),
]


def build_app(backend, *extra_outside):
    return Starlette(routes=ROUTES, middleware=[*extra_outside, backend.middleware()])


async def test_user_and_scopes(clerk_issuer, guard):
    """A valid token gives a ClerkUser and scopes: authenticated, the role, the permissions."""
    token = clerk_issuer.mint(
        user_id="user_s", org_id="org_1", org_role="org:admin", org_permissions=["org:a:read"]
    )
    async with client(build_app(ClerkAuthBackend(guard))) as c:
        response = await c.get("/whoami", headers=bearer(token))
    assert response.json() == {
        "authenticated": True,
        "user": "user_s",
        "scopes": ["authenticated", "org:admin", "org:a:read"],
    }


async def test_no_token_is_unauthenticated(guard):
    """Without a token the request goes on as Starlette's UnauthenticatedUser."""
    async with client(build_app(ClerkAuthBackend(guard))) as c:
        response = await c.get("/whoami")
        private_response = await c.get("/private")
    assert response.json() == {"authenticated": False, "user": "", "scopes": []}
    assert private_response.status_code == 403  # Starlette's @requires answers 403


async def test_requires_uses_role_scope(clerk_issuer, guard):
    """@requires("org:admin") lets admins in and keeps other members out."""
    admin_token = clerk_issuer.mint(org_id="org_1", org_role="org:admin")
    member_token = clerk_issuer.mint(org_id="org_1", org_role="org:member")
    async with client(build_app(ClerkAuthBackend(guard))) as c:
        assert (await c.get("/admin", headers=bearer(admin_token))).status_code == 200
        assert (await c.get("/admin", headers=bearer(member_token))).status_code == 403
        assert (await c.get("/private", headers=bearer(member_token))).status_code == 200


async def test_invalid_token_answers_our_401(clerk_issuer, guard):
    """A bad token is answered by on_error with the contract §5 401, not a plain-text 400."""
    async with client(build_app(ClerkAuthBackend(guard))) as c:
        response = await c.get("/whoami", headers=bearer(clerk_issuer.mint(lifetime=-60)))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json() == INVALID


async def test_keys_unavailable_answers_503(clerk_issuer, guard, transport):
    """Keys that cannot be loaded: 503 with Retry-After through on_error."""
    transport.status_code = 500
    async with client(build_app(ClerkAuthBackend(guard))) as c:
        response = await c.get("/whoami", headers=bearer(clerk_issuer.mint()))
    assert response.status_code == 503
    assert "retry-after" in response.headers


def test_on_error_for_another_backend():
    """on_error answers another backend's AuthenticationError as an opaque invalid token."""
    conn = HTTPConnection({"type": "http", "path": "/x", "headers": []})
    response = on_error(conn, AuthenticationError("secret detail"))
    assert response.status_code == 401
    assert b"secret detail" not in response.body
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_reuses_middleware_result(clerk_issuer, guard, transport):
    """Behind ClerkGuardMiddleware a guard-less backend uses its result."""
    outside = Middleware(ClerkGuardMiddleware, guard=guard, required=False)
    app = build_app(ClerkAuthBackend(), outside)
    async with client(app) as c:
        signed_in = await c.get("/whoami", headers=bearer(clerk_issuer.mint(user_id="user_m")))
        anonymous = await c.get("/whoami")
    assert signed_in.json()["user"] == "user_m"
    assert anonymous.json()["authenticated"] is False
    assert transport.fetches == 1


async def test_websocket_behind_middleware_refused_with_1008(clerk_issuer, guard):
    """With ClerkGuardMiddleware outside, a bad WebSocket token is closed with 1008."""
    outside = Middleware(ClerkGuardMiddleware, guard=guard, required=False)
    app = build_app(ClerkAuthBackend(), outside)
    refused = await websocket_handshake(app, headers=[(b"authorization", b"Bearer a.b.c")])
    token = clerk_issuer.mint(user_id="user_w")
    accepted = await websocket_handshake(
        app, headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    assert refused == [{"type": "websocket.close", "code": 1008, "reason": "Invalid Token"}]
    assert accepted[0]["type"] == "websocket.accept"
    assert accepted[1]["text"] == "user_w"


async def test_guardless_backend_uses_middleware_guard_on_excluded_paths(clerk_issuer, guard):
    """On a path the middleware skips, a guard-less backend verifies with the middleware's guard
    (never a 500): anonymous without a token, the user with one, 401 for a bad one."""
    outside = Middleware(ClerkGuardMiddleware, guard=guard, exclude=("/whoami",))
    app = build_app(ClerkAuthBackend(), outside)
    token = clerk_issuer.mint(user_id="user_x")
    async with client(app) as c:
        anonymous = await c.get("/whoami")
        signed_in = await c.get("/whoami", headers=bearer(token))
        forged = await c.get("/whoami", headers=bearer("a.b.c"))
    assert anonymous.json()["authenticated"] is False
    assert signed_in.json()["user"] == "user_x"
    assert forged.status_code == 401
    assert forged.json() == INVALID


async def test_guardless_backend_follows_middleware_debug(clerk_issuer, transport):
    """A guard-less backend's rejections carry the reason when the middleware's config is debug."""
    debug_guard = AsyncGuard(clerk_issuer.config(debug=True), transport=transport)
    outside = Middleware(ClerkGuardMiddleware, guard=debug_guard, exclude=("/whoami",))
    async with client(build_app(ClerkAuthBackend(), outside)) as c:
        response = await c.get("/whoami", headers=bearer(clerk_issuer.mint(lifetime=-60)))
    await debug_guard.aclose()
    assert response.status_code == 401
    assert response.json()["reason"] == "token-expired"


async def test_aclose_leaves_a_given_guard_open(clerk_issuer, guard):
    """aclose() closes only a guard the backend built; a given guard keeps working."""
    await ClerkAuthBackend(guard).aclose()
    async with client(build_app(ClerkAuthBackend(guard))) as c:
        response = await c.get("/whoami", headers=bearer(clerk_issuer.mint(user_id="user_g")))
    assert response.json()["user"] == "user_g"


async def test_no_middleware_and_no_guard_is_a_clear_error():
    """A guard-less backend without the middleware says what to install."""
    async with client(build_app(ClerkAuthBackend())) as c:
        with pytest.raises(RuntimeError, match="ClerkGuardMiddleware must be installed"):
            await c.get("/whoami")


def test_clerk_user_and_scopes_for():
    """ClerkUser exposes the session; scopes_for lists role then permissions."""
    auth = SessionAuth.from_claims(
        {
            "sub": "user_u",
            "sid": "sess_u",
            "exp": 2e9,
            "iat": 1e9,
            "org_id": "org_1",
            "org_role": "org:member",
            "org_permissions": ["org:x:y"],
        }
    )
    user = ClerkUser(auth)
    assert user.is_authenticated
    assert user.identity == user.display_name == user.user_id == "user_u"
    assert user.auth is auth
    assert repr(user) == "<ClerkUser user_u>"
    assert scopes_for(auth) == ["authenticated", "org:member", "org:x:y"]


async def test_constructor(clerk_issuer, transport):
    """config builds a guard; guard plus config is an error; middleware() wires on_error."""
    backend = ClerkAuthBackend(config=clerk_issuer.config(), transport=transport)
    assert backend.guard is not None
    middleware = backend.middleware()
    assert middleware.cls is AuthenticationMiddleware
    assert middleware.kwargs == {"backend": backend, "on_error": on_error}
    with pytest.raises(ConfigurationError, match="either guard"):
        ClerkAuthBackend(backend.guard, config=clerk_issuer.config())
    await backend.aclose()
