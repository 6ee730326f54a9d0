"""The pure WSGI middleware, called in-process with stdlib-built environs (no framework)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import wsgiref.util
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clerk_guard import ConfigurationError, Guard, GuardConfig, SessionAuth
from clerk_guard._http import INVALID_MESSAGE, MISSING_MESSAGE
from clerk_guard.testing import JWKSTransport, LocalIssuer
from clerk_guard.wsgi import (
    ENVIRON_KEY,
    ClerkGuardWSGIMiddleware,
    get_auth,
    header_lines,
    is_preflight,
)


class Recorder:
    """A WSGI app that records the environ it was called with and answers 200."""

    def __init__(self) -> None:
        self.environ: dict[str, Any] | None = None

    def __call__(self, environ, start_response):
        self.environ = environ
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app"]


class Result:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = int(status.split()[0])
        self.status = status
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def call(app, path: str = "/", *, method: str = "GET", **headers: str) -> Result:
    """Run one request through a WSGI app; headers as HTTP_* environ keys."""
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method}
    wsgiref.util.setup_testing_defaults(environ)
    environ.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    captured: dict[str, Any] = {}

    def start_response(status, response_headers, exc_info=None):
        captured["status"], captured["headers"] = status, response_headers

    body = b"".join(app(environ, start_response))
    return Result(captured["status"], captured["headers"], body)


@pytest.fixture
def transport(clerk_issuer: LocalIssuer) -> JWKSTransport:
    return clerk_issuer.transport()


@pytest.fixture
def guard(clerk_issuer: LocalIssuer, transport: JWKSTransport):
    with Guard(clerk_issuer.config(), transport=transport) as guard:
        yield guard


@pytest.fixture
def inner() -> Recorder:
    return Recorder()


@pytest.fixture
def app(inner: Recorder, guard: Guard) -> ClerkGuardWSGIMiddleware:
    return ClerkGuardWSGIMiddleware(inner, guard=guard, exclude=["/public"])


def test_valid_bearer_token_reaches_app_with_auth_in_environ(app, inner, clerk_issuer):
    """A valid Bearer token passes and its SessionAuth is in environ["clerk_guard.auth"]."""
    token = clerk_issuer.mint(user_id="user_1", org_id="org_1", org_role="org:admin")
    result = call(app, "/me", authorization=f"Bearer {token}")
    assert result.status_code == 200
    assert result.body == b"app"
    auth = inner.environ[ENVIRON_KEY]
    assert isinstance(auth, SessionAuth)
    assert (auth.user_id, auth.org_role, auth.token_source) == ("user_1", "org:admin", "header")
    assert get_auth(inner.environ) is auth


def test_session_cookie_token_is_accepted(app, inner, clerk_issuer):
    """The __session cookie is read when there is no Authorization header."""
    token = clerk_issuer.mint(user_id="user_cookie")
    result = call(app, "/me", cookie=f"theme=dark; __session={token}")
    assert result.status_code == 200
    assert inner.environ[ENVIRON_KEY].user_id == "user_cookie"
    assert inner.environ[ENVIRON_KEY].token_source == "cookie"


def test_suffixed_session_cookie_is_accepted(app, inner, clerk_issuer, guard):
    """The instance's suffixed cookie __session_<suffix> (with its __client_uat) is read too."""
    token = clerk_issuer.mint(user_id="user_suffixed")
    suffix = guard.config.cookie_suffix
    result = call(app, "/me", cookie=f"__session_{suffix}={token}; __client_uat_{suffix}=1")
    assert result.status_code == 200
    assert inner.environ[ENVIRON_KEY].user_id == "user_suffixed"


