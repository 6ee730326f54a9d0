"""What a framework adapter builds on beyond the top-level API (``clerk_guard.__all__``).

The shipped adapters import only from ``clerk_guard`` and this module, and so can yours (the
README's "Writing an adapter"): building the adapter's guard from its options
(:func:`build_guard`), excluded paths (:class:`ExcludedPaths`), the settings table every
framework reads its configuration through (:data:`SETTINGS`, :func:`read_settings`,
:func:`parse`), and the error for a framework that is not installed (:func:`missing_extra`).
"""

from __future__ import annotations

from ._extras import missing_extra
from ._guard import build_guard
from ._paths import ExcludedPaths
from ._settings import PREFIX, SETTINGS, Setting, parse, read_settings

__all__ = [
    "PREFIX",
    "SETTINGS",
    "ExcludedPaths",
    "Setting",
    "build_guard",
    "missing_extra",
    "parse",
    "read_settings",
]
