"""System checks: each configuration error has a stable id, and `manage.py check` fails."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("django")

from django.core.management import call_command  # noqa: E402
from django.core.management.base import SystemCheckError  # noqa: E402
from django.test import override_settings  # noqa: E402

from clerk_guard import GuardConfig  # noqa: E402
from clerk_guard.django.checks import HINTS, check_settings  # noqa: E402
from tests._servers import ROOT  # noqa: E402

NO_KEYS = {"CLERK_GUARD_PUBLISHABLE_KEY": None, "CLERK_GUARD_JWT_KEY": None}


def ids(**settings):
    with override_settings(**settings):
        return [message.id for message in check_settings()]


def test_valid_settings_pass():
    """The test settings are valid: no message."""
    assert ids() == []


@pytest.mark.parametrize(
    ("settings", "check_id"),
    [
        (NO_KEYS, "clerk_guard.E001"),
        ({"CLERK_GUARD_PUBLISHABLE_KEY": "pk_test_nope"}, "clerk_guard.E002"),
        ({"CLERK_GUARD_PUBLISHABLE_KEY": "sk_test_abc"}, "clerk_guard.E002"),
        ({"CLERK_GUARD_SECRET_KEY": "secret"}, "clerk_guard.E003"),
        ({"CLERK_GUARD_JWT_KEY": "not a pem"}, "clerk_guard.E004"),
        ({**NO_KEYS, "CLERK_GUARD_JWKS_URL": "http://example.com/jwks"}, "clerk_guard.E005"),
        ({"CLERK_GUARD_API_URL": "ftp://api.clerk.com"}, "clerk_guard.E006"),
        ({"CLERK_GUARD_ISSUER": 42}, "clerk_guard.E007"),
        ({"CLERK_GUARD_AUTHORIZED_PARTIES": ["https://a.example/path"]}, "clerk_guard.E008"),
        ({"CLERK_GUARD_AUDIENCE": [""]}, "clerk_guard.E009"),
        ({"CLERK_GUARD_LEEWAY": 3600}, "clerk_guard.E010"),
        ({"CLERK_GUARD_LEEWAY": "five"}, "clerk_guard.E010"),
        ({"CLERK_GUARD_LEEWAY": "2"}, "clerk_guard.E010"),
        # Settings of the table without an id of their own: "any other invalid value".
        ({"CLERK_GUARD_JWKS_TTL": "soon"}, "clerk_guard.E011"),
        ({"CLERK_GUARD_JWKS_MAX_BACKOFF": 600}, "clerk_guard.E011"),
        ({"CLERK_GUARD_TOKEN_CACHE_SIZE": -1}, "clerk_guard.E011"),
        ({"CLERK_GUARD_ACCEPT_PENDING": "yes"}, "clerk_guard.E011"),
        ({"CLERK_GUARD_DEBUG": "yes"}, "clerk_guard.E011"),
        (
            {
                **NO_KEYS,
                "CLERK_GUARD_CONFIG": lambda: GuardConfig(jwks_url="https://x.test/j", jwks_ttl=-1),
            },
            "clerk_guard.E011",
        ),
        ({**NO_KEYS, "CLERK_GUARD_CONFIG": "GuardConfig.from_env"}, "clerk_guard.E012"),
        ({**NO_KEYS, "CLERK_GUARD_CONFIG": dict}, "clerk_guard.E012"),
        ({"CLERK_GUARD_CONFIG": GuardConfig.from_env}, "clerk_guard.E013"),
        (
            {**NO_KEYS, "CLERK_GUARD_CONFIG": GuardConfig.from_env, "CLERK_GUARD_JWKS_TTL": 60},
            "clerk_guard.E013",
        ),
        ({"CLERK_GUARD_EXEMPT_PATHS": "^/health$"}, "clerk_guard.E014"),
        ({"CLERK_GUARD_EXEMPT_PATHS": ["(unclosed"]}, "clerk_guard.E014"),
        ({"CLERK_GUARD_EXEMPT_PATHS": [None]}, "clerk_guard.E014"),
        ({"CLERK_GUARD_USER": "tests.django.views.no_such_function"}, "clerk_guard.E015"),
        ({"CLERK_GUARD_USER": 42}, "clerk_guard.E015"),
        ({"CLERK_GUARD_PROTECT_ALL": "yes"}, "clerk_guard.E016"),
        ({"CLERK_GUARD_PROTECT_ALL": None}, "clerk_guard.E016"),
        ({"CLERK_GUARD_TRANSPORT": object()}, "clerk_guard.E017"),
        ({"CLERK_GUARD_WARM_UP": "yes"}, "clerk_guard.E018"),
        ({"CLERK_GUARD_PROTECT_ALL": True, "MIDDLEWARE": []}, "clerk_guard.W001"),
        ({"CLERK_GUARD_DEBUG": True}, "clerk_guard.W002"),
    ],
)
def test_each_error_has_its_id(settings, check_id):
    """Each kind of configuration error is reported with its own stable id and a hint."""
    with override_settings(**settings):
        messages = check_settings()
    assert [message.id for message in messages] == [check_id]
    assert messages[0].hint
    if check_id in HINTS:
        assert messages[0].hint == HINTS[check_id]


def test_environment_is_the_fallback(monkeypatch):
    """Settings left unset come from the CLERK_* environment (GuardConfig.from_env)."""
    monkeypatch.setenv("CLERK_PUBLISHABLE_KEY", "pk_test_bad")
    assert ids(**NO_KEYS) == ["clerk_guard.E002"]


def test_config_setting_accepts_from_env(monkeypatch, issuer):
    """CLERK_GUARD_CONFIG = GuardConfig.from_env builds the configuration lazily."""
    monkeypatch.setenv("CLERK_PUBLISHABLE_KEY", issuer.publishable_key)
    assert ids(**NO_KEYS, CLERK_GUARD_CONFIG=GuardConfig.from_env) == []


def test_several_errors_are_all_reported():
    """Independent problems are reported together."""
    found = ids(CLERK_GUARD_PUBLISHABLE_KEY="pk_test_nope", CLERK_GUARD_PROTECT_ALL=1)
    assert found == ["clerk_guard.E002", "clerk_guard.E016"]


def test_check_command_fails_with_the_id():
    """call_command('check') raises SystemCheckError naming the id."""
    with (
        override_settings(CLERK_GUARD_PUBLISHABLE_KEY="pk_test_nope"),
        pytest.raises(SystemCheckError, match=r"clerk_guard\.E002"),
    ):
        call_command("check")


def test_ids_are_registered_under_the_clerk_guard_tag():
    """The checks run with `manage.py check --tag clerk_guard`."""
    from django.core import checks

    assert "clerk_guard" in checks.registry.registry.tags_available()


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "clerk_guard.E001"), ({"CLERK_PUBLISHABLE_KEY": "pk_live_zzz"}, "clerk_guard.E002")],
)
def test_manage_py_check_fails_with_id(env, expected):
    """The example's `manage.py check` exits non-zero and prints the id and its hint."""
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT / "examples" / "django_project",
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert expected in result.stderr
    assert "HINT:" in result.stderr


def test_manage_py_check_passes(issuer):
    """With a valid publishable key the example's `manage.py check` succeeds."""
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT / "examples" / "django_project",
        env={**clean, "CLERK_PUBLISHABLE_KEY": issuer.publishable_key},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
