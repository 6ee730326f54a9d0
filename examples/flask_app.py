"""A Flask app protected by clerk-guard: the routes of contract §8, plus a protected blueprint.

Configured from the environment (``GuardConfig.from_env()``): set ``CLERK_PUBLISHABLE_KEY``
(enough on its own), and optionally ``CLERK_AUTHORIZED_PARTIES``, ``CLERK_JWKS_URL``, ...

Run it with ``flask --app examples.flask_app run`` or
``gunicorn --worker-class gthread --threads 8 examples.flask_app:app``.

- ``GET /public``: no token needed.
- ``GET /me``: a valid session token (``Authorization: Bearer …`` or the ``__session`` cookie).
- ``GET /admin``: a session in an organization with the role ``org:admin``; 403 otherwise.
- ``GET /billing/invoices`` and ``GET /billing/summary`` (an async view): the whole
  ``billing`` blueprint needs a session with the permission ``org:billing:read``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

from clerk_guard import GuardConfig
from clerk_guard.flask import ClerkGuard, clerk_required, current_auth, get_auth, protect_blueprint
from examples import session_summary

app = Flask(__name__)
ClerkGuard(app, config=GuardConfig.from_env())


@app.get("/public")
def public() -> dict[str, Any]:
    return {"ok": True}


@app.get("/me")
@clerk_required
def me() -> dict[str, Any]:
    auth = get_auth()
    assert auth is not None  # clerk_required guarantees a session
    return session_summary(auth)


@app.get("/admin")
@clerk_required(role="org:admin")
def admin() -> dict[str, Any]:
    return {"admin": True, "user_id": current_auth.user_id if current_auth else None}


billing = protect_blueprint(
    Blueprint("billing", __name__, url_prefix="/billing"), permission="org:billing:read"
)


@billing.get("/invoices")
def invoices() -> dict[str, Any]:
    auth = get_auth()
    return {"org_id": auth.org_id if auth else None, "invoices": []}


@billing.get("/summary")
async def summary() -> dict[str, Any]:
    auth = get_auth()
    return {"org_id": auth.org_id if auth else None, "total": 0}


app.register_blueprint(billing)
