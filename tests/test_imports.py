"""Import hygiene: the core imports no web framework; the public surface is complete."""

from __future__ import annotations

import subprocess
import sys

import clerk_guard


def test_core_imports_no_framework():
    """`import clerk_guard` in a fresh interpreter loads no web framework."""
    code = (
        "import sys, clerk_guard, clerk_guard.testing, clerk_guard._cli;"
        "bad = [m for m in ('django', 'flask', 'werkzeug', 'starlette', 'fastapi')"
        " if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_all_sorted_and_complete():
    """__all__ is sorted and names exist."""
    assert list(clerk_guard.__all__) == sorted(clerk_guard.__all__)
    for name in clerk_guard.__all__:
        assert hasattr(clerk_guard, name)
