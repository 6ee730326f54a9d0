"""clerk-guard's Django settings, and the guards built from them.

Settings are individual ``CLERK_GUARD_*`` names in ``settings.py``, read on every access so that
``override_settings`` works. The verification settings map one to one onto
:class:`~clerk_guard.GuardConfig` fields, one per row of the core's settings table (the README's
Configuration table): ``CLERK_GUARD_<FIELD>``, such as ``CLERK_GUARD_LEEWAY = 2.5``, given with
its Python type (a list, or one comma-separated string, for lists). Any left unset come from the
``CLERK_*`` environment variables (:meth:`GuardConfig.from_env`); the adapter's own settings
(``CLERK_GUARD_PROTECT_ALL``, ``CLERK_GUARD_EXEMPT_PATHS``, ...) are properties below.
Alternatively, ``CLERK_GUARD_CONFIG`` gives the whole configuration: a :class:`GuardConfig`, or
a callable returning one such as ``GuardConfig.from_env``.

The guards built from the settings are kept in :data:`state` and rebuilt after any
``CLERK_GUARD_*`` setting changes (Django's ``setting_changed`` signal, sent by
``override_settings``). Changes to environment variables are not watched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

import httpx
from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from clerk_guard import AsyncGuard, ConfigurationError, Guard, GuardConfig
from clerk_guard.adapter import PREFIX, SETTINGS, ExcludedPaths, parse, read_settings

__all__ = ["ClerkGuardSettings", "SettingError", "conf", "state"]

#: Django setting -> GuardConfig field, for the settings passed through to the core: one per
#: row of the core's settings table that is not given in code only.
CONFIG_SETTINGS: dict[str, str] = {
    setting.key: setting.name for setting in SETTINGS if setting.readable
}
_CORE_SETTINGS = {setting.name: setting for setting in SETTINGS if setting.readable}

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

    def __getattr__(self, name: str) -> Any:
        """The verification settings, one per row of the core's settings table: ``conf.leeway``
        is ``CLERK_GUARD_LEEWAY`` parsed, ``None`` when unset (then the ``CLERK_*`` environment
        variable, or the default, applies).

        :raises ConfigurationError: the setting does not have its type.
        """
        setting = _CORE_SETTINGS.get(name)
        if setting is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return setting.read(self._get, keys=True, env=False, text=False)

    def _adapter_flag(self, name: str, check_id: str) -> bool:
        """A ``True``/``False`` setting of the Django adapter (default ``False``)."""
        try:
            value: bool = parse("bool", self._get(name, False), name, text=False)
        except ConfigurationError as exc:
            raise SettingError(str(exc), check_id=check_id) from None
        return value

    @property
    def protect_all(self) -> bool:
        """``CLERK_GUARD_PROTECT_ALL``: the middleware requires a session on every view, except
        views marked ``login_not_required`` or ``clerk_optional`` and the exempt paths."""
        return self._adapter_flag("CLERK_GUARD_PROTECT_ALL", "clerk_guard.E016")

    @property
    def warm_up(self) -> bool:
        """``CLERK_GUARD_WARM_UP``: fetch the key set when the middleware loads, so the first
        request does not wait (default False). A failure is logged and requests fetch again."""
        return self._adapter_flag("CLERK_GUARD_WARM_UP", "clerk_guard.E018")

    @property
    def exempt_paths(self) -> ExcludedPaths:
        """``CLERK_GUARD_EXEMPT_PATHS``: regular expressions that must match the whole of
        ``request.path_info`` (``re.fullmatch``); matching requests are never refused by
        protect-all mode. ``r"/health"`` (or ``r"^/health$"``) exempts ``/health`` only, not
        ``/health/x`` nor ``"/health\\n"``; write ``r"/static/.*"`` for everything below a prefix.

        Returned as the core's path model (``path in conf.exempt_paths``), the one the other
        adapters' ``exclude=`` and ``exclude_prefixes=`` build.
        """
        name = "CLERK_GUARD_EXEMPT_PATHS"
        value = self._get(name, ())
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise SettingError(
                f"{name} must be a list of regular expressions such as "
                f"[r'/health', r'/static/.*']; got {value!r}.",
                check_id="clerk_guard.E014",
            )
        try:
            return ExcludedPaths(patterns=value, names=("", "", name))
        except ConfigurationError as exc:
            raise SettingError(str(exc), check_id="clerk_guard.E014") from None

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
        """The GuardConfig fields given by ``CLERK_GUARD_*`` settings, parsed (``None`` and
        blank strings mean unset).

        :raises ConfigurationError: a setting does not have its type.
        """
        return read_settings(self._get, keys=True, env=False, text=False)

    def guard_config(self) -> GuardConfig:
        """Build the :class:`GuardConfig` the settings describe.

        :raises ConfigurationError: the settings (or environment) cannot work.
        """
        given = self.config_setting
        if given is None:
            return GuardConfig.from_env(**self.explicit_config_settings())
        explicit = [name for name in CONFIG_SETTINGS if self._get(name) is not None]
        if explicit:
            names = ", ".join(explicit)
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
        self._exempt: ExcludedPaths | None = None
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
    def exempt_paths(self) -> ExcludedPaths:
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
        guard.try_warm_up()

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
