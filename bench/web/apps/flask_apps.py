"""Flask variants, built by ``create_app(variant)``.

Served as ``gunicorn "apps.flask_apps:create_app('bare')"`` (or ``'guard'``, ``'sdk'``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request

from apps import ANONYMOUS, sdk_options

VARIANTS = ("bare", "guard", "sdk")


def create_app(variant: str) -> Flask:
    """``bare`` (ceiling), ``guard`` (clerk-guard decorator) or ``sdk`` (clerk-backend-api)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}.")
    app = Flask(__name__)

    if variant == "bare":

        @app.get("/me")
        def me() -> dict[str, Any]:
            return ANONYMOUS

    elif variant == "guard":
        from clerk_guard import GuardConfig
        from clerk_guard.flask import ClerkGuard, clerk_required, get_auth

        ClerkGuard(app, config=GuardConfig.from_env())

        @app.get("/me")
        @clerk_required
        def me() -> dict[str, Any]:
            auth = get_auth()
            assert auth is not None
            return {"user_id": auth.user_id}

    else:
        from clerk_backend_api.security import authenticate_request

        options = sdk_options()

        @app.before_request
        def clerk_sdk() -> Any:
            state = authenticate_request(request, options)  # type: ignore[arg-type]
            if not state.is_signed_in:
                return {"error": "Unauthorized"}, 401
            g.clerk_payload = state.payload
            return None

        @app.get("/me")
        def me() -> dict[str, Any]:
            return {"user_id": g.clerk_payload["sub"]}

    return app
