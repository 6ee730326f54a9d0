"""Settings for the clerk-guard example: every route needs a Clerk session unless marked.

clerk-guard is configured by ``GuardConfig.from_env()``: set ``CLERK_PUBLISHABLE_KEY`` (enough on
its own), and optionally ``CLERK_JWKS_URL``, ``CLERK_JWT_KEY``, ``CLERK_AUTHORIZED_PARTIES``…
``manage.py check`` reports a wrong or missing key with its id (``clerk_guard.E00x``).
"""

from __future__ import annotations

import os

from clerk_guard import GuardConfig

# The package name differs when run from manage.py's folder (``mysite``) and from the repository
# root (``examples.django_project.mysite``): derive module paths from wherever we are.
_PACKAGE = __name__.rpartition(".")[0]

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-do-not-deploy")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "clerk_guard.django",  # system checks for the configuration
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "clerk_guard.django.middleware.ClerkGuardMiddleware",
]

ROOT_URLCONF = f"{_PACKAGE}.urls"
WSGI_APPLICATION = f"{_PACKAGE}.wsgi.application"
APPEND_SLASH = False
DATABASES: dict[str, dict[str, str]] = {}  # no database: Clerk users are stateless
USE_TZ = True

# clerk-guard ---------------------------------------------------------------------------------
# The whole configuration from the CLERK_* environment variables, read when first needed.
CLERK_GUARD_CONFIG = GuardConfig.from_env
# Every view needs a session, except those marked login_not_required / clerk_optional.
CLERK_GUARD_PROTECT_ALL = True
# Regular expressions matching whole paths (re.fullmatch): r"/static/.*" for a prefix.
CLERK_GUARD_EXEMPT_PATHS = [r"/health"]
# Fetch the key set when the middleware loads, so the first request does not wait.
CLERK_GUARD_WARM_UP = os.environ.get("CLERK_GUARD_WARM_UP") == "1"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"clerk_guard": {"handlers": ["console"], "level": "INFO"}},
}
