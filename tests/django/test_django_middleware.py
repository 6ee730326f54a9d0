"""ClerkGuardMiddleware under Django's Client (sync) and AsyncClient (async)."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("django")

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402

from clerk_guard.django.conf import state  # noqa: E402
from clerk_guard.django.middleware import ClerkGuardMiddleware  # noqa: E402
from clerk_guard.testing import LocalIssuer  # noqa: E402
from tests.django import views  # noqa: E402

MISSING = {
    "error": "Invalid Token",
    "message": "Authentication required: no session token was provided.",
}
INVALID = {"error": "Invalid Token", "message": "The token provided is malformed or invalid."}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def assert_missing(response):
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.content) == MISSING


def assert_invalid(response):
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert json.loads(response.content) == INVALID


@pytest.mark.parametrize("path", ["/plain", "/aplain"])
def test_anonymous_request_passes_with_anonymous_user(fetch, path):
    """Without protect-all, a request without a token reaches the view as AnonymousUser."""
    response = fetch(path)
    assert response.status_code == 200
    assert response.json() == {
        "user_id": None,
        "source": None,
        "org_role": None,
        "user": "AnonymousUser",
        "user_class": "AnonymousUser",
        "is_authenticated": False,
        "pk": None,
    }


@pytest.mark.parametrize("path", ["/plain", "/aplain"])
def test_bearer_token_sets_clerk_and_stateless_user(fetch, issuer, path):
    """A valid Bearer token gives request.clerk and a ClerkUser whose pk is the Clerk user id."""
    token = issuer.mint(user_id="user_abc", org_id="org_1", org_role="org:member")
    body = fetch(path, token=token).json()
    assert body == {
        "user_id": "user_abc",
        "source": "header",
        "org_role": "org:member",
        "user": "user_abc",
        "user_class": "ClerkUser",
        "is_authenticated": True,
        "pk": "user_abc",
    }


@pytest.mark.parametrize("suffixed", [True, False])
def test_session_cookie_is_read(fetch, issuer, suffixed):
    """The __session cookie, suffixed for the publishable key (with its __client_uat) or plain,
    authenticates."""
    token = issuer.mint(user_id="user_cookie")
    suffix = state.config.cookie_suffix
    if suffixed:
        cookies = {f"__session_{suffix}": token, f"__client_uat_{suffix}": "1700000000"}
    else:
        cookies = {"__session": token}
    body = fetch("/aplain", cookies=cookies).json()
    assert (body["user_id"], body["source"]) == ("user_cookie", "cookie")


@pytest.mark.parametrize("path", ["/plain", "/aplain"])
def test_bad_token_without_protection_is_anonymous(fetch, path):
    """Without protect-all, a bad token is treated as signed out, never a 500."""
    response = fetch(path, token="not.a.token")
    assert response.status_code == 200
    assert response.json()["is_authenticated"] is False


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer a b c",
        "Bearer " + "a" * 9000,
        "Bearer \x7f\x80",
        "Bearer eyJ.eyJ.sig",
        "Basic dXNlcjpwYXNz",
        "Bearer a, Bearer b",
    ],
)
def test_malformed_authorization_never_500(fetch, authorization):
    """Malformed Authorization values under protect-all answer 401, never 500."""
    with override_settings(CLERK_GUARD_PROTECT_ALL=True):
        response = fetch("/plain", headers={"Authorization": authorization})
    assert response.status_code == 401


class TestProtectAll:
    """CLERK_GUARD_PROTECT_ALL: every view needs a session unless exempt."""

    @pytest.fixture(autouse=True)
    def _protect(self):
        with override_settings(
            CLERK_GUARD_PROTECT_ALL=True, CLERK_GUARD_EXEMPT_PATHS=[r"^/health$"]
        ):
            yield

    @pytest.mark.parametrize("path", ["/plain", "/aplain"])
    def test_no_token_gets_401_json_not_redirect(self, fetch, path):
        """No token: 401 with WWW-Authenticate: Bearer and contract §5's body, not a redirect."""
        assert_missing(fetch(path))

    @pytest.mark.parametrize("path", ["/plain", "/aplain"])
    def test_bad_token_gets_401_invalid_token(self, fetch, issuer, path):
        """A token that fails a check: 401 with error="invalid_token"."""
        expired = issuer.mint(lifetime=-120)
        assert_invalid(fetch(path, token=expired))

    def test_bad_cookie_gets_401_invalid_token(self, fetch):
        """A bad session cookie is an invalid token too."""
        assert_invalid(fetch("/plain", cookies={"__session": "garbage"}))

    @pytest.mark.parametrize("path", ["/plain", "/aplain"])
    def test_valid_token_passes(self, fetch, issuer, path):
        """A valid token reaches the view."""
        assert fetch(path, token=issuer.mint()).status_code == 200

    @pytest.mark.parametrize("path", ["/open", "/aopen"])
    def test_login_not_required_view_is_exempt(self, fetch, path):
        """Views marked login_not_required need no token."""
        response = fetch(path)
        assert response.status_code == 200
        assert response.json()["is_authenticated"] is False

    @pytest.mark.parametrize("path", ["/optional", "/aoptional"])
    def test_clerk_optional_view_is_exempt(self, fetch, path):
        """Views marked clerk_optional need no token."""
        assert fetch(path).status_code == 200

    def test_exempt_path_passes(self, fetch):
        """Paths matching CLERK_GUARD_EXEMPT_PATHS need no token."""
        assert fetch("/health").status_code == 200

    def test_unknown_url_is_still_404(self, fetch):
        """Protection is applied per view, so a missing page stays a 404."""
        assert fetch("/nowhere").status_code == 404