def test_missing_token_gets_401_with_bearer_challenge(app, inner):
    """No token on a protected path: 401, WWW-Authenticate: Bearer, contract §5 body."""
    result = call(app, "/me")
    assert result.status == "401 Unauthorized"
    assert result.headers["www-authenticate"] == "Bearer"
    assert result.headers["content-type"] == "application/json"
    assert result.headers["content-length"] == str(len(result.body))
    assert result.json() == {"error": "Invalid Token", "message": MISSING_MESSAGE}
    assert inner.environ is None


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda issuer: issuer.mint(lifetime=-60), id="expired"),
        pytest.param(lambda issuer: issuer.mint(iss="https://evil.test"), id="wrong-issuer"),
        pytest.param(lambda issuer: issuer.mint()[:-4] + "AAAA", id="bad-signature"),
        pytest.param(lambda issuer: "not.a.jwt", id="garbage"),
        pytest.param(lambda issuer: issuer.mint(sub="mch_1"), id="machine-token"),
    ],
)
def test_invalid_token_gets_401_invalid_token(app, inner, clerk_issuer, make_token):
    """A token failing any check: 401 with error="invalid_token" and the generic message."""
    result = call(app, "/me", authorization=f"Bearer {make_token(clerk_issuer)}")
    assert result.status_code == 401
    assert result.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert result.json() == {"error": "Invalid Token", "message": INVALID_MESSAGE}
    assert inner.environ is None


