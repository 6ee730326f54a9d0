"""Holes an outside battery found, checked in every example app under its real server on
127.0.0.1 (uvicorn, gunicorn), against one real loopback JWKS server: a pending session's token,
claims that are not I-JSON, token categories, registered header parameters, and the choice
between the plain and the suffixed session cookie."""

from __future__ import annotations

import contextlib

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("gunicorn")
pytest.importorskip("fastapi")
pytest.importorskip("flask")
pytest.importorskip("django.conf")

import httpx  # noqa: E402

from clerk_guard import GuardConfig  # noqa: E402
from clerk_guard._http import INVALID_MESSAGE  # noqa: E402
from clerk_guard.testing import JWKSServer, LocalIssuer  # noqa: E402
from tests._servers import free_port, server_process  # noqa: E402

pytestmark = pytest.mark.integration

INVALID = {"error": "Invalid Token", "message": INVALID_MESSAGE}
DJANGO = "examples.django_project.mysite"


def command(name: str, port: int) -> list[str]:
    uvicorn = ["uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "auto"]
    gunicorn = ["gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    return {
        "fastapi-uvicorn": [*uvicorn, "examples.fastapi_app:app"],
        "starlette-uvicorn": [*uvicorn, "examples.starlette_app:app"],
        "flask-gunicorn": [*gunicorn, "examples.flask_app:app"],
        "django-gunicorn": [*gunicorn, f"{DJANGO}.wsgi:application"],
        "django-uvicorn": [*uvicorn[:-2], "--lifespan", "off", f"{DJANGO}.asgi:application"],
    }[name]


APPS = [
    "fastapi-uvicorn",
    "starlette-uvicorn",
    "flask-gunicorn",
    "django-gunicorn",
    "django-uvicorn",
]


@pytest.fixture(scope="module")
def issuer():
    return LocalIssuer()


@pytest.fixture(scope="module")
def servers(issuer):
    """Every example under its server, started once for the module."""
    env = {"CLERK_PUBLISHABLE_KEY": issuer.publishable_key, "CLERK_GUARD_WARM_UP": ""}
    for name in ("CLERK_SECRET_KEY", "CLERK_JWT_KEY", "CLERK_PEM_PUBLIC_KEY", "CLERK_ISSUER"):
        env[name] = ""
    for name in ("CLERK_AUTHORIZED_PARTIES", "CLERK_AUDIENCE"):
        env[name] = ""
    with JWKSServer(issuer) as jwks, contextlib.ExitStack() as stack:
        env["CLERK_JWKS_URL"] = jwks.url
        bases = {}
        for name in APPS:
            port = free_port()
            bases[name] = stack.enter_context(
                server_process(command(name, port), port=port, env=env)
            )
        yield bases


@pytest.fixture(params=APPS)
def get(request, servers):
    base = servers[request.param]

    def do(path, **kwargs):
        return httpx.get(base + path, timeout=10, **kwargs)

    return do


def assert_refused(response):
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_pending_session_is_a_refused_token(get, issuer):
    """A pending session's token on a protected route: the refused-token 401, header or cookie."""
    pending = issuer.mint(status="pending")
    assert_refused(get("/me", headers={"Authorization": f"Bearer {pending}"}))
    assert_refused(get("/me", cookies={"__session": pending, "__client_uat": "1"}))


@pytest.mark.parametrize(
    "claims",
    [{"user_id": "user_\ud800"}, {"org_id": "org_1", "org_role": "org:\udfff"}, {"x": ["\udc00"]}],
)
def test_claims_that_are_not_ijson_are_refused(get, issuer, claims):
    """A signed token holding an unpaired surrogate is refused (401), never rendered into a 500."""
    assert_refused(get("/me", headers={"Authorization": f"Bearer {issuer.mint(**claims)}"}))


@pytest.mark.parametrize("cat", ["cl_B7d4PD222AAA", "cl_B7d4PD333AAA", "cl_unknown"])
def test_other_token_categories_are_refused(get, issuer, cat):
    """A JWT-template, M2M or unknown category signed by the instance key signs nobody in."""
    token = issuer.mint(headers={"cat": cat})
    assert_refused(get("/me", headers={"Authorization": f"Bearer {token}"}))


def test_session_category_is_accepted(get, issuer):
    """The session-token category signs in as before."""
    token = issuer.mint(headers={"cat": "cl_B7d4PD111AAA"})
    response = get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["user_id"] == "user_2test"


@pytest.mark.parametrize("name", ["x5u", "jku", "x5t", "b64"])
def test_registered_header_parameters_are_refused(get, issuer, name):
    """A registered header parameter a Clerk session token never carries is refused."""
    token = issuer.mint(headers={name: "https://attacker.test/x" if name != "b64" else False})
    assert_refused(get("/me", headers={"Authorization": f"Bearer {token}"}))


def test_planted_plain_cookie_does_not_hide_the_suffixed_one(get, issuer):
    """A plain __session whose iss is not a string does not keep the real suffixed cookie
    from signing the user in (the suffixed cookie is chosen, as @clerk/backend does)."""
    suffix = GuardConfig(publishable_key=issuer.publishable_key).cookie_suffix
    planted = issuer.sign({"iss": 1, "sub": "user_planted"})
    real = issuer.mint(user_id="user_real")
    cookies = {
        "__session": planted,
        f"__session_{suffix}": real,
        f"__client_uat_{suffix}": "1",
        "__client_uat": "1",
    }
    response = get("/me", cookies=cookies)
    assert response.status_code == 200
    assert response.json()["user_id"] == "user_real"
