"""Keys from a JWKS endpoint: one cache per instance, a sync and an async client over httpx.

The policy (when to fetch, what to serve while a fetch fails) lives in :class:`KeyStore` and is
the same for both clients; they differ only in how they wait and how they do I/O.

- A key set is used for ``jwks_ttl`` seconds, then refreshed. While one caller refreshes, the
  others keep using the old set, so only one request waits.
- A ``kid`` that is not in the set triggers a refresh only if no fetch happened in the last
  ``jwks_cooldown`` seconds: a flood of random ``kid`` values costs one fetch per cooldown.
  Concurrent callers share one fetch (single flight). A bad signature never triggers a fetch.
- A failed refresh keeps the last good set for ``jwks_max_stale`` seconds and backs off before
  the next attempt: 1 s, 2 s, 4 s, ... up to ``jwks_max_backoff`` (10 s by default, 60 s at
  most). That cap bounds how long a recovered endpoint goes unasked. 10 s because a Clerk
  session token lives 60 s: a token minted by a key that appeared during an outage is accepted
  within the first sixth of its life once the endpoint is back, while a failing endpoint is
  asked at most six times a minute per process.
- A ``kid`` not in the cached set while the set cannot be refreshed (the fetch just failed, or
  the back-off after failures has not run out) is not known to be forged, so it is answered as
  keys unavailable (503 with ``Retry-After``, counting down to the next allowed attempt), never
  as ``jwk-kid-mismatch`` (401, which clients read as "signed out"). A ``kid`` missing from a
  set fetched successfully within the cooldown stays ``jwk-kid-mismatch``.
- The fetch honours the environment as httpx does (``HTTPS_PROXY``, ``HTTP_PROXY``,
  ``ALL_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``, ``SSL_CERT_DIR``) unless a transport is given;
  ``GuardConfig.ssl_context`` replaces the trust settings. The caps hold either way: no
  redirects, identity encoding, ``MAX_JWKS_BYTES``, ``MAX_JWKS_KEYS`` and ``jwks_timeout``.
  TLS and proxy failures get their own reason codes (``jwk-remote-tls-failed``,
  ``jwk-remote-proxy-failed``) so that logs and ``clerk-guard doctor`` can name them.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
import math
import ssl
import threading
import time
import urllib.request
import weakref
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers

from . import _b64
from ._config import MIN_RSA_BITS, GuardConfig
from ._errors import ConfigurationError, KeysUnavailableError, TokenInvalidError

__all__ = [
    "MAX_JWKS_BYTES",
    "MAX_JWKS_KEYS",
    "PROXY_FAILED",
    "TLS_FAILED",
    "AsyncJWKSClient",
    "JWKSClient",
    "KeyFetchNeeded",
    "KeyStore",
    "clear_key_caches",
    "jwks_summary",
    "parse_jwks",
]

logger = logging.getLogger("clerk_guard")

#: A Clerk JWKS is about 1 KiB per key; anything far larger is not a key set.
MAX_JWKS_BYTES = 128 * 1024
MAX_JWKS_KEYS = 32
#: Reason code of a key fetch that failed in TLS: an untrusted certificate (a private or
#: TLS-inspecting proxy's CA not in ``SSL_CERT_FILE``/``ssl_context``), a wrong host name, ...
TLS_FAILED = "jwk-remote-tls-failed"
#: Reason code of a key fetch that failed at the proxy from ``HTTPS_PROXY``/``HTTP_PROXY``/
#: ``ALL_PROXY``: unreachable, or refusing the tunnel.
PROXY_FAILED = "jwk-remote-proxy-failed"
# The general code, as @clerk/backend names a key set that could not be loaded.
_FAILED_TO_LOAD = "jwk-remote-failed-to-load"


def _unavailable(message: str, code: str = _FAILED_TO_LOAD) -> KeysUnavailableError:
    return KeysUnavailableError(message, code=code)


def _env_proxy(url: httpx.URL) -> str | None:
    """The proxy httpx takes from the environment for ``url``, without its credentials.

    Only names failures: httpx itself routes the request, from the same ``getproxies()``.
    """
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy:
        return None
    no_proxy = proxies.get("no", "")
    host = url.netloc.decode("ascii")
    # The stdlib's own NO_PROXY matcher (not in typeshed): suffix match, as httpx's patterns.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if "*" in (entry.strip() for entry in no_proxy.split(",")) or (
        no_proxy and bypass(host, proxies)
    ):
        return None
    try:
        parsed = httpx.URL(proxy if "://" in proxy else f"http://{proxy}")
    except httpx.InvalidURL:
        return "(unparsable URL)"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def _unusable_proxy(exc: Exception) -> str:
    # httpx's message names the URL with its password masked ("[secure]").
    return (
        f"The proxy from HTTPS_PROXY, HTTP_PROXY or ALL_PROXY cannot be used ({exc}): fix or "
        "unset it, or list the key host in NO_PROXY."
    )


def _env_ssl_context() -> ssl.SSLContext:
    """httpx's default context: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set, else certifi."""
    try:
        return httpx.create_ssl_context(trust_env=True)
    except OSError as exc:  # ssl.SSLError too: a file that is not PEM certificates
        raise ConfigurationError(
            "The CA certificates named by SSL_CERT_FILE or SSL_CERT_DIR cannot be loaded "
            f"({_describe(exc)}): point them at a PEM bundle or a hashed certificate directory, "
            "or unset them, or pass ssl_context.",
            field="ssl_context",
        ) from exc


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl`` error under an httpx error (httpx and httpcore chain their translations)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _fetch_failure(exc: Exception, url: httpx.URL, own: bool) -> KeysUnavailableError:
    """Our error for an httpx failure, naming TLS and proxy failures apart.

    :param own: the client is ours, so httpx applied the environment's proxies (a transport
        given by the user ignores them).
    """
    tls = _ssl_error(exc)
    if tls is not None:
        if isinstance(tls, ssl.SSLCertVerificationError):
            detail = f"certificate verify failed: {tls.verify_message}"
        else:
            detail = tls.reason or _describe(tls)
        return _unavailable(f"The JWKS fetch failed in TLS with {url.host} ({detail}).", TLS_FAILED)
    proxy = _env_proxy(url) if own else None
    if isinstance(exc, httpx.ProxyError) or (
        proxy is not None and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
    ):
        where = f"the proxy {proxy}" if proxy is not None else "the proxy"
        return _unavailable(f"The JWKS fetch failed at {where} ({_describe(exc)}).", PROXY_FAILED)
    return _unavailable(f"The JWKS fetch failed{_via(proxy)}: {type(exc).__name__}.")


