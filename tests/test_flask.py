"""The Flask extension, decorator, blueprint protection and accessors, through app.test_client()."""

from __future__ import annotations

import pytest

flask = pytest.importorskip("flask")

import importlib  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import clerk_guard  # noqa: E402
from clerk_guard import (  # noqa: E402
    AsyncGuard,
    AuthenticationError,
    ClerkGuardError,
    ConfigurationError,
    Guard,
    PermissionDeniedError,
    SessionAuth,
    TokenMissingError,
)
from clerk_guard._http import FORBIDDEN_MESSAGE, INVALID_MESSAGE, MISSING_MESSAGE  # noqa: E402
from clerk_guard._settings import SETTINGS  # noqa: E402
from clerk_guard.flask import (  # noqa: E402
    ClerkGuard,
    ClerkGuardState,
    clerk_required,
    current_auth,
    get_auth,
    protect_blueprint,
)
from clerk_guard.testing import JWKSTransport, LocalIssuer  # noqa: E402
from tests._settings import expected_config, given_fields, samples  # noqa: E402

MISSING = {"error": "Invalid Token", "message": MISSING_MESSAGE}
INVALID = {"error": "Invalid Token", "message": INVALID_MESSAGE}
FORBIDDEN = {"error": "Forbidden", "message": FORBIDDEN_MESSAGE}
CLERK_ENV = tuple(name for setting in SETTINGS for name in setting.env)
#: The app.config keys of the core's settings table: CLERK_GUARD_<NAME> and the variables' names.
GUARD_KEYS = frozenset(
    name for setting in SETTINGS if setting.readable for name in (setting.key, *setting.env)
)


def auth_dict(auth: SessionAuth | None) -> dict[str, Any] | None:
    if auth is None:
        return None
    return {"user_id": auth.user_id, "org_role": auth.org_role, "source": auth.token_source}


def build_app(config: dict[str, Any] | None = None) -> flask.Flask:
    """An app with one route per protection style; the extension is added by the caller."""
    app = flask.Flask(__name__)
    app.config.update(config or {})

    @app.get("/public")
    def public():
        return {"ok": True}

    @app.get("/me")
    @clerk_required
    def me():
        return {"auth": auth_dict(get_auth())}

    @app.get("/optional")
    @clerk_required(optional=True)
    def optional():
        return {"auth": auth_dict(get_auth())}

    @app.get("/admin")
    @clerk_required(role="org:admin")
    def admin():
        return {"auth": auth_dict(get_auth())}

    @app.get("/invoices")
    @clerk_required(permission="org:invoices:read")
    def invoices():
        return {"auth": auth_dict(get_auth())}

    @app.get("/both")
    @clerk_required(role="admin", permission="org:invoices:read")
    def both():
        return {"auth": auth_dict(get_auth())}

    @app.get("/pro")
    @clerk_required(plan="pro", feature="export")
    def pro():
        return {"auth": auth_dict(get_auth())}

    @app.get("/async/me")
    @clerk_required
    async def async_me():
        return {"auth": auth_dict(get_auth())}

    @app.get("/async/admin")
    @clerk_required(role="org:admin")
    async def async_admin():
        return {"auth": auth_dict(current_auth or None)}

    @app.get("/lazy")
    def lazy():
        return {"auth": auth_dict(get_auth())}

    @app.get("/proxy")
    @clerk_required
    def proxy():
        return {"user_id": current_auth.user_id, "g": flask.g._clerk_guard_auth.user_id}

    billing = flask.Blueprint("billing", __name__, url_prefix="/billing")
    protect_blueprint(billing, permission="org:billing:read")

    @billing.get("/invoices")
    def billing_invoices():
        return {"auth": auth_dict(get_auth())}

    @billing.get("/summary")
    async def billing_summary():
        return {"auth": auth_dict(get_auth())}

    members = protect_blueprint(flask.Blueprint("members", __name__, url_prefix="/members"))
    reports = protect_blueprint(
        flask.Blueprint("reports", __name__, url_prefix="/reports"), feature="reports"
    )

    @reports.get("/")
    def reports_index():
        return {"auth": auth_dict(get_auth())}

    @members.get("/")
    def members_index():
        return {"auth": auth_dict(get_auth())}

    app.register_blueprint(billing)
    app.register_blueprint(members)
    app.register_blueprint(reports)
    return app


def _is_guard_key(key: str) -> bool:
    """A key configuring verification, not (only) an extension option."""
    return key in GUARD_KEYS and key != "CLERK_GUARD_DEBUG"


@pytest.fixture
def transport(clerk_issuer: LocalIssuer) -> JWKSTransport:
    return clerk_issuer.transport()


