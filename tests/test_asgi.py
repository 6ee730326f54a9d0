"""ClerkGuardMiddleware in-process: a bare ASGI app behind it, no framework."""

from __future__ import annotations

import json
import subprocess
import sys

import anyio
import httpx
import pytest

from clerk_guard import (
    AsyncGuard,
    ClerkGuardError,
    ConfigurationError,
    SessionAuth,
    TokenInvalidError,
    error_response,
)
from clerk_guard.asgi import (
    GUARD_KEY,
    SCOPE_KEY,
    ClerkGuardMiddleware,
    get_auth,
    header_lines,
    is_preflight,
    send_error,
)
from clerk_guard.testing import LocalIssuer
from tests._asgi import (
    INVALID,
    MISSING,
    asgi_fixtures,
    bearer,
    client,
    run_lifespan,
    websocket_handshake,
)

pytestmark = pytest.mark.anyio

anyio_backend, transport, guard = asgi_fixtures()


async def inner_app(scope, receive, send):
    """Echo what the middleware attached; accept WebSockets; answer lifespan events."""
    if scope["type"] == "lifespan":
        for _ in range(2):  # start-up, then shut-down
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        auth = get_auth(scope)
        await send({"type": "websocket.send", "text": auth.user_id if auth else "-"})
        await send({"type": "websocket.close", "code": 1000})
        return
    state_auth = scope["state"].get("clerk", "absent")
    body = {
        "checked": SCOPE_KEY in scope,
        "scope_user": getattr(scope.get(SCOPE_KEY), "user_id", None),
        "state_user": getattr(state_auth, "user_id", state_auth),
        "source": getattr(scope.get(SCOPE_KEY), "token_source", None),
        "has_guard": GUARD_KEY in scope,
    }
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


async def test_missing_token_is_401_bearer(guard):
    """No token on a protected path: 401, WWW-Authenticate: Bearer, the contract §5 body."""
    async with client(ClerkGuardMiddleware(inner_app, guard=guard)) as c:
        response = await c.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == MISSING


@pytest.mark.parametrize(
    "authorization",
    ["Bearer a.b.c", "Bearer not-a-jwt", "Bearer " + "x" * 9000, "Bearer \u00e9\u00e8.x.y"],
)
async def test_invalid_token_is_401_invalid_token(guard, authorization):
    """Any token that fails: 401 with error="invalid_token", never a 500."""
    async with client(ClerkGuardMiddleware(inner_app, guard=guard)) as c:
        response = await c.get("/me", headers={"Authorization": authorization.encode("latin-1")})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json() == INVALID


async def test_expired_and_foreign_tokens_are_401(clerk_issuer, guard):
    """Expired tokens and tokens signed by another key get the same opaque 401."""
    expired = clerk_issuer.mint(lifetime=-60)
    tampered = clerk_issuer.mint()[:-6] + "AAAAAA"
    foreign = LocalIssuer(frontend_api=clerk_issuer.frontend_api).mint()
    async with client(ClerkGuardMiddleware(inner_app, guard=guard)) as c:
        for token in (expired, tampered, foreign):
            response = await c.get("/me", headers=bearer(token))
            assert response.status_code == 401
            assert response.json() == INVALID


async def test_valid_header_token_attaches_result(clerk_issuer, guard):
    """A valid header token reaches the app, in scope["clerk_guard.auth"] and scope["state"]."""
    token = clerk_issuer.mint(user_id="user_abc")
    async with client(ClerkGuardMiddleware(inner_app, guard=guard)) as c:
        response = await c.get("/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "checked": True,
        "scope_user": "user_abc",
        "state_user": "user_abc",
        "source": "header",
        "has_guard": True,
    }


async def test_cookie_tokens(clerk_issuer, guard):
    """The __session cookie and its suffixed form both authenticate, as source "cookie"."""
    token = clerk_issuer.mint(user_id="user_cookie")
    suffix = guard.config.cookie_suffix
    suffixed = f"theme=dark; __client_uat_{suffix}=1; __session_{suffix}={token}"
    async with client(ClerkGuardMiddleware(inner_app, guard=guard)) as c:
        for cookie in (f"__session={token}", suffixed):
            response = await c.get("/me", headers={"Cookie": cookie})
            assert response.status_code == 200
            assert response.json()["source"] == "cookie"