@pytest.mark.parametrize("path", ["/plain", "/aplain"])
def test_keys_unavailable_gets_503(fetch, issuer, path):
    """JWKS mode with a failing key endpoint: 503 with Retry-After on a protected view."""
    transport = issuer.transport()
    transport.status_code = 500
    with override_settings(
        CLERK_GUARD_JWT_KEY=None, CLERK_GUARD_TRANSPORT=transport, CLERK_GUARD_PROTECT_ALL=True
    ):
        response = fetch(path, token=issuer.mint())
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert json.loads(response.content)["error"] == "Service Unavailable"
    assert transport.fetches == 1


def test_jwks_mode_fetches_keys_once(fetch, issuer):
    """In JWKS mode the keys are fetched once through the configured transport and cached."""
    transport = issuer.transport()
    with override_settings(CLERK_GUARD_JWT_KEY=None, CLERK_GUARD_TRANSPORT=transport):
        first = fetch("/aplain", token=issuer.mint(user_id="user_1"))
        second = fetch("/plain", token=issuer.mint(user_id="user_2"))
    assert first.json()["user_id"] == "user_1"
    assert second.json()["user_id"] == "user_2"
    assert transport.fetches == 1


def test_async_client_never_builds_the_sync_guard(issuer):
    """Under ASGI the middleware verifies with the AsyncGuard only: no thread hop to Guard."""
    response = asyncio.run(
        AsyncClient().get("/aplain", headers={"Authorization": f"Bearer {issuer.mint()}"})
    )
    assert response.status_code == 200
    assert state._async_guard is not None
    assert state._guard is None


def test_middleware_is_sync_and_async_capable():
    """The middleware declares both capabilities and switches to a coroutine for async chains."""
    assert ClerkGuardMiddleware.sync_capable and ClerkGuardMiddleware.async_capable

    async def get_response(request):
        return None

    middleware = ClerkGuardMiddleware(get_response)
    assert asyncio.iscoroutinefunction(middleware.process_view)
    from asgiref.sync import iscoroutinefunction

    assert iscoroutinefunction(middleware)
    assert not iscoroutinefunction(ClerkGuardMiddleware(lambda request: None))


def test_override_settings_rebuilds_the_guard(fetch, issuer):
    """Changing a CLERK_GUARD_ setting rebuilds the guard: tokens of the old issuer fail."""
    other = LocalIssuer(frontend_api="clerk.other.test")
    token = issuer.mint()
    assert fetch("/required", token=token).status_code == 200
    with override_settings(
        CLERK_GUARD_PUBLISHABLE_KEY=other.publishable_key, CLERK_GUARD_JWT_KEY=other.public_pem
    ):
        assert_invalid(fetch("/required", token=token))
        assert fetch("/required", token=other.mint()).status_code == 200
    assert fetch("/required", token=token).status_code == 200


def test_bad_settings_fail_at_startup():
    """An invalid configuration raises ImproperlyConfigured when the middleware loads."""
    with (
        override_settings(CLERK_GUARD_PUBLISHABLE_KEY="pk_test_nope", CLERK_GUARD_JWT_KEY=None),
        pytest.raises(ImproperlyConfigured, match="publishable_key"),
    ):
        Client().get("/plain")


