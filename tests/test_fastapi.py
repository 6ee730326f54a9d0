"""FastAPI dependencies: status and bodies of contract §5, OpenAPI, WebSockets, the middleware."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from fastapi import Depends, FastAPI, WebSocket  # noqa: E402

from clerk_guard import AsyncGuard, ConfigurationError, SessionAuth  # noqa: E402
from clerk_guard.asgi import ClerkGuardMiddleware  # noqa: E402
from clerk_guard.fastapi import (  # noqa: E402
    ClerkAuth,
    ClerkGuardHTTPException,
    OptionalClerkAuth,
    install_error_handler,
)
from tests._asgi import (  # noqa: E402
    FORBIDDEN,
    INVALID,
    MISSING,
    asgi_fixtures,
    bearer,
    client,
    websocket_handshake,
)

pytestmark = pytest.mark.anyio

anyio_backend, transport, guard = asgi_fixtures()


def build_app(clerk, *, handler=True):
    """An app with the usual routes, all guarded by ``clerk`` and its variants.

    Dependencies go in defaults: string annotations (PEP 563) cannot name local variables.
    """
    app = FastAPI()
    if handler:
        install_error_handler(app)
    admin = clerk.require(role="org:admin")
    reader = clerk.require(permission="org:invoices:read")
    optional = clerk.optional()

    @app.get("/public")
    async def public():
        return {"ok": True}

    @app.get("/me")
    async def me(auth: SessionAuth = Depends(clerk)):
        return {"user_id": auth.user_id, "source": auth.token_source}

    @app.get("/admin")
    async def admin_route(auth: SessionAuth = Depends(admin)):
        return {"user_id": auth.user_id}

    @app.get("/invoices")
    async def invoices(auth: SessionAuth = Depends(reader)):
        return {"user_id": auth.user_id}

    @app.get("/hello")
    async def hello(auth: SessionAuth | None = Depends(optional)):
        return {"user_id": auth.user_id if auth else None}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, auth: SessionAuth = Depends(clerk)):
        await websocket.accept()
        await websocket.send_text(auth.user_id)
        await websocket.close()

    return app


async def test_required_missing_invalid_valid(clerk_issuer, guard):
    """Required dependency: 401 missing, 401 invalid_token, 200 with the session."""
    async with client(build_app(ClerkAuth(guard))) as c:
        missing = await c.get("/me")
        invalid = await c.get("/me", headers=bearer("a.b.c"))
        pending = await c.get("/me", headers=bearer(clerk_issuer.mint(status="pending")))
        valid = await c.get("/me", headers=bearer(clerk_issuer.mint(user_id="user_f")))
        cookie = await c.get("/me", headers={"Cookie": f"__session={clerk_issuer.mint()}"})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == MISSING
    for refused in (invalid, pending):  # a pending session's token is a token refused
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert refused.json() == INVALID
    assert valid.json() == {"user_id": "user_f", "source": "header"}
    assert cookie.json()["source"] == "cookie"


async def test_role_and_permission_variants_answer_403(clerk_issuer, guard):
    """Signed in without the role or permission: 403 Forbidden; with it: 200."""
    plain = clerk_issuer.mint()
    member = clerk_issuer.mint(
        org_id="org_1", org_role="org:member", org_permissions=["org:invoices:read"]
    )
    admin = clerk_issuer.mint(org_id="org_1", org_role="org:admin")
    async with client(build_app(ClerkAuth(guard))) as c:
        for token, path, status in [
            (plain, "/admin", 403),
            (member, "/admin", 403),
            (admin, "/admin", 200),
            (admin, "/invoices", 403),
            (member, "/invoices", 200),
        ]:
            response = await c.get(path, headers=bearer(token))
            assert response.status_code == status, (path, status)
            if status == 403:
                assert response.json() == FORBIDDEN
                assert "www-authenticate" not in response.headers
        assert (await c.get("/admin")).status_code == 401


async def test_optional_dependency(clerk_issuer, guard):
    """Optional: None without a token, the session with one, still 401 for a bad token."""
    async with client(build_app(ClerkAuth(guard))) as c:
        anonymous = await c.get("/hello")
        signed_in = await c.get("/hello", headers=bearer(clerk_issuer.mint(user_id="user_o")))
        forged = await c.get("/hello", headers=bearer(clerk_issuer.mint()[:-6] + "AAAAAA"))
        pending = await c.get("/hello", headers=bearer(clerk_issuer.mint(status="pending")))
    assert anonymous.json() == {"user_id": None}
    assert signed_in.json() == {"user_id": "user_o"}
    assert forged.status_code == 401
    assert forged.json() == INVALID
    assert pending.json() == {"user_id": None}


async def test_keys_unavailable_is_503(clerk_issuer, guard, transport):
    """No key set: 503 Service Unavailable with Retry-After."""
    transport.status_code = 503
    async with client(build_app(ClerkAuth(guard))) as c:
        response = await c.get("/me", headers=bearer(clerk_issuer.mint()))
    assert response.status_code == 503
    assert response.json()["error"] == "Service Unavailable"
    assert int(response.headers["retry-after"]) >= 1


async def test_without_handler_status_and_headers_still_right(guard):
    """Without install_error_handler FastAPI renders {"detail": ...} with our status/headers."""
    async with client(build_app(ClerkAuth(guard), handler=False)) as c:
        response = await c.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": MISSING["message"]}


async def test_openapi_has_bearer_scheme_and_operation_security(guard):
    """OpenAPI carries the bearer scheme, and security on protected operations only."""
    async with client(build_app(ClerkAuth(guard))) as c:
        document = (await c.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ClerkBearer"]["type"] == "http"
    assert schemes["ClerkBearer"]["scheme"] == "bearer"
    assert schemes["ClerkBearer"]["bearerFormat"] == "JWT"
    paths = document["paths"]
    for path in ("/me", "/admin", "/invoices", "/hello"):
        assert paths[path]["get"]["security"] == [{"ClerkBearer": []}], path
    assert "security" not in paths["/public"]["get"]


async def test_dependency_overrides(guard):
    """app.dependency_overrides replaces the dependency: no token needed in tests."""
    clerk = ClerkAuth(guard)
    app = build_app(clerk)
    fake = SessionAuth.from_claims({"sub": "user_fake", "sid": "sess_x", "exp": 2e9, "iat": 1e9})
    app.dependency_overrides[clerk] = lambda: fake
    async with client(app) as c:
        response = await c.get("/me")
    assert response.json() == {"user_id": "user_fake", "source": None}


async def test_reuses_middleware_result(clerk_issuer, guard, transport):
    """Behind ClerkGuardMiddleware a dependency without a guard uses the middleware's result."""
    app = build_app(ClerkAuth())
    app.add_middleware(ClerkGuardMiddleware, guard=guard, required=False)
    token = clerk_issuer.mint(user_id="user_mw", org_id="org_1", org_role="org:admin")
    async with client(app) as c:
        me = await c.get("/me", headers=bearer(token))
        admin = await c.get("/admin", headers=bearer(token))
        anonymous = await c.get("/me")
        optional = await c.get("/hello")
        invalid = await c.get("/hello", headers=bearer("a.b.c"))
        pending = await c.get("/me", headers=bearer(clerk_issuer.mint(status="pending")))
        pending_optional = await c.get(
            "/hello", headers=bearer(clerk_issuer.mint(status="pending"))
        )
    assert pending.status_code == 401
    assert pending.json() == INVALID  # not MISSING: the attach-only middleware kept why
    assert pending_optional.json() == {"user_id": None}
    assert me.json() == {"user_id": "user_mw", "source": "header"}
    assert admin.status_code == 200
    assert anonymous.status_code == 401
    assert anonymous.json() == MISSING
    assert optional.json() == {"user_id": None}
    assert invalid.status_code == 401
    assert transport.fetches == 1


