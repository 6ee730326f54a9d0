"""GuardConfig: one validated configuration shared by every adapter."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import ipaddress
import math
import os
import re
import ssl
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ._errors import ConfigurationError
from ._settings import read_settings, split_list

__all__ = ["GuardConfig", "KeySource", "MIN_RSA_BITS"]

#: Keys shorter than this are refused everywhere (NIST SP 800-131A).
MIN_RSA_BITS = 2048
#: The largest ``jwks_max_backoff`` accepted: a Clerk session token lives 60 s.
MAX_BACKOFF_LIMIT = 60.0

KeySource = Literal["jwt_key", "jwks_url", "publishable_key", "secret_key"]

_PK_RE = re.compile(r"pk_(test|live)_([A-Za-z0-9+/_=-]+)")
_SK_RE = re.compile(r"sk_(test|live)_[A-Za-z0-9]+")
_LOOPBACK_NAMES = frozenset({"localhost"})
DEFAULT_API_URL = "https://api.clerk.com"


def _decode_publishable_key(key: str) -> str:
    """Return the Frontend API host encoded in a publishable key.

    A publishable key is ``pk_<test|live>_`` + base64(``<host>$``).
    """
    match = _PK_RE.fullmatch(key)
    if match is None:
        raise ConfigurationError(
            "publishable_key must look like pk_test_… or pk_live_…: copy it from the API keys "
            "page of the Clerk dashboard.",
            field="publishable_key",
        )
    encoded = match.group(2).replace("-", "+").replace("_", "/")
    encoded += "=" * (-len(encoded) % 4)
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    host = decoded[:-1]
    if not decoded.endswith("$") or not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", host):
        raise ConfigurationError(
            "publishable_key does not decode to a Frontend API host: it is truncated or not a "
            "Clerk publishable key. Copy it again from the Clerk dashboard.",
            field="publishable_key",
        )
    return host


def compute_cookie_suffix(publishable_key: str) -> str:
    """The suffix Clerk appends to its cookie names for this instance.

    First 8 characters of the URL-safe base64 of SHA-1(publishable key), as ``@clerk/shared``'s
    ``getCookieSuffix``.
    """
    digest = hashlib.sha1(publishable_key.encode()).digest()  # noqa: S324 - a name, not a MAC
    return base64.urlsafe_b64encode(digest).decode()[:8]


def normalize_pem(value: str) -> str:
    """Return an armoured PEM from the forms people paste into settings.

    Accepts the armoured key, the base64 body alone, ``\\n``-escaped one-liners (as in ``.env``
    files) and one pair of surrounding quotes.
    """
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    text = text.replace("\\r", "").replace("\\n", "\n").replace("\r", "")
    if "-----BEGIN" in text:
        return text
    body = "".join(text.split())
    return (
        "-----BEGIN PUBLIC KEY-----\n"
        + "\n".join(textwrap.wrap(body, 64))
        + ("\n-----END PUBLIC KEY-----\n")
    )


def load_rsa_pem(value: str) -> RSAPublicKey:
    """Load a PEM public key, accepting only RSA keys of at least 2048 bits."""
    try:
        key = load_pem_public_key(normalize_pem(value).encode())
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            "jwt_key is not a PEM public key. Copy the 'PEM Public Key' from the API keys page "
            "of the Clerk dashboard (the armoured, body-only and \\n-escaped forms all work).",
            field="jwt_key",
        ) from exc
    if not isinstance(key, RSAPublicKey):
        raise ConfigurationError(
            "jwt_key must be an RSA public key: Clerk signs with RS256.", field="jwt_key"
        )
    if key.key_size < MIN_RSA_BITS:
        raise ConfigurationError(
            f"jwt_key is a {key.key_size}-bit RSA key; at least {MIN_RSA_BITS} bits are required.",
            field="jwt_key",
        )
    return key


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(name: str, url: str) -> str:
    """Require https, except on loopback where tests and local issuers run plain http."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.rstrip("/") if name == "api_url" else url
    if parts.scheme == "http" and _is_loopback(host):
        return url.rstrip("/") if name == "api_url" else url
    raise ConfigurationError(
        f"{name} must be an https:// URL (plain http is allowed only on 127.0.0.1 or localhost); "
        f"got {url!r}.",
        field=name,
    )


def _check_ssl_context(context: object) -> None:
    if context is None:
        return
    if not isinstance(context, ssl.SSLContext):
        raise ConfigurationError(
            "ssl_context must be an ssl.SSLContext, e.g. "
            "ssl.create_default_context(cafile='corporate-ca.pem').",
            field="ssl_context",
        )
    if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise ConfigurationError(
            "ssl_context must verify certificates and host names (verify_mode CERT_REQUIRED, "
            "check_hostname True): whoever answers an unverified key fetch can sign tokens. To "
            "trust a private CA, load it: ssl.create_default_context(cafile=...).",
            field="ssl_context",
        )