def test_pending_session_is_a_refused_token(fetch, issuer):
    """A pending session's token under protection: the refused-token 401 (invalid_token), not
    the missing-token one, since a token was sent."""
    with override_settings(CLERK_GUARD_PROTECT_ALL=True):
        assert_invalid(fetch("/plain", token=issuer.mint(status="pending")))
        pending = issuer.mint(status="pending")
        assert_invalid(fetch("/plain", cookies={"__session": pending}))


def test_debug_setting_adds_reason(fetch, issuer):
    """CLERK_GUARD_DEBUG puts the reason code in the 401 body."""
    with override_settings(CLERK_GUARD_PROTECT_ALL=True, CLERK_GUARD_DEBUG=True):
        response = fetch("/plain", token=issuer.mint(lifetime=-120))
    assert json.loads(response.content)["reason"] == "token-expired"


class TestUserHook:
    """CLERK_GUARD_USER maps the session to the project's own user object."""

    @pytest.fixture(autouse=True)
    def _hook(self):
        views.MappedUser.calls = 0
        with override_settings(CLERK_GUARD_USER="tests.django.views.map_user"):
            yield

    def test_mapped_user_is_on_request(self, fetch, issuer):
        """request.user is the hook's object."""
        body = fetch("/plain", token=issuer.mint(user_id="user_9")).json()
        assert (body["user"], body["user_class"], body["pk"]) == (
            "local-user_9",
            "MappedUser",
            "local-user_9",
        )

    def test_hook_is_lazy(self, fetch, issuer):
        """The hook runs only when a view reads request.user (no query otherwise)."""
        assert fetch("/required", token=issuer.mint()).status_code == 200
        calls = views.MappedUser.calls
        response = fetch("/open", token=issuer.mint())  # reads request.user
        assert response.status_code == 200
        assert views.MappedUser.calls == calls + 1

    def test_hook_returning_none_gives_anonymous(self, fetch, issuer):
        """A hook answering None (no local user) leaves request.user anonymous."""
        body = fetch("/plain", token=issuer.mint(user_id="user_unknown")).json()
        assert body["is_authenticated"] is False
        assert body["user_id"] == "user_unknown"

    def test_auser_resolves_the_mapped_user(self, fetch, issuer):
        """request.auser() returns the mapped user in async views."""
        body = fetch("/auser", token=issuer.mint(user_id="user_7")).json()
        assert body == {"user": "local-user_7", "is_authenticated": True}


def test_auser_without_hook(fetch, issuer):
    """request.auser() returns the ClerkUser, or AnonymousUser without a token."""
    assert fetch("/auser", token=issuer.mint(user_id="user_5")).json() == {
        "user": "user_5",
        "is_authenticated": True,
    }
    assert fetch("/auser").json()["is_authenticated"] is False


def test_clerk_user_permissions(issuer):
    """ClerkUser maps has_perm to organization permissions and is never staff."""
    from clerk_guard import Guard
    from clerk_guard.django.users import ClerkUser

    guard = Guard(issuer.config(jwt_key=issuer.public_pem))
    auth = guard.verify(
        issuer.mint(org_id="org_1", org_role="org:member", org_permissions=["org:invoices:read"])
    )
    user = ClerkUser(auth)
    assert user.has_perm("org:invoices:read") and user.has_perm("invoices:read")
    assert not user.has_perm("org:invoices:write")
    assert user.has_perms(["org:invoices:read"]) and user.has_module_perms("invoices")
    assert not user.has_perm("org:invoices:read", obj=object())
    assert user.get_all_permissions() == {"org:invoices:read"}
    assert not user.is_staff and not user.is_superuser and user.is_active
    assert user == ClerkUser(auth) and hash(user) == hash(ClerkUser(auth))
    with pytest.raises(NotImplementedError):
        user.save()


# Duplicate Authorization lines -----------------------------------------------------------------


def asgi_get(path, headers):
    """GET ``path`` through Django's ASGIHandler with these raw header lines; the response's
    status, headers and body."""
    from django.core.handlers.asgi import ASGIHandler

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent = []

    async def run():
        requested = False

        async def receive():
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # no disconnect: the handler cancels this wait

        async def send(message):
            sent.append(message)

        await asyncio.wait_for(ASGIHandler()(scope, receive, send), timeout=10)

    asyncio.run(run())
    start = sent[0]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    return start["status"], headers, json.loads(body)


