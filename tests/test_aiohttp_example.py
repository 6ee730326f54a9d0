"""examples/aiohttp_app.py: an adapter we do not ship, written on the public API alone.

The app runs in-process under a real ``web.AppRunner`` on 127.0.0.1, configured from the
environment, against a real loopback JWKS server; it answers as contract §5 and §8 say.
"""

from __future__ import annotations

import ast
import contextlib
import logging
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

import httpx  # noqa: E402
from aiohttp import web  # noqa: E402

import clerk_guard  # noqa: E402
from clerk_guard.testing import JWKSServer, LocalIssuer  # noqa: E402
from examples import aiohttp_app  # noqa: E402

pytestmark = pytest.mark.anyio

EXAMPLE = Path(aiohttp_app.__file__)
# contract §5, word for word.
MISSING = {
    "error": "Invalid Token",
    "message": "Authentication required: no session token was provided.",
}
INVALID = {"error": "Invalid Token", "message": "The token provided is malformed or invalid."}
FORBIDDEN = {"error": "Forbidden", "message": "You do not have permission to access this resource."}
UNAVAILABLE = {
    "error": "Service Unavailable",
    "message": "Authentication is temporarily unavailable; try again shortly.",
}
#: Environment variables from_env() reads that the developer's shell must not change here.
OTHER_SETTINGS = (
    "CLERK_SECRET_KEY",
    "CLERK_JWT_KEY",
    "CLERK_PEM_PUBLIC_KEY",
    "CLERK_ISSUER",
    "CLERK_AUTHORIZED_PARTIES",
    "CLERK_AUDIENCE",
    "CLERK_API_URL",
    "CLERK_LEEWAY",
    "CLERK_GUARD_WARM_UP",
)


@pytest.fixture
def anyio_backend():
    return "asyncio"  # aiohttp runs on asyncio only


@pytest.fixture(scope="module")
def issuer():
    return LocalIssuer()


@pytest.fixture
def jwks(issuer):
    with JWKSServer(issuer) as server:
        yield server


@pytest.fixture
def environment(monkeypatch, issuer, jwks):
    """The example's configuration: this issuer's publishable key and the loopback JWKS URL."""
    for name in OTHER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLERK_PUBLISHABLE_KEY", issuer.publishable_key)
    monkeypatch.setenv("CLERK_JWKS_URL", jwks.url)
    return monkeypatch


@contextlib.asynccontextmanager
async def serving(app):
    """Serve ``app`` on 127.0.0.1 (a free port); yield a client for it."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=10) as client:
            yield client
    finally:
        await runner.cleanup()


@pytest.fixture
async def client(environment):
    async with serving(aiohttp_app.create_app()) as client:
        yield client


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


async def test_public_needs_no_token(client):
    """GET /public answers 200 {"ok": true}, with no token and with a bad one."""
    for headers in ({}, bearer("a.b.c")):
        response = await client.get("/public", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"ok": True}


async def test_missing_token_is_401(client):
    """No token on /me: 401, WWW-Authenticate: Bearer, the contract §5 body, not cacheable."""
    response = await client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == MISSING


async def test_invalid_tokens_are_401(client, issuer):
    """Every failing token gets 401 with error="invalid_token" and the same opaque body."""
    token = issuer.mint()
    cases = [
        bearer("a.b.c"),
        bearer(issuer.mint(lifetime=-60)),
        bearer(token[:-6] + "AAAAAA"),
        bearer(LocalIssuer(frontend_api=issuer.frontend_api).mint()),
        {"Cookie": f"__session={issuer.mint(lifetime=-60)}"},
        [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    ]
    for headers in cases:
        response = await client.get("/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert response.json() == INVALID


async def test_valid_session_by_header_and_cookie(client, issuer):
    """/me answers the session summary for a header token and for a cookie token."""
    claims = {
        "user_id": "user_aio",
        "org_id": "org_9",
        "org_role": "org:member",
        "org_permissions": ["org:invoices:read"],
    }
    token = issuer.mint(**claims)
    by_header = await client.get("/me", headers=bearer(token))
    by_cookie = await client.get("/me", headers={"Cookie": f"theme=dark; __session={token}"})
    assert by_header.status_code == by_cookie.status_code == 200
    assert by_header.json() == by_cookie.json() == summary(**claims)


async def test_admin_needs_the_role(client, issuer):
    """/admin: 403 Forbidden (no WWW-Authenticate) for a member, 200 for an org:admin."""
    member = issuer.mint(org_id="org_1", org_role="org:member")
    denied = await client.get("/admin", headers=bearer(member))
    assert denied.status_code == 403
    assert denied.json() == FORBIDDEN
    assert "www-authenticate" not in denied.headers
    allowed = await client.get(
        "/admin", headers=bearer(issuer.mint(org_id="o", org_role="org:admin"))
    )
    assert allowed.status_code == 200
    assert allowed.json() == summary(org_id="o", org_role="org:admin")
    assert (await client.get("/admin")).status_code == 401


async def test_keys_unavailable_is_503(client, issuer, jwks):
    """The JWKS endpoint failing with nothing cached: 503 with Retry-After, then recovery."""
    jwks.mode = "error"
    response = await client.get("/me", headers=bearer(issuer.mint()))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json() == UNAVAILABLE


async def test_preflight_passes_unverified(client):
    """A CORS preflight reaches the router without a token (aiohttp answers 405 for it here)."""
    response = await client.options("/me", headers={"Access-Control-Request-Method": "GET"})
    assert response.status_code == 405


async def test_warm_up_fetches_at_startup(environment, jwks, issuer):
    """CLERK_GUARD_WARM_UP=1 fetches the keys during start-up: requests fetch nothing more."""
    environment.setenv("CLERK_GUARD_WARM_UP", "1")
    async with serving(aiohttp_app.create_app()) as client:
        assert jwks.fetches == 1
        assert (await client.get("/me", headers=bearer(issuer.mint()))).status_code == 200
    assert jwks.fetches == 1


async def test_failed_warm_up_does_not_stop_the_app(environment, jwks, caplog):
    """A warm-up that cannot load the keys is logged; the app serves anyway."""
    environment.setenv("CLERK_GUARD_WARM_UP", "1")
    jwks.mode = "error"
    with caplog.at_level(logging.WARNING, logger="clerk_guard"):
        async with serving(aiohttp_app.create_app()) as client:
            assert (await client.get("/public")).status_code == 200
    assert "warm-up failed" in caplog.text


def test_configuration_error_at_start_up(monkeypatch):
    """No key source in the environment: ConfigurationError when the app is built."""
    for name in (*OTHER_SETTINGS, "CLERK_PUBLISHABLE_KEY", "CLERK_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(clerk_guard.ConfigurationError):
        aiohttp_app.create_app()


def test_example_uses_only_the_top_level_api():
    """The example imports public names of clerk_guard itself: no submodule, no private name."""
    tree = ast.parse(EXAMPLE.read_text(encoding="utf-8"))
    taken = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not [a.name for a in node.names if a.name.startswith("clerk_guard.")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("clerk_guard"):
            assert node.module == "clerk_guard"
            assert node.level == 0
            taken += [alias.name for alias in node.names]
    assert taken
    assert set(taken) <= set(clerk_guard.__all__)


def test_example_touches_no_private_name_of_the_core():
    """Nor does it reach into the core's private attributes (the rules of test_public_seams)."""
    from tests.test_public_seams import scan_package, violations

    assert (
        violations(EXAMPLE.read_text(encoding="utf-8"), "examples.aiohttp_app", scan_package())
        == []
    )
