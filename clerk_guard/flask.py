"""Flask extension: verify Clerk session tokens on routes, blueprints or the whole app.

::

    from flask import Flask
    from clerk_guard.flask import ClerkGuard, clerk_required, current_auth

    app = Flask(__name__)
    ClerkGuard(app)  # CLERK_* keys of app.config, else the environment

    @app.get("/me")
    @clerk_required
    def me():
        return {"user_id": current_auth.user_id}

Failures raise :class:`~clerk_guard.ClerkGuardError` subclasses, answered by error handlers the
extension registers (contract §5: 401, 403 or 503 with a JSON body). Register your own handler for
any of these classes to answer differently; yours wins over the extension's.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

try:
    from flask import Blueprint, Flask, Request, Response, current_app, g, request
    from werkzeug.local import LocalProxy
except ImportError as exc:  # the extra is not installed: say which one
    from clerk_guard.adapter import missing_extra

    raise missing_extra("clerk_guard.flask", "Flask", "flask", exc) from exc

from clerk_guard import (
    ClerkGuardError,
    ConfigurationError,
    Guard,
    GuardConfig,
    PermissionDeniedError,
    SessionAuth,
    check_requirements,
    error_response,
    log_failure,
    missing_token,
)
from clerk_guard.adapter import ExcludedPaths, build_guard, parse, read_settings

from .wsgi import header_lines, is_preflight

if TYPE_CHECKING:
    from flask.ctx import _AppCtxGlobals

__all__ = [
    "ClerkGuard",
    "ClerkGuardState",
    "clerk_required",
    "current_auth",
    "get_auth",
    "protect_blueprint",
    "require_auth",
]

F = TypeVar("F", bound=Callable[..., Any])

_EXTENSION_KEY = "clerk_guard"
_G_KEY = "_clerk_guard_auth"
# The per-request record of the result. g alone is not enough: it belongs to the application
# context, which a request reuses when one is already pushed (``with app.app_context():`` around
# test-client calls, or a context pushed at import under a single-threaded server), so a result
# kept only on g would answer the next request.
_ENVIRON_KEY = "clerk_guard.flask.auth"
_UNCHECKED = object()

# The functions behind Flask's context proxies (werkzeug's public ``_get_current_object``):
# one call gives the real app, ``g`` or request, where every attribute read through the proxy
# would look the context up again.
_current_app: Callable[[], Flask] = cast("LocalProxy[Flask]", current_app)._get_current_object
_current_g: Callable[[], _AppCtxGlobals] = cast("LocalProxy[_AppCtxGlobals]", g)._get_current_object
_current_request: Callable[[], Request] = cast("LocalProxy[Request]", request)._get_current_object

_GUARD_FIELDS = frozenset(f.name for f in dataclasses.fields(GuardConfig) if f.init)
# Extension option -> (app.config key, type), parsed as the core parses settings.
_OPTIONS: dict[str, tuple[str, str]] = {
    "protect_all": ("CLERK_GUARD_PROTECT_ALL", "bool"),
    "exclude": ("CLERK_GUARD_EXCLUDE", "list[str]"),
    "exclude_prefixes": ("CLERK_GUARD_EXCLUDE_PREFIXES", "list[str]"),
    "debug": ("CLERK_GUARD_DEBUG", "bool"),
    "warm_up": ("CLERK_GUARD_WARM_UP", "bool"),
}
_OTHER_OPTIONS = frozenset({"guard", "config", "transport"})


@dataclasses.dataclass(eq=False)
class ClerkGuardState:
    """What the extension keeps per application, in ``app.extensions["clerk_guard"]``."""

    #: Verifies the tokens; thread-safe and shared by every request of the app.
    guard: Guard
    #: Whether every request (except the excluded paths) needs a valid token.
    protect_all: bool
    #: Paths ``protect_all`` leaves unverified (prefixes match whole segments).
    excluded: ExcludedPaths
    #: Whether error bodies carry the rejection reason. Never in production.
    debug: bool

    def is_excluded(self, path: str) -> bool:
        """Whether ``protect_all`` leaves ``path`` unverified (prefixes match whole segments)."""
        return path in self.excluded


class ClerkGuard:
    """The Flask extension: ``ClerkGuard(app)``, or ``ClerkGuard()`` then ``init_app(app)``.

    The verification settings come from, first to last: ``guard=``, or ``config=`` (with any
    :class:`~clerk_guard.GuardConfig` fields given here overriding it); else the fields given
    here, then the app's config keys, then the environment itself. Each setting of the README's
    Configuration table is read from ``app.config`` as ``CLERK_GUARD_<NAME>``
    (``CLERK_GUARD_LEEWAY``) or under its environment variable's name (``CLERK_LEEWAY``), the
    first set winning; strings are parsed as the environment's are (``"true"``, ``"2.5"``,
    ``"https://a.example, https://b.example"``).

    Extension options, given here or as ``app.config`` keys (arguments win):

    - ``protect_all`` / ``CLERK_GUARD_PROTECT_ALL``: every request needs a valid token, except
      the paths in ``exclude`` / ``CLERK_GUARD_EXCLUDE`` (exact) and ``exclude_prefixes`` /
      ``CLERK_GUARD_EXCLUDE_PREFIXES``, and CORS preflights (``OPTIONS`` with
      ``Access-Control-Request-Method``, which browsers send without credentials). Default
      false: protect routes with :func:`clerk_required` and blueprints with
      :func:`protect_blueprint`.
    - ``debug`` / ``CLERK_GUARD_DEBUG``: put the rejection reason in error bodies. Never in
      production: it tells an attacker which check failed.
    - ``warm_up`` / ``CLERK_GUARD_WARM_UP``: fetch the key set in ``init_app`` so the first
      request does not wait. A failure is logged and the app starts anyway.

    :param transport: an ``httpx`` transport for the key fetch (tests).

    One extension object may serve several apps; each keeps its own state.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        unknown = set(options) - _GUARD_FIELDS - set(_OPTIONS) - _OTHER_OPTIONS
        if unknown:
            raise TypeError(f"ClerkGuard() got unexpected options: {', '.join(sorted(unknown))}.")
        self._options = options
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set up verification for ``app``: build its guard and register the error handlers.

        :raises RuntimeError: the extension is already registered on ``app``.
        :raises ConfigurationError: the settings cannot work; the message says what to change.
        """
        if _EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "ClerkGuard is already registered on this app: call ClerkGuard(app) or "
                "init_app(app) once per app."
            )
        guard, owned = self._build_guard(app.config)
        option = functools.partial(self._option, app.config)
        try:
            state = ClerkGuardState(
                guard=guard,
                protect_all=option("protect_all", False),
                excluded=ExcludedPaths(
                    option("exclude", ()),
                    option("exclude_prefixes", ()),
                    names=(_label("exclude"), _label("exclude_prefixes"), ""),
                ),
                debug=option("debug", guard.config.debug),
            )
            warm_up = option("warm_up", False)
        except BaseException:
            if owned:
                guard.close()
            raise
        if owned:
            # The app owns the key client from here on: closed when the app is collected.
            weakref.finalize(app, guard.close)
        app.extensions[_EXTENSION_KEY] = state
        # Ours covers the root class; any handler the app registers for a subclass is more
        # specific and wins, and one for the root itself replaces ours (or is kept, if first).
        if app.error_handler_spec[None][None].get(ClerkGuardError) is None:
            app.register_error_handler(ClerkGuardError, _handle_error)
        if state.protect_all:
            app.before_request(_protect_all)
        if warm_up:
            guard.try_warm_up()

    def _option(self, config: Mapping[str, Any], name: str, default: Any) -> Any:
        """An extension option: the argument, else its ``app.config`` key, else ``default``."""
        value = self._options[name] if name in self._options else config.get(_OPTIONS[name][0])
        if value is None:
            return default
        return parse(_OPTIONS[name][1], value, _label(name), text=True)

    def _build_guard(self, app_config: Mapping[str, Any]) -> tuple[Guard, bool]:
        """The app's guard, and whether the extension built it (and so must close it)."""
        options = self._options
        fields = {name: value for name, value in options.items() if name in _GUARD_FIELDS}
        guard, config = options.get("guard"), options.get("config")
        if guard is not None and not isinstance(guard, Guard):
            raise ConfigurationError("guard must be a clerk_guard.Guard (Flask is synchronous).")
        if guard is None and config is None:
            # Fields given here win over the app's keys (CLERK_GUARD_<NAME>, then the names of
            # the environment variables), which win over the environment.
            from_app = read_settings(app_config.get, keys=True, env=True, text=True)
            config = GuardConfig.from_env(**{**from_app, **fields})
            fields = {}
        return build_guard(
            Guard, guard, config, options.get("transport"), fields, owner="ClerkGuard"
        )


