"""SessionAuth: v1 and v2 organization claims, immutability, and has() (contract §7)."""

from __future__ import annotations

import pytest

from clerk_guard import SessionAuth, TokenInvalidError

BASE = {"sub": "user_1", "sid": "sess_1", "exp": 200, "iat": 100, "iss": "https://i.test"}


def auth(**claims) -> SessionAuth:
    return SessionAuth.from_claims({**BASE, **claims}, token_source="header")


def test_v1_org_claims():
    """v1 org_* claims map to org_id, org_role, org_slug, org_permissions."""
    a = auth(
        org_id="org_1", org_role="org:admin", org_slug="acme", org_permissions=["org:invoices:read"]
    )
    assert (a.org_id, a.org_role, a.org_slug, a.org_permissions) == (
        "org_1",
        "org:admin",
        "acme",
        ("org:invoices:read",),
    )


def test_v1_role_gets_org_prefix():
    """A role without the org: prefix is prefixed."""
    assert auth(org_id="o", org_role="admin").org_role == "org:admin"


def test_v2_compact_claims():
    """v2 o/fea/fpm decode to org:<feature>:<permission> names, bit 0 first (Clerk's example)."""
    a = auth(
        v=2,
        o={"id": "org_1", "rol": "admin", "slg": "acme", "per": "read,manage", "fpm": "3,1"},
        fea="o:billing,o:reports,u:export",
    )
    assert a.org_role == "org:admin"
    assert a.org_permissions == ("org:billing:read", "org:billing:manage", "org:reports:read")
    assert a.features == ("o:billing", "o:reports", "u:export")


def test_v2_round_trip_with_local_issuer(clerk_issuer):
    """Tokens minted v2 by the test kit decode to the permissions they were minted with."""
    from clerk_guard import Guard

    perms = ["org:billing:read", "org:reports:manage", "org:billing:manage"]
    token = clerk_issuer.mint(
        version=2,
        org_id="org_9",
        org_role="org:member",
        org_permissions=perms,
        features=["u:beta"],
        plans=["o:pro"],
    )
    with Guard(clerk_issuer.config(), transport=clerk_issuer.transport()) as guard:
        a = guard.verify(token)
    assert sorted(a.org_permissions) == sorted(perms)
    assert a.org_role == "org:member" and a.org_id == "org_9"
    assert a.has(feature="u:beta") and a.has(plan="o:pro") and not a.has(plan="u:pro")


@pytest.mark.parametrize(
    "claims",
    [
        {"v": 2, "o": "org_1"},
        {"v": 2, "o": {"id": "o", "per": "read", "fpm": "1,1"}, "fea": "o:a"},
        {"v": 2, "o": {"id": "o", "per": "read", "fpm": "2"}, "fea": "o:a"},
        {"v": 2, "o": {"id": "o", "per": "read", "fpm": "-1"}, "fea": "o:a"},
        {"v": 2, "o": {"id": "o", "per": "read", "fpm": 1}, "fea": "o:a"},
        {"v": 2, "o": {"id": 5}},
        {"fea": "billing"},
        {"fea": "x:billing"},
        {"pla": 3},
        {"org_permissions": [1]},
        {"act": "admin"},
        {"fva": [1]},
        {"fva": [1, "2"]},
        {"sts": 1},
    ],
)
def test_malformed_claims_fail_closed(claims):
    """Claims of shapes Clerk never issues reject the token rather than grant anything."""
    with pytest.raises(TokenInvalidError) as info:
        auth(**claims)
    assert info.value.code == "token-invalid-claims"


