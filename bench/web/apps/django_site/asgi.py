"""ASGI entry point: ``uvicorn apps.django_site.asgi:application``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.django_site.settings")
os.environ["BENCH_DJANGO_SERVER"] = "asgi"
application = get_asgi_application()
