"""examples/flask_app.py under real WSGI servers on 127.0.0.1, against a real loopback JWKS.

Two servers: gunicorn with the threaded worker (``--worker-class gthread --threads 8``) and
werkzeug's threaded development server (``flask --app examples.flask_app run``).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("flask")

import httpx  # noqa: E402

from clerk_guard._http import FORBIDDEN_MESSAGE, INVALID_MESSAGE, MISSING_MESSAGE  # noqa: E402
from clerk_guard.testing import JWKSServer, LocalIssuer  # noqa: E402
from tests._servers import free_port, server_process  # noqa: E402

pytestmark = pytest.mark.integration

MISSING = {"error": "Invalid Token", "message": MISSING_MESSAGE}
INVALID = {"error": "Invalid Token", "message": INVALID_MESSAGE}
FORBIDDEN = {"error": "Forbidden", "message": FORBIDDEN_MESSAGE}
CONCURRENT = 100


def gunicorn_args(port: int) -> list[str]:
    return [
        "gunicorn",
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--workers",
        "1",
        "--bind",
        f"127.0.0.1:{port}",
        "examples.flask_app:app",
    ]


def werkzeug_args(port: int) -> list[str]:
    return [
        "flask",
        "--app",
        "examples.flask_app",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-reload",
        "--no-debugger",
        "--with-threads",
    ]


_no_gunicorn = sys.platform == "win32"
SERVERS = [
    pytest.param(
        "gunicorn",
        marks=pytest.mark.skipif(_no_gunicorn, reason="gunicorn does not run on Windows"),
    ),
    "werkzeug",
]
_ARGS: dict[str, Callable[[int], list[str]]] = {
    "gunicorn": gunicorn_args,
    "werkzeug": werkzeug_args,
}


def server_env(issuer: LocalIssuer, jwks: JWKSServer) -> dict[str, str]:
    """Point the example at the loopback JWKS; blank out any other key source around."""
    blank = ("CLERK_SECRET_KEY", "CLERK_JWT_KEY", "CLERK_PEM_PUBLIC_KEY", "CLERK_ISSUER")
    return {
        **dict.fromkeys(blank, ""),
        "CLERK_AUTHORIZED_PARTIES": "",
        "CLERK_AUDIENCE": "",
        "CLERK_PUBLISHABLE_KEY": issuer.publishable_key,
        "CLERK_JWKS_URL": jwks.url,
    }


def start(kind: str, issuer: LocalIssuer, jwks: JWKSServer):
    if kind == "gunicorn":
        pytest.importorskip("gunicorn")
    port = free_port()
    return server_process(_ARGS[kind](port), port=port, env=server_env(issuer, jwks))


@pytest.fixture(scope="module")
def issuer() -> LocalIssuer:
    return LocalIssuer()


@pytest.fixture(scope="module")
def servers(issuer: LocalIssuer) -> Iterator[Callable[[str], str]]:
    """Shared servers, each started on first use and stopped at module end: kind -> base URL."""
    with JWKSServer(issuer) as jwks, contextlib.ExitStack() as stack:
        started: dict[str, str] = {}

        def get(kind: str) -> str:
            if kind not in started:
                started[kind] = stack.enter_context(start(kind, issuer, jwks))
            return started[kind]

        yield get


@pytest.fixture(params=SERVERS)
def base(request, servers) -> str:
    """The base URL of the shared server of one kind."""
    return servers(request.param)


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30, trust_env=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def member_token(issuer: LocalIssuer, **claims) -> str:
    return issuer.mint(
        user_id="user_1",
        session_id="sess_1",
        org_id="org_1",
        org_role="org:member",
        org_permissions=["org:billing:read"],
        **claims,
    )


# contract §5 and §8 over the wire ----------------------------------------------------------------


def test_public_needs_no_token(client):
    """GET /public is 200 {"ok": true} without a token."""
    response = client.get("/public")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_missing_token_is_401_with_bearer_challenge(client):
    """No token: 401, WWW-Authenticate: Bearer, JSON body of contract §5."""
    response = client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == MISSING


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda issuer: issuer.mint(lifetime=-60), id="expired"),
        pytest.param(lambda issuer: issuer.mint()[:-4] + "AAAA", id="bad-signature"),
        pytest.param(lambda issuer: issuer.mint(iss="https://evil.test"), id="wrong-issuer"),
        pytest.param(lambda issuer: "a.b.c", id="garbage"),
    ],
)
def test_invalid_token_is_401_invalid_token(client, issuer, make_token):
    """A token failing any check: 401, error="invalid_token", the generic body."""
    response = client.get("/me", headers=bearer(make_token(issuer)))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json() == INVALID


def test_header_token_gives_me(client, issuer):
    """A valid Bearer token: /me answers the session as contract §8 says."""
    response = client.get("/me", headers=bearer(member_token(issuer)))
    assert response.status_code == 200
    assert response.json() == {
        "user_id": "user_1",
        "session_id": "sess_1",
        "org_id": "org_1",
        "org_role": "org:member",
        "org_permissions": ["org:billing:read"],
    }


def test_cookie_token_gives_me(client, issuer):
    """A valid __session cookie is accepted like the header."""
    response = client.get("/me", headers={"Cookie": f"other=1; __session={member_token(issuer)}"})
    assert response.status_code == 200
    assert response.json()["user_id"] == "user_1"


def test_admin_without_role_is_403(client, issuer):
    """GET /admin signed in without org:admin: 403 Forbidden."""
    response = client.get("/admin", headers=bearer(member_token(issuer)))
    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    assert "www-authenticate" not in response.headers


def test_admin_with_role_is_200(client, issuer):
    """GET /admin with org:admin: 200."""
    token = issuer.mint(user_id="user_a", org_id="org_1", org_role="org:admin")
    response = client.get("/admin", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"admin": True, "user_id": "user_a"}


def test_admin_without_token_is_401(client):
    """GET /admin without a token: 401, not 403."""
    assert client.get("/admin").json() == MISSING


def test_blueprint_is_protected(client, issuer):
    """The billing blueprint: 401 without a token, 403 without its permission, 200 with it."""
    assert client.get("/billing/invoices").status_code == 401
    no_permission = issuer.mint(org_id="org_1", org_role="org:member")
    response = client.get("/billing/invoices", headers=bearer(no_permission))
    assert (response.status_code, response.json()) == (403, FORBIDDEN)
    response = client.get("/billing/invoices", headers=bearer(member_token(issuer)))
    assert response.json() == {"org_id": "org_1", "invoices": []}


def test_async_view_in_blueprint(client, issuer):
    """The async blueprint view runs under the WSGI server with the verified session."""
    response = client.get("/billing/summary", headers=bearer(member_token(issuer)))
    assert response.json() == {"org_id": "org_1", "total": 0}


def test_two_authorization_lines_are_401(client, issuer):
    """Two Authorization lines on the wire are rejected as an invalid token."""
    token = member_token(issuer)
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(
    "value",
    [b"Bearer", b"Bearer a b", b"bEaReR  x  y", b"Bearer \xff\xfe.\x80.\x81", b"Basic", b"."],
)
def test_malformed_authorization_never_500(client, value):
    """Malformed Authorization values get a 401, never a 500."""
    response = client.get("/me", headers=[(b"Authorization", value)])
    assert response.status_code == 401


def test_oversized_token_is_refused_without_500(client):
    """A 9000-character token is refused: 401 from us, or 431 from a server with a header cap."""
    response = client.get("/me", headers=bearer("x" * 9000))
    assert response.status_code in (401, 431)
    if response.status_code == 401:
        assert response.json() == INVALID


# Fresh servers: the 503 row and the cold start -------------------------------------------------


@pytest.mark.parametrize("kind", SERVERS)
def test_keys_unavailable_is_503_with_retry_after(kind, issuer):
    """The JWKS endpoint fails and nothing is cached: 503 with Retry-After."""
    with JWKSServer(issuer) as jwks, start(kind, issuer, jwks) as url:
        jwks.mode = "error"
        response = httpx.get(url + "/me", headers=bearer(member_token(issuer)), timeout=30)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["error"] == "Service Unavailable"
    assert set(body) == {"error", "message"}


@pytest.mark.parametrize("kind", SERVERS)
def test_concurrent_cold_requests_fetch_keys_once(kind, issuer):
    """100 concurrent requests to a cold server, across its threads: exactly 1 JWKS fetch."""
    tokens = [issuer.mint(user_id=f"user_{i}") for i in range(CONCURRENT)]
    with JWKSServer(issuer) as jwks, start(kind, issuer, jwks) as url:
        jwks.delay = 0.5  # keep the one fetch in flight while the other requests arrive
        jwks.mode = "slow"
        assert jwks.fetches == 0  # cold: the readiness probe hit /public only
        barrier = threading.Barrier(CONCURRENT, timeout=30)
        limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
        with httpx.Client(base_url=url, timeout=60, limits=limits, trust_env=False) as client:

            def one(token: str) -> tuple[int, str]:
                barrier.wait()
                response = client.get("/me", headers=bearer(token))
                return response.status_code, response.json().get("user_id", "")

            with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
                results = list(pool.map(one, tokens))
        fetches = jwks.fetches
    assert results == [(200, f"user_{i}") for i in range(CONCURRENT)]
    assert fetches == 1
