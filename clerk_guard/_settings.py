"""The settings table: each :class:`~clerk_guard.GuardConfig` setting written once.

A row gives a setting's field name, its environment variables, its type (which picks its
parser), its default and its meaning. :meth:`GuardConfig.from_env` reads the environment
variables, the Flask extension reads ``CLERK_GUARD_<NAME>`` and the environment variables' names
from ``app.config``, and Django reads ``CLERK_GUARD_<NAME>`` settings: all three through
:func:`read_settings`. The README's Configuration table is these rows, and a test keeps it so.

Adapter-only settings (Flask's ``CLERK_GUARD_PROTECT_ALL``, Django's ``CLERK_GUARD_WARM_UP``,
...) stay in their adapter but are parsed with :func:`parse`, so ``"yes"`` means the same
everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from ._errors import ConfigurationError

__all__ = ["PREFIX", "SETTINGS", "Setting", "parse", "read_settings", "split_list"]

#: Framework settings (Django settings, Flask's ``app.config``) are ``PREFIX`` + the field name
#: in capitals: ``CLERK_GUARD_LEEWAY``.
PREFIX = "CLERK_GUARD_"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def split_list(value: str) -> tuple[str, ...]:
    """The items of a comma-separated string; blanks around items and empty items dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


# Each parser takes a value and whether it came from text (the environment, Flask's app.config)
# or from code (Django settings). Text may spell any type as a string; code gives the type
# itself, so a string where Django wants True or False is a mistake worth reporting (a "False"
# read from os.environ in settings.py is truthy), not a value to guess at.


def _parse_str(value: object, text: bool) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value.strip()


