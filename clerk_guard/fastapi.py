"""FastAPI dependencies: the verified Clerk session as a parameter, a bearer scheme in OpenAPI.

::

    from typing import Annotated

    from fastapi import Depends, FastAPI

    from clerk_guard import GuardConfig, SessionAuth
    from clerk_guard.fastapi import ClerkAuth, install_error_handler

    clerk = ClerkAuth(config=GuardConfig.from_env())
    admin = clerk.require(role="org:admin")

    app = FastAPI()
    install_error_handler(app)  # needed for the exact contract §5 bodies

    @app.get("/me")
    async def me(auth: Annotated[SessionAuth, Depends(clerk)]) -> dict[str, str]:
        return {"user_id": auth.user_id}

.. important::
    Call :func:`install_error_handler` on the app. Without it FastAPI's own handler renders the
    rejections: the status and headers (``WWW-Authenticate``, ``Retry-After``) are right, but
    the body is ``{"detail": "<message>"}`` instead of contract §5's
    ``{"error": ..., "message": ...}``.

The dependencies reuse the result of :class:`~clerk_guard.asgi.ClerkGuardMiddleware` when it
ran for the request, and verify on their own otherwise: with their own guard, or with the
middleware's on the paths it skips. They take an ``HTTPConnection``, so they work on WebSocket
routes too: there a failure closes the handshake with code 1008.
"""

from __future__ import annotations

from typing import Any, NoReturn

import httpx

try:
    from fastapi import FastAPI
    from fastapi.exceptions import HTTPException, WebSocketException
    from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
    from fastapi.security.base import SecurityBase
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import Response
except ImportError as exc:  # the extra is not installed: say which one
    from clerk_guard.adapter import missing_extra

    raise missing_extra("clerk_guard.fastapi", "FastAPI", "fastapi", exc) from exc

from clerk_guard import (
    AsyncGuard,
    ClerkGuardError,
    ErrorResponse,
    GuardConfig,
    SessionAuth,
    check_requirements,
    error_response,
)
from clerk_guard.adapter import build_guard

from .asgi import WS_POLICY_VIOLATION, authenticate_scope, route_path, scope_debug
from .starlette import render_error

__all__ = [
    "ClerkAuth",
    "ClerkGuardHTTPException",
    "OptionalClerkAuth",
    "clerk_guard_exception_handler",
    "install_error_handler",
    "render_error",
]

_DESCRIPTION = (
    "A Clerk session token: `Authorization: Bearer <token>`, or the `__session` cookie that "
    "Clerk's frontend sets."
)


class ClerkGuardHTTPException(HTTPException):
    """A rejection carrying the exact answer of contract §5 in :attr:`error`.

    :func:`install_error_handler` renders it as is. Without that handler FastAPI's default one
    still sends the right status and headers, with the body ``{"detail": <message>}``.
    """

    def __init__(self, error: ErrorResponse) -> None:
        headers = {name: value for name, value in error.headers if name != "content-type"}
        super().__init__(status_code=error.status, detail=error.data["message"], headers=headers)
        self.error = error


async def clerk_guard_exception_handler(request: Request, exc: Exception) -> Response:
    """Exception handler answering :class:`ClerkGuardHTTPException` with its contract §5 body."""
    if not isinstance(exc, ClerkGuardHTTPException):  # pragma: no cover - registered for it only
        raise exc
    return render_error(exc.error)


def install_error_handler(app: FastAPI) -> None:
    """Register :func:`clerk_guard_exception_handler`, so rejections carry contract §5 bodies."""
    app.add_exception_handler(ClerkGuardHTTPException, clerk_guard_exception_handler)