async def test_own_guard_used_on_paths_the_middleware_skips(clerk_issuer, guard):
    """On a path the middleware excludes, a dependency with a guard verifies on its own."""
    app = build_app(ClerkAuth(guard))
    app.add_middleware(ClerkGuardMiddleware, guard=guard, exclude=("/me",))
    async with client(app) as c:
        assert (await c.get("/me")).status_code == 401
        response = await c.get("/me", headers=bearer(clerk_issuer.mint(user_id="user_s")))
    assert response.json()["user_id"] == "user_s"


async def test_guardless_dependency_on_excluded_path_uses_middleware_guard(clerk_issuer, guard):
    """On a path the middleware excludes, a guard-less dependency verifies with the middleware's
    guard: 401 without a token (not a 500), the session with one."""
    app = build_app(ClerkAuth())
    app.add_middleware(ClerkGuardMiddleware, guard=guard, exclude=("/me", "/hello"))
    async with client(app) as c:
        missing = await c.get("/me")
        valid = await c.get("/me", headers=bearer(clerk_issuer.mint(user_id="user_e")))
        optional = await c.get("/hello")
    assert missing.status_code == 401
    assert missing.json() == MISSING
    assert valid.json() == {"user_id": "user_e", "source": "header"}
    assert optional.json() == {"user_id": None}


async def test_require_keeps_the_parent_requirements(clerk_issuer, guard):
    """require() on a derived dependency adds to its conditions: both must hold."""
    clerk = ClerkAuth(guard)
    admin_reader = clerk.require(role="org:admin").require(permission="org:invoices:read")
    assert admin_reader.requirements == (
        {"role": "org:admin"},
        {"permission": "org:invoices:read"},
    )
    app = FastAPI()
    install_error_handler(app)

    @app.get("/both")
    async def both(auth: SessionAuth = Depends(admin_reader)):
        return {"user_id": auth.user_id}

    admin = clerk_issuer.mint(org_id="org_1", org_role="org:admin")
    reader = clerk_issuer.mint(
        org_id="org_1", org_role="org:member", org_permissions=["org:invoices:read"]
    )
    admin_reader_token = clerk_issuer.mint(
        org_id="org_1", org_role="org:admin", org_permissions=["org:invoices:read"]
    )
    async with client(app) as c:
        assert (await c.get("/both", headers=bearer(admin))).status_code == 403
        assert (await c.get("/both", headers=bearer(reader))).status_code == 403
        assert (await c.get("/both", headers=bearer(admin_reader_token))).status_code == 200


