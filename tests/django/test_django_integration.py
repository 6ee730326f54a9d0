"""The Django example under real servers: gunicorn (WSGI) and uvicorn (ASGI) on 127.0.0.1,
fetching keys from a real loopback JWKS server."""

from __future__ import annotations

import pytest

pytest.importorskip("django")
pytest.importorskip("uvicorn")
pytest.importorskip("gunicorn")

import httpx  # noqa: E402

from clerk_guard.testing import JWKSServer, LocalIssuer  # noqa: E402
from tests._servers import free_port, server_process  # noqa: E402

pytestmark = pytest.mark.integration

APP = "examples.django_project.mysite"


def command(
    kind: str,
    port: int,
    *,
    wsgi: str = f"{APP}.wsgi:application",
    asgi: str = f"{APP}.asgi:application",
) -> list[str]:
    if kind == "gunicorn":
        return ["gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", wsgi]
    return [
        "uvicorn",
        asgi,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
    ]


@pytest.fixture(scope="module")
def issuer():
    """One issuer for the module's servers."""
    return LocalIssuer(frontend_api="clerk.django-example.test")


@pytest.fixture(scope="module")
def jwks(issuer):
    """A real JWKS server on 127.0.0.1."""
    with JWKSServer(issuer) as server:
        yield server


def start(kind, issuer, jwks_url, *, ready_path="/public", **entry_points):
    port = free_port()
    env = {"CLERK_PUBLISHABLE_KEY": issuer.publishable_key, "CLERK_JWKS_URL": jwks_url}
    return server_process(
        command(kind, port, **entry_points), port=port, env=env, ready_path=ready_path
    )


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def client(request, issuer, jwks):
    """An httpx client for the example served by gunicorn or uvicorn."""
    with (
        start(request.param, issuer, jwks.url) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        yield http


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_public_needs_no_token(client):
    """GET /public is 200 {"ok": true} without a token (a login_not_required view)."""
    response = client.get("/public")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_me_without_token_is_401(client):
    """No token on a protected route: 401, WWW-Authenticate: Bearer, contract §5 body."""
    response = client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "error": "Invalid Token",
        "message": "Authentication required: no session token was provided.",
    }


@pytest.mark.parametrize("how", ["header", "cookie"])
def test_me_with_bad_token_is_401_invalid(client, issuer, how):
    """A token failing a check, in the header or the cookie: 401 error="invalid_token"."""
    token = issuer.mint(lifetime=-100)
    headers = bearer(token) if how == "header" else {"Cookie": f"__session={token}"}
    response = client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json() == {
        "error": "Invalid Token",
        "message": "The token provided is malformed or invalid.",
    }


@pytest.mark.parametrize("how", ["header", "cookie"])
def test_me_with_token(client, issuer, how):
    """A valid token in the header or the __session cookie: 200 with the session's fields."""
    token = issuer.mint(
        user_id="user_int",
        session_id="sess_int",
        org_id="org_9",
        org_role="org:member",
        org_permissions=["org:invoices:read"],
    )
    headers = bearer(token) if how == "header" else {"Cookie": f"__session={token}"}
    response = client.get("/me", headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "user_id": "user_int",
        "session_id": "sess_int",
        "org_id": "org_9",
        "org_role": "org:member",
        "org_permissions": ["org:invoices:read"],
    }


def test_admin_without_role_is_403(client, issuer):
    """Signed in without org:admin: /admin answers 403 Forbidden."""
    response = client.get(
        "/admin", headers=bearer(issuer.mint(org_id="org_1", org_role="org:member"))
    )
    assert response.status_code == 403
    assert response.json()["error"] == "Forbidden"


def test_admin_with_role_passes(client, issuer):
    """With org:admin, /admin answers 200."""
    response = client.get(
        "/admin", headers=bearer(issuer.mint(org_id="org_1", org_role="org:admin"))
    )
    assert response.status_code == 200


def test_admin_without_token_is_401(client):
    """/admin without a token is 401, not 403."""
    assert client.get("/admin").status_code == 401


def test_exempt_path_needs_no_token(client):
    """A path in CLERK_GUARD_EXEMPT_PATHS needs no token."""
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_keys_unavailable_is_503(issuer, kind):
    """The JWKS endpoint failing with nothing cached: 503 with Retry-After."""
    with JWKSServer(issuer) as failing:
        failing.mode = "error"
        with (
            start(kind, issuer, failing.url) as base,
            httpx.Client(base_url=base, timeout=10) as http,
        ):
            response = http.get("/me", headers=bearer(issuer.mint()))
            assert http.get("/public").status_code == 200
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "Service Unavailable"


# Django REST framework views under protect-all (the test project, tests/django/server.py) ------

#: The test project's protected DRF views: an APIView, a router's ViewSet, an @api_view function.
DRF_PROTECTED = ["/api/plain", "/api/things", "/api/hello"]


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def api(request, issuer, jwks):
    """An httpx client for the test project (DRF views, protect-all) under gunicorn or uvicorn."""
    pytest.importorskip("rest_framework")
    with (
        start(
            request.param,
            issuer,
            jwks.url,
            ready_path="/health",
            wsgi="tests.django.server:wsgi",
            asgi="tests.django.server:asgi",
        ) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        yield http


@pytest.mark.parametrize("path", DRF_PROTECTED)
def test_drf_view_without_token_is_401(api, path):
    """Protect-all covers DRF views despite DRF's login_required = False: no token, JSON 401."""
    response = api.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "error": "Invalid Token",
        "message": "Authentication required: no session token was provided.",
    }


@pytest.mark.parametrize("path", DRF_PROTECTED)
def test_drf_view_with_token_passes(api, issuer, path):
    """A valid token reaches the protected DRF views: 200 with the session's user."""
    response = api.get(path, headers=bearer(issuer.mint(user_id="user_drf")))
    assert response.status_code == 200
    assert response.json() == {"user_id": "user_drf"}


@pytest.mark.parametrize("path", ["/api/public-things", "/api/optional-hello"])
def test_drf_view_exempted_on_purpose_needs_no_token(api, path):
    """A DRF ViewSet marked login_not_required on dispatch, a clerk_optional @api_view: 200."""
    response = api.get(path)
    assert response.status_code == 200
    assert response.json() == {"user_id": None}
