"""The FastAPI and Starlette examples under real uvicorn on 127.0.0.1, with a real JWKS server."""

from __future__ import annotations

import contextlib

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

import anyio  # noqa: E402
import httpx  # noqa: E402

from clerk_guard.testing import JWKSServer, LocalIssuer  # noqa: E402
from tests._asgi import FORBIDDEN, INVALID, MISSING  # noqa: E402
from tests._servers import free_port, server_process  # noqa: E402

pytestmark = pytest.mark.integration

EXAMPLES = {
    "fastapi": "examples.fastapi_app:app",
    "starlette": "examples.starlette_app:app",
}
TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def issuer():
    return LocalIssuer()


def app_env(issuer, jwks_url, **extra):
    """The example's environment: this issuer's publishable key and a loopback JWKS URL."""
    env = {
        "CLERK_PUBLISHABLE_KEY": issuer.publishable_key,
        "CLERK_JWKS_URL": jwks_url,
        "CLERK_GUARD_WARM_UP": "",
    }
    # Anything the developer's shell sets must not change what is tested.
    for name in (
        "CLERK_SECRET_KEY",
        "CLERK_JWT_KEY",
        "CLERK_PEM_PUBLIC_KEY",
        "CLERK_ISSUER",
        "CLERK_AUTHORIZED_PARTIES",
        "CLERK_AUDIENCE",
    ):
        env[name] = ""
    env.update(extra)
    return env


