"""Paths that skip verification, matched the same way by every adapter."""

from __future__ import annotations

from collections.abc import Iterable

from ._errors import ConfigurationError

__all__ = ["ExcludedPaths", "checked_paths"]


def checked_paths(name: str, paths: str | Iterable[str]) -> tuple[str, ...]:
    """Validate path settings: each starts with ``/``; one string is one path."""
    items = (paths,) if isinstance(paths, str) else tuple(paths)
    for item in items:
        if not isinstance(item, str) or not item.startswith("/"):  # type: ignore[redundant-expr]
            raise ConfigurationError(f"{name} holds paths starting with '/'; got {item!r}.")
    return items


class ExcludedPaths:
    """Exact paths, plus prefixes matched on whole segments.

    A prefix ``"/static"`` (or ``"/static/"``) covers ``/static`` and ``/static/app.js`` but not
    ``/staticky``: a plain ``startswith`` would silently unprotect neighbours.
    """

    def __init__(
        self,
        exact: str | Iterable[str] = (),
        prefixes: str | Iterable[str] = (),
        *,
        names: tuple[str, str] = ("exclude", "exclude_prefixes"),
    ) -> None:
        self.exact = frozenset(checked_paths(names[0], exact))
        self.prefixes = tuple(prefix.rstrip("/") for prefix in checked_paths(names[1], prefixes))

    def __contains__(self, path: str) -> bool:
        if path in self.exact:
            return True
        return bool(self.prefixes) and any(
            not prefix or path == prefix or path.startswith(prefix + "/")
            for prefix in self.prefixes
        )
