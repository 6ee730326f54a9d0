"""Example apps protected by clerk-guard; each serves the routes of contract §8."""

from __future__ import annotations

from typing import Any

from clerk_guard import SessionAuth


def session_summary(auth: SessionAuth) -> dict[str, Any]:
    """The body of ``GET /me`` (and ``GET /admin``), the same in every example."""
    return {
        "user_id": auth.user_id,
        "session_id": auth.session_id,
        "org_id": auth.org_id,
        "org_role": auth.org_role,
        "org_permissions": list(auth.org_permissions),
    }
