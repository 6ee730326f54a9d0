"""Guard / AsyncGuard: find the token, get the key, verify; with a cache of verified tokens."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import httpx

from ._claims import SessionAuth
from ._config import GuardConfig
from ._errors import (
    AuthenticationError,
    ConfigurationError,
    KeysUnavailableError,
    PermissionDeniedError,
    SessionPendingError,
    TokenMissingError,
)
from ._jwks import AsyncJWKSClient, JWKSClient, KeyFetchNeeded, KeyStore
from ._tokens import TokenSource, extract_token
from ._verify import Verifier, fingerprint

__all__ = ["AsyncGuard", "Guard", "build_guard", "check_requirements", "missing_token"]

logger = logging.getLogger("clerk_guard")

_V = TypeVar("_V")


class _LRU(OrderedDict[str, _V]):
    """A bounded map keyed by request text (tokens, cookie lines), oldest evicted first;
    thread-safe.

    Reads are the ordered dict's own methods (``get()``; for the token cache, an LRU, also
    ``move_to_end()``), each atomic, no Python frame: they run for every request. Storing
    (insert, then evict the oldest) takes the lock.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # the dict's own would print every key: tokens, cookies
        return f"<{type(self).__name__}: {len(self)} of {self.size} entries>"

    def put(self, key: str, value: _V) -> None:
        if self.size == 0:
            return
        with self._lock:
            self[key] = value
            if len(self) > self.size:
                self.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self.pop(key, None)


class _TokenCache(_LRU[SessionAuth]):
    """The verified tokens: a repeat costs a lookup plus the time checks.

    Entries hold the result, whose time claims a hit is re-checked against, so a cached token is
    never accepted past ``exp``. Only successes are stored.
    """


#: Cookie lines remembered with the token extraction chose from them (see ``lookup``), and
#: the longest line remembered: with the copy of the token each entry holds, at most ~16 MiB
#: (a browser's line is usually under 4 KiB). The lines hold the browser's other cookies too,
#: kept in memory as long as the entry.
_COOKIE_MEMO_SIZE = 1024
_COOKIE_LINE_MAX = 8192


class _BaseGuard:
    def __init__(self, config: GuardConfig | None = None, **options: Any) -> None:
        if config is None:
            config = GuardConfig(**options)
        elif options:
            config = dataclasses.replace(config, **options)
        self.config = config
        self.verifier = Verifier(config)
        self.token_cache = _TokenCache(config.token_cache_size)
        self._lifetime_error = self.verifier.lifetime_error
        # A browser's Cookie line -> the verified token extraction chose from it, and when.
        # Evicts the oldest entry first (a hit does not refresh it: a miss costs one extraction).
        self._cookie_tokens = _LRU[tuple[str, int]](min(config.token_cache_size, _COOKIE_MEMO_SIZE))
        self._clock = config.clock
        self._production = (config.publishable_key or "").startswith("pk_live_")
        # Whether the choice between __session and __session_<suffix> can change with time
        # alone: only in development, once the suffixed token has expired (_tokens.py). Then a
        # remembered choice holds from when it was made until the chosen token's exp: it was
        # the suffixed token (its exp is the moment the choice flips) or the plain one (chosen
        # since the suffixed token expired; a clock set back before then could flip it back).
        self._cookie_choice_ages = config.cookie_suffix is not None and not self._production

    def extract(
        self, authorization: Sequence[str], cookies: Iterable[str]
    ) -> tuple[str, TokenSource] | None:
        """The token and where it came from, or ``None``: see contract §2.

        :raises TokenInvalidError: a malformed or duplicated ``Authorization`` header.
        """
        config = self.config
        return extract_token(
            authorization,
            cookies,
            suffix=config.cookie_suffix,
            frontend_api=config.frontend_api,
            production=self._production,
            now=self._clock(),
        )

    def lookup(
        self, authorization: Sequence[str], cookies: Iterable[str]
    ) -> tuple[tuple[str, TokenSource] | None, SessionAuth | None]:
        """The request's token, and its result when it was verified before: no I/O, no await.

        The cheap first step of :meth:`Guard.authenticate` / :meth:`AsyncGuard.authenticate`,
        for adapters that want a cached token answered without a coroutine. Returns
        ``(None, None)`` when the request carries no token, ``((token, source), None)`` for a
        token to verify (with ``verify(token, source=source)``), and ``((token, source), auth)``
        for a token verified before and still valid.

        :raises TokenInvalidError: a malformed or duplicated ``Authorization`` header, or a
            token over the length limit.
        """
        if len(authorization) == 1 and authorization[0].startswith("Bearer "):
            # The usual request: one "Bearer <token>" line, a token verified before. The cache
            # holds verified tokens only, none with whitespace, so a hit on what follows
            # "Bearer " means the line is exactly that, and extraction would find that token.
            token = authorization[0][7:]
            auth = self._cached(token, "header")
            if auth is not None:
                return (token, "header"), auth
        # A browser's request: no Authorization header and one Cookie line, most often the same
        # line as its previous request's. Extraction is a function of that line (and of the
        # time, in one case), so the token it chose last time is the token it would choose now.
        line = None
        if not authorization and type(cookies) is list and len(cookies) == 1:
            line = cookies[0]
            remembered = self._cookie_tokens.get(line)
            if remembered is not None:
                token, since = remembered
                auth = self._cached(token, "cookie")
                if auth is not None and (
                    not self._cookie_choice_ages or since <= int(self._clock()) < auth.expires_at
                ):
                    return (token, "cookie"), auth
        found = self.extract(authorization, cookies)
        if found is None:
            return None, None
        auth = self._cached(*found)
        if line is not None and auth is not None and len(line) <= _COOKIE_LINE_MAX:
            # Verified, so worth remembering, with the time of the choice.
            self._cookie_tokens.put(line, (found[0], int(self._clock())))
        return found, auth

    def _cached(self, token: str, source: TokenSource | None) -> SessionAuth | None:
        cache = self.token_cache
        auth = cache.get(token)
        if auth is None:
            return None
        try:
            cache.move_to_end(token)  # recently used; atomic, as get() is
        except KeyError:
            pass  # another thread evicted it since the lookup
        if self._lifetime_error(auth.expires_at, auth.issued_at, auth.not_before, self._clock()):
            self.token_cache.discard(token)
            return None  # verify again, which raises with the precise reason
        if auth.token_source != source:
            auth = auth._replace(token_source=source)
        return auth


