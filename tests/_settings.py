"""A value for every setting of the core's settings table, as text and as code.

The parity tests give these to ``GuardConfig.from_env()`` (the environment), the Flask extension
(``app.config``) and Django (settings), and expect the same :class:`GuardConfig` from each.
Every value differs from its default, so a setting a framework fails to read shows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from clerk_guard import GuardConfig

PK = "pk_test_Y2xlcmsuaW5zcGlyZWQucHVtYS03NC5sY2wuZGV2JA"


def samples(pem: str) -> dict[str, tuple[str, Any]]:
    """Setting name -> (its value as text, its value in code)."""
    return {
        "publishable_key": (PK, PK),
        "secret_key": ("sk_test_abc123", "sk_test_abc123"),
        "jwt_key": (pem, pem),
        "jwks_url": ("https://keys.example.test/jwks", "https://keys.example.test/jwks"),
        "api_url": ("https://api.example.test", "https://api.example.test"),
        "issuer": ("https://issuer.example.test", "https://issuer.example.test"),
        "authorized_parties": (
            "https://a.example.test, https://b.example.test",
            ["https://a.example.test", "https://b.example.test"],
        ),
        "audience": ("api,web", ("api", "web")),
        "leeway": ("2.5", 2.5),
        "accept_pending": ("yes", True),
        "debug": ("On", True),
        "jwks_ttl": ("60", 60),
        "jwks_cooldown": ("10.5", 10.5),
        "jwks_max_stale": ("120", 120.0),
        "jwks_timeout": ("3", 3),
        "jwks_max_backoff": ("20", 20),
        "token_cache_size": ("16", 16),
    }


def expected_config(pem: str) -> GuardConfig:
    """The configuration every source must give for :func:`samples`."""
    return GuardConfig(**{name: native for name, (_, native) in samples(pem).items()})


def given_fields(config: GuardConfig) -> dict[str, Any]:
    """What a configuration was given: its init fields, comparable with ``==``."""
    return {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.init
    }