def test_two_authorization_lines_under_asgi_are_refused(issuer):
    """Under ASGI the raw lines reach the guard: two Authorization lines are refused as
    duplicated, even when both hold a valid token."""
    token = f"Bearer {issuer.mint()}".encode()
    with override_settings(CLERK_GUARD_PROTECT_ALL=True, CLERK_GUARD_DEBUG=True):
        status, headers, body = asgi_get(
            "/plain", [(b"authorization", token), (b"authorization", token)]
        )
        single = asgi_get("/plain", [(b"authorization", token)])
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert body["reason"] == "authorization-header-duplicated"
    assert single[0] == 200


def test_joined_authorization_lines_under_wsgi_are_refused(issuer):
    """Under WSGI the server's joined value is split again: refused as duplicated."""
    token = issuer.mint()
    with override_settings(CLERK_GUARD_PROTECT_ALL=True, CLERK_GUARD_DEBUG=True):
        response = Client().get(
            "/plain", headers={"Authorization": f"Bearer {token}, Bearer {token}"}
        )
    assert response.status_code == 401
    assert json.loads(response.content)["reason"] == "authorization-header-duplicated"


def test_header_lines_reads_the_asgi_scope_and_the_wsgi_meta():
    """header_lines(): the scope's raw lines for an ASGIRequest, split META for a WSGIRequest."""
    from django.test import AsyncRequestFactory, RequestFactory

    from clerk_guard.django._request import header_lines

    asgi_request = AsyncRequestFactory().get("/", headers={"Authorization": "Bearer a"})
    asgi_request.scope["headers"].append((b"authorization", b"Bearer b"))
    assert header_lines(asgi_request)[0] == ["Bearer a", "Bearer b"]
    wsgi_request = RequestFactory().get(
        "/", headers={"Authorization": "Bearer a,Bearer b", "Cookie": "x=1"}
    )
    assert header_lines(wsgi_request) == (["Bearer a", "Bearer b"], ["x=1"])


# Warm-up -----------------------------------------------------------------------------------------


def test_warm_up_fetches_keys_once_when_the_middleware_loads(issuer):
    """CLERK_GUARD_WARM_UP fetches the key set in the middleware's __init__, once; requests,
    sync and async, then need no fetch."""
    transport = issuer.transport()
    with override_settings(
        CLERK_GUARD_JWT_KEY=None, CLERK_GUARD_TRANSPORT=transport, CLERK_GUARD_WARM_UP=True
    ):
        ClerkGuardMiddleware(lambda request: None)
        assert transport.fetches == 1
        ClerkGuardMiddleware(lambda request: None)

        async def get_response(request):
            return None

        ClerkGuardMiddleware(get_response)
        assert transport.fetches == 1
        token = issuer.mint()
        assert Client().get("/plain", headers=bearer(token)).status_code == 200
        response = asyncio.run(AsyncClient().get("/aplain", headers=bearer(token)))
        assert response.json()["user_id"] is not None
    assert transport.fetches == 1


def test_no_warm_up_by_default(issuer):
    """Without CLERK_GUARD_WARM_UP the middleware fetches nothing when it loads."""
    transport = issuer.transport()
    with override_settings(CLERK_GUARD_JWT_KEY=None, CLERK_GUARD_TRANSPORT=transport):
        ClerkGuardMiddleware(lambda request: None)
    assert transport.fetches == 0


def test_failed_warm_up_is_logged_and_not_fatal(issuer, caplog):
    """A warm-up that cannot load the keys logs a warning; the middleware loads anyway."""
    transport = issuer.transport()
    transport.status_code = 500
    with override_settings(
        CLERK_GUARD_JWT_KEY=None, CLERK_GUARD_TRANSPORT=transport, CLERK_GUARD_WARM_UP=True
    ):
        ClerkGuardMiddleware(lambda request: None)
    assert transport.fetches == 1
    assert "warm-up failed" in caplog.text


def test_bad_warm_up_setting_fails_at_startup():
    """A CLERK_GUARD_WARM_UP that is not a boolean raises ImproperlyConfigured."""
    with (
        override_settings(CLERK_GUARD_WARM_UP="yes"),
        pytest.raises(ImproperlyConfigured, match="CLERK_GUARD_WARM_UP"),
    ):
        ClerkGuardMiddleware(lambda request: None)


# A user signed in with a Django session ----------------------------------------------------------