class _ClerkDependency(SecurityBase):
    """Shared machinery: where the guard comes from, reuse of the middleware, rendering."""

    def __init__(
        self,
        guard: AsyncGuard | None = None,
        *,
        config: GuardConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        scheme_name: str = "ClerkBearer",
        description: str = _DESCRIPTION,
        **options: Any,
    ) -> None:
        self._owns_guard = False
        if guard is not None or config is not None or options:
            guard, self._owns_guard = build_guard(
                AsyncGuard, guard, config, transport, options, owner=type(self).__name__
            )
        #: The guard used when ClerkGuardMiddleware did not check the request; ``None`` when this
        #: dependency relies on the middleware (its result, or its guard on paths it skips).
        self.guard = guard
        self.model = HTTPBearerModel(bearerFormat="JWT", description=description)
        self.scheme_name = scheme_name
        self._description = description

    async def aclose(self) -> None:
        """Close the key client of a guard built here (call it at application shutdown); a
        guard passed in is left to its owner."""
        if self.guard is not None and self._owns_guard:
            await self.guard.aclose()

    async def _authenticate(self, conn: HTTPConnection, *, required: bool) -> SessionAuth | None:
        try:
            return await authenticate_scope(
                conn.scope, self.guard, required=required, owner=type(self).__name__
            )
        except ClerkGuardError as exc:
            self._reject(conn, exc)

    def _reject(self, conn: HTTPConnection, exc: ClerkGuardError) -> NoReturn:
        """Raise the rejection: contract §5's answer, or a 1008 close on a WebSocket. Its debug
        flag is the guard's (this dependency's own, else the middleware's)."""
        scope = conn.scope
        error = error_response(exc, path=route_path(scope), debug=scope_debug(scope, self.guard))
        if scope["type"] == "websocket":
            raise WebSocketException(code=WS_POLICY_VIOLATION, reason=error.data["error"])
        raise ClerkGuardHTTPException(error)


class ClerkAuth(_ClerkDependency):
    """Dependency returning the verified :class:`~clerk_guard.SessionAuth`; 401 without one.

    .. important::
        Call :func:`install_error_handler` on the app for contract §5's exact bodies; without it
        FastAPI answers ``{"detail": "<message>"}`` (with the right status and headers).

    With ``role``, ``permission``, ``feature`` or ``plan`` (checked as
    :meth:`SessionAuth.has`, all of them must hold), a signed-in user who lacks one gets 403.

    Give ``guard``, ``config`` or the ``GuardConfig`` fields to verify without the middleware;
    with none of them, :class:`~clerk_guard.asgi.ClerkGuardMiddleware` must be installed.
    Appears in OpenAPI as an HTTP bearer scheme named ``scheme_name``.
    """

    def __init__(
        self,
        guard: AsyncGuard | None = None,
        *,
        config: GuardConfig | None = None,
        role: str | None = None,
        permission: str | None = None,
        feature: str | None = None,
        plan: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        scheme_name: str = "ClerkBearer",
        description: str = _DESCRIPTION,
        **options: Any,
    ) -> None:
        super().__init__(
            guard,
            config=config,
            transport=transport,
            scheme_name=scheme_name,
            description=description,
            **options,
        )
        given = {"role": role, "permission": permission, "feature": feature, "plan": plan}
        conditions = {name: value for name, value in given.items() if value is not None}
        #: Every set of conditions the session must meet: this dependency's, after those of the
        #: dependencies it was derived from with :meth:`require`.
        self.requirements: tuple[dict[str, str], ...] = (conditions,) if conditions else ()

    def require(
        self,
        *,
        role: str | None = None,
        permission: str | None = None,
        feature: str | None = None,
        plan: str | None = None,
    ) -> ClerkAuth:
        """A dependency sharing this one's guard that requires this one's conditions and these.

        ``clerk.require(role="org:admin").require(permission="org:invoices:read")`` needs both.
        """
        derived = ClerkAuth(
            self.guard,
            role=role,
            permission=permission,
            feature=feature,
            plan=plan,
            scheme_name=self.scheme_name,
            description=self._description,
        )
        derived.requirements = self.requirements + derived.requirements
        return derived

    def optional(self) -> OptionalClerkAuth:
        """A dependency sharing this one's guard that returns ``None`` when there is no token."""
        return OptionalClerkAuth(
            self.guard, scheme_name=self.scheme_name, description=self._description
        )

    async def __call__(self, conn: HTTPConnection) -> SessionAuth:
        auth = await self._authenticate(conn, required=True)
        assert auth is not None  # noqa: S101 - required=True raises instead
        try:
            for conditions in self.requirements:
                check_requirements(auth, **conditions)
        except ClerkGuardError as exc:
            self._reject(conn, exc)
        return auth


class OptionalClerkAuth(_ClerkDependency):
    """Dependency returning the verified session, or ``None`` when the request has no token.

    A token that is sent and fails is still answered with 401: it never becomes ``None`` or a
    partly filled result. A pending session counts as signed out (``None``).
    """

    async def __call__(self, conn: HTTPConnection) -> SessionAuth | None:
        return await self._authenticate(conn, required=False)