@pytest.fixture
def make_app(clerk_issuer, transport):
    """Build an app with the extension; its guard is closed after the test."""
    apps: list[flask.Flask] = []

    def make(app_config: dict[str, Any] | None = None, /, **options: Any) -> flask.Flask:
        app = build_app(app_config)
        if "guard" not in options:
            options.setdefault("transport", transport)
            if not any(_is_guard_key(key) for key in app_config or {}):
                options.setdefault("config", clerk_issuer.config())
        ClerkGuard(app, **options)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["clerk_guard"].guard.close()


@pytest.fixture
def client(make_app):
    return make_app().test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# contract §5, row by row -------------------------------------------------------------------------


def test_missing_token_gets_401_with_bearer_challenge(client):
    """No token on a decorated route: 401, WWW-Authenticate: Bearer, contract §5 body."""
    response = client.get("/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == MISSING


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda issuer: issuer.mint(lifetime=-60), id="expired"),
        pytest.param(lambda issuer: issuer.mint(iss="https://evil.test"), id="wrong-issuer"),
        pytest.param(lambda issuer: issuer.mint()[:-4] + "AAAA", id="bad-signature"),
        pytest.param(lambda issuer: "a.b.c", id="garbage"),
        pytest.param(lambda issuer: issuer.mint(sid=None), id="no-sid"),
    ],
)
def test_invalid_token_gets_401_invalid_token(client, clerk_issuer, make_token):
    """A token failing any check: 401 with error="invalid_token" and the generic body."""
    response = client.get("/me", headers=bearer(make_token(clerk_issuer)))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.get_json() == INVALID


def test_token_signed_by_unpublished_key_gets_401(client, clerk_issuer):
    """A token whose kid is not in the JWKS is answered 401 invalid_token."""
    retired = clerk_issuer.kid
    clerk_issuer.rotate(retire_old=True)
    response = client.get("/me", headers=bearer(clerk_issuer.mint(kid=retired)))
    assert response.status_code == 401
    assert response.get_json() == INVALID


def test_missing_role_gets_403(client, clerk_issuer):
    """Signed in without the required role: 403 Forbidden, no WWW-Authenticate."""
    token = clerk_issuer.mint(org_id="org_1", org_role="org:member")
    response = client.get("/admin", headers=bearer(token))
    assert response.status_code == 403
    assert response.get_json() == FORBIDDEN
    assert "WWW-Authenticate" not in response.headers


def test_keys_unavailable_gets_503_with_retry_after(client, clerk_issuer, transport):
    """No key set can be loaded: 503 with Retry-After."""
    transport.status_code = 500
    response = client.get("/me", headers=bearer(clerk_issuer.mint()))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert response.get_json()["error"] == "Service Unavailable"
    assert set(response.get_json()) == {"error", "message"}


def test_bodies_are_exactly_error_response(client, clerk_issuer):
    """The rendered body is byte for byte what the core's error_response makes."""
    response = client.get("/me")
    expected = clerk_guard.error_response(TokenMissingError("x"), log=False)
    assert response.data == expected.body


# Tokens: header and cookie ---------------------------------------------------------------------


def test_header_token_is_accepted(client, clerk_issuer):
    """A valid Bearer token reaches the view, which sees its SessionAuth."""
    token = clerk_issuer.mint(user_id="user_h")
    response = client.get("/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["auth"] == {
        "user_id": "user_h",
        "org_role": None,
        "source": "header",
    }


def test_cookie_token_is_accepted(client, clerk_issuer):
    """The __session cookie is used when there is no Authorization header."""
    client.set_cookie("__session", clerk_issuer.mint(user_id="user_c"))
    response = client.get("/me")
    assert response.status_code == 200
    assert response.get_json()["auth"]["source"] == "cookie"


def test_duplicate_authorization_headers_get_401(client, clerk_issuer):
    """Two Authorization headers (merged into one WSGI value) are rejected as invalid."""
    token = clerk_issuer.mint()
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


# The decorator ---------------------------------------------------------------------------------


def test_optional_without_token_passes_with_none(client):
    """@clerk_required(optional=True): no token, the view runs and get_auth() is None."""
    response = client.get("/optional")
    assert response.status_code == 200
    assert response.get_json() == {"auth": None}


def test_optional_with_valid_token_attaches_it(client, clerk_issuer):
    """@clerk_required(optional=True): a valid token is verified and attached."""
    response = client.get("/optional", headers=bearer(clerk_issuer.mint(user_id="user_o")))
    assert response.get_json()["auth"]["user_id"] == "user_o"


def test_optional_with_invalid_token_gets_401(client, clerk_issuer):
    """@clerk_required(optional=True): a token that fails is still answered 401."""
    response = client.get("/optional", headers=bearer(clerk_issuer.mint(lifetime=-60)))
    assert response.status_code == 401
    assert response.get_json() == INVALID


