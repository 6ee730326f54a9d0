"""ASGI entry point: ``uvicorn examples.django_project.mysite.asgi:application``.

Under ASGI, ``ClerkGuardMiddleware`` verifies tokens on the event loop (no thread per request).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

# Works imported as ``mysite.asgi`` (from manage.py's folder) or from the repository root.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")

application = get_asgi_application()
