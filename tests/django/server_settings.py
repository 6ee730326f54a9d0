"""Settings of the Django test project under real servers (test_django_integration.py): the
test URLs (DRF views included) in protect-all mode, configured from the CLERK_* environment."""

from __future__ import annotations

from clerk_guard import GuardConfig
from tests.django.settings import INSTALLED_APPS, REST_FRAMEWORK, ROOT_URLCONF

__all__ = ["INSTALLED_APPS", "REST_FRAMEWORK", "ROOT_URLCONF"]

SECRET_KEY = "clerk-guard-server-tests"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
USE_TZ = True
DATABASES: dict[str, dict[str, str]] = {}
MIDDLEWARE = ["clerk_guard.django.middleware.ClerkGuardMiddleware"]

CLERK_GUARD_CONFIG = GuardConfig.from_env
CLERK_GUARD_PROTECT_ALL = True
CLERK_GUARD_EXEMPT_PATHS = [r"/health"]
