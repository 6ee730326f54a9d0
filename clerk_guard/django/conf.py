"""clerk-guard's Django settings, and the guards built from them.

Settings are individual ``CLERK_GUARD_*`` names in ``settings.py``, read on every access so that
``override_settings`` works. The verification settings map one to one onto
:class:`~clerk_guard.GuardConfig` fields; any left unset come from the ``CLERK_*`` environment
variables (:meth:`GuardConfig.from_env`). Alternatively, ``CLERK_GUARD_CONFIG`` gives the whole
configuration: a :class:`GuardConfig`, or a callable returning one such as
``GuardConfig.from_env``.

The guards built from the settings are kept in :data:`state` and rebuilt after any
``CLERK_GUARD_*`` setting changes (Django's ``setting_changed`` signal, sent by
``override_settings``). Changes to environment variables are not watched.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import httpx
from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from clerk_guard._config import GuardConfig
from clerk_guard._errors import ConfigurationError
from clerk_guard._guard import AsyncGuard, Guard
from clerk_guard.wsgi import _warm as warm

__all__ = ["ClerkGuardSettings", "SettingError", "conf", "state"]

PREFIX = "CLERK_GUARD_"

#: Django setting -> GuardConfig field, for the settings passed through to the core.
CONFIG_SETTINGS: dict[str, str] = {
    "CLERK_GUARD_PUBLISHABLE_KEY": "publishable_key",
    "CLERK_GUARD_SECRET_KEY": "secret_key",
    "CLERK_GUARD_JWT_KEY": "jwt_key",
    "CLERK_GUARD_JWKS_URL": "jwks_url",
    "CLERK_GUARD_API_URL": "api_url",
    "CLERK_GUARD_ISSUER": "issuer",
    "CLERK_GUARD_AUTHORIZED_PARTIES": "authorized_parties",
    "CLERK_GUARD_AUDIENCE": "audience",
    "CLERK_GUARD_LEEWAY": "leeway",
    "CLERK_GUARD_ACCEPT_PENDING": "accept_pending",
    "CLERK_GUARD_DEBUG": "debug",
}

UserFactory = Callable[[Any, Any], Any]


class SettingError(ConfigurationError):
    """A Django-side setting is wrong; ``check_id`` is the system check id that reports it."""

    def __init__(self, message: str, *, check_id: str) -> None:
        super().__init__(message)
        self.check_id = check_id


class ClerkGuardSettings:
    """Typed access to the ``CLERK_GUARD_*`` settings; every property reads ``settings`` anew."""

    def _get(self, name: str, default: Any = None) -> Any:
        return getattr(django_settings, name, default)

    @property
    def config_setting(self) -> GuardConfig | Callable[[], GuardConfig] | None:
        """``CLERK_GUARD_CONFIG``: a whole :class:`GuardConfig`, or a callable making one."""
        return cast(
            "GuardConfig | Callable[[], GuardConfig] | None", self._get("CLERK_GUARD_CONFIG")
        )

    @property
    def publishable_key(self) -> str | None:
        """``CLERK_GUARD_PUBLISHABLE_KEY`` (else ``CLERK_PUBLISHABLE_KEY`` from the environment)."""
        return cast("str | None", self._get("CLERK_GUARD_PUBLISHABLE_KEY"))

    @property
    def secret_key(self) -> str | None:
        """``CLERK_GUARD_SECRET_KEY`` (else ``CLERK_SECRET_KEY``)."""
        return cast("str | None", self._get("CLERK_GUARD_SECRET_KEY"))

    @property
    def jwt_key(self) -> str | None:
        """``CLERK_GUARD_JWT_KEY``: PEM public key, networkless (else ``CLERK_JWT_KEY``)."""
        return cast("str | None", self._get("CLERK_GUARD_JWT_KEY"))

    @property
    def jwks_url(self) -> str | None:
        """``CLERK_GUARD_JWKS_URL`` (else ``CLERK_JWKS_URL``)."""
        return cast("str | None", self._get("CLERK_GUARD_JWKS_URL"))

    @property
    def api_url(self) -> str | None:
        """``CLERK_GUARD_API_URL`` (else ``CLERK_API_URL``, else ``https://api.clerk.com``)."""
        return cast("str | None", self._get("CLERK_GUARD_API_URL"))

    @property
    def issuer(self) -> str | None:
        """``CLERK_GUARD_ISSUER`` (else ``CLERK_ISSUER``, else derived from the publishable key)."""
        return cast("str | None", self._get("CLERK_GUARD_ISSUER"))

    @property
    def authorized_parties(self) -> Sequence[str] | str | None:
        """``CLERK_GUARD_AUTHORIZED_PARTIES``: allowed ``azp`` origins (list or comma-separated)."""
        return cast("Sequence[str] | str | None", self._get("CLERK_GUARD_AUTHORIZED_PARTIES"))

    @property
    def audience(self) -> Sequence[str] | str | None:
        """``CLERK_GUARD_AUDIENCE``: accepted ``aud`` values."""
        return cast("Sequence[str] | str | None", self._get("CLERK_GUARD_AUDIENCE"))

    @property
    def leeway(self) -> float | None:
        """``CLERK_GUARD_LEEWAY``: clock skew in seconds (default 5)."""
        return cast("float | None", self._get("CLERK_GUARD_LEEWAY"))

    @property
    def accept_pending(self) -> bool | None:
        """``CLERK_GUARD_ACCEPT_PENDING``: treat pending sessions as signed in (default False)."""
        return cast("bool | None", self._get("CLERK_GUARD_ACCEPT_PENDING"))

    @property
    def debug(self) -> bool | None:
        """``CLERK_GUARD_DEBUG``: put the rejection reason in 401 bodies. Never in production."""
        return cast("bool | None", self._get("CLERK_GUARD_DEBUG"))

    @property
    def protect_all(self) -> bool:
        """``CLERK_GUARD_PROTECT_ALL``: the middleware requires a session on every view, except
        views marked ``login_not_required`` or ``clerk_optional`` and the exempt paths."""
        value = self._get("CLERK_GUARD_PROTECT_ALL", False)
        if not isinstance(value, bool):
            raise SettingError(
                f"CLERK_GUARD_PROTECT_ALL must be True or False; got {value!r}.",
                check_id="clerk_guard.E016",
            )
        return value

    @property
    def warm_up(self) -> bool:
        """``CLERK_GUARD_WARM_UP``: fetch the key set when the middleware loads, so the first
        request does not wait (default False). A failure is logged and requests fetch again."""
        value = self._get("CLERK_GUARD_WARM_UP", False)
        if not isinstance(value, bool):
            raise SettingError(
                f"CLERK_GUARD_WARM_UP must be True or False; got {value!r}.",
                check_id="clerk_guard.E018",
            )
        return value

    @property
    def exempt_paths(self) -> tuple[re.Pattern[str], ...]:
        """``CLERK_GUARD_EXEMPT_PATHS``: regular expressions that must match the whole of
        ``request.path_info`` (``re.fullmatch``); matching requests are never refused by
        protect-all mode. ``r"/health"`` (or ``r"^/health$"``) exempts ``/health`` only, not
        ``/health/x`` nor ``"/health\\n"``; write ``r"/static/.*"`` for everything below a prefix.
        """
        value = self._get("CLERK_GUARD_EXEMPT_PATHS", ())
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise SettingError(
                "CLERK_GUARD_EXEMPT_PATHS must be a list of regular expressions such as "
                f"[r'/health', r'/static/.*']; got {value!r}.",
                check_id="clerk_guard.E014",
            )
        patterns = []
        for item in value:
            try:
                patterns.append(re.compile(item))
            except (re.error, TypeError) as exc:
                raise SettingError(
                    f"CLERK_GUARD_EXEMPT_PATHS holds {item!r}, which is not a regular expression "
                    f"({exc}).",
                    check_id="clerk_guard.E014",
                ) from None
        return tuple(patterns)

    @property
    def user_factory(self) -> UserFactory | None:
        """``CLERK_GUARD_USER``: a callable ``(request, auth) -> user``, or its dotted path, to put
        your own user object (for example a model instance) on ``request.user``. It is called
        lazily, on first use of ``request.user``. ``None`` (the default) gives a
        :class:`~clerk_guard.django.users.ClerkUser`, without any database query."""
        value = self._get("CLERK_GUARD_USER")
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = import_string(value)
            except ImportError as exc:
                raise SettingError(
                    f"CLERK_GUARD_USER could not be imported: {exc}",
                    check_id="clerk_guard.E015",
                ) from None
        if not callable(value):
            raise SettingError(
                f"CLERK_GUARD_USER must be a callable (request, auth) -> user, or its dotted "
                f"path; got {value!r}.",
                check_id="clerk_guard.E015",
            )
        return cast("UserFactory", value)

    @property
    def transport(self) -> Any:
        """``CLERK_GUARD_TRANSPORT``: an ``httpx`` transport for key fetches (tests pass
        ``LocalIssuer.transport()``). The sync path uses it if it is an ``httpx.BaseTransport``,
        the async path if it is an ``httpx.AsyncBaseTransport``."""
        value = self._get("CLERK_GUARD_TRANSPORT")
        if value is not None and not isinstance(
            value, (httpx.BaseTransport, httpx.AsyncBaseTransport)
        ):
            raise SettingError(
                f"CLERK_GUARD_TRANSPORT must be an httpx transport; got {type(value).__name__}.",
                check_id="clerk_guard.E017",
            )
        return value

    def explicit_config_settings(self) -> dict[str, Any]:
        """The GuardConfig fields given by ``CLERK_GUARD_*`` settings (``None`` means unset)."""
        values = {}
        for name, field in CONFIG_SETTINGS.items():
            value = self._get(name)
            if value is not None:
                values[field] = value
        return values

    def guard_config(self) -> GuardConfig:
        """Build the :class:`GuardConfig` the settings describe.

        :raises ConfigurationError: the settings (or environment) cannot work.
        """
        explicit = self.explicit_config_settings()
        given = self.config_setting
        if given is None:
            return GuardConfig.from_env(**explicit)
        if explicit:
            names = ", ".join(name for name, field in CONFIG_SETTINGS.items() if field in explicit)
            raise SettingError(
                f"CLERK_GUARD_CONFIG is set together with {names}: give the configuration one "
                "way only.",
                check_id="clerk_guard.E013",
            )
        if not isinstance(given, GuardConfig):
            if not callable(given):
                raise SettingError(
                    "CLERK_GUARD_CONFIG must be a GuardConfig or a callable returning one "
                    f"(such as GuardConfig.from_env); got {type(given).__name__}.",
                    check_id="clerk_guard.E012",
                )
            given = given()
            if not isinstance(given, GuardConfig):
                raise SettingError(
                    f"CLERK_GUARD_CONFIG returned {type(given).__name__}, not a GuardConfig.",
                    check_id="clerk_guard.E012",
                )
        return given


conf = ClerkGuardSettings()


class _State:
    """What the settings build, cached until a ``CLERK_GUARD_*`` setting changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config: GuardConfig | None = None
        self._guard: Guard | None = None
        self._async_guard: AsyncGuard | None = None
        self._exempt: tuple[re.Pattern[str], ...] | None = None
        self._user_factory: tuple[UserFactory | None] | None = None
        self._protect_all: bool | None = None
        self._warmed: Guard | None = None

    @property
    def config(self) -> GuardConfig:
        config = self._config
        if config is None:
            with self._lock:
                config = self._config
                if config is None:
                    config = self._config = conf.guard_config()
        return config

    @property
    def guard(self) -> Guard:
        """The shared sync :class:`Guard` (WSGI, sync views)."""
        guard = self._guard
        if guard is None:
            config, transport = self.config, conf.transport
            with self._lock:
                guard = self._guard
                if guard is None:
                    sync = transport if isinstance(transport, httpx.BaseTransport) else None
                    guard = self._guard = Guard(config, transport=sync)
        return guard

    @property
    def async_guard(self) -> AsyncGuard:
        """The shared :class:`AsyncGuard` (ASGI, async views); its HTTP client is per loop."""
        guard = self._async_guard
        if guard is None:
            config, transport = self.config, conf.transport
            with self._lock:
                guard = self._async_guard
                if guard is None:
                    async_ = transport if isinstance(transport, httpx.AsyncBaseTransport) else None
                    guard = self._async_guard = AsyncGuard(config, transport=async_)
        return guard

    @property
    def protect_all(self) -> bool:
        value = self._protect_all
        if value is None:
            value = self._protect_all = conf.protect_all
        return value

    @property
    def exempt_paths(self) -> tuple[re.Pattern[str], ...]:
        value = self._exempt
        if value is None:
            value = self._exempt = conf.exempt_paths
        return value

    @property
    def user_factory(self) -> UserFactory | None:
        value = self._user_factory
        if value is None:
            value = self._user_factory = (conf.user_factory,)
        return value[0]

    def warm_up(self) -> None:
        """Fetch the key set with the sync guard, once per guard built (the middleware calls it
        at load when ``CLERK_GUARD_WARM_UP`` is on). The :class:`AsyncGuard` shares the
        process-wide key store, so ASGI deployments start warm too. A failure is logged."""
        guard = self.guard
        with self._lock:
            if self._warmed is guard:
                return
            self._warmed = guard
        warm(guard)

    def reset(self) -> None:
        """Forget everything built; the next request rebuilds from the current settings."""
        with self._lock:
            guard = self._guard
            self._config = self._guard = self._async_guard = self._warmed = None
            self._exempt = self._user_factory = self._protect_all = None
        if guard is not None:
            guard.close()
        # The AsyncGuard is dropped, not closed: closing needs its event loop, which may be gone.


#: The shared guards and compiled settings.
state = _State()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(PREFIX):
        state.reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="clerk_guard.django.conf")