def _label(name: str) -> str:
    """An option as error messages name it: ``CLERK_GUARD_EXCLUDE (exclude)``."""
    return f"{_OPTIONS[name][0]} ({name})"


def _state() -> ClerkGuardState:
    state = _current_app().extensions.get(_EXTENSION_KEY)
    if state is None:
        raise RuntimeError(
            "ClerkGuard is not registered on this app: call ClerkGuard(app) or "
            "ClerkGuard().init_app(app) before serving requests."
        )
    result: ClerkGuardState = state
    return result


def _authenticate(
    *, required: bool, state: ClerkGuardState | None = None, req: Request | None = None
) -> SessionAuth | None:
    """Verify this request's token once; later calls reuse the result stored on ``g``.

    ``state`` and ``req`` are passed by callers that already hold them.
    """
    # The real objects behind Flask's proxies, each fetched once: every attribute read through
    # a proxy looks the context up again, and a few of those cost more than the cached
    # verification itself.
    if state is None:
        state = _state()
    if req is None:
        req = _current_request()
    cached = req.environ.get(_ENVIRON_KEY, _UNCHECKED)
    if isinstance(cached, SessionAuth) or (cached is None and not required):
        return cached
    # Not checked yet, or checked as optional with no session: ask the guard (again), which
    # then raises with the exact reason (missing, or a pending session).
    authorization, cookies = header_lines(req.environ)
    try:
        auth = state.guard.authenticate(authorization, cookies, required=required)
    except ClerkGuardError as exc:
        # Logged here, not in the handler, so apps that override the handler keep the log line.
        log_failure(exc, path=req.path)
        raise
    req.environ[_ENVIRON_KEY] = auth
    setattr(_current_g(), _G_KEY, auth)  # where views and extensions may read it
    return auth