def _annotated(
    exc: AuthenticationError, token: str, source: TokenSource | None
) -> AuthenticationError:
    exc.source = source
    exc.fingerprint = fingerprint(token)
    return exc


def missing_token() -> TokenMissingError:
    """The error for a request that carries no token where one is required."""
    return TokenMissingError("No session token in the Authorization header or the session cookie.")


class Guard(_BaseGuard):
    """Verifies Clerk session tokens, blocking on key fetches: for WSGI and threads.

    Build it once per configuration and share it; it is thread-safe.

    To add checks of your own, subclass it and override :meth:`authenticate` (call ``super()``,
    then raise :class:`TokenInvalidError` for a 401 or :class:`PermissionDeniedError` for a 403):
    every shipped adapter verifies requests through it. That is the supported extension point;
    :meth:`lookup` and :meth:`verify` are steps adapters call, not hooks to override.

    :param config: a :class:`GuardConfig`; or pass its fields as keyword arguments.
    :param transport: an ``httpx`` transport for the key fetch (tests use
        ``clerk_guard.testing.LocalIssuer.transport()``).
    """

    def __init__(
        self,
        config: GuardConfig | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        store: KeyStore | None = None,
        **options: Any,
    ) -> None:
        super().__init__(config, **options)
        self.jwks: JWKSClient | None = None
        if self.config.public_key is None:
            self.jwks = JWKSClient(self.config, transport=transport, store=store)
        #: The key lookup :meth:`Verifier.verify` is given: the key for a ``kid``, fetched when
        #: the policy says so (``None`` with a configured PEM key).
        self.key_for = self.jwks.get_key if self.jwks is not None else None

    def verify(self, token: str, *, source: TokenSource | None = None) -> SessionAuth:
        """Verify one token.

        :raises TokenInvalidError: with ``code`` naming the failed check.
        :raises SessionPendingError: ``session-token-pending``, a pending session.
        :raises KeysUnavailableError: no key set could be loaded.
        """
        auth = self._cached(token, source)
        if auth is not None:
            return auth
        try:
            auth = self.verifier.verify(token, self.key_for, source)
        except AuthenticationError as exc:
            raise _annotated(exc, token, source) from None
        self.token_cache.put(token, auth)
        return auth

    def authenticate(
        self, authorization: Sequence[str], cookies: Iterable[str], *, required: bool = True
    ) -> SessionAuth | None:
        """Find and verify the request's token, from its raw header lines.

        :param authorization: every ``Authorization`` field line (two is an error).
        :param cookies: every ``Cookie`` field line.
        :param required: raise :class:`TokenMissingError` when there is no token; otherwise
            return ``None`` then. An invalid token raises either way.
        """
        found, auth = self.lookup(authorization, cookies)
        if auth is not None:
            return auth
        if found is None:
            if required:
                raise missing_token()
            return None
        try:
            return self.verify(found[0], source=found[1])
        except SessionPendingError:
            if required:
                raise
            return None  # signed out, as Clerk treats a pending session

    def warm_up(self) -> None:
        """Fetch the key set now (at start-up), so the first request does not wait.

        :raises KeysUnavailableError: the key set could not be loaded.
        """
        if self.jwks is not None:
            self.jwks.warm_up()

    def try_warm_up(self) -> bool:
        """:meth:`warm_up` for start-up hooks: never raises (contract §4, warm-up is optional).

        Returns whether the keys are ready (always with a PEM key). On failure a warning is
        logged and the first request that needs the keys tries again, after the back-off.
        """
        try:
            self.warm_up()
        except KeysUnavailableError:
            _log_failed_warm_up()
            return False
        return True

    def close(self) -> None:
        if self.jwks is not None:
            self.jwks.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncGuard(_BaseGuard):
    """Verifies Clerk session tokens without blocking the event loop: for ASGI.

    The key fetch uses ``httpx.AsyncClient``, created on the loop that first needs it.

    Extend it as :class:`Guard`: override :meth:`authenticate`. An adapter that splits
    :meth:`authenticate` into :meth:`lookup` and :meth:`verify` (so a cached token costs no
    coroutine) must call ``authenticate()`` instead when a subclass overrides it
    (``type(guard).authenticate is not AsyncGuard.authenticate``), as the ASGI middleware does.
    """

    def __init__(
        self,
        config: GuardConfig | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        store: KeyStore | None = None,
        **options: Any,
    ) -> None:
        super().__init__(config, **options)
        self.jwks: AsyncJWKSClient | None = None
        if self.config.public_key is None:
            self.jwks = AsyncJWKSClient(self.config, transport=transport, store=store)
        # A cached key without awaiting; KeyFetchNeeded sends verify() to the await.
        self._key_now = self.jwks.cached_key if self.jwks is not None else None

    async def verify(self, token: str, *, source: TokenSource | None = None) -> SessionAuth:
        """Verify one token; raises as :meth:`Guard.verify`."""
        auth = self._cached(token, source)
        if auth is not None:
            return auth
        verifier = self.verifier
        try:
            kid: str | None = None
            try:
                auth = verifier.verify(token, self._key_now, source)
            except KeyFetchNeeded as needed:
                kid, auth = needed.kid, None
            if auth is None:  # a key fetch is due, awaited outside the handler (no chaining)
                assert self.jwks is not None  # noqa: S101 - only the JWKS client raises it
                key = await self.jwks.get_key(kid)
                auth = verifier.verify(token, lambda _: key, source)
        except AuthenticationError as exc:
            raise _annotated(exc, token, source) from None
        self.token_cache.put(token, auth)
        return auth

    async def authenticate(
        self, authorization: Sequence[str], cookies: Iterable[str], *, required: bool = True
    ) -> SessionAuth | None:
        """Find and verify the request's token; as :meth:`Guard.authenticate`."""
        found, auth = self.lookup(authorization, cookies)
        if auth is not None:
            return auth
        if found is None:
            if required:
                raise missing_token()
            return None
        try:
            return await self.verify(found[0], source=found[1])
        except SessionPendingError:
            if required:
                raise
            return None  # signed out, as Clerk treats a pending session

    async def warm_up(self) -> None:
        """Fetch the key set now (ASGI lifespan start-up), so the first request does not wait.

        :raises KeysUnavailableError: the key set could not be loaded.
        """
        if self.jwks is not None:
            await self.jwks.warm_up()

    async def try_warm_up(self) -> bool:
        """:meth:`warm_up` for start-up hooks: never raises; as :meth:`Guard.try_warm_up`."""
        try:
            await self.warm_up()
        except KeysUnavailableError:
            _log_failed_warm_up()
            return False
        return True

    async def aclose(self) -> None:
        if self.jwks is not None:
            await self.jwks.aclose()


