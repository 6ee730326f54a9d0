"""Django settings for clerk-guard's Django tests: the middleware on, networkless keys."""

from __future__ import annotations

import importlib.util

from clerk_guard.testing import LocalIssuer

#: The issuer every test token comes from; its PEM key makes verification networkless.
ISSUER = LocalIssuer(frontend_api="clerk.django-tests.test")

HAS_DRF = importlib.util.find_spec("rest_framework") is not None

SECRET_KEY = "clerk-guard-tests"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
DATABASES: dict[str, dict[str, str]] = {}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    *(["rest_framework"] if HAS_DRF else []),
    "clerk_guard.django",
]
MIDDLEWARE = ["clerk_guard.django.middleware.ClerkGuardMiddleware"]
ROOT_URLCONF = "tests.django.urls"
LOGIN_URL = "/login/"  # never used: clerk-guard answers 401, not a redirect

CLERK_GUARD_PUBLISHABLE_KEY = ISSUER.publishable_key
CLERK_GUARD_JWT_KEY = ISSUER.public_pem

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["clerk_guard.django.drf.ClerkAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