def _authorize(optional: bool, conditions: Mapping[str, str], req: Request | None = None) -> None:
    auth = _authenticate(required=not optional, req=req)
    if auth is None or not conditions:  # optional=True, no session: conditions are refused
        return
    try:
        check_requirements(auth, **conditions)
    except PermissionDeniedError as exc:
        log_failure(exc, path=(req or _current_request()).path)
        raise


def _conditions(optional: bool, **given: str | None) -> dict[str, str]:
    """The conditions a decorator was given, checked at decoration time."""
    conditions = {name: value for name, value in given.items() if value is not None}
    if optional and conditions:
        names = ", ".join(f"{name}=" for name in conditions)
        raise TypeError(f"optional=True cannot be combined with {names}.")
    for name, value in conditions.items():
        if value == "":
            raise TypeError(f"{name} must be a non-empty string.")
    return conditions


def _protect_all() -> None:
    state = _state()
    req = _current_request()
    if not state.is_excluded(req.path) and not is_preflight(req.environ):
        _authenticate(required=True, state=state, req=req)


def _handle_error(exc: ClerkGuardError) -> Response:
    state = current_app.extensions.get(_EXTENSION_KEY)
    debug = state.debug if isinstance(state, ClerkGuardState) else False
    answer = error_response(exc, path=request.path, debug=debug, log=False)
    return current_app.response_class(
        answer.body, status=answer.status, headers=list(answer.headers)
    )


@overload
def clerk_required(view: F, /) -> F: ...


@overload
def clerk_required(
    *,
    optional: bool = False,
    role: str | None = None,
    permission: str | None = None,
    feature: str | None = None,
    plan: str | None = None,
) -> Callable[[F], F]: ...


def clerk_required(
    view: F | None = None,
    /,
    *,
    optional: bool = False,
    role: str | None = None,
    permission: str | None = None,
    feature: str | None = None,
    plan: str | None = None,
) -> F | Callable[[F], F]:
    """Require a verified Clerk session for a view; use bare or with arguments.

    ::

        @app.get("/me")
        @clerk_required
        def me(): ...

        @app.get("/admin")
        @clerk_required(role="org:admin")
        async def admin(): ...

    The result is then available from :data:`current_auth`, :func:`require_auth` (both typed
    ``SessionAuth``) and :func:`get_auth` (``SessionAuth | None``, for ``optional=True``).

    :param optional: let requests without a token through (:func:`get_auth` gives ``None``).
        A token that is sent but fails is still answered 401.
    :param role: the active organization role required (``"org:admin"`` or ``"admin"``);
        a signed-in user without it gets 403.
    :param permission: the organization permission required, such as ``"org:invoices:read"``;
        403 without it.
    :param feature: a Clerk Billing feature the session's plan must include, such as
        ``"user:export"`` or ``"org:seats"``; 403 without it.
    :param plan: the Clerk Billing plan required, such as ``"org:pro"``; 403 without it.

    Conditions are judged as :meth:`SessionAuth.has <clerk_guard.SessionAuth.has>` does, and
    all of those given must hold.
    """
    conditions = _conditions(optional, role=role, permission=permission, feature=feature, plan=plan)

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                _authorize(optional, conditions)
                return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _authorize(optional, conditions)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if view is not None:
        return decorate(view)
    return decorate