def _via(proxy: str | None) -> str:
    return f" (through the proxy {proxy})" if proxy is not None else ""


def _b64url_int(value: Any) -> int:
    if not isinstance(value, str) or not value or "=" in value:
        raise ValueError("not unpadded base64url")
    return int.from_bytes(_b64.decode(value), "big")


def _load_jwk(jwk: Any) -> tuple[str, RSAPublicKey] | None:
    """One RS256 signing key from a JWK, or None when the entry is not one we may use."""
    if not isinstance(jwk, dict):
        return None
    kid = jwk.get("kid")
    if (
        jwk.get("kty") != "RSA"
        or jwk.get("use", "sig") != "sig"
        or jwk.get("alg", "RS256") != "RS256"
        or not isinstance(kid, str)
        or not kid
    ):
        return None
    try:
        n, e = _b64url_int(jwk.get("n")), _b64url_int(jwk.get("e"))
        if n.bit_length() < MIN_RSA_BITS or e < 3 or e % 2 == 0:
            return None
        return kid, RSAPublicNumbers(e, n).public_key()
    except (ValueError, binascii.Error):
        return None


def parse_jwks(body: bytes) -> dict[str, RSAPublicKey]:
    """Parse a JWKS document into ``{kid: key}``, keeping only RSA keys of 2048 bits or more.

    :raises KeysUnavailableError: not a JWKS, too many keys, or no usable key.
    """
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _unavailable("The JWKS response is not JSON.", "jwk-remote-invalid") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise _unavailable("The JWKS response has no 'keys' list.", "jwk-remote-invalid")
    if len(keys) > MAX_JWKS_KEYS:
        raise _unavailable(f"The JWKS holds more than {MAX_JWKS_KEYS} keys.", "jwk-remote-invalid")
    loaded = dict(filter(None, map(_load_jwk, keys)))
    if not loaded:
        raise _unavailable("The JWKS holds no usable RS256 key.", "jwk-remote-missing")
    return loaded


