"""Example apps protected by clerk-guard; each serves the routes of DESIGN §9."""

from __future__ import annotations