def test_result_is_immutable():
    """The result and its claims mapping cannot be modified."""
    a = auth(act={"sub": "user_admin"})
    with pytest.raises(AttributeError):
        a.user_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.claims["sub"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        a.actor["sub"] = "x"  # type: ignore[index]


def test_claims_are_a_snapshot():
    """from_claims copies the mapping: changing it afterwards changes nothing in the result."""
    source = {**BASE, "org_id": "org_1"}
    a = SessionAuth.from_claims(source)
    source["sub"] = "user_other"
    source["org_id"] = "org_2"
    assert a.claims["sub"] == a.user_id != "user_other"
    assert a.claims["org_id"] == a.org_id == "org_1"


def test_exposes_design_fields():
    """All fields of contract §7 are exposed."""
    a = auth(sts="active", act={"sub": "user_admin"}, fva=[5, -1], azp="https://a.test")
    assert a.session_status == "active"
    assert a.actor == {"sub": "user_admin"}
    assert a.factor_verification_age == (5, -1)
    assert (a.authorized_party, a.issuer, a.expires_at, a.issued_at) == (
        "https://a.test",
        "https://i.test",
        200,
        100,
    )
    assert a.token_source == "header"
    assert a.claims["sid"] == "sess_1"


ORG = {"org_id": "org_1", "org_role": "org:admin", "org_permissions": ["org:invoices:read"]}


@pytest.mark.parametrize(
    ("claims", "params", "expected"),
    [
        (ORG, {"role": "org:admin"}, True),
        (ORG, {"role": "admin"}, True),
        (ORG, {"role": "org:member"}, False),
        (ORG, {"permission": "org:invoices:read"}, True),
        (ORG, {"permission": "invoices:read"}, True),
        (ORG, {"permission": "org:invoices:write"}, False),
        (ORG, {"role": "admin", "permission": "org:invoices:write"}, False),
        ({"org_role": "org:admin"}, {"role": "org:admin"}, False),  # no active org
        ({}, {}, False),
        ({"fea": "o:sso,u:export"}, {"feature": "sso"}, True),
        ({"fea": "o:sso,u:export"}, {"feature": "o:sso"}, True),
        ({"fea": "o:sso,u:export"}, {"feature": "org:sso"}, True),
        ({"fea": "o:sso,u:export"}, {"feature": "u:sso"}, False),
        ({"fea": "o:sso,u:export"}, {"feature": "user:export"}, True),
        ({"fea": "o:sso,u:export"}, {"feature": "x:export"}, False),
        ({"fea": "ou:both"}, {"feature": "u:both"}, True),
        ({"pla": "u:free,o:pro"}, {"plan": "pro"}, True),
        ({"pla": "u:free,o:pro"}, {"plan": "u:pro"}, False),
        ({"pla": "u:free"}, {"plan": "free", "feature": "sso"}, False),
        ({"fva": [5, 5]}, {"reverification": "strict"}, True),
        ({"fva": [5, 15]}, {"reverification": "strict"}, False),
        ({"fva": [5, -1]}, {"reverification": "strict"}, True),
        ({"fva": [50, -1]}, {"reverification": "moderate"}, True),
        ({"fva": [5, 5]}, {"reverification": "strict_mfa"}, True),
        ({"fva": [5, 20]}, {"reverification": "strict_mfa"}, False),
        ({"fva": [5, 5]}, {"reverification": {"level": "first_factor", "after_minutes": 10}}, True),
        ({"fva": [5, 5]}, {"reverification": {"level": "first_factor", "after_minutes": 0}}, False),
        ({"fva": [5, 5]}, {"reverification": {"level": "nope", "after_minutes": 10}}, False),
        ({"fva": [5, 5]}, {"reverification": "unknown"}, False),
        ({}, {"reverification": "lax"}, False),
    ],
)
def test_has(claims, params, expected):
    """has() behaves like Clerk's: org-scoped roles/permissions, scoped features/plans, fva."""
    assert auth(**claims).has(**params) is expected


def test_summary_is_json_ready():
    """summary() is the identity as a plain dict, its permissions a list: what /me answers."""
    summary = auth(
        org_id="org_1", org_role="org:admin", org_permissions=["org:invoices:read"]
    ).summary()
    assert summary == {
        "user_id": "user_1",
        "session_id": "sess_1",
        "org_id": "org_1",
        "org_role": "org:admin",
        "org_permissions": ["org:invoices:read"],
    }
