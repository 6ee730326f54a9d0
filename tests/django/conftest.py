"""Configure Django for the tests in this folder (no pytest-django needed).

``settings.configure()`` is used instead of ``DJANGO_SETTINGS_MODULE`` so that nothing leaks into
the environment of the example servers started by the integration tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

try:
    import django
except ImportError:  # the core-only test run: skip this folder
    collect_ignore_glob = ["*"]
else:
    ROOT = Path(__file__).resolve().parents[2]
    if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) leaves the root out
        sys.path.insert(0, str(ROOT))

    from django.conf import settings

    if not settings.configured:
        from tests.django import settings as test_settings

        settings.configure(
            **{name: getattr(test_settings, name) for name in dir(test_settings) if name.isupper()}
        )
        django.setup()

    @pytest.fixture(autouse=True)
    def _fresh_guards(monkeypatch):
        """Each test builds its guards anew from the settings, with no CLERK_* environment."""
        from clerk_guard.django.conf import state

        for name in [name for name in os.environ if name.startswith("CLERK_")]:
            monkeypatch.delenv(name)
        state.reset()
        yield
        state.reset()

    @pytest.fixture
    def issuer():
        """The LocalIssuer the test settings trust (publishable key and PEM key)."""
        from tests.django.settings import ISSUER

        return ISSUER

    @pytest.fixture
    def anyio_backend():
        """Django's async client runs on asyncio."""
        return "asyncio"

    @pytest.fixture(params=["with-middleware", "without-middleware"])
    def middleware(request):
        """Behind ClerkGuardMiddleware, or without it (decorators and DRF verify on their own)."""
        from django.test import override_settings

        if request.param == "with-middleware":
            yield request.param
        else:
            with override_settings(MIDDLEWARE=[]):
                yield request.param

    @pytest.fixture(params=["sync-client", "async-client"])
    def fetch(request):
        """GET through Django's test Client (WSGI-like) or AsyncClient (ASGI), with a Bearer
        token, a session cookie, or extra headers."""
        import asyncio

        from django.test import AsyncClient, Client

        def do(path, *, token=None, cookies=None, headers=None):
            all_headers = dict(headers or {})
            if token is not None:
                all_headers["Authorization"] = f"Bearer {token}"
            if request.param == "sync-client":
                client = Client()
                client.cookies.load(cookies or {})
                return client.get(path, headers=all_headers)
            aclient = AsyncClient()
            aclient.cookies.load(cookies or {})
            return asyncio.run(aclient.get(path, headers=all_headers))

        do.kind = request.param
        return do
