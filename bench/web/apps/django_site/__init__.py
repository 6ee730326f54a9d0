"""A minimal Django site for the web benchmark: one view, ``GET /me``.

``BENCH_DJANGO_VARIANT`` picks the middleware (``bare``, ``guard`` or ``sdk``) and
``BENCH_DJANGO_SERVER`` (``wsgi`` or ``asgi``) picks a sync or an async view, so neither server
pays for a sync/async switch in the view itself.
"""