def _check_response(response: httpx.Response, config: GuardConfig, own: bool) -> None:
    if response.status_code in (401, 403) and config.key_source == "secret_key":
        raise _unavailable(
            f"The Backend API refused the secret key (HTTP {response.status_code}).",
            "secret-key-invalid",
        )
    if response.status_code != 200:
        # Through a forward proxy, a 502 or 504 may be the proxy's own answer: say it went there.
        via = _via(_env_proxy(response.request.url) if own else None)
        raise _unavailable(f"The JWKS endpoint answered HTTP {response.status_code}{via}.")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # We asked for identity; a compressed body could be a decompression bomb, and with the
        # encoding refused here, iter_bytes() below never decompresses.
        raise _unavailable(f"The JWKS response is {encoding}-encoded.", "jwk-remote-invalid")
    length = response.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_JWKS_BYTES):
        raise _unavailable("The JWKS response is too large.", "jwk-remote-invalid")


def _add_chunk(body: bytearray, chunk: bytes, deadline: float) -> None:
    body += chunk
    if len(body) > MAX_JWKS_BYTES:
        raise _unavailable("The JWKS response is too large.", "jwk-remote-invalid")
    if time.monotonic() > deadline:
        raise _unavailable("The JWKS endpoint did not answer within the deadline.")