async def test_two_authorization_lines_rejected(clerk_issuer, guard):
    """Two Authorization field lines are answered 401 invalid_token, even if one is valid."""
    token = clerk_issuer.mint()
    headers = [("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")]
    async with client(ClerkGuardMiddleware(inner_app, guard=guard)) as c:
        response = await c.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_header_lines_collects_every_line():
    """header_lines() returns every Authorization and Cookie line, decoded latin-1."""
    scope = {
        "headers": [
            (b"authorization", b"Bearer a"),
            (b"cookie", b"a=1"),
            (b"Cookie", b"b=\xe9"),
            (b"authorization", b"Bearer b"),
            (b"x-other", b"c"),
        ]
    }
    assert header_lines(scope) == (["Bearer a", "Bearer b"], ["a=1", "b=\u00e9"])


def test_header_lines_matches_names_in_any_case():
    """Names are matched case-insensitively and whole: x-authorization or cookies are not ours."""
    scope = {
        "headers": [
            (b"AUTHORIZATION", b"Bearer a"),
            (b"x-authorization", b"Bearer x"),
            (b"Authorization-Extra", b"Bearer y"),
            (b"COOKIE", b"a=1"),
            (b"cookies", b"b=2"),
            (b"123", b"c=3"),
        ]
    }
    assert header_lines(scope) == (["Bearer a"], ["a=1"])
    assert header_lines({}) == ([], [])


async def test_existing_scope_state_is_kept_and_missing_state_created(clerk_issuer, guard):
    """The result goes into the server's scope["state"] dict, or a new one when there is none."""
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["state"])

    async def receive():
        return {"type": "http.request"}

    async def send(message):
        raise AssertionError("nothing is sent for a valid token")

    headers = [(b"authorization", f"Bearer {clerk_issuer.mint(user_id='user_s')}".encode())]
    middleware = ClerkGuardMiddleware(app, guard=guard)
    shared = {"db": "pool"}
    for scope in (
        {"type": "http", "method": "GET", "path": "/me", "headers": headers, "state": shared},
        {"type": "http", "method": "GET", "path": "/me", "headers": headers},
    ):
        await middleware(scope, receive, send)
    assert seen[0] is shared
    assert shared["db"] == "pool"
    assert [state["clerk"].user_id for state in seen] == ["user_s", "user_s"]


async def test_overridden_is_excluded_is_honoured(guard):
    """A subclass's is_excluded decides even when no exclusions are configured."""

    class Dynamic(ClerkGuardMiddleware):
        def is_excluded(self, path):
            return path.startswith("/open")

    async with client(Dynamic(inner_app, guard=guard)) as c:
        opened = await c.get("/open/x")
        closed = await c.get("/me")
    assert opened.status_code == 200
    assert opened.json()["checked"] is False
    assert closed.status_code == 401


async def test_guard_with_its_own_authenticate_is_honoured(clerk_issuer, transport):
    """A guard subclass overriding authenticate() decides, as it does in the other adapters:
    the middleware's shortcut for cached tokens is only taken with AsyncGuard's own."""

    class BannedUsers(AsyncGuard):
        async def authenticate(self, authorization, cookies, *, required=True):
            auth = await super().authenticate(authorization, cookies, required=required)
            if auth is not None and auth.user_id == "user_banned":
                raise TokenInvalidError("Banned.", code="banned")
            return auth

    guard = BannedUsers(clerk_issuer.config(), transport=transport)
    banned = clerk_issuer.mint(user_id="user_banned")
    async with client(ClerkGuardMiddleware(inner_app, guard=guard)) as c:
        for _ in range(2):  # the second time, the token is cached
            assert (await c.get("/me", headers=bearer(banned))).status_code == 401
        ok = await c.get("/me", headers=bearer(clerk_issuer.mint()))
    assert ok.status_code == 200
    await guard.aclose()


async def test_keys_unavailable_is_503(clerk_issuer, guard, transport):
    """When no key set can be loaded: 503 Service Unavailable with Retry-After."""
    transport.status_code = 500
    async with client(ClerkGuardMiddleware(inner_app, guard=guard)) as c:
        response = await c.get("/me", headers=bearer(clerk_issuer.mint()))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "Service Unavailable"
    assert "www-authenticate" not in response.headers


async def test_excluded_exact_paths(guard):
    """Exact excluded paths skip the check; their neighbours do not."""
    app = ClerkGuardMiddleware(inner_app, guard=guard, exclude=("/health", "/public"))
    async with client(app) as c:
        response = await c.get("/health", headers={"Authorization": "Bearer garbage"})
        assert response.status_code == 200
        assert response.json()["checked"] is False
        assert response.json()["state_user"] is None
        assert (await c.get("/public")).status_code == 200
        assert (await c.get("/health/")).status_code == 401
        assert (await c.get("/health/x")).status_code == 401
        assert (await c.get("/healthz")).status_code == 401


