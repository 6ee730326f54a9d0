"""The applications of the web benchmark (bench/web/run.py starts them, one server each).

Every app answers ``GET /me`` with ``{"user_id": ...}``: the verified user for the protected
variants, ``"anonymous"`` for the bare ones (the ceiling). Configuration comes from the
environment the harness sets:

- ``CLERK_PUBLISHABLE_KEY``, ``CLERK_JWKS_URL``, ``CLERK_AUTHORIZED_PARTIES``: clerk-guard
  (``GuardConfig.from_env()``), pointed at the harness's loopback JWKS server.
- ``BENCH_JWT_KEY`` (PEM) and ``BENCH_AUTHORIZED_PARTIES``: clerk-backend-api's
  ``authenticate_request``, networkless (its JWKS mode can only reach api.clerk.com).
- ``BENCH_JWKS_URL``: fastapi-clerk-auth's ``ClerkConfig(jwks_url=...)``.
"""

from __future__ import annotations

import os

ANONYMOUS = {"user_id": "anonymous"}


def sdk_options() -> object:
    """clerk-backend-api options: the PEM key (networkless) and the authorized parties."""
    from clerk_backend_api.security.types import AuthenticateRequestOptions

    return AuthenticateRequestOptions(
        jwt_key=os.environ["BENCH_JWT_KEY"],
        authorized_parties=os.environ["BENCH_AUTHORIZED_PARTIES"].split(","),
    )
