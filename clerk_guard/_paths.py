"""Paths that skip verification, matched the same way by every adapter.

One model for every framework's spelling: exact paths and whole-segment prefixes (the ASGI and
WSGI middlewares' and Flask's ``exclude=`` / ``exclude_prefixes=``), and regular expressions
matched against the whole path (Django's ``CLERK_GUARD_EXEMPT_PATHS``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._errors import ConfigurationError

__all__ = ["ExcludedPaths", "checked_paths", "checked_patterns"]


def checked_paths(name: str, paths: str | Iterable[str]) -> tuple[str, ...]:
    """Validate path settings: each starts with ``/``; one string is one path."""
    items = (paths,) if isinstance(paths, str) else tuple(paths)
    for item in items:
        if not isinstance(item, str) or not item.startswith("/"):  # type: ignore[redundant-expr]
            raise ConfigurationError(f"{name} holds paths starting with '/'; got {item!r}.")
    return items


def checked_patterns(
    name: str, patterns: str | re.Pattern[str] | Iterable[str | re.Pattern[str]]
) -> tuple[re.Pattern[str], ...]:
    """Compile regular expressions (strings or compiled); one string is one expression."""
    items = (patterns,) if isinstance(patterns, (str, re.Pattern)) else tuple(patterns)
    compiled = []
    for item in items:
        try:
            compiled.append(re.compile(item))
        except (re.error, TypeError) as exc:
            raise ConfigurationError(
                f"{name} holds {item!r}, which is not a regular expression ({exc})."
            ) from None
    return tuple(compiled)


class ExcludedPaths:
    """Exact paths, prefixes matched on whole segments, and regular expressions matched against
    the whole path; ``path in excluded`` tells whether any of them covers ``path``.

    A prefix ``"/static"`` (or ``"/static/"``) covers ``/static`` and ``/static/app.js`` but not
    ``/staticky``: a plain ``startswith`` would silently unprotect neighbours. A pattern must
    match the whole path (``re.fullmatch``): ``r"/health"`` covers neither ``/health/x`` nor
    ``"/health\\n"``; write ``r"/static/.*"`` for everything below a prefix.

    An instance is false when it holds nothing, so callers on a hot path can skip the lookup.

    :param names: how the three are called where the user wrote them, for error messages.
    """

    __slots__ = ("exact", "patterns", "prefixes")

    def __init__(
        self,
        exact: str | Iterable[str] = (),
        prefixes: str | Iterable[str] = (),
        patterns: str | re.Pattern[str] | Iterable[str | re.Pattern[str]] = (),
        *,
        names: tuple[str, str, str] = ("exclude", "exclude_prefixes", "patterns"),
    ) -> None:
        self.exact = frozenset(checked_paths(names[0], exact))
        self.prefixes = tuple(prefix.rstrip("/") for prefix in checked_paths(names[1], prefixes))
        self.patterns = checked_patterns(names[2], patterns)

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes or self.patterns)

    def __contains__(self, path: str) -> bool:
        if path in self.exact:
            return True
        if self.prefixes and any(
            not prefix or path == prefix or path.startswith(prefix + "/")
            for prefix in self.prefixes
        ):
            return True
        return bool(self.patterns) and any(pattern.fullmatch(path) for pattern in self.patterns)

    def __repr__(self) -> str:
        patterns = [pattern.pattern for pattern in self.patterns]
        return (
            f"ExcludedPaths(exact={sorted(self.exact)!r}, prefixes={list(self.prefixes)!r}, "
            f"patterns={patterns!r})"
        )