def test_pending_session_is_signed_out(client, clerk_issuer):
    """A pending session is 401 on a required route and None on an optional one."""
    token = clerk_issuer.mint(status="pending")
    refused = client.get("/me", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.get_json() == INVALID  # a token was sent: not the missing-token answer
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert client.get("/optional", headers=bearer(token)).get_json() == {"auth": None}


@pytest.mark.parametrize("version", [1, 2])
def test_required_role_passes(client, clerk_issuer, version):
    """The required role (v1 or v2 claims) lets the request through."""
    token = clerk_issuer.mint(version=version, org_id="org_1", org_role="org:admin")
    response = client.get("/admin", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["auth"]["org_role"] == "org:admin"


def test_role_without_organization_gets_403(client, clerk_issuer):
    """Signed in with no active organization: a role requirement answers 403."""
    assert client.get("/admin", headers=bearer(clerk_issuer.mint())).status_code == 403


def test_role_route_without_token_gets_401(client):
    """A role-protected route without a token is 401, not 403."""
    assert client.get("/admin").status_code == 401


def test_permission_required(client, clerk_issuer):
    """A permission requirement: 200 with it, 403 without."""
    with_it = clerk_issuer.mint(
        org_id="org_1", org_role="org:member", org_permissions=["org:invoices:read"]
    )
    without = clerk_issuer.mint(org_id="org_1", org_role="org:member")
    assert client.get("/invoices", headers=bearer(with_it)).status_code == 200
    assert client.get("/invoices", headers=bearer(without)).status_code == 403


def test_role_and_permission_both_required(client, clerk_issuer):
    """With role and permission, both must hold."""
    admin_only = clerk_issuer.mint(org_id="org_1", org_role="org:admin")
    both = clerk_issuer.mint(
        org_id="org_1", org_role="org:admin", org_permissions=["org:invoices:read"]
    )
    assert client.get("/both", headers=bearer(admin_only)).status_code == 403
    assert client.get("/both", headers=bearer(both)).status_code == 200


def test_decorator_rejects_optional_with_role():
    """optional=True with role= is contradictory and refused at decoration time."""
    with pytest.raises(TypeError, match="optional"):
        clerk_required(optional=True, role="org:admin")
    with pytest.raises(TypeError, match="role"):
        clerk_required(role="")


def test_decorator_feature_and_plan(client, clerk_issuer):
    """feature= and plan= are judged as SessionAuth.has: both must hold, else 403."""
    both = clerk_issuer.mint(plans=["u:pro"], features=["u:export"])
    plan_only = clerk_issuer.mint(plans=["u:pro"])
    assert client.get("/pro", headers=bearer(both)).status_code == 200
    response = client.get("/pro", headers=bearer(plan_only))
    assert (response.status_code, response.get_json()) == (403, FORBIDDEN)
    assert client.get("/pro").status_code == 401


def test_optional_with_feature_or_plan_is_refused():
    """optional=True with feature= or plan= is refused at decoration time, as with role=."""
    with pytest.raises(TypeError, match="feature="):
        clerk_required(optional=True, feature="export")
    with pytest.raises(TypeError, match="plan="):
        protect_blueprint(flask.Blueprint("b", __name__), optional=True, plan="pro")
    with pytest.raises(TypeError, match="plan"):
        clerk_required(plan="")


def test_decorator_keeps_view_metadata():
    """The decorated view keeps its name and docstring (Flask endpoints use the name)."""

    @clerk_required
    def my_view():
        """Doc."""

    @clerk_required(optional=True)
    async def my_async_view():
        """Async doc."""

    assert (my_view.__name__, my_view.__doc__) == ("my_view", "Doc.")
    assert my_async_view.__name__ == "my_async_view"


# Async views -----------------------------------------------------------------------------------


def test_async_view_with_token(client, clerk_issuer):
    """An async view behind @clerk_required sees the verified session."""
    response = client.get("/async/me", headers=bearer(clerk_issuer.mint(user_id="user_async")))
    assert response.status_code == 200
    assert response.get_json()["auth"]["user_id"] == "user_async"


def test_async_view_without_token_gets_401(client):
    """An async view behind @clerk_required answers 401 without a token."""
    response = client.get("/async/me")
    assert response.status_code == 401
    assert response.get_json() == MISSING


def test_async_view_role(client, clerk_issuer):
    """An async view with a role requirement: 403 without the role, 200 with it."""
    member = clerk_issuer.mint(org_id="org_1", org_role="org:member")
    admin = clerk_issuer.mint(org_id="org_1", org_role="org:admin")
    assert client.get("/async/admin", headers=bearer(member)).status_code == 403
    response = client.get("/async/admin", headers=bearer(admin))
    assert response.get_json()["auth"]["org_role"] == "org:admin"


# Blueprints ------------------------------------------------------------------------------------


def test_blueprint_routes_need_a_token(client):
    """Every route of a protected blueprint answers 401 without a token."""
    assert client.get("/billing/invoices").get_json() == MISSING
    assert client.get("/billing/summary").status_code == 401
    assert client.get("/members/").status_code == 401


def test_blueprint_permission_gives_403_without_it(client, clerk_issuer):
    """A blueprint protected with a permission answers 403 to sessions lacking it."""
    token = clerk_issuer.mint(org_id="org_1", org_role="org:member")
    response = client.get("/billing/invoices", headers=bearer(token))
    assert response.status_code == 403
    assert response.get_json() == FORBIDDEN


def test_blueprint_passes_with_permission(client, clerk_issuer):
    """A session with the blueprint's permission reaches sync and async routes."""
    token = clerk_issuer.mint(
        org_id="org_1", org_role="org:member", org_permissions=["org:billing:read"]
    )
    assert client.get("/billing/invoices", headers=bearer(token)).status_code == 200
    assert client.get("/billing/summary", headers=bearer(token)).status_code == 200


def test_blueprint_feature(client, clerk_issuer):
    """protect_blueprint(feature=...): 403 without the feature, 200 with it."""
    with_it = clerk_issuer.mint(org_id="org_1", features=["o:reports"])
    without = clerk_issuer.mint(org_id="org_1", features=["o:other"])
    assert client.get("/reports/", headers=bearer(with_it)).status_code == 200
    assert client.get("/reports/", headers=bearer(without)).status_code == 403


PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}


def test_blueprint_lets_cors_preflight_through(client):
    """A protected blueprint answers a CORS preflight (Flask's automatic OPTIONS) unverified."""
    assert client.options("/members/", headers=PREFLIGHT).status_code == 200
    assert client.options("/members/").status_code == 401


def test_blueprint_protection_does_not_leak_to_other_routes(client):
    """Routes outside the protected blueprint are unaffected."""
    assert client.get("/public").status_code == 200


# Accessors -------------------------------------------------------------------------------------


def test_current_auth_proxy_and_g(client, clerk_issuer):
    """current_auth proxies the verified session, which is stored on g._clerk_guard_auth."""
    response = client.get("/proxy", headers=bearer(clerk_issuer.mint(user_id="user_p")))
    assert response.get_json() == {"user_id": "user_p", "g": "user_p"}


def test_get_auth_on_unprotected_route_verifies_lazily(client, clerk_issuer):
    """get_auth() on an undecorated route verifies the token on first use."""
    assert client.get("/lazy").get_json() == {"auth": None}
    response = client.get("/lazy", headers=bearer(clerk_issuer.mint(user_id="user_l")))
    assert response.get_json()["auth"]["user_id"] == "user_l"


def test_get_auth_on_unprotected_route_rejects_bad_token(client):
    """get_auth() with an invalid token raises, answered 401 by the extension."""
    assert client.get("/lazy", headers=bearer("a.b.c")).status_code == 401


def _count_authenticate(app, monkeypatch) -> list:
    """Record the ``required`` argument of every call to the app's guard.authenticate()."""
    guard = app.extensions["clerk_guard"].guard
    calls = []
    original = guard.authenticate

    def counting(*args, **kwargs):
        calls.append(kwargs.get("required"))
        return original(*args, **kwargs)

    monkeypatch.setattr(guard, "authenticate", counting)
    return calls


def test_token_is_verified_once_per_request(make_app, clerk_issuer, monkeypatch):
    """protect_all plus a decorator plus get_auth() verify the token once."""
    app = make_app(protect_all=True)
    calls = _count_authenticate(app, monkeypatch)
    response = app.test_client().get("/proxy", headers=bearer(clerk_issuer.mint()))
    assert response.status_code == 200
    assert calls == [True]


def test_optional_route_without_token_asks_the_guard_once(make_app, monkeypatch):
    """On an optional route, get_auth() reuses the decorator's None instead of verifying again."""
    app = make_app()
    calls = _count_authenticate(app, monkeypatch)
    assert app.test_client().get("/optional").get_json() == {"auth": None}
    assert calls == [False]


def test_get_auth_outside_a_request_raises(make_app):
    """get_auth() outside a request raises RuntimeError, as Flask's globals do."""
    make_app()
    with pytest.raises(RuntimeError, match="Working outside of"):
        get_auth()


def test_result_does_not_outlive_its_request_in_a_shared_app_context(make_app, clerk_issuer):
    """Requests that share one pushed app context (and so one g) are each verified anew."""
    app = make_app()
    client = app.test_client()
    with app.app_context():
        signed_in = client.get("/me", headers=bearer(clerk_issuer.mint(user_id="user_a")))
        anonymous = client.get("/me")
        lazy = client.get("/lazy")
    assert signed_in.get_json()["auth"]["user_id"] == "user_a"
    assert anonymous.status_code == 401
    assert lazy.get_json() == {"auth": None}


# protect_all and exclusions --------------------------------------------------------------------


def test_protect_all_covers_undecorated_routes(make_app, clerk_issuer):
    """protect_all=True: an undecorated route needs a token."""
    client = make_app(protect_all=True, exclude=["/health"]).test_client()
    assert client.get("/lazy").status_code == 401
    assert client.get("/lazy", headers=bearer(clerk_issuer.mint())).status_code == 200


def test_protect_all_from_app_config_with_exclusions(make_app, clerk_issuer):
    """CLERK_GUARD_PROTECT_ALL and CLERK_GUARD_EXCLUDE(_PREFIXES) from app.config."""
    client = make_app(
        {
            "CLERK_GUARD_PROTECT_ALL": "true",
            "CLERK_GUARD_EXCLUDE": "/public, /health",
            "CLERK_GUARD_EXCLUDE_PREFIXES": ["/billing/"],
        },
        config=clerk_issuer.config(),
    ).test_client()
    assert client.get("/public").status_code == 200
    assert client.get("/lazy").status_code == 401
    # Excluded from protect_all, but the blueprint's own protection still applies.
    assert client.get("/billing/invoices").status_code == 401
    assert client.get("/billingx").status_code == 401


def test_protect_all_lets_cors_preflight_through(make_app):
    """protect_all: an OPTIONS preflight (Access-Control-Request-Method) passes unverified."""
    client = make_app(protect_all=True).test_client()
    preflight = client.options("/lazy", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert "GET" in preflight.headers["Allow"]
    assert client.options("/lazy").status_code == 401
    assert client.get("/lazy", headers=PREFLIGHT).status_code == 401


def test_decorator_applies_on_excluded_path(make_app):
    """An explicit decorator still protects a path that protect_all excludes."""
    client = make_app(protect_all=True, exclude=["/me"]).test_client()
    assert client.get("/me").status_code == 401


def test_options_override_app_config(make_app):
    """An option given to ClerkGuard() wins over the CLERK_GUARD_* config key."""
    client = make_app({"CLERK_GUARD_PROTECT_ALL": True}, protect_all=False).test_client()
    assert client.get("/lazy").status_code == 200


# Configuration ---------------------------------------------------------------------------------


def test_configuration_from_app_config_keys(make_app, clerk_issuer, monkeypatch):
    """CLERK_* keys in app.config configure the guard and win over the environment."""
    monkeypatch.setenv("CLERK_JWKS_URL", "https://env.example.test/jwks.json")
    app = make_app(
        {
            "CLERK_PUBLISHABLE_KEY": clerk_issuer.publishable_key,
            "CLERK_JWKS_URL": "https://config.example.test/jwks.json",
            "CLERK_AUTHORIZED_PARTIES": "https://app.example.test, https://b.example.test",
            "CLERK_LEEWAY": "2",
        }
    )
    config = app.extensions["clerk_guard"].guard.config
    assert config.jwks_url == "https://config.example.test/jwks.json"
    assert config.authorized_parties == ("https://app.example.test", "https://b.example.test")
    assert config.leeway == 2.0
    client = app.test_client()
    good = clerk_issuer.mint(azp="https://app.example.test")
    assert client.get("/me", headers=bearer(good)).status_code == 200
    other = clerk_issuer.mint(azp="https://evil.example.test")
    assert client.get("/me", headers=bearer(other)).status_code == 401


def test_configuration_falls_back_to_environment(make_app, clerk_issuer, monkeypatch):
    """With no CLERK_* keys in app.config, the environment (from_env) is used."""
    for name in CLERK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLERK_PUBLISHABLE_KEY", clerk_issuer.publishable_key)
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", "http://localhost:3000")
    app = build_app()
    ext = ClerkGuard(transport=clerk_issuer.transport())
    ext.init_app(app)
    config = app.extensions["clerk_guard"].guard.config
    assert config.publishable_key == clerk_issuer.publishable_key
    assert config.authorized_parties == ("http://localhost:3000",)
    assert app.test_client().get("/me", headers=bearer(clerk_issuer.mint())).status_code == 200
    app.extensions["clerk_guard"].guard.close()


def test_app_config_list_values_and_pem_alias(make_app, clerk_issuer):
    """List values are accepted and CLERK_PEM_PUBLIC_KEY configures a PEM key."""
    app = make_app(
        {
            "CLERK_PEM_PUBLIC_KEY": clerk_issuer.public_pem,
            "CLERK_AUTHORIZED_PARTIES": ["http://localhost:3000"],
            "CLERK_ISSUER": clerk_issuer.issuer,
        }
    )
    config = app.extensions["clerk_guard"].guard.config
    assert config.key_source == "jwt_key"
    assert app.test_client().get("/me", headers=bearer(clerk_issuer.mint())).status_code == 200


def _config_from_app(app_config, transport):
    """The GuardConfig the extension builds from app.config (and an empty environment)."""
    app = build_app(app_config)
    ClerkGuard(app, transport=transport)
    config = app.extensions["clerk_guard"].guard.config
    app.extensions["clerk_guard"].guard.close()
    return config


@pytest.mark.parametrize("spelling", ["CLERK_GUARD_ text", "env names as text", "code"])
def test_every_setting_from_app_config_gives_the_same_config(
    spelling, clerk_issuer, transport, monkeypatch
):
    """Every setting of the table read from app.config, as CLERK_GUARD_<NAME> strings, under its
    environment variable's name or as a Python value, gives what GuardConfig(...) gives."""
    for name in CLERK_ENV:
        monkeypatch.delenv(name, raising=False)
    pem = clerk_issuer.public_pem
    values = samples(pem)
    app_config = {}
    for setting in SETTINGS:
        if not setting.readable:
            continue
        text, code = values[setting.name]
        if spelling == "code":
            app_config[setting.key] = code
        elif spelling == "env names as text" and setting.env:
            app_config[setting.env[-1]] = text  # the last alias: CLERK_PEM_PUBLIC_KEY
        else:
            app_config[setting.key] = text
    config = _config_from_app(app_config, transport)
    assert given_fields(config) == given_fields(expected_config(pem))


def test_clerk_guard_keys_win_over_variable_names(clerk_issuer, transport, monkeypatch):
    """CLERK_GUARD_<NAME> wins over the environment variable's name in app.config, which wins
    over the environment."""
    monkeypatch.setenv("CLERK_LEEWAY", "3")
    monkeypatch.setenv("CLERK_AUDIENCE", "from-env")
    app_config = {
        "CLERK_JWT_KEY": clerk_issuer.public_pem,
        "CLERK_GUARD_LEEWAY": "1",
        "CLERK_LEEWAY": "2",
        "CLERK_AUDIENCE": "from-config",
    }
    config = _config_from_app(app_config, transport)
    assert (config.leeway, config.audience) == (1.0, ("from-config",))


def test_field_options_win_over_app_config_keys(clerk_issuer, transport):
    """A GuardConfig field given to ClerkGuard() wins over the same setting in app.config."""
    app = build_app({"CLERK_JWT_KEY": clerk_issuer.public_pem, "CLERK_LEEWAY": "2"})
    ClerkGuard(app, transport=transport, leeway=1)
    assert app.extensions["clerk_guard"].guard.config.leeway == 1
    app.extensions["clerk_guard"].guard.close()


def test_guard_field_options_override_config(make_app, clerk_issuer):
    """GuardConfig fields given to ClerkGuard() override config=."""
    app = make_app(config=clerk_issuer.config(), leeway=1)
    assert app.extensions["clerk_guard"].guard.config.leeway == 1


def test_shared_guard_is_used_and_not_closed(make_app, clerk_issuer, transport):
    """guard= is used as given; the extension does not own it."""
    with Guard(clerk_issuer.config(), transport=transport) as guard:
        app = make_app(guard=guard)
        assert app.extensions["clerk_guard"].guard is guard
        assert app.test_client().get("/me", headers=bearer(clerk_issuer.mint())).status_code == 200


def test_debug_from_app_config_adds_reason(make_app, clerk_issuer):
    """CLERK_GUARD_DEBUG puts the reason code in error bodies."""
    client = make_app({"CLERK_GUARD_DEBUG": "1"}, config=clerk_issuer.config()).test_client()
    response = client.get("/me", headers=bearer(clerk_issuer.mint(lifetime=-60)))
    assert response.get_json()["reason"] == "token-expired"
    assert client.get("/admin", headers=bearer(clerk_issuer.mint())).get_json()["reason"] == (
        "permission-denied"
    )


@pytest.mark.parametrize(
    ("config", "options", "error", "match"),
    [
        ({}, {"nonsense": 1}, TypeError, "nonsense"),
        ({"CLERK_GUARD_PROTECT_ALL": "maybe"}, {}, ConfigurationError, "PROTECT_ALL"),
        ({"CLERK_GUARD_EXCLUDE": "health"}, {}, ConfigurationError, "EXCLUDE"),
        ({"CLERK_GUARD_WARM_UP": 1}, {}, ConfigurationError, "WARM_UP"),
        ({"CLERK_LEEWAY": "soon"}, {}, ConfigurationError, "CLERK_LEEWAY"),
        ({"CLERK_GUARD_LEEWAY": "soon"}, {}, ConfigurationError, "CLERK_GUARD_LEEWAY"),
        ({"CLERK_GUARD_JWKS_TTL": "-"}, {}, ConfigurationError, "CLERK_GUARD_JWKS_TTL"),
        ({"CLERK_GUARD_ACCEPT_PENDING": "maybe"}, {}, ConfigurationError, "ACCEPT_PENDING"),
        ({"CLERK_GUARD_TOKEN_CACHE_SIZE": "-1"}, {}, ConfigurationError, "token_cache_size"),
        ({"CLERK_PUBLISHABLE_KEY": "pk_test_bad"}, {}, ConfigurationError, "publishable_key"),
        ({"CLERK_GUARD_PUBLISHABLE_KEY": "pk_test_bad"}, {}, ConfigurationError, "publishable"),
    ],
)
def test_bad_configuration_fails_at_init(clerk_issuer, config, options, error, match):
    """Invalid settings fail in init_app with a message naming the setting."""
    app = build_app(config)
    if not any(_is_guard_key(key) for key in config):
        options = {"config": clerk_issuer.config(), **options}
    with pytest.raises(error, match=match):
        ClerkGuard(app, **options)
    assert "clerk_guard" not in app.extensions


def test_guard_with_configuration_is_refused(clerk_issuer):
    """guard= with config= or fields is ambiguous and refused."""
    guard = Guard(clerk_issuer.config(jwt_key=clerk_issuer.public_pem))
    with pytest.raises(ConfigurationError, match="either guard"):
        ClerkGuard(build_app(), guard=guard, leeway=1)


def test_async_guard_is_refused(clerk_issuer):
    """Flask is synchronous: an AsyncGuard is refused with a clear message."""
    guard = AsyncGuard(clerk_issuer.config(jwt_key=clerk_issuer.public_pem))
    with pytest.raises(ConfigurationError, match="clerk_guard.Guard"):
        ClerkGuard(build_app(), guard=guard)


# Registration ----------------------------------------------------------------------------------


def test_state_is_kept_per_app(make_app, clerk_issuer):
    """One extension object serving two apps keeps separate state and sets no .app."""
    ext = ClerkGuard(config=clerk_issuer.config(jwt_key=clerk_issuer.public_pem))
    first, second = build_app(), build_app({"CLERK_GUARD_PROTECT_ALL": True})
    ext.init_app(first)
    ext.init_app(second)
    assert not hasattr(ext, "app")
    states = first.extensions["clerk_guard"], second.extensions["clerk_guard"]
    assert isinstance(states[0], ClerkGuardState)
    assert states[0] is not states[1]
    assert (states[0].protect_all, states[1].protect_all) == (False, True)
    assert first.test_client().get("/lazy").status_code == 200
    assert second.test_client().get("/lazy").status_code == 401


def test_registering_twice_raises(make_app):
    """init_app on an app that already has the extension raises RuntimeError."""
    app = make_app()
    with pytest.raises(RuntimeError, match="already registered"):
        ClerkGuard().init_app(app)


def test_use_without_init_raises():
    """A decorated view on an app without the extension raises RuntimeError."""
    app = build_app()
    app.testing = True
    with pytest.raises(RuntimeError, match="not registered"):
        app.test_client().get("/me")
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="not registered"):
        get_auth()


# Error handlers --------------------------------------------------------------------------------


def test_app_handler_for_subclass_wins(make_app, clerk_issuer):
    """An app handler for AuthenticationError, registered after init, replaces the 401 body."""
    app = make_app()

    @app.errorhandler(AuthenticationError)
    def custom(exc):
        return {"custom": exc.code}, 401

    client = app.test_client()
    assert client.get("/me").get_json() == {"custom": "session-token-missing"}
    # The extension's handler still answers what the app did not override.
    token = clerk_issuer.mint(org_id="org_1", org_role="org:member")
    assert client.get("/admin", headers=bearer(token)).get_json() == FORBIDDEN


def test_root_handler_registered_before_init_wins(clerk_issuer, transport):
    """An app handler for ClerkGuardError registered before init_app is kept."""
    app = build_app()

    @app.errorhandler(ClerkGuardError)
    def custom(exc):
        return {"custom": exc.code}, 418

    ClerkGuard(app, config=clerk_issuer.config(), transport=transport)
    assert app.test_client().get("/me").status_code == 418
    app.extensions["clerk_guard"].guard.close()


def test_root_handler_registered_after_init_wins(make_app):
    """An app handler for ClerkGuardError registered after init_app replaces ours."""
    app = make_app()
    app.register_error_handler(ClerkGuardError, lambda exc: ("nope", 401))
    assert app.test_client().get("/me").data == b"nope"


def test_permission_handler_override(make_app, clerk_issuer):
    """An app handler for PermissionDeniedError renders the 403 instead."""
    app = make_app()
    app.register_error_handler(PermissionDeniedError, lambda exc: ({"denied": True}, 403))
    response = app.test_client().get("/admin", headers=bearer(clerk_issuer.mint()))
    assert response.get_json() == {"denied": True}


def test_rejection_logged_once_even_when_handler_is_overridden(make_app, clerk_issuer, caplog):
    """The rejection is logged once with its reason, never the token, whoever renders it."""
    app = make_app()
    app.register_error_handler(ClerkGuardError, lambda exc: ("custom", 401))
    token = clerk_issuer.mint(lifetime=-60)
    with caplog.at_level(logging.INFO, logger="clerk_guard"):
        app.test_client().get("/me", headers=bearer(token))
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 1
    assert "token-expired" in lines[0]
    assert token not in caplog.text


# Warm-up ---------------------------------------------------------------------------------------


def test_warm_up_fetches_keys_at_init(make_app, clerk_issuer, transport):
    """warm_up=True fetches the key set in init_app; the first request fetches nothing."""
    app = make_app(warm_up=True)
    assert transport.fetches == 1
    app.test_client().get("/me", headers=bearer(clerk_issuer.mint()))
    assert transport.fetches == 1


def test_no_warm_up_by_default(make_app, transport):
    """Without warm-up nothing is fetched at init."""
    make_app()
    assert transport.fetches == 0


def test_warm_up_from_app_config(make_app, clerk_issuer, transport):
    """CLERK_GUARD_WARM_UP turns warm-up on."""
    make_app({"CLERK_GUARD_WARM_UP": True}, config=clerk_issuer.config())
    assert transport.fetches == 1


def test_failed_warm_up_does_not_stop_the_app(make_app, transport, caplog):
    """A warm-up failure is logged; the app is still set up."""
    transport.status_code = 500
    with caplog.at_level(logging.WARNING, logger="clerk_guard"):
        app = make_app(warm_up=True)
    assert "warm-up failed" in caplog.text
    assert app.test_client().get("/public").status_code == 200


# The example -----------------------------------------------------------------------------------


@pytest.fixture
def example_app(clerk_issuer, clerk_jwks_server, monkeypatch):
    """examples/flask_app.py, imported with its environment pointing at a loopback JWKS."""
    for name in CLERK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLERK_PUBLISHABLE_KEY", clerk_issuer.publishable_key)
    monkeypatch.setenv("CLERK_JWKS_URL", clerk_jwks_server.url)
    sys.modules.pop("examples.flask_app", None)
    module = importlib.import_module("examples.flask_app")
    yield module.app
    module.app.extensions["clerk_guard"].guard.close()
    sys.modules.pop("examples.flask_app", None)


def test_example_serves_design_routes(example_app, clerk_issuer, clerk_jwks_server):
    """The Flask example answers /public, /me and /admin as contract §8 says."""
    client = example_app.test_client()
    assert client.get("/public").get_json() == {"ok": True}
    assert client.get("/me").status_code == 401
    token = clerk_issuer.mint(
        user_id="user_1",
        session_id="sess_1",
        org_id="org_1",
        org_role="org:member",
        org_permissions=["org:billing:read"],
    )
    assert client.get("/me", headers=bearer(token)).get_json() == {
        "user_id": "user_1",
        "session_id": "sess_1",
        "org_id": "org_1",
        "org_role": "org:member",
        "org_permissions": ["org:billing:read"],
    }
    assert client.get("/admin", headers=bearer(token)).status_code == 403
    admin = clerk_issuer.mint(org_id="org_1", org_role="org:admin")
    assert client.get("/admin", headers=bearer(admin)).status_code == 200
    assert client.get("/billing/summary", headers=bearer(token)).get_json() == {
        "org_id": "org_1",
        "total": 0,
    }
    assert clerk_jwks_server.fetches == 1


# Robustness ------------------------------------------------------------------------------------

_header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(authorization=_header_text, cookie=_header_text)
def test_no_input_produces_a_500(client, authorization, cookie):
    """Whatever the Authorization and Cookie values, no route answers 500."""
    headers = {"Authorization": authorization, "Cookie": cookie}
    for path in ("/me", "/optional", "/admin", "/billing/invoices", "/async/me"):
        assert client.get(path, headers=headers).status_code in (200, 401, 403)
