"""Django REST framework: ClerkAuthentication and the HasOrgRole / HasOrgPermission classes."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("django")
pytest.importorskip("rest_framework")

from django.test import override_settings  # noqa: E402

from clerk_guard.django.drf import HasOrgPermission, HasOrgRole  # noqa: E402


@pytest.fixture(params=["with-middleware", "without-middleware"])
def middleware(request):
    """The DRF class reuses the middleware's result, or verifies on its own."""
    if request.param == "with-middleware":
        yield request.param
    else:
        with override_settings(MIDDLEWARE=[]):
            yield request.param


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
