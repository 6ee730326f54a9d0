"""Django REST framework: ClerkAuthentication and the HasOrgRole / HasOrgPermission classes."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("django")
pytest.importorskip("rest_framework")

from django.middleware.csrf import _get_new_csrf_string  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402

from clerk_guard.django.drf import HasOrgPermission, HasOrgRole  # noqa: E402


def test_valid_token_authenticates(fetch, middleware, issuer):
    """A valid token: request.user is a ClerkUser and request.auth the SessionAuth."""
    response = fetch("/api/me", token=issuer.mint(user_id="user_api"))
    assert response.status_code == 200
    assert response.json() == {"user": "user_api", "user_class": "ClerkUser", "user_id": "user_api"}


def test_no_token_is_401_with_bearer_challenge(fetch, middleware):
    """No token: ClerkAuthentication returns None and DRF answers 401 (not 403) with Bearer."""
    response = fetch("/api/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_bad_token_is_401_invalid_token(fetch, middleware, issuer):
    """A bad token: AuthenticationFailed, 401, error="invalid_token" and contract §5's body."""
    response = fetch("/api/me", token=issuer.mint(lifetime=-100))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert json.loads(response.content) == {
        "error": "Invalid Token",
        "message": "The token provided is malformed or invalid.",
    }


def test_pending_session_is_anonymous_with_an_invalid_token_challenge(fetch, middleware, issuer):
    """A pending session is signed out (anonymous, as Clerk treats it): a view that needs a
    user answers 401, and the challenge says the token sent was refused."""
    response = fetch("/api/me", token=issuer.mint(status="pending"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_no_token_lets_the_next_class_try(fetch, middleware):
    """No Clerk token: the next authentication class authenticates the request."""
    response = fetch("/api/fallback", headers={"X-Api-Key": "letmein"})
    assert response.status_code == 200
    assert response.json() == {"user": "robot"}


def test_has_org_role(fetch, middleware, issuer):
    """HasOrgRole: 200 with the role, 403 Forbidden without it, 401 without a token."""
    admin = issuer.mint(org_id="org_1", org_role="org:admin")
    member = issuer.mint(org_id="org_1", org_role="org:member")
    assert fetch("/api/admin", token=admin).status_code == 200
    forbidden = fetch("/api/admin", token=member)
    assert forbidden.status_code == 403
    assert json.loads(forbidden.content)["error"] == "Forbidden"
    assert fetch("/api/admin").status_code == 401


def test_has_org_permission(fetch, middleware, issuer):
    """HasOrgPermission: 200 with the permission, 403 without it."""
    allowed = issuer.mint(
        org_id="org_1", org_role="org:member", org_permissions=["org:invoices:read"]
    )
    assert fetch("/api/invoices", token=allowed).status_code == 200
    assert fetch("/api/invoices", token=issuer.mint(org_id="org_1")).status_code == 403


def test_keys_unavailable_is_503(fetch, middleware, issuer):
    """No keys can be loaded: 503 with Retry-After."""
    transport = issuer.transport()
    transport.status_code = 500
    with override_settings(CLERK_GUARD_JWT_KEY=None, CLERK_GUARD_TRANSPORT=transport):
        response = fetch("/api/me", token=issuer.mint())
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert json.loads(response.content)["error"] == "Service Unavailable"


def test_permission_classes_are_named():
    """The factories make distinct, readable permission classes."""
    assert HasOrgRole("org:admin").__name__ == "HasOrgRole_org:admin"
    assert HasOrgPermission("org:a:b").conditions == {"permission": "org:a:b"}


@pytest.fixture(params=["sync", "async"])
def post(request):
    """POST to /api/me with CSRF checks on (as browsers get), through Client or AsyncClient."""

    def do(*, headers=None, cookies=None):
        if request.param == "sync":
            client = Client(enforce_csrf_checks=True)
            client.cookies.load(cookies or {})
            return client.post("/api/me", headers=headers or {})
        aclient = AsyncClient(enforce_csrf_checks=True)
        aclient.cookies.load(cookies or {})
        return asyncio.run(aclient.post("/api/me", headers=headers or {}))

    return do


def test_cookie_token_on_unsafe_method_needs_csrf(post, middleware, issuer):
    """A session-cookie token on POST without Django's CSRF token: 403, as SessionAuthentication."""
    response = post(cookies={"__session": issuer.mint()})
    assert response.status_code == 403
    assert "CSRF" in json.loads(response.content)["detail"]


def test_cookie_token_with_csrf_token_passes(post, middleware, issuer):
    """A session-cookie token on POST with a matching CSRF cookie and header passes."""
    secret = _get_new_csrf_string()
    response = post(
        cookies={"__session": issuer.mint(user_id="user_csrf"), "csrftoken": secret},
        headers={"X-CSRFToken": secret},
    )
    assert response.status_code == 200
    assert response.json()["user_id"] == "user_csrf"


def test_header_token_needs_no_csrf(post, middleware, issuer):
    """A token in the Authorization header is not sent by the browser on its own: no CSRF check."""
    response = post(headers={"Authorization": f"Bearer {issuer.mint(user_id='user_h')}"})
    assert response.status_code == 200
    assert response.json()["user_id"] == "user_h"


def test_cookie_token_on_safe_method_needs_no_csrf(issuer):
    """GET with a session-cookie token passes without a CSRF token (safe method)."""
    client = Client(enforce_csrf_checks=True)
    client.cookies.load({"__session": issuer.mint(user_id="user_g")})
    assert client.get("/api/me").json()["user_id"] == "user_g"


def test_drf_user_is_the_clerk_user_behind_a_session_login(fetch, issuer):
    """With a Django session user on request.user, DRF's request.user is still the Clerk user."""
    with override_settings(
        MIDDLEWARE=[
            "tests.django.views.SessionLoginMiddleware",
            "clerk_guard.django.middleware.ClerkGuardMiddleware",
        ]
    ):
        response = fetch("/api/me", token=issuer.mint(user_id="user_s"), headers={"X-Staff": "1"})
    assert response.json() == {"user": "user_s", "user_class": "ClerkUser", "user_id": "user_s"}


def test_permission_classes_answer_the_design_403_body(fetch, issuer):
    """HasOrgRole's 403 body is contract §5's, with the reason when debug is on."""
    with override_settings(CLERK_GUARD_DEBUG=True):
        response = fetch("/api/admin", token=issuer.mint(org_id="org_1", org_role="org:member"))
    assert response.status_code == 403
    assert json.loads(response.content) == {
        "error": "Forbidden",
        "message": "You do not have permission to access this resource.",
        "reason": "permission-denied",
    }


# Protect-all mode covers DRF views ---------------------------------------------------------------


class TestProtectAll:
    """CLERK_GUARD_PROTECT_ALL covers DRF views, though DRF marks them login_required = False."""

    MISSING = {
        "error": "Invalid Token",
        "message": "Authentication required: no session token was provided.",
    }

    @pytest.fixture(autouse=True)
    def _protect(self):
        with override_settings(CLERK_GUARD_PROTECT_ALL=True):
            yield

    @pytest.mark.parametrize("path", ["/api/plain", "/api/things", "/api/hello"])
    def test_no_token_is_401_json(self, fetch, path):
        """An APIView, a router's ViewSet and an @api_view without a token: the JSON 401."""
        response = fetch(path)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.content) == self.MISSING

    @pytest.mark.parametrize("path", ["/api/plain", "/api/things", "/api/hello"])
    def test_bad_token_is_401_invalid_token(self, fetch, issuer, path):
        """An APIView, a router's ViewSet and an @api_view with an expired token: 401."""
        response = fetch(path, token=issuer.mint(lifetime=-100))
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'

    @pytest.mark.parametrize("path", ["/api/plain", "/api/things", "/api/hello"])
    def test_valid_token_passes(self, fetch, issuer, path):
        """An APIView, a router's ViewSet and an @api_view with a valid token: 200."""
        response = fetch(path, token=issuer.mint(user_id="user_pa"))
        assert response.status_code == 200
        assert response.json() == {"user_id": "user_pa"}

    @pytest.mark.parametrize("path", ["/api/public-plain", "/api/public-things"])
    def test_login_not_required_on_dispatch_is_exempt(self, fetch, path):
        """An APIView or router ViewSet marked method_decorator(login_not_required, "dispatch")
        passes without a token."""
        response = fetch(path)
        assert response.status_code == 200
        assert response.json() == {"user_id": None}

    @pytest.mark.parametrize(
        "path", ["/api/optional-plain", "/api/optional-hello", "/api/optional-things"]
    )
    def test_clerk_optional_is_exempt(self, fetch, issuer, path):
        """clerk_optional on as_view(), on @api_view or on a ViewSet's dispatch: no token passes,
        a valid one is read."""
        assert fetch(path).json() == {"user_id": None}
        assert fetch(path, token=issuer.mint(user_id="user_o")).json() == {"user_id": "user_o"}

    @pytest.mark.parametrize(
        "path", ["/api/optional-plain", "/api/optional-hello", "/api/optional-things"]
    )
    def test_clerk_optional_refuses_a_bad_token(self, fetch, issuer, path):
        """clerk_optional DRF views still answer 401 to a token that fails."""
        assert fetch(path, token=issuer.mint(lifetime=-100)).status_code == 401

    def test_login_not_required_on_the_view_function_stays_protected(self, fetch):
        """login_not_required(APIView.as_view()) cannot be told from DRF's blanket flag: the view
        stays protected (401)."""
        assert fetch("/api/marked-plain").status_code == 401

    def test_exempt_path_covers_drf_views(self, fetch):
        """CLERK_GUARD_EXEMPT_PATHS exempts a DRF view."""
        with override_settings(CLERK_GUARD_EXEMPT_PATHS=[r"/api/plain"]):
            assert fetch("/api/plain").status_code == 200
        assert fetch("/api/plain").status_code == 401

    def test_without_protect_all_drf_views_are_open(self, fetch):
        """Without protect-all, DRF's own permissions decide: AllowAny answers 200."""
        with override_settings(CLERK_GUARD_PROTECT_ALL=False):
            assert fetch("/api/plain").json() == {"user_id": None}


def test_is_exempt_tells_drf_flag_from_login_not_required():
    """is_exempt(): DRF's view-function flag is not an exemption, a marked dispatch is; a
    non-DRF function's login_required = False still is."""
    from django.test import RequestFactory

    from clerk_guard.django.middleware import is_exempt
    from tests.django import drf_views, views

    request = RequestFactory().get("/x")
    assert not is_exempt(request, drf_views.Plain.as_view())
    assert not is_exempt(request, drf_views.Things.as_view({"get": "list"}))
    assert not is_exempt(request, drf_views.hello)
    assert not is_exempt(request, views.login_not_required(drf_views.Plain.as_view()))
    assert is_exempt(request, drf_views.PublicPlain.as_view())
    assert is_exempt(request, drf_views.PublicThings.as_view({"get": "list"}))
    assert is_exempt(request, views.open_view)
    assert not is_exempt(request, views.plain)