def test_merged_duplicate_authorization_headers_are_rejected(app, clerk_issuer):
    """Two Authorization lines, merged by the server into one value, are answered 401."""
    token = clerk_issuer.mint()
    result = call(app, "/me", authorization=f"Bearer {token},Bearer {token}")
    assert result.status_code == 401
    assert result.headers["www-authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize("separator", [",", ", "])
def test_merged_duplicates_are_refused_as_duplicated(inner, clerk_issuer, transport, separator):
    """A joined value of two Bearer lines is split back, so the core refuses it as duplicated."""
    token = clerk_issuer.mint()
    app = ClerkGuardWSGIMiddleware(
        inner, config=clerk_issuer.config(debug=True), transport=transport
    )
    result = call(app, "/me", authorization=f"Bearer {token}{separator}Bearer {token}")
    app.close()
    assert result.status_code == 401
    assert result.json()["reason"] == "authorization-header-duplicated"


def test_header_lines_splits_joined_bearer_lines():
    """header_lines() splits a joined Authorization value holding a bearer token at its commas."""
    assert header_lines({"HTTP_AUTHORIZATION": "Bearer a, Bearer b"})[0] == ["Bearer a", "Bearer b"]
    assert header_lines({"HTTP_AUTHORIZATION": "Basic x,Bearer b"})[0] == ["Basic x", "Bearer b"]
    assert header_lines({"HTTP_AUTHORIZATION": "a.b.c, a.b.c"})[0] == ["a.b.c", "a.b.c"]
    assert header_lines({"HTTP_AUTHORIZATION": "Bearer a.b.c"})[0] == ["Bearer a.b.c"]


def test_digest_authorization_keeps_its_commas(app, inner, clerk_issuer):
    """A Digest header (comma-separated parameters) stays one line: not ours, the cookie is used."""
    digest = 'Digest username="u", realm="r", uri="/a.b.c", response="x"'
    assert header_lines({"HTTP_AUTHORIZATION": digest})[0] == [digest]
    token = clerk_issuer.mint(user_id="user_digest")
    result = call(app, "/me", authorization=digest, cookie=f"__session={token}")
    assert result.status_code == 200
    assert inner.environ[ENVIRON_KEY].user_id == "user_digest"


def test_cors_preflight_passes_unverified_when_required(app, inner):
    """required=True: an OPTIONS preflight (Access-Control-Request-Method) passes with None."""
    result = call(app, "/me", method="OPTIONS", access_control_request_method="POST")
    assert result.status_code == 200
    assert inner.environ[ENVIRON_KEY] is None
    assert call(app, "/me", method="OPTIONS").status_code == 401
    assert call(app, "/me", access_control_request_method="POST").status_code == 401


def test_cors_preflight_is_verified_in_attach_only_mode(inner, guard):
    """required=False checks preflights like any request: a bad token is still a 401."""
    app = ClerkGuardWSGIMiddleware(inner, guard=guard, required=False)
    preflight = {"method": "OPTIONS", "access_control_request_method": "POST"}
    assert call(app, "/me", **preflight, authorization="Bearer a.b.c").status_code == 401


def test_is_preflight():
    """is_preflight() needs both OPTIONS and Access-Control-Request-Method."""
    header = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET"}
    assert is_preflight({"REQUEST_METHOD": "OPTIONS", **header})
    assert not is_preflight({"REQUEST_METHOD": "OPTIONS"})
    assert not is_preflight({"REQUEST_METHOD": "GET", **header})


def test_invalid_header_token_does_not_fall_back_to_cookie(app, clerk_issuer):
    """When the header yields a token, a valid cookie is not consulted."""
    good = clerk_issuer.mint()
    result = call(app, "/me", authorization="Bearer x.y.z", cookie=f"__session={good}")
    assert result.status_code == 401


def test_other_authorization_scheme_falls_back_to_cookie(app, inner, clerk_issuer):
    """A Basic Authorization header is not ours: the session cookie is used."""
    token = clerk_issuer.mint(user_id="user_basic")
    result = call(app, "/me", authorization="Basic dXNlcjpwYXNz", cookie=f"__session={token}")
    assert result.status_code == 200
    assert inner.environ[ENVIRON_KEY].user_id == "user_basic"


def test_empty_authorization_header_counts_as_no_token(app):
    """An empty Authorization value is no token: the missing-token 401."""
    result = call(app, "/me", authorization="")
    assert result.headers["www-authenticate"] == "Bearer"


def test_keys_unavailable_gets_503_with_retry_after(app, inner, clerk_issuer, transport):
    """No key set can be loaded: 503 with Retry-After and the contract §5 body."""
    transport.status_code = 500
    result = call(app, "/me", authorization=f"Bearer {clerk_issuer.mint()}")
    assert result.status == "503 Service Unavailable"
    assert int(result.headers["retry-after"]) >= 1
    assert result.json()["error"] == "Service Unavailable"
    assert set(result.json()) == {"error", "message"}
    assert inner.environ is None


def test_excluded_path_passes_without_token(app, inner):
    """An excluded path reaches the app unverified, with None in the environ."""
    result = call(app, "/public")
    assert result.status_code == 200
    assert inner.environ[ENVIRON_KEY] is None


def test_excluded_path_does_not_verify_a_bad_token(app, inner):
    """An excluded path is passed through even with a bad token: it is not checked."""
    result = call(app, "/public", authorization="Bearer x.y.z")
    assert result.status_code == 200


def test_exact_exclusion_does_not_cover_subpaths(app):
    """exclude is exact: "/public" does not open "/public/secret"."""
    assert call(app, "/public/secret").status_code == 401


def test_exclude_prefixes_match_whole_segments(inner, guard):
    """A prefix covers itself and what is under it, not a longer sibling name."""
    app = ClerkGuardWSGIMiddleware(inner, guard=guard, exclude_prefixes=["/static/"])
    assert call(app, "/static").status_code == 200
    assert call(app, "/static/app.js").status_code == 200
    assert call(app, "/staticky").status_code == 401


def test_attach_only_lets_anonymous_requests_through(inner, guard):
    """required=False: no token passes with None attached."""
    app = ClerkGuardWSGIMiddleware(inner, guard=guard, required=False)
    assert call(app, "/feed").status_code == 200
    assert inner.environ[ENVIRON_KEY] is None


def test_attach_only_attaches_valid_sessions(inner, guard, clerk_issuer):
    """required=False: a valid token is verified and attached."""
    app = ClerkGuardWSGIMiddleware(inner, guard=guard, required=False)
    call(app, "/feed", authorization=f"Bearer {clerk_issuer.mint(user_id='user_a')}")
    assert inner.environ[ENVIRON_KEY].user_id == "user_a"


def test_attach_only_still_rejects_invalid_tokens(inner, guard, clerk_issuer):
    """required=False: a token that is sent and fails is still answered 401."""
    app = ClerkGuardWSGIMiddleware(inner, guard=guard, required=False)
    result = call(app, "/feed", authorization=f"Bearer {clerk_issuer.mint(lifetime=-60)}")
    assert result.status_code == 401
    assert inner.environ is None


def test_pending_session_is_a_refused_token(inner, guard, clerk_issuer):
    """required=True: a pending session's token gets the refused-token 401, not "missing"."""
    app = ClerkGuardWSGIMiddleware(inner, guard=guard)
    result = call(app, "/me", authorization=f"Bearer {clerk_issuer.mint(status='pending')}")
    assert result.status_code == 401
    assert result.json() == {"error": "Invalid Token", "message": INVALID_MESSAGE}
    assert result.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert inner.environ is None


def test_attach_only_treats_pending_session_as_signed_out(inner, guard, clerk_issuer):
    """required=False: a pending session passes as signed out (None)."""
    app = ClerkGuardWSGIMiddleware(inner, guard=guard, required=False)
    result = call(app, "/feed", authorization=f"Bearer {clerk_issuer.mint(status='pending')}")
    assert result.status_code == 200
    assert inner.environ[ENVIRON_KEY] is None


def test_debug_adds_reason_to_body(inner, clerk_issuer, transport):
    """With debug on, the 401 body carries the reason code."""
    app = ClerkGuardWSGIMiddleware(
        inner, config=clerk_issuer.config(debug=True), transport=transport
    )
    result = call(app, "/me", authorization=f"Bearer {clerk_issuer.mint(lifetime=-60)}")
    assert result.json()["reason"] == "token-expired"
    app.close()


def test_body_has_no_reason_without_debug(app, clerk_issuer):
    """Without debug the body never says why the token failed."""
    result = call(app, "/me", authorization=f"Bearer {clerk_issuer.mint(lifetime=-60)}")
    assert "reason" not in result.json()


def test_rejection_is_logged_once_without_the_token(app, clerk_issuer, caplog):
    """A rejection logs one line with its reason code and never the token."""
    token = clerk_issuer.mint(lifetime=-60)
    with caplog.at_level(logging.INFO, logger="clerk_guard"):
        call(app, "/me", authorization=f"Bearer {token}")
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 1
    assert "token-expired" in lines[0]
    assert token not in caplog.text


def test_config_fields_build_an_owned_guard_that_close_closes(inner, clerk_issuer, transport):
    """GuardConfig fields as keywords build a guard; close() closes its key client."""
    app = ClerkGuardWSGIMiddleware(
        inner, publishable_key=clerk_issuer.publishable_key, transport=transport
    )
    assert call(app, "/me", authorization=f"Bearer {clerk_issuer.mint()}").status_code == 200
    assert app.guard.config.publishable_key == clerk_issuer.publishable_key
    app.close()
    assert app.guard.jwks is not None
    assert app.guard.jwks._client.is_closed
    app.close()  # idempotent


def test_close_leaves_a_given_guard_open(inner, guard):
    """close() does not close a guard the caller passed in."""
    app = ClerkGuardWSGIMiddleware(inner, guard=guard)
    app.close()
    assert not guard.jwks._client.is_closed


def test_no_configuration_reads_the_environment(inner, clerk_issuer, monkeypatch):
    """With neither guard nor fields, the configuration comes from CLERK_* variables."""
    monkeypatch.setenv("CLERK_PUBLISHABLE_KEY", clerk_issuer.publishable_key)
    monkeypatch.setenv("CLERK_JWT_KEY", clerk_issuer.public_pem)
    app = ClerkGuardWSGIMiddleware(inner)
    assert app.guard.config.key_source == "jwt_key"
    assert call(app, "/me", authorization=f"Bearer {clerk_issuer.mint()}").status_code == 200
    app.close()


def test_no_key_source_is_a_configuration_error(inner, monkeypatch):
    """Nothing configured anywhere fails at construction, not at the first request."""
    for name in ("CLERK_PUBLISHABLE_KEY", "CLERK_SECRET_KEY", "CLERK_JWT_KEY", "CLERK_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CLERK_PEM_PUBLIC_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="No key source"):
        ClerkGuardWSGIMiddleware(inner)


def test_guard_and_configuration_together_is_an_error(inner, guard, clerk_issuer):
    """guard= with configuration fields is ambiguous and refused."""
    with pytest.raises(ConfigurationError, match="either guard"):
        ClerkGuardWSGIMiddleware(inner, guard=guard, leeway=1)
    with pytest.raises(ConfigurationError, match="either guard"):
        ClerkGuardWSGIMiddleware(inner, guard=guard, config=clerk_issuer.config())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"exclude": ["public"]}, "exclude"),
        ({"exclude_prefixes": [None]}, "exclude_prefixes"),
    ],
)
def test_bad_exclusions_are_configuration_errors(inner, guard, options, match):
    """Exclusions must be paths starting with '/'."""
    with pytest.raises(ConfigurationError, match=match):
        ClerkGuardWSGIMiddleware(inner, guard=guard, **options)


