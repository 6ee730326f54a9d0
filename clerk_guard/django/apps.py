"""The Django app: add ``"clerk_guard.django"`` to ``INSTALLED_APPS`` for the system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class ClerkGuardAppConfig(AppConfig):
    """Registers clerk-guard's system checks (see :mod:`clerk_guard.django.checks`)."""

    name = "clerk_guard.django"
    label = "clerk_guard"
    verbose_name = "clerk-guard"

    def ready(self) -> None:
        from .checks import check_settings

        checks.register(check_settings, "clerk_guard")