class KeyStore:
    """The key set of one Clerk instance, shared by every client in the process."""

    def __init__(self) -> None:
        self.keys: dict[str, RSAPublicKey] = {}
        self.fetched_at = float("-inf")  # last success
        self.attempted_at = float("-inf")  # last attempt, success or not
        self.retry_at = float("-inf")  # no attempt before this, after failures
        self.failures = 0
        self.fetches = 0
        self.generation = 0  # bumped by every completed attempt
        self.last_error: KeysUnavailableError | None = None
        self.sync_lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def async_lock(self) -> asyncio.Lock:
        """One lock per event loop: an ``asyncio.Lock`` cannot be shared across loops."""
        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        return lock

    # Policy -----------------------------------------------------------------------------------

    def lookup(
        self, kid: str | None, config: GuardConfig, now: float
    ) -> tuple[RSAPublicKey | None, str]:
        """Decide from the cache alone: ``(key, "ok")``, ``(key, "refresh")`` (usable but due a
        refresh), or ``(None, "fetch")`` (must fetch before answering).

        :raises KeysUnavailableError: nothing usable cached, or a ``kid`` not in the cached
            set, while the endpoint is in back-off after failures.
        :raises TokenInvalidError: ``jwk-kid-mismatch``, a ``kid`` not in a set fetched
            successfully within the cooldown (or no ``kid`` at all).
        """
        age = now - self.fetched_at
        if self.keys and age <= config.jwks_ttl + config.jwks_max_stale:
            key = self.keys.get(kid) if kid is not None else None
            if key is not None:
                due = age > config.jwks_ttl and now >= self.retry_at
                return key, "refresh" if due else "ok"
            if kid is None:
                raise _kid_mismatch()  # no key can match: nothing to fetch
            if self.last_error is None:  # the last attempt succeeded: the cooldown decides
                if now - self.attempted_at >= config.jwks_cooldown:
                    return None, "fetch"
                raise _kid_mismatch()
            # After failures only the back-off decides: the set is not known to be current.
            if now >= self.retry_at:
                return None, "fetch"
            raise self.unavailable(now, kid=kid)
        if now < self.retry_at:
            raise self.unavailable(now)
        return None, "fetch"

    def unavailable(self, now: float, *, kid: str | None = None) -> KeysUnavailableError:
        """A fresh error for this caller (a shared instance would pile up tracebacks), with
        ``retry_after`` counting down to the next allowed attempt.

        :param kid: the token's ``kid``, when the error is that it is not in the cached set.
        """
        last = self.last_error
        message = last.message if last is not None else "No key set is available."
        if kid is not None:
            message = (
                "No key in the cached JWKS matches the token's kid, and the set cannot be "
                f"refreshed now. {message}"
            )
        return KeysUnavailableError(
            message,
            code=last.code if last is not None else None,
            retry_after=max(1, math.ceil(self.retry_at - now)),
        )

    def record_success(self, keys: dict[str, RSAPublicKey], now: float) -> None:
        self.keys = keys
        self.fetched_at = self.attempted_at = now
        self.failures = 0
        self.retry_at = float("-inf")
        self.last_error = None
        self.fetches += 1
        self.generation += 1

    def record_failure(self, error: KeysUnavailableError, now: float, max_backoff: float) -> None:
        self.attempted_at = now
        self.failures += 1
        backoff = min(max_backoff, 2.0 ** min(self.failures - 1, 30))
        self.retry_at = now + backoff
        self.last_error = error
        self.fetches += 1
        self.generation += 1
        logger.warning(
            "clerk_guard: key fetch failed (%s): %s; next attempt in %.0f s",
            error.code,
            error.message.rstrip("."),
            backoff,
        )

    def after_fetch(self, kid: str | None, config: GuardConfig, now: float) -> RSAPublicKey:
        """The key for ``kid`` once a fetch has completed (by us or by the caller we waited for).

        An unknown ``kid`` is the token's fault (401) only when that fetch succeeded; when it
        failed, the cached set may simply predate the key: 503, retry after the back-off.
        """
        if self.keys and now - self.fetched_at <= config.jwks_ttl + config.jwks_max_stale:
            key = self.keys.get(kid) if kid is not None else None
            if key is not None:
                return key
            if kid is None or self.last_error is None:
                raise _kid_mismatch()
            raise self.unavailable(now, kid=kid)
        raise self.unavailable(now)


def _kid_mismatch() -> TokenInvalidError:
    return TokenInvalidError("No key in the JWKS matches the token's kid.", code="jwk-kid-mismatch")


_stores: dict[str, KeyStore] = {}
_stores_lock = threading.Lock()


def _store_for(config: GuardConfig) -> KeyStore:
    with _stores_lock:
        store = _stores.get(config.cache_key)
        if store is None:
            store = _stores[config.cache_key] = KeyStore()
        return store


def clear_key_caches() -> None:
    """Forget every cached key set (for tests)."""
    with _stores_lock:
        _stores.clear()


class KeyFetchNeeded(Exception):
    """:meth:`AsyncJWKSClient.cached_key` cannot answer without I/O: await ``get_key(kid)``."""

    def __init__(self, kid: str | None) -> None:
        super().__init__(kid)
        self.kid = kid


