"""The error an adapter raises when its framework, an optional extra, is not installed."""

from __future__ import annotations

__all__ = ["missing_extra"]


def missing_extra(module: str, framework: str, extra: str, exc: ImportError) -> ImportError:
    """An ``ImportError`` naming the extra to install; raise it ``from exc``.

    :param module: the adapter, e.g. ``"clerk_guard.fastapi"``.
    :param framework: what it needs, e.g. ``"FastAPI"``.
    :param extra: the clerk-guard extra that installs it, e.g. ``"fastapi"``.
    :param exc: the original error, whose text is kept (a broken install reads differently
        from a missing one).
    """
    return ImportError(
        f"{module} needs {framework}, which could not be imported ({exc}). Install it with: "
        f'pip install "clerk-guard[{extra}]"',
        name=exc.name,
    )