def protect_blueprint(
    blueprint: Blueprint,
    *,
    optional: bool = False,
    role: str | None = None,
    permission: str | None = None,
    feature: str | None = None,
    plan: str | None = None,
) -> Blueprint:
    """Require a verified session on every route of ``blueprint``, as :func:`clerk_required`.

    CORS preflights (``OPTIONS`` with ``Access-Control-Request-Method``, which browsers send
    without credentials) pass unverified. Call it before the blueprint is registered on an app.
    Returns the blueprint.
    """
    conditions = _conditions(optional, role=role, permission=permission, feature=feature, plan=plan)

    def clerk_guard_protect_blueprint() -> None:
        req = _current_request()
        if not is_preflight(req.environ):
            _authorize(optional, conditions, req)

    blueprint.before_request(clerk_guard_protect_blueprint)
    return blueprint


def get_auth() -> SessionAuth | None:
    """The verified session of the current request, or ``None`` when no token was sent.

    Reuses the result of :func:`clerk_required`, :func:`protect_blueprint` or ``protect_all``;
    on a route none of them covers, the token is verified on first use. A token that fails
    raises :class:`~clerk_guard.AuthenticationError` (answered 401 by the extension). Where a
    session is required, :func:`require_auth` gives it typed without ``None``.

    :raises RuntimeError: the extension is not registered on the current app.
    """
    # The common case, a route the decorator or protect_all covered: one lookup.
    cached = _current_request().environ.get(_ENVIRON_KEY, _UNCHECKED)
    if cached is None or isinstance(cached, SessionAuth):
        return cached
    return _authenticate(required=False)


def require_auth() -> SessionAuth:
    """The verified session of the current request; a request without one is answered 401.

    Typed :class:`~clerk_guard.SessionAuth`, never ``None``: for views that need a session.
    Under :func:`clerk_required`, :func:`protect_blueprint` or ``protect_all`` it is the session
    they verified (one lookup); elsewhere the token is verified on first use, as
    :func:`get_auth` does.

    :raises AuthenticationError: no token, a pending session (signed out) or a token that fails;
        the extension answers it with the 401 of contract §5.
    :raises RuntimeError: the extension is not registered on the current app.
    """
    cached = _current_request().environ.get(_ENVIRON_KEY, _UNCHECKED)
    if isinstance(cached, SessionAuth):
        return cached
    auth = _authenticate(required=True)
    if auth is None:  # pragma: no cover - required=True raises instead
        raise missing_token()
    return auth


class _SignedOut:
    """What :data:`current_auth` stands for on a request without a session: false in a test
    (``if current_auth:``), and reading any attribute answers 401 as :func:`require_auth`."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            # Protocol probes (markupsafe's __html__, copy, pickle) see a plain object.
            raise AttributeError(name)
        return getattr(require_auth(), name)

    def __repr__(self) -> str:
        return "<no Clerk session>"


_SIGNED_OUT = _SignedOut()


def _current_session() -> SessionAuth | _SignedOut:
    auth = get_auth()
    return auth if auth is not None else _SIGNED_OUT


#: The verified session of the current request, as a proxy for views and templates:
#: ``current_auth.user_id``. Typed :class:`~clerk_guard.SessionAuth`, as it is wherever a
#: session is required (:func:`clerk_required`, :func:`protect_blueprint`, ``protect_all``).
#: On a request without a session it is false (``if current_auth:``), and reading an attribute
#: answers 401 as :func:`require_auth` does; on optional routes use :func:`get_auth`, which
#: gives ``None``.
current_auth: SessionAuth = LocalProxy(_current_session)  # type: ignore[assignment]
