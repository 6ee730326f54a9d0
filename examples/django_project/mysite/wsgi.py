"""WSGI entry point: ``gunicorn examples.django_project.mysite.wsgi:application``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

# Works imported as ``mysite.wsgi`` (from manage.py's folder) or from the repository root.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")

application = get_wsgi_application()