def test_require_on_a_conditional_dependency_combines(clerk_issuer):
    """ClerkAuth(role=...).require(permission=...) needs the role and the permission."""
    guard = AsyncGuard(clerk_issuer.config(jwt_key=clerk_issuer.public_pem))
    derived = ClerkAuth(guard, role="org:admin").require(permission="org:a:b", plan="pro")
    assert derived.requirements == (
        {"role": "org:admin"},
        {"permission": "org:a:b", "plan": "pro"},
    )
    assert derived.guard is guard
    assert ClerkAuth(guard).requirements == ()


async def test_guardless_dependency_follows_middleware_debug(clerk_issuer, transport):
    """A guard-less dependency's 401 and 403 carry the reason when the middleware is in debug."""
    debug_guard = AsyncGuard(clerk_issuer.config(debug=True), transport=transport)
    app = build_app(ClerkAuth())
    app.add_middleware(ClerkGuardMiddleware, guard=debug_guard, required=False)
    async with client(app) as c:
        missing = await c.get("/me")
        forbidden = await c.get("/admin", headers=bearer(clerk_issuer.mint()))
    await debug_guard.aclose()
    assert missing.json()["reason"] == "session-token-missing"
    assert forbidden.status_code == 403
    assert forbidden.json()["reason"] == "permission-denied"


async def test_own_guard_debug_adds_reason(clerk_issuer, transport):
    """A dependency with its own debug configuration puts the reason in its 403 body."""
    clerk = ClerkAuth(config=clerk_issuer.config(debug=True), transport=transport)
    async with client(build_app(clerk)) as c:
        forbidden = await c.get("/admin", headers=bearer(clerk_issuer.mint()))
    await clerk.aclose()
    assert forbidden.json()["reason"] == "permission-denied"


def test_render_error_is_the_starlette_one():
    """FastAPI's render_error is Starlette's: one implementation."""
    from clerk_guard import fastapi as fastapi_adapter
    from clerk_guard import starlette as starlette_adapter

    assert fastapi_adapter.render_error is starlette_adapter.render_error


async def test_aclose_leaves_a_given_guard_open(clerk_issuer, guard):
    """aclose() closes only a guard the dependency built; a given guard keeps working."""
    await ClerkAuth(guard).aclose()
    async with client(build_app(ClerkAuth(guard))) as c:
        response = await c.get("/me", headers=bearer(clerk_issuer.mint(user_id="user_k")))
    assert response.json()["user_id"] == "user_k"


async def test_no_middleware_and_no_guard_is_a_clear_error():
    """A guard-less dependency without the middleware says what to install."""
    async with client(build_app(ClerkAuth())) as c:
        with pytest.raises(RuntimeError, match="ClerkGuardMiddleware must be installed"):
            await c.get("/me")


async def test_websocket_accepted(clerk_issuer, guard):
    """The dependency works on a WebSocket route: a valid token is accepted."""
    token = clerk_issuer.mint(user_id="user_ws")
    headers = [(b"authorization", f"Bearer {token}".encode())]
    sent = await websocket_handshake(build_app(ClerkAuth(guard)), headers=headers)
    assert sent[0]["type"] == "websocket.accept"
    assert sent[1]["text"] == "user_ws"


@pytest.mark.parametrize("headers", [[], [(b"authorization", b"Bearer a.b.c")]])
async def test_websocket_refused_with_1008(guard, headers):
    """On a WebSocket route a failure closes the handshake with 1008, before accept."""
    sent = await websocket_handshake(build_app(ClerkAuth(guard)), headers=headers)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Invalid Token"}]


def test_exception_carries_the_error_response(clerk_issuer):
    """ClerkGuardHTTPException keeps the exact ErrorResponse and the headers for FastAPI."""
    from clerk_guard import TokenMissingError, error_response

    error = error_response(TokenMissingError("x"), log=False)
    exc = ClerkGuardHTTPException(error)
    assert exc.status_code == 401
    assert exc.error is error
    assert exc.headers["www-authenticate"] == "Bearer"
    assert "content-type" not in exc.headers


async def test_constructor_and_shared_guard(clerk_issuer, transport):
    """Config builds a guard; require()/optional() share it; guard plus config is an error."""
    clerk = ClerkAuth(config=clerk_issuer.config(), transport=transport)
    assert clerk.guard is not None
    assert clerk.require(role="org:admin").guard is clerk.guard
    assert isinstance(clerk.optional(), OptionalClerkAuth)
    assert clerk.optional().guard is clerk.guard
    with pytest.raises(ConfigurationError, match="either guard"):
        ClerkAuth(clerk.guard, config=clerk_issuer.config())
    await clerk.aclose()
