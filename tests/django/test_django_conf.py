"""clerk_guard.django.conf: the CLERK_GUARD_* settings, read through the core's settings table."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("django")

from django.test import override_settings  # noqa: E402

from clerk_guard import ConfigurationError, GuardConfig  # noqa: E402
from clerk_guard._paths import ExcludedPaths  # noqa: E402
from clerk_guard._settings import SETTINGS  # noqa: E402
from clerk_guard.django.conf import CONFIG_SETTINGS, SettingError, conf, state  # noqa: E402
from tests._settings import expected_config, given_fields, samples  # noqa: E402

#: Every CLERK_GUARD_* verification setting Django read before the settings table existed.
RELEASED = {
    "CLERK_GUARD_PUBLISHABLE_KEY": "publishable_key",
    "CLERK_GUARD_SECRET_KEY": "secret_key",
    "CLERK_GUARD_JWT_KEY": "jwt_key",
    "CLERK_GUARD_JWKS_URL": "jwks_url",
    "CLERK_GUARD_API_URL": "api_url",
    "CLERK_GUARD_ISSUER": "issuer",
    "CLERK_GUARD_AUTHORIZED_PARTIES": "authorized_parties",
    "CLERK_GUARD_AUDIENCE": "audience",
    "CLERK_GUARD_LEEWAY": "leeway",
    "CLERK_GUARD_ACCEPT_PENDING": "accept_pending",
    "CLERK_GUARD_DEBUG": "debug",
}


def test_every_released_setting_still_works():
    """No CLERK_GUARD_* setting of an earlier release was dropped or renamed."""
    assert RELEASED.items() <= CONFIG_SETTINGS.items()


def test_one_setting_per_readable_row_of_the_table():
    """Django reads CLERK_GUARD_<NAME> for every setting of the table not given in code only."""
    assert {s.key: s.name for s in SETTINGS if s.readable} == CONFIG_SETTINGS


def test_every_setting_gives_the_same_config(issuer):
    """Every setting of the table given as a Django setting gives what GuardConfig(...) gives,
    and what the environment gives (tests/test_config.py)."""
    pem = issuer.public_pem
    settings = {
        setting.key: samples(pem)[setting.name][1] for setting in SETTINGS if setting.readable
    }
    with override_settings(**settings):
        config = conf.guard_config()
        assert given_fields(state.config) == given_fields(config)
    assert given_fields(config) == given_fields(expected_config(pem))


def test_settings_are_attributes_of_conf(issuer):
    """conf.<field> is the parsed CLERK_GUARD_<FIELD>, None when unset."""
    with override_settings(
        CLERK_GUARD_LEEWAY=2, CLERK_GUARD_AUDIENCE="a, b", CLERK_GUARD_ISSUER=None
    ):
        assert conf.leeway == 2
        assert conf.audience == ("a", "b")
        assert conf.issuer is None
        assert conf.publishable_key == issuer.publishable_key
    with pytest.raises(AttributeError):
        conf.no_such_setting  # noqa: B018
    with pytest.raises(AttributeError):
        conf.clock  # noqa: B018 - given in code only, through CLERK_GUARD_CONFIG


def test_blank_settings_fall_back_to_the_environment(issuer, monkeypatch):
    """A blank CLERK_GUARD_* string counts as unset, as an empty environment variable does."""
    monkeypatch.setenv("CLERK_AUDIENCE", "from-env")
    with override_settings(CLERK_GUARD_AUDIENCE=" "):
        assert conf.guard_config().audience == ("from-env",)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"CLERK_GUARD_LEEWAY": "2"}, "CLERK_GUARD_LEEWAY must be a number of seconds; got '2'."),
        (
            {"CLERK_GUARD_ACCEPT_PENDING": "False"},
            "CLERK_GUARD_ACCEPT_PENDING must be True or False; got 'False'.",
        ),
        ({"CLERK_GUARD_TOKEN_CACHE_SIZE": 1.5}, "CLERK_GUARD_TOKEN_CACHE_SIZE must be a whole"),
        ({"CLERK_GUARD_SECRET_KEY": b"sk_test_x"}, "CLERK_GUARD_SECRET_KEY must be a string; got"),
    ],
)
def test_settings_have_their_python_types(settings, message):
    """Settings are Python: a string where a number or a boolean belongs is refused (a "False"
    from os.environ would otherwise be true), naming the setting."""
    with override_settings(**settings), pytest.raises(ConfigurationError) as info:
        conf.guard_config()
    assert str(info.value).startswith(message)
    assert "sk_test_x" not in str(info.value)


def test_config_setting_with_individual_settings_names_them():
    """CLERK_GUARD_CONFIG with individual settings names each of them (E013)."""
    with (
        override_settings(CLERK_GUARD_CONFIG=GuardConfig.from_env, CLERK_GUARD_JWKS_TTL=60),
        pytest.raises(SettingError) as info,
    ):
        conf.guard_config()
    assert info.value.check_id == "clerk_guard.E013"
    assert "CLERK_GUARD_JWT_KEY" in str(info.value)
    assert "CLERK_GUARD_JWKS_TTL" in str(info.value)


def test_exempt_paths_build_the_core_path_model():
    """CLERK_GUARD_EXEMPT_PATHS is the core's ExcludedPaths of regular expressions; compiled
    patterns are accepted too."""
    with override_settings(CLERK_GUARD_EXEMPT_PATHS=[r"/health", re.compile(r"/static/.*")]):
        exempt = conf.exempt_paths
    assert isinstance(exempt, ExcludedPaths)
    assert "/health" in exempt and "/static/app.js" in exempt
    assert "/health/x" not in exempt and "/staticky" not in exempt
    with override_settings(CLERK_GUARD_EXEMPT_PATHS=[]):
        assert not conf.exempt_paths


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("^/health$", "must be a list of regular expressions"),
        (["(unclosed"], "holds '(unclosed', which is not a regular expression"),
        ([42], "holds 42, which is not a regular expression"),
    ],
)
def test_bad_exempt_paths_are_e014(value, message):
    """A bad CLERK_GUARD_EXEMPT_PATHS is reported with E014, saying what is wrong."""
    with override_settings(CLERK_GUARD_EXEMPT_PATHS=value), pytest.raises(SettingError) as info:
        conf.exempt_paths  # noqa: B018
    assert info.value.check_id == "clerk_guard.E014"
    assert message in str(info.value)
    assert str(info.value).startswith("CLERK_GUARD_EXEMPT_PATHS")
