"""Minimal settings: no apps, no database, one middleware at most."""

from __future__ import annotations

import os

VARIANT = os.environ.get("BENCH_DJANGO_VARIANT", "bare")
SERVER = os.environ.get("BENCH_DJANGO_SERVER", "wsgi")

SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
ROOT_URLCONF = "apps.django_site.urls"
USE_TZ = True
APPEND_SLASH = False
LOGGING_CONFIG = None

_MIDDLEWARE = {
    "bare": [],
    # clerk-guard, configured from the CLERK_* environment; protect-all so a bad token is a 401.
    "guard": ["clerk_guard.django.middleware.ClerkGuardMiddleware"],
    "sdk": ["apps.django_site.middleware.ClerkSDKMiddleware"],
}
MIDDLEWARE = _MIDDLEWARE[VARIANT]
CLERK_GUARD_PROTECT_ALL = True
