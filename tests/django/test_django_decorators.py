"""View decorators, sync and async views, with and without the middleware."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("django")

from django.test import override_settings  # noqa: E402

FORBIDDEN = {"error": "Forbidden", "message": "You do not have permission to access this resource."}
INVALID = {"error": "Invalid Token", "message": "The token provided is malformed or invalid."}


def member_token(issuer, **claims):
    return issuer.mint(
        org_id="org_1", org_role="org:member", org_permissions=["org:invoices:read"], **claims
    )


@pytest.mark.parametrize("path", ["/required", "/arequired"])
def test_required_without_token_is_401(fetch, middleware, path):
    """clerk_required: no token gets 401 JSON with WWW-Authenticate: Bearer (no redirect)."""
    response = fetch(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert json.loads(response.content)["error"] == "Invalid Token"


@pytest.mark.parametrize("path", ["/required", "/arequired"])
def test_required_with_bad_token_is_401_invalid(fetch, middleware, issuer, path):
    """clerk_required: a bad token gets 401 with error="invalid_token"."""
    response = fetch(path, token=issuer.mint(lifetime=-100))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize("path", ["/required", "/arequired"])
def test_required_with_pending_session_is_401_invalid(fetch, middleware, issuer, path):
    """clerk_required: a pending session's token is a refused token (invalid_token), not a
    missing one."""
    response = fetch(path, token=issuer.mint(status="pending"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert json.loads(response.content) == INVALID


@pytest.mark.parametrize("path", ["/required", "/arequired"])
def test_required_with_token_passes(fetch, middleware, issuer, path):
    """clerk_required: a valid token reaches the view with request.clerk and request.user."""
    body = fetch(path, token=issuer.mint(user_id="user_d")).json()
    assert (body["user_id"], body["user_class"]) == ("user_d", "ClerkUser")


@pytest.mark.parametrize("path", ["/admin", "/aadmin", "/role"])
def test_role_missing_is_403(fetch, middleware, issuer, path):
    """A signed-in user without the role gets 403 Forbidden JSON."""
    response = fetch(path, token=member_token(issuer))
    assert response.status_code == 403
    assert json.loads(response.content) == FORBIDDEN
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("path", ["/admin", "/aadmin", "/role"])
def test_role_present_passes(fetch, middleware, issuer, path):
    """The org:admin role (written with or without org:) passes."""
    token = issuer.mint(org_id="org_1", org_role="org:admin")
    assert fetch(path, token=token).status_code == 200


@pytest.mark.parametrize("path", ["/admin", "/permission"])
def test_role_route_without_token_is_401(fetch, middleware, path):
    """Role and permission routes still answer 401 (not 403) without a token."""
    assert fetch(path).status_code == 401


@pytest.mark.parametrize("path", ["/permission", "/apermission"])
@pytest.mark.parametrize("version", [1, 2])
def test_permission_present_passes(fetch, middleware, issuer, path, version):
    """clerk_permission_required passes with the permission, in v1 and v2 tokens."""
    assert fetch(path, token=member_token(issuer, version=version)).status_code == 200


@pytest.mark.parametrize("path", ["/permission", "/apermission"])
def test_permission_missing_is_403(fetch, middleware, issuer, path):
    """clerk_permission_required answers 403 without the permission (or without an org)."""
    assert fetch(path, token=issuer.mint(org_id="org_1", org_role="org:member")).status_code == 403
    assert fetch(path, token=issuer.mint()).status_code == 403


@pytest.mark.parametrize("path", ["/optional", "/aoptional"])
def test_optional_accepts_anonymous_and_pending(fetch, middleware, issuer, path):
    """clerk_optional: no token and a pending session both reach the view signed out."""
    for response in (fetch(path), fetch(path, token=issuer.mint(status="pending"))):
        assert response.status_code == 200
        assert response.json()["user_id"] is None
        assert response.json()["is_authenticated"] is False


@pytest.mark.parametrize("path", ["/optional", "/aoptional"])
def test_optional_answers_401_to_a_bad_token(fetch, middleware, issuer, path):
    """clerk_optional: a token that is sent and fails is a 401, never signed out."""
    for response in (
        fetch(path, token="bad"),
        fetch(path, token=issuer.mint(lifetime=-100)),
        fetch(path, cookies={"__session": "garbage"}),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert json.loads(response.content) == INVALID


def test_optional_under_protect_all_still_answers_401_to_a_bad_token(fetch, issuer):
    """clerk_optional exempts a view from protect-all, but not from refusing a bad token."""
    with override_settings(CLERK_GUARD_PROTECT_ALL=True):
        assert fetch("/optional").status_code == 200
        assert fetch("/optional", token="bad").status_code == 401


def test_optional_keys_unavailable_is_503(fetch, middleware, issuer):
    """clerk_optional answers 503 when a token is sent and no keys can be loaded."""
    transport = issuer.transport()
    transport.status_code = 503
    with override_settings(CLERK_GUARD_JWT_KEY=None, CLERK_GUARD_TRANSPORT=transport):
        assert fetch("/optional", token=issuer.mint()).status_code == 503
        assert fetch("/optional").status_code == 200


@pytest.mark.parametrize("path", ["/optional", "/aoptional"])
def test_optional_with_token_is_signed_in(fetch, middleware, issuer, path):
    """clerk_optional: a valid token gives request.clerk and a ClerkUser."""
    body = fetch(path, token=issuer.mint(user_id="user_o")).json()
    assert (body["user_id"], body["is_authenticated"]) == ("user_o", True)


def test_keys_unavailable_is_503(fetch, middleware, issuer):
    """A decorated view answers 503 with Retry-After when no keys can be loaded."""
    transport = issuer.transport()
    transport.status_code = 503
    with override_settings(CLERK_GUARD_JWT_KEY=None, CLERK_GUARD_TRANSPORT=transport):
        response = fetch("/required", token=issuer.mint())
    assert response.status_code == 503
    assert "Retry-After" in response.headers


def test_decorator_keeps_view_metadata():
    """The decorators keep the view's name and async-ness."""
    from asgiref.sync import iscoroutinefunction

    from tests.django import views

    assert views.arequired.__name__ == "arequired"
    assert iscoroutinefunction(views.arequired) and iscoroutinefunction(views.aoptional)
    assert not iscoroutinefunction(views.required)
    assert views.optional.clerk_guard_exempt is True