def test_single_string_exclusion_is_one_path(inner, guard):
    """exclude="/health" is one path, not a set of characters."""
    app = ClerkGuardWSGIMiddleware(inner, guard=guard, exclude="/health")
    assert app.excluded.exact == frozenset({"/health"})


def test_overridden_is_excluded_is_honoured(inner, guard):
    """A subclass's is_excluded decides even when no exclusions are configured."""

    class Dynamic(ClerkGuardWSGIMiddleware):
        def is_excluded(self, path):
            return path.startswith("/open")

    app = Dynamic(inner, guard=guard)
    assert call(app, "/open/x").status_code == 200
    assert inner.environ[ENVIRON_KEY] is None
    assert call(app, "/me").status_code == 401


def test_warm_up_fetches_keys_at_construction(inner, clerk_issuer, transport):
    """warm_up=True fetches the key set once, before any request."""
    app = ClerkGuardWSGIMiddleware(
        inner, config=clerk_issuer.config(), transport=transport, warm_up=True
    )
    assert transport.fetches == 1
    call(app, "/me", authorization=f"Bearer {clerk_issuer.mint()}")
    assert transport.fetches == 1
    app.close()


def test_failed_warm_up_is_logged_and_not_fatal(inner, clerk_issuer, transport, caplog):
    """A warm-up failure logs a warning and the middleware is still built."""
    transport.status_code = 503
    with caplog.at_level(logging.WARNING, logger="clerk_guard"):
        app = ClerkGuardWSGIMiddleware(
            inner, config=clerk_issuer.config(), transport=transport, warm_up=True
        )
    assert "warm-up failed" in caplog.text
    app.close()


