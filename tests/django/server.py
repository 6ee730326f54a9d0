"""WSGI and ASGI entry points of the Django test project under real servers:
``gunicorn tests.django.server:wsgi`` and ``uvicorn tests.django.server:asgi``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.server_settings")

wsgi = get_wsgi_application()
asgi = get_asgi_application()