def _as_tuple(name: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = split_list(value) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:  # type: ignore[redundant-expr]
            raise ConfigurationError(
                f"{name} must hold non-empty strings; got {item!r}.", field=name
            )
    return items


def _check_origin(origin: str) -> None:
    parts = urlsplit(origin)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise ConfigurationError(
            f"authorized_parties holds origins such as 'https://app.example.com' (scheme, host, "
            f"optional port; no path or trailing slash); got {origin!r}.",
            field="authorized_parties",
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class GuardConfig:
    """Validated settings for verifying Clerk session tokens.

    Give at least one key source. When several are given the first of these wins:
    ``jwt_key`` (no network), ``jwks_url``, the publishable key's Frontend API JWKS, the secret
    key's Backend API JWKS.

    :param publishable_key: ``pk_test_…``/``pk_live_…``. Alone it is enough: it gives the JWKS URL,
        the expected issuer and the cookie suffix.
    :param secret_key: ``sk_…``; keys are then fetched from ``{api_url}/v1/jwks`` with it.
    :param jwt_key: the instance's PEM public key, for verification without any network call.
    :param jwks_url: an explicit JWKS URL, overriding the derived one.
    :param api_url: the Backend API base URL.
    :param issuer: the exact ``iss`` to require; derived from the publishable key when not given.
        When no issuer is known, ``iss`` is not checked.
    :param authorized_parties: allowed ``azp`` origins. When non-empty, ``azp`` must be present and
        equal one of them. Set this in production: it stops tokens minted for another of your
        sites being replayed here.
    :param audience: when set, ``aud`` must contain one of these values.
    :param leeway: seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    :param accept_pending: accept sessions with ``sts: "pending"`` (off by default, as Clerk).
    :param clock: returns the current Unix time; inject one to verify at a fixed instant.
    :param debug: put the rejection reason in 401 bodies. Never in production: it is an oracle.
    :param ssl_context: the TLS settings of the key fetch, e.g.
        ``ssl.create_default_context(cafile="corporate-ca.pem")``. When not given, the key fetch
        trusts what httpx trusts: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set, else certifi's
        bundle. Ignored when the guard is given its own ``transport``.

    .. warning:: A context that skips certificate or host name checks is refused: whoever can
       answer the key fetch could then sign tokens this guard accepts.
    """

    publishable_key: str | None = None
    secret_key: str | None = dataclasses.field(default=None, repr=False)
    jwt_key: str | None = None
    jwks_url: str | None = None
    api_url: str = DEFAULT_API_URL
    issuer: str | None = None
    authorized_parties: tuple[str, ...] = ()
    audience: tuple[str, ...] = ()
    leeway: float = 5.0
    accept_pending: bool = False
    clock: Callable[[], float] = time.time
    debug: bool = False
    #: Seconds a fetched key set is used before it is refreshed.
    jwks_ttl: float = 300.0
    #: Least seconds between two fetches caused by an unknown ``kid``.
    jwks_cooldown: float = 30.0
    #: Seconds the last good key set keeps serving while refreshes fail.
    jwks_max_stale: float = 3600.0
    #: Overall deadline of one key fetch, in seconds (connect, headers and body together).
    jwks_timeout: float = 5.0
    #: Longest wait, in seconds, between two key fetches after failures (the back-off doubles
    #: from 1 s up to this): how long a recovered endpoint may go unasked (README, "Keys,
    #: outages, proxies and TLS").
    jwks_max_backoff: float = 10.0
    ssl_context: ssl.SSLContext | None = dataclasses.field(default=None, repr=False)
    #: Entries in the verified-token cache; 0 turns it off.
    token_cache_size: int = 4096

    # Derived in __post_init__.
    frontend_api: str | None = dataclasses.field(init=False, default=None)
    cookie_suffix: str | None = dataclasses.field(init=False, default=None)
    key_source: KeySource = dataclasses.field(init=False, default="jwt_key")
    resolved_jwks_url: str | None = dataclasses.field(init=False, default=None)
    resolved_issuer: str | None = dataclasses.field(init=False, default=None)
    public_key: RSAPublicKey | None = dataclasses.field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("publishable_key", "secret_key", "jwt_key", "jwks_url", "issuer"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(
                    f"{name} must be a string; got {type(value).__name__}.", field=name
                )
            if value is not None and not value.strip():
                set_(self, name, None)  # an empty environment variable means "not set"
            elif value is not None:
                set_(self, name, value.strip())
        set_(self, "authorized_parties", _as_tuple("authorized_parties", self.authorized_parties))
        set_(self, "audience", _as_tuple("audience", self.audience))
        for origin in self.authorized_parties:
            _check_origin(origin)
        self._check_numbers()
        if not callable(self.clock):
            raise ConfigurationError(
                "clock must be a callable returning Unix seconds.", field="clock"
            )
        set_(self, "api_url", _check_url("api_url", self.api_url))
        _check_ssl_context(self.ssl_context)

        if self.publishable_key is not None:
            if self.publishable_key.startswith("sk_"):
                raise ConfigurationError(
                    "publishable_key holds a secret key (sk_…): pass it as secret_key, and never "
                    "ship it to a browser.",
                    field="publishable_key",
                )
            host = _decode_publishable_key(self.publishable_key)
            set_(self, "frontend_api", host)
            set_(self, "cookie_suffix", compute_cookie_suffix(self.publishable_key))
        if self.secret_key is not None and _SK_RE.fullmatch(self.secret_key) is None:
            raise ConfigurationError(
                "secret_key must look like sk_test_… or sk_live_…: copy it from the API keys page "
                "of the Clerk dashboard.",
                field="secret_key",
            )
        if self.jwks_url is not None:
            set_(self, "jwks_url", _check_url("jwks_url", self.jwks_url))

        issuer = self.issuer
        if issuer is None and self.frontend_api is not None:
            issuer = f"https://{self.frontend_api}"
        set_(self, "resolved_issuer", issuer)

        if self.jwt_key is not None:
            set_(self, "key_source", "jwt_key")
            set_(self, "public_key", load_rsa_pem(self.jwt_key))
        elif self.jwks_url is not None:
            set_(self, "key_source", "jwks_url")
            set_(self, "resolved_jwks_url", self.jwks_url)
        elif self.frontend_api is not None:
            set_(self, "key_source", "publishable_key")
            set_(self, "resolved_jwks_url", f"https://{self.frontend_api}/.well-known/jwks.json")
        elif self.secret_key is not None:
            set_(self, "key_source", "secret_key")
            set_(self, "resolved_jwks_url", f"{self.api_url}/v1/jwks")
        else:
            raise ConfigurationError(
                "No key source: set CLERK_PUBLISHABLE_KEY (enough on its own), or CLERK_JWT_KEY "
                "for networkless verification, or CLERK_JWKS_URL, or CLERK_SECRET_KEY.",
                field="key_source",
            )

    def _check_numbers(self) -> None:
        for name in (
            "leeway",
            "jwks_ttl",
            "jwks_cooldown",
            "jwks_max_stale",
            "jwks_timeout",
            "jwks_max_backoff",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(
                    f"{name} must be a number of seconds; got {value!r}.", field=name
                )
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(
                    f"{name} must be a finite, non-negative number.", field=name
                )
        if self.leeway > 300:
            raise ConfigurationError(
                "leeway above 300 seconds would accept long-expired tokens; fix the server clock "
                "(NTP) instead.",
                field="leeway",
            )
        if self.jwks_cooldown < 1:
            raise ConfigurationError(
                "jwks_cooldown below 1 second would let random kids drive a fetch per request.",
                field="jwks_cooldown",
            )
        if self.jwks_timeout <= 0:
            raise ConfigurationError("jwks_timeout must be greater than 0.", field="jwks_timeout")
        if not 1 <= self.jwks_max_backoff <= MAX_BACKOFF_LIMIT:
            raise ConfigurationError(
                f"jwks_max_backoff must be between 1 and {MAX_BACKOFF_LIMIT:.0f} seconds: below 1 "
                "a failing key endpoint is asked on every request, above it a recovered one goes "
                "unasked for too long.",
                field="jwks_max_backoff",
            )
        size = self.token_cache_size
        if type(size) is not int or size < 0:
            raise ConfigurationError(
                "token_cache_size must be a whole number >= 0.", field="token_cache_size"
            )

    @property
    def jwks_headers(self) -> dict[str, str]:
        """Headers for the key fetch: the secret key only goes to the Backend API."""
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        if self.key_source == "secret_key" and self.secret_key is not None:
            headers["Authorization"] = f"Bearer {self.secret_key}"
        return headers

    @property
    def cache_key(self) -> str:
        """Identifies the key set: its URL plus a hash of the credential sent for it."""
        credential = self.jwks_headers.get("Authorization", "")
        digest = hashlib.sha256(credential.encode()).hexdigest()[:16]
        return f"{self.resolved_jwks_url}#{digest}"

    @property
    def session_cookie_names(self) -> tuple[str, ...]:
        """The suffixed cookie (when a publishable key is set) then the plain one."""
        if self.cookie_suffix is None:
            return ("__session",)
        return (f"__session_{self.cookie_suffix}", "__session")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> GuardConfig:
        """Build a configuration from ``CLERK_*`` environment variables.

        Keyword arguments override the environment. The variables are those of the settings
        table (``clerk_guard._settings``, the README's Configuration table); an empty one
        counts as unset.
        """
        env = os.environ if environ is None else environ
        values = read_settings(env.get, keys=False, env=True, text=True)
        values.update(overrides)
        return cls(**values)
