"""Typed access to the session: Flask's current_auth and require_auth(), Starlette's get_auth()
and require_auth(). Their types are checked in tests/typing/api.py; here, what they do."""

from __future__ import annotations

import httpx
import pytest

from clerk_guard._http import INVALID_MESSAGE, MISSING_MESSAGE

MISSING = {"error": "Invalid Token", "message": MISSING_MESSAGE}
INVALID = {"error": "Invalid Token", "message": INVALID_MESSAGE}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def pem_config(clerk_issuer):
    """The local issuer's configuration, verifying with its PEM key: no key fetch."""
    return clerk_issuer.config(jwt_key=clerk_issuer.public_pem)


# Flask ---------------------------------------------------------------------------------------


@pytest.fixture
def flask_client(pem_config):
    flask = pytest.importorskip("flask")
    from clerk_guard.flask import ClerkGuard, clerk_required, current_auth, get_auth, require_auth

    app = flask.Flask(__name__)
    ClerkGuard(app, config=pem_config)

    @app.get("/me")
    @clerk_required
    def me():
        return {"proxy": current_auth.user_id, "required": require_auth().user_id}

    @app.get("/maybe")
    @clerk_required(optional=True)
    def maybe():
        auth = get_auth()
        return {"signed_in": bool(current_auth), "user_id": auth.user_id if auth else None}

    @app.get("/probe")
    def probe():
        return {"html": hasattr(current_auth, "__html__"), "signed_in": bool(current_auth)}

    @app.get("/proxy-unprotected")
    def proxy_unprotected():
        return {"user_id": current_auth.user_id}

    @app.get("/require-unprotected")
    def require_unprotected():
        return {"user_id": require_auth().user_id}

    return app.test_client()


def test_flask_current_auth_and_require_auth_under_clerk_required(flask_client, clerk_issuer):
    """Under @clerk_required, current_auth and require_auth() are the verified session."""
    response = flask_client.get("/me", headers=bearer(clerk_issuer.mint(user_id="user_f")))
    assert response.get_json() == {"proxy": "user_f", "required": "user_f"}


def test_flask_current_auth_is_false_when_signed_out(flask_client, clerk_issuer):
    """On an optional route without a session, current_auth is false and get_auth() None."""
    assert flask_client.get("/maybe").get_json() == {"signed_in": False, "user_id": None}
    response = flask_client.get("/maybe", headers=bearer(clerk_issuer.mint(user_id="user_o")))
    assert response.get_json() == {"signed_in": True, "user_id": "user_o"}


def test_flask_signed_out_current_auth_answers_protocol_probes(flask_client):
    """Signed out, a dunder probe (markupsafe's __html__) is a plain AttributeError, not a 401."""
    assert flask_client.get("/probe").get_json() == {"html": False, "signed_in": False}


@pytest.mark.parametrize("path", ["/proxy-unprotected", "/require-unprotected"])
def test_flask_reading_a_missing_session_is_a_401(flask_client, clerk_issuer, path):
    """Where no decorator ran, current_auth.<attr> and require_auth() verify the token now: a
    request without one gets the missing-token 401, never a 500; with one, the session."""
    response = flask_client.get(path)
    assert response.status_code == 401
    assert response.get_json() == MISSING
    assert response.headers["WWW-Authenticate"] == "Bearer"
    response = flask_client.get(path, headers=bearer(clerk_issuer.mint(user_id="user_u")))
    assert response.get_json() == {"user_id": "user_u"}


def test_flask_require_auth_refuses_a_pending_session(flask_client, clerk_issuer):
    """A pending session is signed out: require_auth() answers it as a refused token."""
    response = flask_client.get(
        "/require-unprotected", headers=bearer(clerk_issuer.mint(status="pending"))
    )
    assert response.status_code == 401
    assert response.get_json() == INVALID


# Starlette -----------------------------------------------------------------------------------


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def starlette_app():
    """Build a Starlette app whose routes report get_auth() and require_auth()."""
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from clerk_guard.starlette import get_auth, require_auth

    async def maybe(request):
        auth = get_auth(request)
        return JSONResponse({"user_id": auth.user_id if auth is not None else None})

    async def me(request):
        return JSONResponse({"user_id": require_auth(request).user_id})

    def build(middleware):
        routes = [Route("/maybe", maybe), Route("/me", me), Route("/public/me", me)]
        return Starlette(routes=routes, middleware=middleware)

    return build


def asgi_client(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://testserver")


@pytest.mark.anyio
async def test_starlette_accessors_behind_the_middleware(starlette_app, pem_config, clerk_issuer):
    """Behind ClerkGuardMiddleware, get_auth() and require_auth() give the verified session."""
    from starlette.middleware import Middleware

    from clerk_guard.asgi import ClerkGuardMiddleware

    app = starlette_app([Middleware(ClerkGuardMiddleware, config=pem_config)])
    headers = bearer(clerk_issuer.mint(user_id="user_s"))
    async with asgi_client(app) as client:
        assert (await client.get("/me", headers=headers)).json() == {"user_id": "user_s"}
        assert (await client.get("/maybe", headers=headers)).json() == {"user_id": "user_s"}
        assert (await client.get("/me")).status_code == 401  # the middleware refused it first


@pytest.mark.anyio
async def test_starlette_attach_only_and_excluded(starlette_app, pem_config, clerk_issuer):
    """Attach-only without a token, or an excluded path: get_auth() is None, require_auth()
    raises RuntimeError naming the cause."""
    from starlette.middleware import Middleware

    from clerk_guard.asgi import ClerkGuardMiddleware

    middleware = Middleware(
        ClerkGuardMiddleware, config=pem_config, required=False, exclude_prefixes=["/public"]
    )
    async with asgi_client(starlette_app([middleware])) as client:
        assert (await client.get("/maybe")).json() == {"user_id": None}
        with pytest.raises(RuntimeError, match="get_auth"):
            await client.get("/me")
        headers = bearer(clerk_issuer.mint(user_id="user_x"))
        with pytest.raises(RuntimeError, match="'/public/me'"):
            await client.get("/public/me", headers=headers)


@pytest.mark.anyio
async def test_starlette_accessors_with_the_backend(starlette_app, pem_config, clerk_issuer):
    """With ClerkAuthBackend alone, get_auth() reads request.user.auth."""
    from clerk_guard.starlette import ClerkAuthBackend

    app = starlette_app([ClerkAuthBackend(config=pem_config).middleware()])
    async with asgi_client(app) as client:
        headers = bearer(clerk_issuer.mint(user_id="user_b"))
        assert (await client.get("/me", headers=headers)).json() == {"user_id": "user_b"}
        assert (await client.get("/maybe")).json() == {"user_id": None}


@pytest.mark.anyio
async def test_starlette_get_auth_without_middleware(starlette_app):
    """Without any middleware, get_auth() says what to install."""
    async with asgi_client(starlette_app([])) as client:
        with pytest.raises(RuntimeError, match="ClerkGuardMiddleware"):
            await client.get("/maybe")
