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
    """A bad token: AuthenticationFailed, 401, error="invalid_token" and DESIGN §7's body."""
    response = fetch("/api/me", token=issuer.mint(lifetime=-100))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert json.loads(response.content) == {
        "error": "Invalid Token",
        "message": "The token provided is malformed or invalid.",
    }


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
    """HasOrgRole's 403 body is DESIGN §7's, with the reason when debug is on."""
    with override_settings(CLERK_GUARD_DEBUG=True):
        response = fetch("/api/admin", token=issuer.mint(org_id="org_1", org_role="org:member"))
    assert response.status_code == 403
    assert json.loads(response.content) == {
        "error": "Forbidden",
        "message": "You do not have permission to access this resource.",
        "reason": "permission-denied",
    }
