from __future__ import annotations

import pytest

import clerk_guard

try:
    import django.conf  # noqa: F401
except ImportError:
    # The core-only run. tests/django would otherwise import as a namespace package named
    # "django" and fail to collect.
    collect_ignore = ["django"]


@pytest.fixture(autouse=True)
def _fresh_key_caches():
    """Every test starts with no cached key set, so none depends on another's fetch."""
    clerk_guard.clear_key_caches()
    yield
    clerk_guard.clear_key_caches()
