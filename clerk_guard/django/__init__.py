"""Django support: middleware, view decorators, DRF classes and system checks.

Setup in ``settings.py``::

    INSTALLED_APPS = [..., "clerk_guard.django"]       # system checks
    MIDDLEWARE = [..., "clerk_guard.django.middleware.ClerkGuardMiddleware"]
    # Keys come from the CLERK_* environment variables (GuardConfig.from_env()), or from
    # CLERK_GUARD_* settings such as CLERK_GUARD_PUBLISHABLE_KEY.

Then use ``request.clerk`` (a :class:`~clerk_guard.SessionAuth` or ``None``), ``request.user``,
and the decorators of :mod:`clerk_guard.django.decorators`. DRF classes are in
:mod:`clerk_guard.django.drf`.

- ``request.user`` becomes the Clerk user only when it is anonymous or unset: a user signed in
  with a Django session (for the admin, say) stays ``request.user``; ``request.clerk`` still
  holds the Clerk session.
- ``CLERK_GUARD_WARM_UP = True`` fetches the key set when the middleware loads.
- ``CLERK_GUARD_EXEMPT_PATHS`` patterns match the whole path (``re.fullmatch``).
- In protect-all mode, CORS preflights pass unverified.

Typed projects can declare the attribute on their request class::

    class ClerkRequest(HttpRequest):
        clerk: SessionAuth | None

Importing this package imports only Django's top-level package (to say what to install when it
is missing) until you use a name below, so it is safe in ``INSTALLED_APPS`` before the app
registry is ready.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import django  # noqa: F401 - only to fail early, naming the extra
except ImportError as exc:  # the extra is not installed: say which one
    from clerk_guard.adapter import missing_extra

    raise missing_extra("clerk_guard.django", "Django", "django", exc) from exc

if TYPE_CHECKING:
    from clerk_guard.django.decorators import (
        clerk_optional,
        clerk_permission_required,
        clerk_required,
        clerk_role_required,
    )
    from clerk_guard.django.middleware import ClerkGuardMiddleware
    from clerk_guard.django.users import ClerkUser

__all__ = [
    "ClerkGuardMiddleware",
    "ClerkUser",
    "clerk_optional",
    "clerk_permission_required",
    "clerk_required",
    "clerk_role_required",
]

_LAZY = {
    "ClerkGuardMiddleware": "middleware",
    "ClerkUser": "users",
    "clerk_optional": "decorators",
    "clerk_permission_required": "decorators",
    "clerk_required": "decorators",
    "clerk_role_required": "decorators",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'clerk_guard.django' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