@contextlib.contextmanager
def uvicorn(example, env):
    port = free_port()
    args = [
        "uvicorn",
        EXAMPLES[example],
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with server_process(args, port=port, env=env) as base:
        yield base


@pytest.fixture(scope="module")
def servers(issuer):
    """Both examples, started once for the module, sharing one JWKS server."""
    with JWKSServer(issuer) as jwks, contextlib.ExitStack() as stack:
        env = app_env(issuer, jwks.url)
        yield {name: stack.enter_context(uvicorn(name, env)) for name in EXAMPLES}


@pytest.fixture(params=sorted(EXAMPLES))
def base(request, servers):
    return servers[request.param]


def get(url, **kwargs):
    return httpx.get(url, timeout=TIMEOUT, **kwargs)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def summary(**claims):
    return {
        "user_id": claims.get("user_id", "user_2test"),
        "session_id": claims.get("session_id", "sess_2test"),
        "org_id": claims.get("org_id"),
        "org_role": claims.get("org_role"),
        "org_permissions": claims.get("org_permissions", []),
    }


def test_public_needs_no_token(base):
    """GET /public answers 200 {"ok": true}, with no token and even with a bad one."""
    assert get(base + "/public").json() == {"ok": True}
    response = get(base + "/public", headers=bearer("a.b.c"))
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_missing_token_is_401(base):
    """No token on /me: 401 with WWW-Authenticate: Bearer and the contract §5 body."""
    response = get(base + "/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == MISSING


def test_invalid_tokens_are_401(base, issuer):
    """Every failing token gets 401 with error="invalid_token" and the same opaque body."""
    foreign = LocalIssuer(frontend_api=issuer.frontend_api)
    token = issuer.mint()
    cases = [
        bearer("a.b.c"),
        bearer("x" * 9000),
        bearer(issuer.mint(lifetime=-60)),
        bearer(token[:-6] + "AAAAAA"),
        bearer(foreign.mint()),
        {"Cookie": f"__session={issuer.mint(lifetime=-60)}"},
        [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    ]
    for headers in cases:
        response = get(base + "/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert response.json() == INVALID


def test_header_and_cookie_tokens(base, issuer):
    """/me answers the session summary for a header token and for a cookie token."""
    claims = {
        "user_id": "user_int",
        "org_id": "org_9",
        "org_role": "org:member",
        "org_permissions": ["org:invoices:read"],
    }
    token = issuer.mint(**claims)
    by_header = get(base + "/me", headers=bearer(token))
    by_cookie = get(base + "/me", headers={"Cookie": f"theme=dark; __session={token}"})
    assert by_header.status_code == by_cookie.status_code == 200
    assert by_header.json() == by_cookie.json() == summary(**claims)


def test_admin_is_403_without_the_role(base, issuer):
    """/admin: 403 Forbidden for a member, 200 for an org:admin, 401 with no token."""
    member = issuer.mint(org_id="org_1", org_role="org:member")
    admin = issuer.mint(org_id="org_1", org_role="org:admin")
    denied = get(base + "/admin", headers=bearer(member))
    assert denied.status_code == 403
    assert denied.json() == FORBIDDEN
    assert "www-authenticate" not in denied.headers
    allowed = get(base + "/admin", headers=bearer(admin))
    assert allowed.status_code == 200
    assert allowed.json() == summary(org_id="org_1", org_role="org:admin")
    assert get(base + "/admin").status_code == 401


def test_websocket_accepted_and_refused(base, issuer):
    """/ws accepts a valid header or cookie token; a missing or bad one is refused (1008).

    A close before accept reaches the client as an HTTP 403 handshake answer (ASGI spec).
    """
    pytest.importorskip("websockets")
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = base.replace("http://", "ws://") + "/ws"
    token = issuer.mint(user_id="user_ws")
    for headers in (bearer(token), {"Cookie": f"__session={token}"}):
        with connect(url, additional_headers=headers, open_timeout=10, close_timeout=5) as ws:
            assert '"user_ws"' in ws.recv(timeout=10)
    for headers in ({}, bearer("a.b.c"), bearer(issuer.mint(lifetime=-60))):
        with pytest.raises(InvalidStatus) as info:
            connect(url, additional_headers=headers, open_timeout=10, close_timeout=5)
        assert info.value.response.status_code == 403


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_keys_unavailable_is_503(example, issuer):
    """When the JWKS endpoint fails and nothing is cached: 503 with Retry-After."""
    with JWKSServer(issuer) as jwks:
        jwks.mode = "error"
        with uvicorn(example, app_env(issuer, jwks.url)) as url:
            response = get(url + "/me", headers=bearer(issuer.mint()))
            assert get(url + "/public").status_code == 200
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "Service Unavailable"


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_warm_up_fetches_at_startup(example, issuer):
    """CLERK_GUARD_WARM_UP=1 fetches the keys before serving; requests then fetch nothing."""
    with JWKSServer(issuer) as jwks:
        with uvicorn(example, app_env(issuer, jwks.url, CLERK_GUARD_WARM_UP="1")) as url:
            assert jwks.fetches == 1
            assert get(url + "/me", headers=bearer(issuer.mint())).status_code == 200
        assert jwks.fetches == 1


@pytest.mark.anyio
@pytest.mark.parametrize("example", sorted(EXAMPLES))
async def test_concurrent_cold_requests_fetch_keys_once(example, issuer):
    """200 concurrent requests at a cold start: all 200, exactly one JWKS fetch."""
    tokens = [issuer.mint(user_id=f"user_{i}") for i in range(200)]
    with JWKSServer(issuer) as jwks, uvicorn(example, app_env(issuer, jwks.url)) as url:
        assert jwks.fetches == 0
        statuses: list[int] = []
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:

            async def one(token):
                response = await client.get("/me", headers=bearer(token))
                statuses.append(response.status_code)

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for token in tokens:
                        tg.start_soon(one, token)
        fetches = jwks.fetches
    assert sorted(set(statuses)) == [200]
    assert len(statuses) == 200
    assert fetches == 1


def test_fastapi_example_openapi_security(servers):
    """The FastAPI example's OpenAPI has the bearer scheme and security on protected routes."""
    document = get(servers["fastapi"] + "/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["ClerkBearer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    for path in ("/me", "/admin", "/hello"):
        assert document["paths"][path]["get"]["security"] == [{"ClerkBearer": []}]
    assert "security" not in document["paths"]["/public"]["get"]
    assert get(servers["fastapi"] + "/docs").status_code == 200