def test_header_lines_reads_environ():
    """header_lines gives one line per present header, none for absent ones."""
    assert header_lines({}) == ([], [])
    assert header_lines({"HTTP_AUTHORIZATION": "Bearer t", "HTTP_COOKIE": "a=b"}) == (
        ["Bearer t"],
        ["a=b"],
    )


def test_concurrent_cold_requests_fetch_keys_once(inner, clerk_issuer):
    """50 threads verifying at once on a cold cache cause exactly one JWKS fetch."""
    transport = clerk_issuer.transport()
    serve = transport.serve_jwks

    def slow_jwks(request: httpx.Request) -> httpx.Response:
        time.sleep(0.2)  # keep the fetch in flight while the other threads arrive
        return serve(request)

    transport.handler = slow_jwks
    app = ClerkGuardWSGIMiddleware(inner, config=clerk_issuer.config(), transport=transport)
    tokens = [clerk_issuer.mint(user_id=f"user_{i}") for i in range(50)]
    barrier = threading.Barrier(50, timeout=10)

    def one(token: str) -> int:
        barrier.wait()
        return call(app, "/me", authorization=f"Bearer {token}").status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(one, tokens))
    assert statuses == [200] * 50
    assert transport.fetches == 1
    app.close()


_header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=200)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(authorization=st.one_of(st.none(), _header_text), cookie=st.one_of(st.none(), _header_text))
def test_no_input_produces_a_500(app, authorization, cookie):
    """Whatever the Authorization and Cookie values, the answer is 200 or 401, never a 500."""
    headers = {}
    if authorization is not None:
        headers["authorization"] = authorization
    if cookie is not None:
        headers["cookie"] = cookie
    assert call(app, "/me", **headers).status_code in (200, 401)


def test_pem_config_needs_no_network(inner, clerk_issuer):
    """A PEM-configured middleware verifies without any transport."""
    config = GuardConfig(jwt_key=clerk_issuer.public_pem, issuer=clerk_issuer.issuer)
    app = ClerkGuardWSGIMiddleware(inner, config=config)
    assert call(app, "/me", authorization=f"Bearer {clerk_issuer.mint()}").status_code == 200
    app.close()


def test_wsgi_module_imports_no_framework():
    """clerk_guard.wsgi needs only the standard library and the core: no framework is loaded."""
    code = (
        "import sys, clerk_guard.wsgi;"
        "bad = [m for m in ('django', 'flask', 'werkzeug', 'starlette', 'fastapi')"
        " if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
