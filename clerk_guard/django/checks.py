"""System checks: every configuration error is reported by ``manage.py check`` with a stable id.

Ids are never reused once released.

======================  ==================================================================
``clerk_guard.E001``    no key source at all
``clerk_guard.E002``    publishable key invalid
``clerk_guard.E003``    secret key invalid
``clerk_guard.E004``    PEM public key (``jwt_key``) invalid
``clerk_guard.E005``    JWKS URL invalid
``clerk_guard.E006``    Backend API URL invalid
``clerk_guard.E007``    issuer invalid
``clerk_guard.E008``    authorized parties invalid
``clerk_guard.E009``    audience invalid
``clerk_guard.E010``    leeway invalid
``clerk_guard.E011``    any other invalid configuration value
``clerk_guard.E012``    ``CLERK_GUARD_CONFIG`` is not a GuardConfig (or a callable making one)
``clerk_guard.E013``    ``CLERK_GUARD_CONFIG`` given together with individual settings
``clerk_guard.E014``    ``CLERK_GUARD_EXEMPT_PATHS`` invalid
``clerk_guard.E015``    ``CLERK_GUARD_USER`` invalid
``clerk_guard.E016``    ``CLERK_GUARD_PROTECT_ALL`` not a boolean
``clerk_guard.E017``    ``CLERK_GUARD_TRANSPORT`` not an httpx transport
``clerk_guard.E018``    ``CLERK_GUARD_WARM_UP`` not a boolean
``clerk_guard.W001``    protect-all mode on, but the middleware is not in ``MIDDLEWARE``
``clerk_guard.W002``    debug responses on while Django's ``DEBUG`` is off
======================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import checks

from clerk_guard import ConfigurationError
from clerk_guard.django.conf import SettingError, conf

__all__ = ["HINTS", "check_settings", "error_id"]

MIDDLEWARE_PATH = "clerk_guard.django.middleware.ClerkGuardMiddleware"

_KEYS_PAGE = "Copy it from the API keys page of the Clerk dashboard."

#: Check id -> hint shown by ``manage.py check``.
HINTS: dict[str, str] = {
    "clerk_guard.E001": (
        "Set CLERK_PUBLISHABLE_KEY in the environment (or CLERK_GUARD_PUBLISHABLE_KEY in "
        "settings): it is enough on its own. CLERK_JWT_KEY verifies without any network call."
    ),
    "clerk_guard.E002": f"The publishable key looks like pk_test_… or pk_live_…. {_KEYS_PAGE}",
    "clerk_guard.E003": f"The secret key looks like sk_test_… or sk_live_…. {_KEYS_PAGE}",
    "clerk_guard.E004": (
        "Use the 'PEM Public Key' of the API keys page: an RSA key of at least 2048 bits."
    ),
    "clerk_guard.E005": "Use an https:// URL (plain http only on 127.0.0.1 or localhost).",
    "clerk_guard.E006": "Use an https:// URL such as https://api.clerk.com.",
    "clerk_guard.E007": "Use the exact iss of your tokens, such as https://clerk.example.com.",
    "clerk_guard.E008": (
        "List origins such as 'https://app.example.com': scheme, host and optional port only."
    ),
    "clerk_guard.E009": "List the accepted aud values as non-empty strings.",
    "clerk_guard.E010": "Give seconds as a number between 0 and 300; default 5.",
    "clerk_guard.E011": "Fix the value named in the message.",
    "clerk_guard.E012": (
        "Set CLERK_GUARD_CONFIG = GuardConfig.from_env (the callable) or a GuardConfig."
    ),
    "clerk_guard.E013": (
        "Remove CLERK_GUARD_CONFIG, or move the individual settings into it as overrides."
    ),
    "clerk_guard.E014": (
        "Give a list of regular expressions matching whole paths, such as [r'/health', "
        "r'/static/.*']."
    ),
    "clerk_guard.E015": "Give a callable (request, auth) -> user, or its dotted import path.",
    "clerk_guard.E016": "Set CLERK_GUARD_PROTECT_ALL = True or False.",
    "clerk_guard.E017": "Give an httpx transport instance, or remove the setting.",
    "clerk_guard.E018": "Set CLERK_GUARD_WARM_UP = True or False.",
}

# ConfigurationError.field names the setting at fault.
_FIELD_IDS: dict[str | None, str] = {
    "key_source": "clerk_guard.E001",
    "publishable_key": "clerk_guard.E002",
    "secret_key": "clerk_guard.E003",
    "jwt_key": "clerk_guard.E004",
    "jwks_url": "clerk_guard.E005",
    "api_url": "clerk_guard.E006",
    "issuer": "clerk_guard.E007",
    "authorized_parties": "clerk_guard.E008",
    "audience": "clerk_guard.E009",
    "leeway": "clerk_guard.E010",
}


def error_id(exc: ConfigurationError) -> str:
    """The check id for a configuration error."""
    if isinstance(exc, SettingError):
        return exc.check_id
    return _FIELD_IDS.get(exc.field, "clerk_guard.E011")


def _error(exc: ConfigurationError) -> checks.Error:
    check_id = error_id(exc)
    return checks.Error(f"clerk-guard: {exc}", hint=HINTS[check_id], id=check_id)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Build the configuration from the settings; report each problem with its id."""
    messages: list[checks.CheckMessage] = []
    probes: list[Callable[[], object]] = [
        conf.guard_config,
        lambda: conf.protect_all,
        lambda: conf.exempt_paths,
        lambda: conf.user_factory,
        lambda: conf.transport,
        lambda: conf.warm_up,
    ]
    for probe in probes:
        try:
            probe()
        except ConfigurationError as exc:
            messages.append(_error(exc))
    try:
        protect_all = conf.protect_all
    except ConfigurationError:
        protect_all = False
    if protect_all and MIDDLEWARE_PATH not in getattr(settings, "MIDDLEWARE", ()):
        messages.append(
            checks.Warning(
                "clerk-guard: CLERK_GUARD_PROTECT_ALL is on but ClerkGuardMiddleware is not in "
                "MIDDLEWARE, so nothing is protected.",
                hint=f"Add {MIDDLEWARE_PATH!r} to MIDDLEWARE.",
                id="clerk_guard.W001",
            )
        )
    try:
        debug = conf.debug
    except ConfigurationError:
        debug = None  # reported above, by conf.guard_config
    if debug is True and not settings.DEBUG:
        messages.append(
            checks.Warning(
                "clerk-guard: CLERK_GUARD_DEBUG puts rejection reasons in 401 bodies while "
                "DEBUG is off: that tells attackers why their tokens fail.",
                hint="Set CLERK_GUARD_DEBUG = False in production.",
                id="clerk_guard.W002",
            )
        )
    return messages
