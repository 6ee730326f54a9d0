"""GuardConfig: validation at construction, derivation, precedence, from_env (contract §1)."""

from __future__ import annotations

import pytest

from clerk_guard import ConfigurationError, GuardConfig
from clerk_guard.testing import LocalIssuer

PK = "pk_test_Y2xlcmsuaW5zcGlyZWQucHVtYS03NC5sY2wuZGV2JA"
SK = "sk_test_abc123"


@pytest.fixture(scope="module")
def pem():
    return LocalIssuer().public_pem


def test_publishable_key_alone_is_enough():
    """A publishable key gives the JWKS URL, issuer and cookie suffix."""
    config = GuardConfig(publishable_key=PK)
    assert config.key_source == "publishable_key"
    assert (
        config.resolved_jwks_url == "https://clerk.inspired.puma-74.lcl.dev/.well-known/jwks.json"
    )
    assert config.resolved_issuer == "https://clerk.inspired.puma-74.lcl.dev"
    assert config.cookie_suffix == "vWCgMp3A"


def test_precedence(pem):
    """jwt_key, then jwks_url, then the publishable key, then the secret key."""
    url = "https://keys.example.test/jwks"
    assert GuardConfig(jwt_key=pem, jwks_url=url, publishable_key=PK, secret_key=SK).key_source == (
        "jwt_key"
    )
    assert GuardConfig(jwks_url=url, publishable_key=PK, secret_key=SK).resolved_jwks_url == url
    assert GuardConfig(publishable_key=PK, secret_key=SK).key_source == "publishable_key"
    config = GuardConfig(secret_key=SK)
    assert config.resolved_jwks_url == "https://api.clerk.com/v1/jwks"
    assert config.jwks_headers["Authorization"] == f"Bearer {SK}"
    assert config.resolved_issuer is None


def test_secret_key_only_sent_to_backend_api():
    """The secret key is never sent to a Frontend API or custom JWKS URL."""
    assert "Authorization" not in GuardConfig(publishable_key=PK, secret_key=SK).jwks_headers
    assert (
        "Authorization" not in GuardConfig(jwks_url="https://x.test/j", secret_key=SK).jwks_headers
    )


def test_cache_key_differs_per_credential():
    """Two secret keys for the same URL never share a key cache."""
    a = GuardConfig(secret_key="sk_test_a").cache_key
    b = GuardConfig(secret_key="sk_test_b").cache_key
    assert a != b and "sk_test" not in a


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({}, "No key source"),
        ({"publishable_key": "pk_test_"}, "publishable_key"),
        ({"publishable_key": "pk_test_bm9kb2xsYXI"}, "does not decode"),
        ({"publishable_key": "nonsense"}, "pk_test_"),
        ({"publishable_key": SK}, "secret key"),
        ({"secret_key": "pk_test_x"}, "sk_test_"),
        ({"jwt_key": "not a pem"}, "PEM"),
        ({"jwks_url": "http://keys.example.test/jwks"}, "https://"),
        ({"jwks_url": "ftp://x"}, "https://"),
        ({"publishable_key": PK, "api_url": "http://api.example"}, "https://"),
        ({"publishable_key": PK, "authorized_parties": ["example.com"]}, "origins"),
        ({"publishable_key": PK, "authorized_parties": ["https://a.test/"]}, "trailing slash"),
        ({"publishable_key": PK, "leeway": -1}, "leeway"),
        ({"publishable_key": PK, "leeway": 3600}, "NTP"),
        ({"publishable_key": PK, "leeway": "5"}, "leeway"),
        ({"publishable_key": PK, "leeway": float("nan")}, "leeway"),
        ({"publishable_key": PK, "jwks_timeout": 0}, "jwks_timeout"),
        ({"publishable_key": PK, "token_cache_size": -1}, "token_cache_size"),
        ({"publishable_key": PK, "clock": 5}, "clock"),
        ({"publishable_key": 5}, "string"),
    ],
)
def test_invalid_configuration_fails_at_construction(options, needle):
    """Every invalid setting raises ConfigurationError saying what to do."""
    with pytest.raises(ConfigurationError, match=needle):
        GuardConfig(**options)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "key_source"),
        ({"publishable_key": "nonsense"}, "publishable_key"),
        ({"jwt_key": "junk"}, "jwt_key"),
        ({"publishable_key": PK, "leeway": -1}, "leeway"),
        ({"jwks_url": "http://x.test/j"}, "jwks_url"),
        ({"publishable_key": PK, "authorized_parties": ["x"]}, "authorized_parties"),
    ],
)
def test_error_names_its_field(options, field):
    """ConfigurationError.field names the setting at fault, for tools such as system checks."""
    with pytest.raises(ConfigurationError) as info:
        GuardConfig(**options)
    assert info.value.field == field


