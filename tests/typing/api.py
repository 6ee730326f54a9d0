"""Type-checked use of the public API (mypy --strict); never run."""

from __future__ import annotations

from clerk_guard import AsyncGuard, Guard, GuardConfig, SessionAuth, error_response
from clerk_guard.testing import LocalIssuer


def sync_use(issuer: LocalIssuer) -> str | None:
    config: GuardConfig = GuardConfig.from_env(leeway=2.0)
    with Guard(config, transport=issuer.transport()) as guard:
        if not guard.try_warm_up():
            return None
        auth: SessionAuth | None = guard.authenticate(["Bearer x"], [], required=False)
        if auth is not None and auth.has(role="org:admin"):
            return auth.org_id
    return None


async def async_use() -> int:
    guard = AsyncGuard(publishable_key="pk_test_x")
    try:
        await guard.authenticate([], ["__session=x"])
    except Exception as exc:  # noqa: BLE001 - typing only
        from clerk_guard import ClerkGuardError

        if isinstance(exc, ClerkGuardError):
            return error_response(exc).status
    finally:
        await guard.aclose()
    return 200


async def adapter_seam(guard: AsyncGuard, authorization: list[str], cookies: list[str]) -> int:
    """What an adapter calls, in order (README, "Writing an adapter")."""
    from clerk_guard import ClerkGuardError, ErrorResponse, log_failure, missing_token

    ready: bool = await guard.try_warm_up()
    try:
        found, auth = guard.lookup(authorization, cookies)
        if auth is None:
            if found is None:
                raise missing_token()
            auth = await guard.verify(found[0], source=found[1])
    except ClerkGuardError as exc:
        log_failure(exc, path="/me")
        answer: ErrorResponse = error_response(exc, path="/me", debug=False, log=False)
        return answer.status
    return 200 if ready and auth.user_id else 204


def flask_typed_access() -> object:
    """Flask: current_auth and require_auth() are SessionAuth, get_auth() may be None."""
    from flask import Flask

    from clerk_guard.flask import ClerkGuard, clerk_required, current_auth, get_auth, require_auth

    app = Flask(__name__)
    ClerkGuard(app)

    @app.get("/me")
    @clerk_required
    def me() -> dict[str, str | None]:
        user_id: str = current_auth.user_id  # not Optional: no narrowing needed
        session: SessionAuth = require_auth()
        maybe: SessionAuth | None = get_auth()
        return {"user_id": user_id, "sid": session.session_id, "org": maybe and maybe.org_id}

    return app


async def starlette_typed_access(request: object) -> str:
    """Starlette/FastAPI: get_auth(request) may be None, require_auth(request) is SessionAuth."""
    from starlette.requests import Request

    from clerk_guard.starlette import get_auth, require_auth

    assert isinstance(request, Request)
    maybe: SessionAuth | None = get_auth(request)
    auth: SessionAuth = require_auth(request)
    return auth.user_id if maybe is None else maybe.user_id