class TestSessionUserIsKept:
    """A request.user already signed in (Django session) is not replaced by the Clerk user."""

    @pytest.fixture(autouse=True)
    def _session_login(self):
        with override_settings(
            MIDDLEWARE=[
                "tests.django.views.SessionLoginMiddleware",
                "clerk_guard.django.middleware.ClerkGuardMiddleware",
            ]
        ):
            yield

    def test_session_user_is_kept(self, fetch, issuer):
        """Signed in with a session and a Clerk token: request.user stays the session user,
        request.clerk is the Clerk session."""
        token = issuer.mint(user_id="user_both")
        body = fetch("/plain", token=token, headers={"X-Staff": "1"}).json()
        assert (body["user"], body["user_class"], body["user_id"]) == (
            "staff",
            "StaffUser",
            "user_both",
        )

    def test_anonymous_session_user_is_replaced(self, fetch, issuer):
        """Not signed in with a session: the Clerk user fills request.user."""
        body = fetch("/plain", token=issuer.mint(user_id="user_c")).json()
        assert (body["user"], body["user_class"]) == ("user_c", "ClerkUser")

    def test_session_user_without_clerk_token(self, fetch):
        """No Clerk token: the session user is left alone."""
        body = fetch("/plain", headers={"X-Staff": "1"}).json()
        assert (body["user"], body["user_id"]) == ("staff", None)

    def test_auser_prefers_the_session_user(self, fetch, issuer):
        """request.auser() gives the session user when signed in, else the Clerk user."""
        token = issuer.mint(user_id="user_a")
        assert fetch("/auser", token=token, headers={"X-Staff": "1"}).json()["user"] == "staff"
        assert fetch("/auser", token=token).json()["user"] == "user_a"


def test_earlier_user_is_checked_lazily(issuer):
    """Attaching a Clerk session does not look up an earlier lazy user (no session query) until
    request.user is used."""
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory
    from django.utils.functional import SimpleLazyObject

    from clerk_guard import Guard
    from clerk_guard.django._request import attach

    looked_up = []
    request = RequestFactory().get("/")
    request.user = SimpleLazyObject(lambda: looked_up.append(1) or AnonymousUser())
    auth = Guard(issuer.config(jwt_key=issuer.public_pem)).verify(issuer.mint(user_id="user_l"))
    attach(request, auth, None)
    assert looked_up == []
    assert str(request.user) == "user_l"
    assert looked_up == [1]


# Exempt paths, preflights, anonymous users -------------------------------------------------------


def test_exempt_paths_match_whole_paths():
    """CLERK_GUARD_EXEMPT_PATHS match the whole path (re.fullmatch): "/health\\n" and
    "/health/x" are not exempt; r"/static/.*" covers what is below /static/."""
    from django.test import RequestFactory

    from clerk_guard.django.middleware import is_exempt

    def exempt(path):
        request = RequestFactory().get("/")
        request.path_info = path
        return is_exempt(request, views.plain)

    with override_settings(CLERK_GUARD_EXEMPT_PATHS=[r"^/health$", r"/static/.*"]):
        assert exempt("/health")
        assert not exempt("/health\n")
        assert not exempt("/health/x")
        assert exempt("/static/app.js")
        assert not exempt("/staticky")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_cors_preflight_passes_protect_all_unverified(issuer, kind):
    """Protect-all mode lets a CORS preflight (OPTIONS with Access-Control-Request-Method)
    through unverified, with request.clerk None; a plain OPTIONS still needs a session."""
    preflight = {"Access-Control-Request-Method": "POST", "Origin": "https://app.example"}

    def options(headers):
        if kind == "sync":
            return Client().options("/plain", headers=headers)
        return asyncio.run(AsyncClient().options("/plain", headers=headers))

    with override_settings(CLERK_GUARD_PROTECT_ALL=True):
        passed = options(preflight)
        with_token = options({**preflight, **bearer(issuer.mint())})
        plain = options({})
    assert passed.status_code == 200
    assert passed.json()["user_id"] is None
    assert with_token.json()["user_id"] is None
    assert plain.status_code == 401


def test_anonymous_user_class_is_resolved_once(fetch, monkeypatch):
    """Whether django.contrib.auth is installed is asked once, not on every request."""
    from clerk_guard.django import _request

    calls = []
    is_installed = _request.apps.is_installed

    def counting(name):
        calls.append(name)
        return is_installed(name)

    _request._anonymous_class.cache_clear()
    monkeypatch.setattr(_request.apps, "is_installed", counting)
    for _ in range(3):
        assert fetch("/plain").json()["user_class"] == "AnonymousUser"
    _request._anonymous_class.cache_clear()
    assert calls == ["django.contrib.auth"]
