from __future__ import annotations

import pytest

import clerk_guard


@pytest.fixture(autouse=True)
def _fresh_key_caches():
    """Every test starts with no cached key set, so none depends on another's fetch."""
    clerk_guard.clear_key_caches()
    yield
    clerk_guard.clear_key_caches()
