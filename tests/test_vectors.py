"""Clerk's own public fixtures (shared/vectors/clerk-fixtures.json) against the verifier."""

from __future__ import annotations

import json
import pathlib

import httpx
import pytest

from clerk_guard import Guard, GuardConfig, TokenInvalidError
from clerk_guard._config import compute_cookie_suffix

# A copy of shared/vectors/clerk-fixtures.json (Clerk's public test fixtures), kept in the repo so
# the suite runs from any checkout.
VECTORS = json.loads(
    (pathlib.Path(__file__).resolve().parent / "vectors" / "clerk-fixtures.json").read_text()
)
NOW = VECTORS["valid_at_unix"]
PK = VECTORS["publishable_keys"]["pk_test"]


def _pem_guard(**overrides):
    return Guard(
        GuardConfig(
            jwt_key=VECTORS["pem_public_key"], publishable_key=PK, clock=lambda: NOW, **overrides
        )
    )


@pytest.fixture
def jwks_guard():
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=VECTORS["jwks"]))
    with Guard(GuardConfig(publishable_key=PK, clock=lambda: NOW), transport=transport) as guard:
        yield guard


def test_token_accepted_with_pem():
    """Clerk's fixture token verifies with the PEM key at valid_at_unix."""
    auth = _pem_guard().verify(VECTORS["token"])
    assert auth.user_id == VECTORS["payload"]["sub"]
    assert auth.session_id == VECTORS["payload"]["sid"]
    assert auth.issuer == "https://" + VECTORS["publishable_keys"]["decoded_frontend_api"]


def test_token_accepted_with_jwks(jwks_guard):
    """Clerk's fixture token verifies with the JWKS fetched from the publishable key's host."""
    auth = jwks_guard.verify(VECTORS["token"])
    assert auth.user_id == VECTORS["payload"]["sub"]
    assert jwks_guard.jwks.url == "https://clerk.inspired.puma-74.lcl.dev/.well-known/jwks.json"


@pytest.mark.parametrize("form", ["armoured", "body-only", "escaped", "quoted-escaped"])
def test_every_pem_form_verifies(form):
    """The PEM key pasted armoured, body-only or \\n-escaped verifies the fixture token."""
    pem = VECTORS["pem_public_key"]
    body = "".join(pem.splitlines()[1:-1])
    value = {
        "armoured": pem,
        "body-only": body,
        "escaped": pem.replace("\n", "\\n"),
        "quoted-escaped": '"' + pem.replace("\n", "\\n") + '"',
    }[form]
    guard = Guard(GuardConfig(jwt_key=value, clock=lambda: NOW))
    assert guard.verify(VECTORS["token"]).user_id == VECTORS["payload"]["sub"]


@pytest.mark.parametrize(
    ("second", "accepted"),
    [
        (VECTORS["validity_window"]["first_valid_unix_with_default_5s_skew"] - 1, False),
        (VECTORS["validity_window"]["first_valid_unix_with_default_5s_skew"], True),
        (VECTORS["validity_window"]["last_valid_unix_with_default_5s_skew"], True),
        (VECTORS["validity_window"]["last_valid_unix_with_default_5s_skew"] + 1, False),
    ],
)
def test_validity_window_edges(second, accepted):
    """The fixture token is accepted exactly inside its documented window with 5 s leeway."""
    guard = Guard(GuardConfig(jwt_key=VECTORS["pem_public_key"], clock=lambda: second))
    if accepted:
        assert guard.verify(VECTORS["token"]).session_id
    else:
        with pytest.raises(TokenInvalidError) as info:
            guard.verify(VECTORS["token"])
        assert info.value.code in ("token-expired", "token-iat-in-the-future")


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS["negative_vectors"] if "token" in v], ids=lambda v: v["name"]
)
@pytest.mark.parametrize("mode", ["pem", "jwks"])
def test_negative_vectors_rejected_with_reason(vector, mode, jwks_guard):
    """Each negative fixture is rejected with the reason its description names."""
    guard = _pem_guard() if mode == "pem" else jwks_guard
    with pytest.raises(TokenInvalidError) as info:
        guard.verify(vector["token"])
    expected = vector["expected_at_valid_at_unix"]
    assert info.value.code in expected
    assert info.value.code.startswith("token-")


def test_wrong_key_vector_rejected():
    """The fixture token does not verify under another instance's PEM key."""
    other = next(v for v in VECTORS["negative_vectors"] if "pem_public_key" in v)
    guard = Guard(GuardConfig(jwt_key=other["pem_public_key"], clock=lambda: NOW))
    with pytest.raises(TokenInvalidError) as info:
        guard.verify(VECTORS["token"])
    assert info.value.code == "token-invalid-signature"


@pytest.mark.parametrize("vector", VECTORS["machine_jwt_vectors"], ids=lambda v: v["name"])
def test_machine_tokens_are_not_sessions(vector, jwks_guard):
    """OAuth access tokens signed by the instance key are rejected as token-type-mismatch."""
    for guard in (_pem_guard(), jwks_guard):
        with pytest.raises(TokenInvalidError) as info:
            guard.verify(vector["token"])
        assert info.value.code == "token-type-mismatch"


@pytest.mark.parametrize(
    "vector", VECTORS["cookie_suffix_vectors"]["vectors"], ids=lambda v: v["expected_suffix"]
)
def test_cookie_suffix_vectors(vector):
    """The cookie suffix of each publishable key matches Clerk's."""
    assert compute_cookie_suffix(vector["publishable_key"]) == vector["expected_suffix"]
    config = GuardConfig(publishable_key=vector["publishable_key"])
    assert config.session_cookie_names[0] == f"__session_{vector['expected_suffix']}"


def test_publishable_keys_decode_to_frontend_api():
    """pk_test and pk_live fixture keys decode to the fixture's Frontend API host."""
    keys = VECTORS["publishable_keys"]
    for name in ("pk_test", "pk_live"):
        config = GuardConfig(publishable_key=keys[name])
        assert config.frontend_api == keys["decoded_frontend_api"]
        assert config.cookie_suffix == keys["cookie_suffix_python_computed"][keys[name]]