async def test_guard_is_in_the_scope_on_excluded_paths(guard):
    """On a path it skips, the middleware still exposes its guard in scope["clerk_guard.guard"]."""
    seen = []

    async def app(scope, receive, send):
        seen.append(scope.get(GUARD_KEY))
        await inner_app(scope, receive, send)

    async with client(ClerkGuardMiddleware(app, guard=guard, exclude=("/health",))) as c:
        response = await c.get("/health")
    assert response.json()["checked"] is False
    assert seen == [guard]


PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}


async def test_cors_preflight_passes_unverified_when_required(guard):
    """required=True: an OPTIONS preflight (Access-Control-Request-Method) passes with None."""
    async with client(ClerkGuardMiddleware(inner_app, guard=guard)) as c:
        preflight = await c.options("/me", headers=PREFLIGHT)
        plain_options = await c.options("/me")
        get_with_header = await c.get("/me", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.json()["checked"] is False
    assert preflight.json()["state_user"] is None
    assert plain_options.status_code == 401
    assert get_with_header.status_code == 401


async def test_cors_preflight_is_verified_in_attach_only_mode(guard):
    """required=False checks preflights like any request: a bad token is still a 401."""
    async with client(ClerkGuardMiddleware(inner_app, guard=guard, required=False)) as c:
        anonymous = await c.options("/me", headers=PREFLIGHT)
        forged = await c.options("/me", headers={**PREFLIGHT, **bearer("a.b.c")})
    assert anonymous.json()["checked"] is True
    assert forged.status_code == 401


def test_is_preflight():
    """is_preflight() needs both OPTIONS and Access-Control-Request-Method."""
    header = [(b"Access-Control-Request-Method", b"GET")]
    assert is_preflight({"type": "http", "method": "OPTIONS", "headers": header})
    assert not is_preflight({"type": "http", "method": "OPTIONS", "headers": []})
    assert not is_preflight({"type": "http", "method": "GET", "headers": header})
    assert not is_preflight({"type": "websocket", "headers": header})


async def test_excluded_prefixes_match_whole_segments(guard):
    """A prefix covers itself and what is below it, not a longer segment."""
    app = ClerkGuardMiddleware(inner_app, guard=guard, exclude_prefixes=("/static/",))
    async with client(app) as c:
        assert (await c.get("/static")).status_code == 200
        assert (await c.get("/static/app.js")).status_code == 200
        assert (await c.get("/static/deep/a.css")).status_code == 200
        assert (await c.get("/staticky")).status_code == 401
        assert (await c.get("/me")).status_code == 401


async def test_exclusion_uses_route_path_under_root_path(guard):
    """Behind a root_path, exclusions match the path the router sees."""
    app = ClerkGuardMiddleware(inner_app, guard=guard, exclude=("/public",))
    transport = httpx.ASGITransport(app, root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert (await c.get("/api/public")).status_code == 200
        assert (await c.get("/api/me")).status_code == 401


async def test_attach_only_mode(clerk_issuer, guard):
    """required=False: no token passes with None attached; a valid token is attached."""
    app = ClerkGuardMiddleware(inner_app, guard=guard, required=False)
    async with client(app) as c:
        anonymous = await c.get("/page")
        signed_in = await c.get("/page", headers=bearer(clerk_issuer.mint(user_id="user_q")))
    assert anonymous.status_code == 200
    assert anonymous.json() == {
        "checked": True,
        "scope_user": None,
        "state_user": None,
        "source": None,
        "has_guard": True,
    }
    assert signed_in.json()["scope_user"] == "user_q"


async def test_attach_only_still_rejects_invalid_tokens(clerk_issuer, guard):
    """required=False: a token that is sent and fails is still a 401, never anonymous."""
    app = ClerkGuardMiddleware(inner_app, guard=guard, required=False)
    async with client(app) as c:
        bad_header = await c.get("/page", headers=bearer("a.b.c"))
        expired_cookie = await c.get(
            "/page", headers={"Cookie": f"__session={clerk_issuer.mint(lifetime=-60)}"}
        )
    assert bad_header.status_code == 401
    assert expired_cookie.status_code == 401
    assert expired_cookie.json() == INVALID


async def test_pending_session_is_signed_out(clerk_issuer, guard):
    """A pending session is signed out: the refused-token 401 when required (a token was sent,
    so not the missing-token answer), None in attach-only mode."""
    token = clerk_issuer.mint(status="pending")
    async with client(ClerkGuardMiddleware(inner_app, guard=guard)) as c:
        required = await c.get("/me", headers=bearer(token))
        cookie = await c.get("/me", headers={"cookie": f"__session={token}"})
    async with client(ClerkGuardMiddleware(inner_app, guard=guard, required=False)) as c:
        optional = await c.get("/me", headers=bearer(token))
    for refused in (required, cookie):
        assert refused.status_code == 401
        assert refused.json() == INVALID
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert optional.status_code == 200
    assert optional.json()["scope_user"] is None


async def test_attach_only_pending_session_then_required_route(clerk_issuer, guard):
    """Under attach-only middleware, a route that then requires a session answers a pending
    session's token as refused (invalid_token), not as missing."""
    from clerk_guard.asgi import authenticate_scope

    async def requires_session(scope, receive, send):
        try:
            await authenticate_scope(scope, None, required=True, owner="test")
        except ClerkGuardError as exc:
            await send_error(send, error_response(exc))
            return
        await inner_app(scope, receive, send)

    app = ClerkGuardMiddleware(requires_session, guard=guard, required=False)
    async with client(app) as c:
        pending = await c.get("/me", headers=bearer(clerk_issuer.mint(status="pending")))
        missing = await c.get("/me")
    assert pending.status_code == 401
    assert pending.json() == INVALID
    assert pending.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert missing.json() == MISSING
    assert missing.headers["www-authenticate"] == "Bearer"


async def test_debug_adds_reason(clerk_issuer, transport):
    """debug=True puts the reason code in the body; the default never does."""
    app = ClerkGuardMiddleware(
        inner_app, config=clerk_issuer.config(debug=True), transport=transport
    )
    async with client(app) as c:
        response = await c.get("/me", headers=bearer(clerk_issuer.mint(lifetime=-60)))
    await app.guard.aclose()
    assert response.status_code == 401
    assert response.json()["reason"] == "token-expired"


async def test_websocket_accepted_with_valid_token(clerk_issuer, guard):
    """A WebSocket with a valid token is passed on and sees the result in its scope."""
    token = clerk_issuer.mint(user_id="user_ws")
    app = ClerkGuardMiddleware(inner_app, guard=guard)
    sent = await websocket_handshake(app, headers=[(b"authorization", f"Bearer {token}".encode())])
    assert sent[0] == {"type": "websocket.accept"}
    assert sent[1]["text"] == "user_ws"


@pytest.mark.parametrize("headers", [[], [(b"authorization", b"Bearer a.b.c")]])
async def test_websocket_refused_with_1008(guard, headers):
    """A WebSocket without a valid token is closed with 1008 before it is accepted."""
    app = ClerkGuardMiddleware(inner_app, guard=guard)
    sent = await websocket_handshake(app, headers=headers)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Invalid Token"}]


async def test_websocket_with_pending_session_refused_with_1008(clerk_issuer, guard, caplog):
    """A pending session's WebSocket is closed with 1008 too; the log names the reason."""
    token = clerk_issuer.mint(status="pending")
    app = ClerkGuardMiddleware(inner_app, guard=guard)
    with caplog.at_level("INFO", logger="clerk_guard"):
        sent = await websocket_handshake(
            app, headers=[(b"authorization", f"Bearer {token}".encode())]
        )
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Invalid Token"}]
    assert "reason=session-token-pending" in caplog.text


async def test_websocket_on_excluded_path_is_not_checked(guard):
    """Excluded paths apply to WebSockets too."""
    app = ClerkGuardMiddleware(inner_app, guard=guard, exclude_prefixes=("/ws",))
    sent = await websocket_handshake(app, path="/ws/open")
    assert sent[0] == {"type": "websocket.accept"}


async def test_lifespan_warm_up_fetches_before_startup_completes(clerk_issuer, transport):
    """warm_up=True fetches the keys during start-up, then requests need no fetch."""
    seen = {}

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":

            async def send_recording(message):
                if message["type"] == "lifespan.startup.complete":
                    seen["fetches_at_startup"] = transport.fetches
                await send(message)

            await inner_app(scope, receive, send_recording)
        else:
            await inner_app(scope, receive, send)

    middleware = ClerkGuardMiddleware(
        app, config=clerk_issuer.config(), transport=transport, warm_up=True
    )
    sent = await run_lifespan(middleware)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen["fetches_at_startup"] == 1
    async with client(middleware) as c:
        response = await c.get("/me", headers=bearer(clerk_issuer.mint()))
    await middleware.guard.aclose()
    assert response.status_code == 200
    assert transport.fetches == 1


async def test_lifespan_without_warm_up_fetches_nothing(clerk_issuer, transport):
    """Without warm_up the lifespan passes through and nothing is fetched."""
    middleware = ClerkGuardMiddleware(inner_app, config=clerk_issuer.config(), transport=transport)
    sent = await run_lifespan(middleware)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert transport.fetches == 0


async def test_warm_up_failure_does_not_fail_startup(clerk_issuer, transport):
    """A failed warm-up is logged; start-up completes and requests get a 503 meanwhile."""
    transport.status_code = 500
    middleware = ClerkGuardMiddleware(
        inner_app, config=clerk_issuer.config(), transport=transport, warm_up=True
    )
    sent = await run_lifespan(middleware)
    assert sent[0] == {"type": "lifespan.startup.complete"}
    assert transport.fetches == 1


async def test_shared_guard_is_not_closed_at_shutdown(guard):
    """A guard passed in is the caller's: lifespan shutdown leaves it usable."""
    closed = []
    original = guard.aclose

    async def aclose():
        closed.append(True)
        await original()

    guard.aclose = aclose
    await run_lifespan(ClerkGuardMiddleware(inner_app, guard=guard))
    assert closed == []


async def test_other_scope_types_pass_through(guard):
    """Scope types other than http, websocket and lifespan are not touched."""
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    await ClerkGuardMiddleware(app, guard=guard)({"type": "custom"}, None, None)
    assert seen == ["custom"]


async def test_concurrent_cold_requests_fetch_once(clerk_issuer, guard, transport):
    """200 concurrent requests on a cold cache: one key fetch, all 200."""
    app = ClerkGuardMiddleware(inner_app, guard=guard)
    tokens = [clerk_issuer.mint(user_id=f"user_{i}") for i in range(200)]
    statuses = []
    async with client(app) as c:

        async def one(token):
            statuses.append((await c.get("/me", headers=bearer(token))).status_code)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for token in tokens:
                    tg.start_soon(one, token)
    assert statuses == [200] * 200
    assert transport.fetches == 1


def test_configuration_errors(clerk_issuer):
    """Bad arguments fail at construction with ConfigurationError."""
    guard = AsyncGuard(clerk_issuer.config(jwt_key=clerk_issuer.public_pem))
    with pytest.raises(ConfigurationError, match="either guard"):
        ClerkGuardMiddleware(inner_app, guard=guard, config=clerk_issuer.config())
    with pytest.raises(ConfigurationError, match="start"):
        ClerkGuardMiddleware(inner_app, guard=guard, exclude=("health",))
    with pytest.raises(ConfigurationError):
        ClerkGuardMiddleware(inner_app, publishable_key="pk_nope")


def test_from_env_when_nothing_given(clerk_issuer, monkeypatch):
    """With no guard and no configuration, the middleware reads CLERK_* variables."""
    for name in ("CLERK_JWT_KEY", "CLERK_PEM_PUBLIC_KEY", "CLERK_JWKS_URL", "CLERK_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLERK_PUBLISHABLE_KEY", clerk_issuer.publishable_key)
    middleware = ClerkGuardMiddleware(inner_app, exclude="/health")
    assert middleware.guard.config.publishable_key == clerk_issuer.publishable_key
    assert middleware.excluded.exact == frozenset({"/health"})
    monkeypatch.delenv("CLERK_PUBLISHABLE_KEY")
    with pytest.raises(ConfigurationError, match="No key source"):
        ClerkGuardMiddleware(inner_app)


def test_get_auth_reads_only_results():
    """get_auth() returns the attached SessionAuth, or None."""
    auth = SessionAuth.from_claims({"sub": "user_x", "sid": "sess_x", "exp": 2e9, "iat": 1e9})
    assert get_auth({SCOPE_KEY: auth}) is auth
    assert get_auth({SCOPE_KEY: None}) is None
    assert get_auth({}) is None


def test_asgi_module_imports_no_framework():
    """`import clerk_guard.asgi` in a fresh interpreter loads no web framework."""
    code = (
        "import sys, clerk_guard.asgi;"
        "bad = [m for m in ('django', 'flask', 'werkzeug', 'starlette', 'fastapi')"
        " if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("module", ["asgi", "starlette", "fastapi"])
def test_adapter_all_names_exist(module):
    """Every name in an ASGI adapter's __all__ exists."""
    pytest.importorskip(module if module != "asgi" else "httpx")
    imported = __import__(f"clerk_guard.{module}", fromlist=["__all__"])
    for name in imported.__all__:
        assert hasattr(imported, name), name
