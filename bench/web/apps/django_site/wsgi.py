"""WSGI entry point: ``gunicorn apps.django_site.wsgi:application``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.django_site.settings")
os.environ["BENCH_DJANGO_SERVER"] = "wsgi"
application = get_wsgi_application()