def _log_failed_warm_up() -> None:
    # The key client has logged the reason already; this line says that start-up goes on.
    logger.warning(
        "clerk_guard: key warm-up failed; the first request that needs the keys tries again."
    )


_G = TypeVar("_G", Guard, AsyncGuard)


def build_guard(
    kind: type[_G],
    guard: _G | None,
    config: GuardConfig | None,
    transport: Any,
    options: dict[str, Any],
    *,
    owner: str,
) -> tuple[_G, bool]:
    """The guard an adapter uses: the one given, or one it builds and must close.

    With neither ``guard``, ``config`` nor options, the configuration is read from the
    environment. Returns ``(guard, built_here)``.
    """
    if guard is not None:
        if config is not None or options or transport is not None:
            raise ConfigurationError(f"Give {owner} either guard= or a configuration, not both.")
        return guard, False
    if config is None and not options:
        config = GuardConfig.from_env()
    return kind(config, transport=transport, **options), True


def check_requirements(
    auth: SessionAuth,
    *,
    role: str | None = None,
    permission: str | None = None,
    feature: str | None = None,
    plan: str | None = None,
) -> None:
    """Raise :class:`PermissionDeniedError` (403) unless ``auth`` meets every given condition.

    The conditions are those of :meth:`SessionAuth.has`; with none given, nothing is required.
    """
    given = {
        name: value
        for name, value in (
            ("role", role),
            ("permission", permission),
            ("feature", feature),
            ("plan", plan),
        )
        if value is not None
    }
    if given and not auth.has(**given):
        wanted = ", ".join(f"{name} {value!r}" for name, value in given.items())
        raise PermissionDeniedError(f"The session lacks {wanted}.")
