"""Type-checked use of the public API (mypy --strict); never run."""

from __future__ import annotations

from clerk_guard import AsyncGuard, Guard, GuardConfig, SessionAuth, error_response
from clerk_guard.testing import LocalIssuer


def sync_use(issuer: LocalIssuer) -> str | None:
    config: GuardConfig = GuardConfig.from_env(leeway=2.0)
    with Guard(config, transport=issuer.transport()) as guard:
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
