"""``python -m clerk_guard``: the ``clerk-guard`` command (doctor, jwks, mint, demo)."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