def test_small_rsa_pem_refused():
    """A PEM key under 2048 bits is refused."""
    small = LocalIssuer(key_size=1024).public_pem
    with pytest.raises(ConfigurationError, match="2048"):
        GuardConfig(jwt_key=small)


def test_non_rsa_pem_refused():
    """An EC PEM key is refused: Clerk signs with RS256."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(ConfigurationError, match="RSA"):
        GuardConfig(jwt_key=pem)


def test_loopback_http_allowed():
    """Plain http is allowed for loopback JWKS URLs (local issuers, tests)."""
    for url in ("http://127.0.0.1:8000/jwks", "http://localhost/jwks", "http://[::1]:9/j"):
        assert GuardConfig(jwks_url=url).resolved_jwks_url == url


def test_from_env(pem):
    """from_env reads CLERK_* variables; empty ones count as unset; overrides win."""
    env = {
        "CLERK_PUBLISHABLE_KEY": PK,
        "CLERK_SECRET_KEY": "",
        "CLERK_PEM_PUBLIC_KEY": pem.replace("\n", "\\n"),
        "CLERK_AUTHORIZED_PARTIES": "https://a.test, https://b.test,",
        "CLERK_AUDIENCE": "api",
        "CLERK_LEEWAY": "2.5",
        "CLERK_ISSUER": "https://issuer.test",
    }
    config = GuardConfig.from_env(env, accept_pending=True)
    assert config.key_source == "jwt_key"
    assert config.authorized_parties == ("https://a.test", "https://b.test")
    assert config.audience == ("api",)
    assert config.leeway == 2.5
    assert config.resolved_issuer == "https://issuer.test"
    assert config.accept_pending is True


def test_from_env_jwt_key_wins_over_pem_alias(pem):
    """CLERK_JWT_KEY is read before its alias CLERK_PEM_PUBLIC_KEY."""
    config = GuardConfig.from_env({"CLERK_JWT_KEY": pem, "CLERK_PEM_PUBLIC_KEY": "junk"})
    assert config.public_key is not None


def test_from_env_bad_leeway():
    """A non-numeric CLERK_LEEWAY fails with the variable's name."""
    with pytest.raises(ConfigurationError, match="CLERK_LEEWAY"):
        GuardConfig.from_env({"CLERK_PUBLISHABLE_KEY": PK, "CLERK_LEEWAY": "five"})


def test_from_env_nothing_set():
    """An empty environment is a configuration error naming the variables."""
    with pytest.raises(ConfigurationError, match="CLERK_PUBLISHABLE_KEY"):
        GuardConfig.from_env({})


def test_frozen():
    """The configuration cannot be changed after validation."""
    config = GuardConfig(publishable_key=PK)
    with pytest.raises(AttributeError):
        config.leeway = 100  # type: ignore[misc]


def test_secret_key_not_in_repr():
    """repr() of a configuration never shows the secret key."""
    assert "sk_test_abc123" not in repr(GuardConfig(secret_key=SK))


def test_cooldown_has_a_floor():
    """A cooldown under 1 s is refused: it would let random kids drive a fetch per request."""
    with pytest.raises(ConfigurationError, match="jwks_cooldown"):
        GuardConfig(publishable_key=PK, jwks_cooldown=0)