class _BaseJWKSClient:
    def __init__(
        self, config: GuardConfig, *, own_transport: bool, store: KeyStore | None = None
    ) -> None:
        if config.resolved_jwks_url is None:
            raise ValueError("This configuration verifies with a PEM key and fetches no JWKS.")
        self.config = config
        self.url = config.resolved_jwks_url
        self.store = store if store is not None else _store_for(config)
        self._timeout = httpx.Timeout(config.jwks_timeout)
        self._headers = config.jwks_headers
        # Without a transport of the user's, httpx builds ours and applies the environment
        # (trust_env): proxies from HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY, and trust from
        # SSL_CERT_FILE/SSL_CERT_DIR, read here as httpx reads them. The context is made once:
        # loading a CA bundle takes tens of milliseconds, too long for the event loop per fetch.
        self._own_transport = own_transport
        self._verify: ssl.SSLContext | bool = True
        if own_transport:
            self._verify = config.ssl_context or _env_ssl_context()

    def _failed(self, error: KeysUnavailableError) -> None:
        config = self.config
        self.store.record_failure(error, config.clock(), config.jwks_max_backoff)

    def _transport_failure(self, exc: Exception) -> KeysUnavailableError:
        return _fetch_failure(exc, httpx.URL(self.url), self._own_transport)


class JWKSClient(_BaseJWKSClient):
    """Fetches keys with a blocking ``httpx.Client``; safe to share between threads.

    :param transport: an ``httpx`` transport to fetch with, used as it is: the environment's
        proxies and trust settings and ``config.ssl_context`` then do not apply (as in httpx).
    :raises ConfigurationError: ``SSL_CERT_FILE``/``SSL_CERT_DIR`` name no usable certificates.
    """

    def __init__(
        self,
        config: GuardConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        store: KeyStore | None = None,
    ) -> None:
        super().__init__(config, own_transport=transport is None, store=store)
        try:
            self._client = httpx.Client(
                transport=transport, verify=self._verify, follow_redirects=False, trust_env=True
            )
        except (ValueError, ImportError) as exc:  # a proxy scheme httpx cannot use
            raise ConfigurationError(_unusable_proxy(exc)) from exc

    def close(self) -> None:
        self._client.close()

    def get_key(self, kid: str | None) -> RSAPublicKey:
        """The key for ``kid``, fetching the set when the policy says so."""
        store, config = self.store, self.config
        # Read before deciding: a fetch completing after this point is one we may reuse.
        generation = store.generation
        key, action = store.lookup(kid, config, config.clock())
        if key is not None:
            if action == "refresh" and store.sync_lock.acquire(blocking=False):
                try:
                    self._refresh()  # the others keep using the old set meanwhile
                except KeysUnavailableError:
                    pass  # logged; the stale set keeps serving
                finally:
                    store.sync_lock.release()
            return key
        if not store.sync_lock.acquire(timeout=config.jwks_timeout * 3 + 1):
            raise _unavailable("Timed out waiting for the key fetch of another request.")
        try:
            if store.generation == generation:
                try:
                    self._refresh()
                except KeysUnavailableError:
                    pass  # after_fetch raises it unless stale keys can still serve
        finally:
            store.sync_lock.release()
        return store.after_fetch(kid, config, config.clock())

    def warm_up(self) -> None:
        """Fetch the key set now, so the first request does not wait."""
        with self.store.sync_lock:
            self._refresh()

    def _refresh(self) -> None:
        try:
            keys = self._fetch()
        except KeysUnavailableError as error:
            self._failed(error)
            raise
        self.store.record_success(keys, self.config.clock())

    def _fetch(self) -> dict[str, RSAPublicKey]:
        deadline = time.monotonic() + self.config.jwks_timeout
        body = bytearray()
        try:
            with self._client.stream(
                "GET", self.url, headers=self._headers, timeout=self._timeout
            ) as response:
                _check_response(response, self.config, self._own_transport)
                for chunk in response.iter_bytes():
                    _add_chunk(body, chunk, deadline)
        except (httpx.HTTPError, OSError) as exc:  # OSError: ssl errors httpcore left unmapped
            raise self._transport_failure(exc) from exc
        return parse_jwks(bytes(body))