def _parse_bool(value: object, text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    raise ValueError


def _parse_float(value: object, text: bool) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if text and isinstance(value, str):
        return float(value)
    raise ValueError


def _parse_int(value: object, text: bool) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if text and isinstance(value, str):
        return int(value.strip())
    raise ValueError


def _parse_list(value: object, text: bool) -> tuple[Any, ...]:
    # A comma-separated string in code too: Django has always accepted one.
    if isinstance(value, str):
        return split_list(value)
    if isinstance(value, Iterable):
        return tuple(value)  # the items are checked by whoever uses them (GuardConfig, paths)
    raise TypeError


@dataclasses.dataclass(frozen=True)
class _Type:
    parse: Callable[[object, bool], Any]
    #: What a value must be, in an error message: from text, and in code.
    expected: str
    expected_in_code: str
    #: Whether an error message may repeat the value; a key's, never (only its type's name).
    shows_value: bool = True


_TYPES: dict[str, _Type] = {
    "str": _Type(_parse_str, "a string", "a string", shows_value=False),
    "bool": _Type(_parse_bool, "true or false", "True or False"),
    "float": _Type(_parse_float, "a number of seconds", "a number of seconds"),
    "int": _Type(_parse_int, "a whole number", "a whole number"),
    "list[str]": _Type(
        _parse_list,
        "a comma-separated list",
        "a list of strings or one comma-separated string",
    ),
}


def parse(type_: str, value: object, label: str, *, text: bool, field: str | None = None) -> Any:
    """``value`` as a setting of type ``type_`` (``"bool"``, ``"float"``, ``"list[str]"``, ...).

    :param label: the name the user wrote (``"CLERK_LEEWAY"``), for the error message.
    :param text: whether the value came from text (environment, ``app.config``), where any
        type may be spelled as a string, or from code, where it must have its type.
    :param field: the :class:`GuardConfig` field, for :attr:`ConfigurationError.field`.
    :raises ConfigurationError: the value is not of the type; the message says what it must be.
    """
    kind = _TYPES[type_]
    try:
        return kind.parse(value, text)
    except (TypeError, ValueError):
        expected = kind.expected if text else kind.expected_in_code
        got = repr(value) if kind.shows_value else type(value).__name__
        raise ConfigurationError(f"{label} must be {expected}; got {got}.", field=field) from None


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    #: The :class:`~clerk_guard.GuardConfig` field.
    name: str
    #: The type, as the README shows it; ``str``, ``bool``, ``float``, ``int`` and ``list[str]``
    #: have a parser, any other type is given in code only.
    type: str
    #: The default, as the README shows it.
    default: str
    #: What it does, as the README shows it.
    doc: str
    #: Environment variables, first found wins.
    env: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Its framework setting: ``CLERK_GUARD_<NAME>``."""
        return PREFIX + self.name.upper()

    @property
    def readable(self) -> bool:
        """Whether it can be read from text or framework settings (not only given in code)."""
        return self.type in _TYPES

    def read(
        self, get: Callable[[str], object], *, keys: bool, env: bool, text: bool
    ) -> Any | None:
        """The value ``get`` gives under the setting's names, parsed; ``None`` when unset.

        The first name set wins; ``None`` and blank strings count as unset, as an empty
        environment variable does.

        :param keys: look up :attr:`key`.
        :param env: look up the environment variables (after the key).
        :param text: the values are text (see :func:`parse`).
        """
        names = ((self.key,) if keys else ()) + (self.env if env else ())
        for name in names:
            value = get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            return parse(self.type, value, name, text=text, field=self.name)
        return None


#: The table, one row per :class:`~clerk_guard.GuardConfig` argument in the dataclass's order.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "publishable_key",
        "str",
        "—",
        "`pk_test_…`/`pk_live_…`. Enough on its own: gives the JWKS URL "
        "`https://<frontend-api>/.well-known/jwks.json`, the expected issuer and the cookie "
        "suffix.",
        env=("CLERK_PUBLISHABLE_KEY",),
    ),
    Setting(
        "secret_key",
        "str",
        "—",
        "`sk_…`: fetch keys from the Backend API `{api_url}/v1/jwks` with it. Sent nowhere else.",
        env=("CLERK_SECRET_KEY",),
    ),
    Setting(
        "jwt_key",
        "str",
        "—",
        "PEM public key: no network at all. Armoured, body-only and `\\n`-escaped forms work.",
        env=("CLERK_JWT_KEY", "CLERK_PEM_PUBLIC_KEY"),
    ),
    Setting(
        "jwks_url",
        "str",
        "derived",
        "Explicit JWKS URL (https; http only on loopback).",
        env=("CLERK_JWKS_URL",),
    ),
    Setting(
        "api_url",
        "str",
        "`https://api.clerk.com`",
        "Backend API base.",
        env=("CLERK_API_URL",),
    ),
    Setting(
        "issuer",
        "str",
        "derived",
        "Exact `iss` required; from the publishable key when not set. Unknown (PEM or secret key "
        "only): not checked.",
        env=("CLERK_ISSUER",),
    ),
    Setting(
        "authorized_parties",
        "list[str]",
        "empty",
        "Allowed `azp` origins, e.g. `https://app.example.com`. Non-empty: `azp` must be present "
        "and equal one. **Set it in production.**",
        env=("CLERK_AUTHORIZED_PARTIES",),
    ),
    Setting(
        "audience",
        "list[str]",
        "empty",
        "When set, `aud` must contain one of these.",
        env=("CLERK_AUDIENCE",),
    ),
    Setting(
        "leeway",
        "float",
        "`5`",
        "Seconds of clock skew for `exp`/`nbf`/`iat` (at most 300).",
        env=("CLERK_LEEWAY",),
    ),
    Setting(
        "accept_pending",
        "bool",
        "`False`",
        'Accept `sts: "pending"` sessions (otherwise signed out, as Clerk).',
    ),
    Setting(
        "clock",
        "Callable[[], float]",
        "`time.time`",
        "Returns Unix seconds; inject one to verify at a fixed instant.",
    ),
    Setting(
        "debug",
        "bool",
        "`False`",
        "Add the reason code to 401 bodies. Local development only.",
    ),
    Setting(
        "jwks_ttl",
        "float",
        "`300`",
        "Seconds a fetched key set is used before it is refreshed.",
    ),
    Setting(
        "jwks_cooldown",
        "float",
        "`30`",
        "Least seconds between two key fetches caused by an unknown `kid` (at least 1).",
    ),
    Setting(
        "jwks_max_stale",
        "float",
        "`3600`",
        "Seconds the last good key set keeps serving while the key endpoint fails.",
    ),
    Setting(
        "jwks_timeout",
        "float",
        "`5`",
        "Overall deadline of one key fetch, in seconds (connect, headers and body together).",
    ),
    Setting(
        "jwks_max_backoff",
        "float",
        "`10`",
        "Longest wait between key fetches after failures (1 to 60 s): how long a recovered key "
        "endpoint can go unasked. See [Keys, outages, proxies and TLS]"
        "(#keys-outages-proxies-and-tls).",
    ),
    Setting(
        "ssl_context",
        "ssl.SSLContext",
        "httpx's default",
        "An `ssl.SSLContext` for the key fetch (e.g. trusting a corporate CA); replaces "
        "`SSL_CERT_FILE`/`SSL_CERT_DIR`. Must verify certificates and host names.",
    ),
    Setting(
        "token_cache_size",
        "int",
        "`4096`",
        "Verified tokens remembered (LRU; a hit still re-checks the times), and with them up to "
        "1,024 browsers' `Cookie` lines (of up to 8 KiB), so that a repeated cookie skips the "
        "cookie parsing too. `0` turns both off.",
    ),
)


def read_settings(
    get: Callable[[str], object], *, keys: bool, env: bool, text: bool
) -> dict[str, Any]:
    """Every setting ``get`` gives (see :meth:`Setting.read`), as ``GuardConfig`` arguments.

    :raises ConfigurationError: a value is not of its setting's type; the message names the
        key or variable as it was written.
    """
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.readable:
            value = setting.read(get, keys=keys, env=env, text=text)
            if value is not None:
                values[setting.name] = value
    return values
