"""Example apps protected by clerk-guard; each serves the routes of contract §8."""

from __future__ import annotations

from typing import Any

from clerk_guard import SessionAuth


def session_summary(auth: SessionAuth) -> dict[str, Any]:
    """The body of ``GET /me`` (and ``GET /admin``), the same in every example."""
    return auth.summary()
