"""GuardConfig: validation at construction, derivation, precedence, from_env (contract §1)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from clerk_guard import ConfigurationError, GuardConfig
from clerk_guard._settings import SETTINGS, Setting, parse, read_settings
from clerk_guard.testing import LocalIssuer
from tests._settings import expected_config, given_fields, samples

README = Path(__file__).resolve().parent.parent / "README.md"

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


# The settings table: from_env(), Flask and Django read it; the README shows it --------------


def readme_row(setting: Setting) -> str:
    """The README's Configuration table row for a setting."""
    env = " or ".join(f"`{name}`" for name in setting.env) or "—"
    if setting.env and setting.type == "list[str]":
        env += " (comma-separated)"
    key = f"`{setting.key}`" if setting.readable else "—"
    return (
        f"| `{setting.name}` | `{setting.type}` | {env} | {key} | {setting.default} "
        f"| {setting.doc} |"
    )


def test_readme_configuration_table_is_the_settings_table():
    """The README's Configuration table is the settings table, row for row (on failure, the
    message is the table to paste)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    found = [line for line in section.splitlines() if line.startswith("|")]
    expected = [
        "| setting | type | environment variable | Django / Flask setting | default | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
        *(readme_row(setting) for setting in SETTINGS),
    ]
    assert found == expected, "\n".join(expected)


def test_settings_table_has_one_row_per_field_in_order():
    """Every GuardConfig argument has one row, in the dataclass's order, and no other row."""
    fields = [field.name for field in dataclasses.fields(GuardConfig) if field.init]
    assert [setting.name for setting in SETTINGS] == fields
    assert len({name for setting in SETTINGS for name in setting.env}) == sum(
        len(setting.env) for setting in SETTINGS
    )


def _shown_default(value: object) -> set[str]:
    """How the README may show a GuardConfig default."""
    if value is None:
        return {"—", "derived", "httpx's default"}
    if value == ():
        return {"empty"}
    if isinstance(value, (bool, str)):
        return {f"`{value}`"}
    if isinstance(value, (int, float)):
        return {f"`{value:g}`"}
    return {f"`{value.__module__}.{value.__qualname__}`"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_settings_table_defaults_are_guardconfig_defaults(setting):
    """The default the table shows is GuardConfig's, and a readable one has the row's type."""
    default = GuardConfig.__dataclass_fields__[setting.name].default
    assert setting.default in _shown_default(default)
    if setting.readable and default is not None:
        assert parse(setting.type, default, setting.key, text=False) == default


def test_samples_cover_every_readable_setting(pem):
    """The parity samples hold every setting that can be read; only code-only ones are left."""
    readable = {setting.name for setting in SETTINGS if setting.readable}
    assert set(samples(pem)) == readable
    assert {setting.name for setting in SETTINGS} - readable == {"clock", "ssl_context"}


def test_every_setting_from_env_gives_the_same_config(pem):
    """Each setting parsed from its environment variable gives what the keyword gives."""
    values = samples(pem)
    env = {setting.env[0]: values[setting.name][0] for setting in SETTINGS if setting.env}
    code = {
        setting.name: values[setting.name][1]
        for setting in SETTINGS
        if setting.readable and not setting.env
    }
    assert given_fields(GuardConfig.from_env(env, **code)) == given_fields(expected_config(pem))


def test_read_settings_as_text_and_as_code_agree(pem):
    """Every setting read as text (CLERK_GUARD_* strings) or as code gives the same values."""
    values = samples(pem)
    as_text = {setting.key: values[setting.name][0] for setting in SETTINGS if setting.readable}
    as_code = {setting.key: values[setting.name][1] for setting in SETTINGS if setting.readable}
    from_text = read_settings(as_text.get, keys=True, env=False, text=True)
    from_code = read_settings(as_code.get, keys=True, env=False, text=False)
    assert given_fields(GuardConfig(**from_text)) == given_fields(GuardConfig(**from_code))
    assert given_fields(GuardConfig(**from_code)) == given_fields(expected_config(pem))


@pytest.mark.parametrize(
    ("type_", "value", "text", "expected"),
    [
        ("bool", "yes", True, True),
        ("bool", " On ", True, True),
        ("bool", "1", True, True),
        ("bool", "FALSE", True, False),
        ("bool", "off", True, False),
        ("bool", True, False, True),
        ("float", "2.5", True, 2.5),
        ("float", 3, False, 3),
        ("int", " 16 ", True, 16),
        ("int", 0, False, 0),
        ("str", "  pk_test_x ", True, "pk_test_x"),
        ("list[str]", "a, b,, ", True, ("a", "b")),
        ("list[str]", "a,b", False, ("a", "b")),
        ("list[str]", ["a"], False, ("a",)),
    ],
)
def test_one_parser_per_type(type_, value, text, expected):
    """Text may spell every type as a string; code gives the type (a list may be a string)."""
    assert parse(type_, value, "X", text=text) == expected


@pytest.mark.parametrize(
    ("type_", "value", "text", "message"),
    [
        ("bool", "maybe", True, "X must be true or false; got 'maybe'."),
        ("bool", 1, True, "X must be true or false; got 1."),
        ("bool", "yes", False, "X must be True or False; got 'yes'."),
        ("float", "five", True, "X must be a number of seconds; got 'five'."),
        ("float", True, True, "X must be a number of seconds; got True."),
        ("float", "2.5", False, "X must be a number of seconds; got '2.5'."),
        ("int", "1.5", True, "X must be a whole number; got '1.5'."),
        ("int", 2.0, False, "X must be a whole number; got 2.0."),
        ("str", 5, True, "X must be a string; got int."),
        ("list[str]", 5, False, "X must be a list of strings or one comma-separated string"),
    ],
)
def test_parsers_refuse_with_what_to_give(type_, value, text, message):
    """A value of the wrong type fails naming the setting as written and what it must be."""
    with pytest.raises(ConfigurationError) as info:
        parse(type_, value, "X", text=text, field="leeway")
    assert str(info.value).startswith(message)
    assert info.value.field == "leeway"


def test_a_key_of_the_wrong_type_is_not_repeated():
    """A key given with the wrong type is named by its type only, never shown."""
    settings = {"CLERK_GUARD_SECRET_KEY": b"sk_live_x"}
    with pytest.raises(ConfigurationError) as info:
        read_settings(settings.get, keys=True, env=False, text=False)
    assert str(info.value) == "CLERK_GUARD_SECRET_KEY must be a string; got bytes."
    assert info.value.field == "secret_key"


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("CLERK_LEEWAY", "five", "leeway"),
        ("CLERK_AUTHORIZED_PARTIES", "app.example", "authorized_parties"),
        ("CLERK_API_URL", "http://api.example", "api_url"),
    ],
)
def test_from_env_errors_name_the_field(variable, value, field):
    """A bad environment variable fails at construction with the field at fault."""
    with pytest.raises(ConfigurationError) as info:
        GuardConfig.from_env({"CLERK_PUBLISHABLE_KEY": PK, variable: value})
    assert info.value.field == field