class AsyncJWKSClient(_BaseJWKSClient):
    """Fetches keys with an ``httpx.AsyncClient``; never blocks the event loop.

    Each fetch opens its own ``httpx.AsyncClient``: fetches are rare (minutes apart), and a
    client kept between them would be bound to the event loop that opened its connections,
    which breaks servers and test clients that run requests on several loops. They share one
    SSL context, made here.

    :param transport: as for :class:`JWKSClient`.
    """

    def __init__(
        self,
        config: GuardConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        store: KeyStore | None = None,
    ) -> None:
        super().__init__(config, own_transport=transport is None, store=store)
        self._transport = transport
        # Fail at start-up as the sync client does, on proxy variables httpx cannot use. No
        # connection is opened, so there is nothing to close.
        try:
            self._new_client()
        except (ValueError, ImportError) as exc:
            raise ConfigurationError(_unusable_proxy(exc)) from exc

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport,
            verify=self._verify,
            follow_redirects=False,
            trust_env=True,
        )

    async def aclose(self) -> None:
        """Nothing to release: every fetch closes its own client."""

    def cached_key(self, kid: str | None) -> RSAPublicKey:
        """The key for ``kid`` when the cached set can answer now, with no fetch due: the
        usual case, served without an ``await``.

        :raises KeyFetchNeeded: a fetch or refresh is due; ``await get_key(kid)``.
        :raises KeysUnavailableError, TokenInvalidError: as :meth:`get_key`, when the cache
            alone decides (back-off, unknown ``kid`` inside the cooldown).
        """
        key, action = self.store.lookup(kid, self.config, self.config.clock())
        if key is None or action != "ok":
            raise KeyFetchNeeded(kid)
        return key

    async def get_key(self, kid: str | None) -> RSAPublicKey:
        """The key for ``kid``, fetching the set when the policy says so."""
        store, config = self.store, self.config
        # Read before deciding: a fetch completing after this point is one we may reuse.
        generation = store.generation
        key, action = store.lookup(kid, config, config.clock())
        if key is not None:
            if action == "ok":
                return key
            lock = store.async_lock()
            if not lock.locked():
                async with lock:
                    try:
                        await self._refresh()
                    except KeysUnavailableError:
                        pass  # logged; the stale set keeps serving
            return key
        async with store.async_lock():
            if store.generation == generation:
                try:
                    await self._refresh()
                except KeysUnavailableError:
                    pass  # after_fetch raises it unless stale keys can still serve
        return store.after_fetch(kid, config, config.clock())

    async def warm_up(self) -> None:
        """Fetch the key set now, so the first request does not wait."""
        async with self.store.async_lock():
            await self._refresh()

    async def _refresh(self) -> None:
        try:
            keys = await self._fetch()
        except KeysUnavailableError as error:
            self._failed(error)
            raise
        self.store.record_success(keys, self.config.clock())

    async def _fetch(self) -> dict[str, RSAPublicKey]:
        deadline = time.monotonic() + self.config.jwks_timeout
        body = bytearray()
        try:
            client = self._new_client()
        except (ValueError, ImportError) as exc:  # the environment changed since start-up
            raise _unavailable(_unusable_proxy(exc), PROXY_FAILED) from exc
        try:
            with anyio.fail_after(self.config.jwks_timeout):
                async with (
                    client,
                    client.stream(
                        "GET", self.url, headers=self._headers, timeout=self._timeout
                    ) as response,
                ):
                    _check_response(response, self.config, self._own_transport)
                    async for chunk in response.aiter_bytes():
                        _add_chunk(body, chunk, deadline)
        except TimeoutError:
            raise _unavailable("The JWKS endpoint did not answer within the deadline.") from None
        # httpcore < 1.0 lets the TLS handshake's own errors through on the async path (an
        # ssl.SSLError, or anyio's stream errors): ours all the same.
        except (httpx.HTTPError, OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            raise self._transport_failure(exc) from exc
        return parse_jwks(bytes(body))


def jwks_summary(keys: Mapping[str, RSAPublicKey]) -> list[dict[str, Any]]:
    """Describe keys for humans (the ``jwks`` command): kid and size, never the modulus."""
    return [{"kid": kid, "bits": key.key_size} for kid, key in keys.items()]
