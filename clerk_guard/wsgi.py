"""Pure WSGI middleware: verify Clerk session tokens in front of any WSGI application.

Needs only the standard library and the core, so it works under any WSGI framework and
server::

    from clerk_guard.wsgi import ClerkGuardWSGIMiddleware

    application = ClerkGuardWSGIMiddleware(application, exclude=["/health"])

Each verified request carries the result in ``environ["clerk_guard.auth"]`` (a
:class:`~clerk_guard.SessionAuth`, or ``None`` when no check was made or no token was needed).
"""

from __future__ import annotations

import http
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from clerk_guard import (
    ClerkGuardError,
    ErrorResponse,
    Guard,
    GuardConfig,
    SessionAuth,
    error_response,
    split_joined_authorization,
)
from clerk_guard.adapter import ExcludedPaths, build_guard

if TYPE_CHECKING:
    import httpx
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "ENVIRON_KEY",
    "ClerkGuardWSGIMiddleware",
    "get_auth",
    "header_lines",
    "is_preflight",
    "render",
]

#: Where the verified :class:`~clerk_guard.SessionAuth` (or ``None``) is put in the environ.
ENVIRON_KEY = "clerk_guard.auth"


def header_lines(environ: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The raw ``Authorization`` and ``Cookie`` lines of a WSGI request (or Django's ``META``).

    Servers join repeated header lines into one ``HTTP_*`` value: see
    :func:`~clerk_guard.split_joined_authorization` for how it is split back.
    """
    authorization = environ.get("HTTP_AUTHORIZATION")
    cookie = environ.get("HTTP_COOKIE")
    return (
        split_joined_authorization(authorization) if isinstance(authorization, str) else [],
        [cookie] if isinstance(cookie, str) else [],
    )


def is_preflight(environ: Mapping[str, Any]) -> bool:
    """Whether the request is a CORS preflight: ``OPTIONS`` with ``Access-Control-Request-Method``.

    Browsers never send credentials on a preflight, so protect-everything modes let it through.
    """
    return (
        environ.get("REQUEST_METHOD") == "OPTIONS"
        and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
    )


def render(response: ErrorResponse, start_response: StartResponse) -> list[bytes]:
    """Send an :class:`~clerk_guard.ErrorResponse` through WSGI's ``start_response``."""
    status = f"{response.status} {http.HTTPStatus(response.status).phrase}"
    headers = [*response.headers, ("content-length", str(len(response.body)))]
    start_response(status, headers)
    return [response.body]


class ClerkGuardWSGIMiddleware:
    """WSGI middleware that verifies the session token of every request.

    With ``required=True`` (the default) every path except the excluded ones needs a valid
    token; failures are answered as contract §5 says (401 with ``WWW-Authenticate``, or 503 with
    ``Retry-After`` when no keys can be loaded) and never reach the application. CORS
    preflights (``OPTIONS`` with ``Access-Control-Request-Method``, sent by browsers without
    credentials) pass unverified, with ``environ["clerk_guard.auth"] = None``. With
    ``required=False`` (attach-only) a request without a token passes with
    ``environ["clerk_guard.auth"] = None``; a token that is sent but fails is still answered
    401, so a forged or expired token never passes as signed out.

    Give either ``guard`` (a :class:`~clerk_guard.Guard` you share and close yourself),
    ``config`` (a :class:`~clerk_guard.GuardConfig`), or the ``GuardConfig`` fields as keyword
    arguments; with none of them the configuration is read with :meth:`GuardConfig.from_env`.
    The guard is thread-safe: under a threaded server, a cold start fetches the keys once.

    :param app: the WSGI application to protect.
    :param exclude: exact paths (``PATH_INFO``) passed through unverified, with
        ``environ["clerk_guard.auth"] = None``.
    :param exclude_prefixes: path prefixes passed through unverified, matched on whole
        segments: ``"/static"`` covers ``/static/app.js`` but not ``/staticky``.
    :param required: whether a token is needed on every path that is not excluded.
    :param warm_up: fetch the keys now, so the first request does not wait. A failure is
        logged and the first request that needs the keys tries again.
    :param transport: an ``httpx`` transport for the key fetch, when the guard is built here.

    .. note::
        Put CORS handling outside this middleware (wrap this one in it), so that it answers
        the preflights.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        guard: Guard | None = None,
        config: GuardConfig | None = None,
        exclude: str | Iterable[str] = (),
        exclude_prefixes: str | Iterable[str] = (),
        required: bool = True,
        warm_up: bool = False,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self._finalizer: weakref.finalize[[], ClerkGuardWSGIMiddleware] | None = None
        guard, built_here = build_guard(
            Guard, guard, config, transport, options, owner="ClerkGuardWSGIMiddleware"
        )
        if built_here:
            # We built it, so we close it: on close() or when the middleware is collected.
            self._finalizer = weakref.finalize(self, guard.close)
        self.guard = guard
        self.excluded = ExcludedPaths(exclude, exclude_prefixes)
        self.required = required
        # Without exclusions (and with is_excluded not overridden) no path can match: requests
        # then skip the call.
        self._may_exclude = bool(self.excluded) or (
            type(self).is_excluded is not ClerkGuardWSGIMiddleware.is_excluded
        )
        if warm_up:
            guard.try_warm_up()

    def is_excluded(self, path: str) -> bool:
        """Whether requests to ``path`` skip verification."""
        return path in self.excluded

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if (self._may_exclude and self.is_excluded(path)) or (
            self.required and is_preflight(environ)
        ):
            environ[ENVIRON_KEY] = None
            return self.app(environ, start_response)
        authorization, cookies = header_lines(environ)
        try:
            auth: SessionAuth | None = self.guard.authenticate(
                authorization, cookies, required=self.required
            )
        except ClerkGuardError as exc:
            debug = self.guard.config.debug
            return render(error_response(exc, path=path, debug=debug), start_response)
        environ[ENVIRON_KEY] = auth
        return self.app(environ, start_response)

    def close(self) -> None:
        """Close the guard's key client, when this middleware built the guard."""
        if self._finalizer is not None:
            self._finalizer()


def get_auth(environ: Mapping[str, Any]) -> SessionAuth | None:
    """The session the middleware verified for this request, or ``None``."""
    auth = environ.get(ENVIRON_KEY)
    return auth if isinstance(auth, SessionAuth) else None
