"""Key fetching and caching: TTL, cooldown, single flight, serve-stale, failures (contract §4)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from clerk_guard import (
    AsyncGuard,
    ConfigurationError,
    Guard,
    KeysUnavailableError,
    TokenInvalidError,
)
from clerk_guard._jwks import MAX_JWKS_KEYS, parse_jwks
from clerk_guard.testing import JWKSServer, LocalIssuer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Clock:
    """An injected clock the cache policies read; tests move it by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def transport(clerk_issuer):
    return clerk_issuer.transport()


def sync_guard(issuer, transport, clock, **options):
    return Guard(issuer.config(clock=clock, **options), transport=transport)


def test_first_verification_fetches_once_then_caches(clerk_issuer, transport, clock):
    """The key set is fetched once and reused for other tokens within the TTL."""
    with sync_guard(clerk_issuer, transport, clock) as guard:
        for n in range(5):
            guard.verify(clerk_issuer.mint(user_id=f"user_{n}", now=clock.now))
    assert transport.fetches == 1


def test_ttl_expiry_refreshes(clerk_issuer, transport, clock):
    """After the TTL the next verification refreshes the set (one fetch)."""
    with sync_guard(clerk_issuer, transport, clock, jwks_ttl=300) as guard:
        guard.verify(clerk_issuer.mint(now=clock.now))
        clock.now += 301
        guard.verify(clerk_issuer.mint(now=clock.now, user_id="user_b"))
    assert transport.fetches == 2


def test_unknown_kid_cooldown(clerk_issuer, transport, clock):
    """Unknown kids cause at most one fetch per cooldown, then jwk-kid-mismatch."""
    with sync_guard(clerk_issuer, transport, clock, jwks_cooldown=30) as guard:
        guard.verify(clerk_issuer.mint(now=clock.now))
        for _ in range(50):
            with pytest.raises(TokenInvalidError) as info:
                guard.verify(
                    clerk_issuer.mint(now=clock.now, headers={"kid": secrets.token_hex(8)})
                )
            assert info.value.code == "jwk-kid-mismatch"
        assert transport.fetches == 1
        clock.now += 31
        with pytest.raises(TokenInvalidError):
            guard.verify(clerk_issuer.mint(now=clock.now, headers={"kid": "ins_unknown"}))
        assert transport.fetches == 2


def test_new_kid_accepted_after_one_refresh(clerk_issuer, transport, clock):
    """A newly published kid is accepted after exactly one refresh."""
    with sync_guard(clerk_issuer, transport, clock) as guard:
        guard.verify(clerk_issuer.mint(now=clock.now))
        clerk_issuer.rotate()
        clock.now += 31
        auth = guard.verify(clerk_issuer.mint(now=clock.now, user_id="user_rotated"))
    assert auth.user_id == "user_rotated"
    assert transport.fetches == 2


def test_bad_signature_never_refreshes(clerk_issuer, transport, clock):
    """A token with a known kid but a bad signature causes no fetch."""
    other = LocalIssuer(kid=clerk_issuer.kid)
    with sync_guard(clerk_issuer, transport, clock) as guard:
        guard.verify(clerk_issuer.mint(now=clock.now))
        clock.now += 100
        for _ in range(10):
            with pytest.raises(TokenInvalidError) as info:
                guard.verify(other.mint(now=clock.now))
            assert info.value.code == "token-invalid-signature"
    assert transport.fetches == 1


def test_serve_stale_while_endpoint_fails(clerk_issuer, transport, clock):
    """The last good set keeps serving while refreshes fail, with back-off between attempts."""
    with sync_guard(clerk_issuer, transport, clock, jwks_ttl=60, jwks_max_stale=600) as guard:
        guard.verify(clerk_issuer.mint(now=clock.now))
        transport.status_code = 500
        clock.now += 61
        for n in range(20):
            assert guard.verify(clerk_issuer.mint(now=clock.now, user_id=f"u{n}")).user_id
        assert transport.fetches == 2  # one failed refresh, then back-off
        clock.now += 2
        guard.verify(clerk_issuer.mint(now=clock.now, user_id="later"))
        assert transport.fetches == 3
        clock.now += 600  # past max_stale: the old set is no longer trusted
        with pytest.raises(KeysUnavailableError):
            guard.verify(clerk_issuer.mint(now=clock.now, user_id="too-late"))
        transport.status_code = 200
        clock.now += 120
        assert guard.verify(clerk_issuer.mint(now=clock.now, user_id="back")).user_id


def test_cold_failure_is_503_with_backoff(clerk_issuer, transport, clock):
    """With nothing cached a failing endpoint gives KeysUnavailableError; retries back off."""
    transport.status_code = 500
    with sync_guard(clerk_issuer, transport, clock) as guard:
        for _ in range(10):
            with pytest.raises(KeysUnavailableError) as info:
                guard.verify(clerk_issuer.mint(now=clock.now))
            assert info.value.retry_after >= 1
        assert transport.fetches == 1
        transport.status_code = 200
        clock.now += 1.5
        assert guard.verify(clerk_issuer.mint(now=clock.now)).user_id
        assert transport.fetches == 2


def test_secret_key_rejected_is_reported(clerk_issuer, transport, clock):
    """A 401 from the Backend API names secret-key-invalid, and the secret is sent as Bearer."""
    transport.status_code = 401
    guard = Guard(
        clerk_issuer.config(publishable_key=None, secret_key="sk_test_wrong", clock=clock),
        transport=transport,
    )
    with guard, pytest.raises(KeysUnavailableError) as info:
        guard.verify(clerk_issuer.mint(now=clock.now))
    assert info.value.code == "secret-key-invalid"
    assert transport.requests[0].headers["authorization"] == "Bearer sk_test_wrong"
    assert str(transport.requests[0].url) == "https://api.clerk.com/v1/jwks"


def test_two_instances_never_share_keys(clock):
    """Two instances in one process, same kid: neither accepts the other's tokens."""
    a = LocalIssuer(frontend_api="clerk.a.test", kid="ins_same")
    b = LocalIssuer(frontend_api="clerk.b.test", kid="ins_same")
    with (
        Guard(a.config(clock=clock), transport=a.transport()) as ga,
        Guard(b.config(clock=clock), transport=b.transport()) as gb,
    ):
        assert ga.verify(a.mint(now=clock.now)).issuer == a.issuer
        assert gb.verify(b.mint(now=clock.now)).issuer == b.issuer
        for guard, foreign in ((ga, b), (gb, a)):
            with pytest.raises(TokenInvalidError) as info:
                guard.verify(foreign.mint(now=clock.now, user_id="intruder"))
            assert info.value.code == "token-invalid-signature"
        # Even with no issuer check, the key sets stay apart.
        gx = Guard(
            a.config(clock=clock, issuer="https://x.test", jwks_url=None), transport=a.transport()
        )
        with gx, pytest.raises(TokenInvalidError):
            gx.verify(b.mint(now=clock.now, iss="https://x.test"))


def test_jwks_parsing_rules(clerk_issuer):
    """Only RSA sig keys of >= 2048 bits with a kid are loaded; limits are enforced."""
    good = clerk_issuer.jwks()["keys"][0]
    small = LocalIssuer(key_size=1024).jwks()["keys"][0]
    keys = parse_jwks(
        httpx.Response(
            200,
            json={
                "keys": [
                    good,
                    small,
                    {**good, "kid": "enc", "use": "enc"},
                    {**good, "kid": "ec", "kty": "EC"},
                    {**good, "kid": "hs", "alg": "HS256"},
                    {**good, "kid": ""},
                    "junk",
                    {**good, "kid": "bad-n", "n": "***"},
                    {**good, "kid": "even-e", "e": "Ag"},
                ]
            },
        ).content
    )
    assert list(keys) == [good["kid"]]
    for body, code in [
        (b"not json", "jwk-remote-invalid"),
        (b"[]", "jwk-remote-invalid"),
        (b'{"keys": {}}', "jwk-remote-invalid"),
        (b'{"keys": []}', "jwk-remote-missing"),
        (
            httpx.Response(200, json={"keys": [good] * (MAX_JWKS_KEYS + 1)}).content,
            "jwk-remote-invalid",
        ),
    ]:
        with pytest.raises(KeysUnavailableError) as info:
            parse_jwks(body)
        assert info.value.code == code


# Real loopback server --------------------------------------------------------------------------

FAILURES = {
    "error": "jwk-remote-failed-to-load",
    "garbage": "jwk-remote-invalid",
    "empty": "jwk-remote-missing",
    "not-object": "jwk-remote-invalid",
    "slow": "jwk-remote-failed-to-load",
    "drip": "jwk-remote-failed-to-load",
    "hang": "jwk-remote-failed-to-load",
    "huge": "jwk-remote-invalid",
    "gzip-bomb": "jwk-remote-invalid",
    "redirect": "jwk-remote-failed-to-load",
    "reset": "jwk-remote-failed-to-load",
}
TIMEOUT = 1.5


@pytest.mark.parametrize("mode", sorted(FAILURES))
def test_sync_failure_modes_end_in_our_error(clerk_issuer, mode):
    """Each misbehaving endpoint ends in KeysUnavailableError within the deadline (sync)."""
    with JWKSServer(clerk_issuer) as server:
        server.mode, server.delay = mode, 6
        config = clerk_issuer.config(jwks_url=server.url, jwks_timeout=TIMEOUT)
        with Guard(config) as guard:
            started = time.monotonic()
            with pytest.raises(KeysUnavailableError) as info:
                guard.verify(clerk_issuer.mint())
            elapsed = time.monotonic() - started
        assert info.value.code == FAILURES[mode]
        assert elapsed < server.delay  # ended by our deadline, not by the server giving up
        assert server.fetches == 1


@pytest.mark.parametrize("mode", sorted(FAILURES))
async def test_async_failure_modes_end_in_our_error(clerk_issuer, mode):
    """Each misbehaving endpoint ends in KeysUnavailableError within the deadline (async)."""
    with JWKSServer(clerk_issuer) as server:
        server.mode, server.delay = mode, 6
        guard = AsyncGuard(clerk_issuer.config(jwks_url=server.url, jwks_timeout=TIMEOUT))
        started = time.monotonic()
        with pytest.raises(KeysUnavailableError) as info:
            await guard.verify(clerk_issuer.mint())
        elapsed = time.monotonic() - started
        await guard.aclose()
        assert info.value.code == FAILURES[mode]
        assert elapsed < server.delay
        assert server.fetches == 1


def test_real_server_serves_and_sends_identity(clerk_issuer):
    """Against the loopback server: keys load, identity encoding is asked, no credential leaks."""
    with JWKSServer(clerk_issuer) as server, Guard(clerk_issuer.config(jwks_url=server.url)) as g:
        assert g.verify(clerk_issuer.mint()).user_id
        assert server.last_headers.get("accept-encoding") == "identity"
        assert "authorization" not in server.last_headers


def test_100_threads_cold_one_fetch(clerk_issuer):
    """100 concurrent cold verifications on threads cause exactly one fetch."""
    tokens = [clerk_issuer.mint(user_id=f"user_{n}") for n in range(100)]
    with JWKSServer(clerk_issuer) as server:
        server.mode, server.delay = "slow", 0.3  # keep the fetch in flight while all arrive
        with Guard(clerk_issuer.config(jwks_url=server.url)) as guard:
            barrier = threading.Barrier(100, timeout=10)

            def work(token):
                barrier.wait()
                return guard.verify(token).user_id

            with ThreadPoolExecutor(max_workers=100) as pool:
                users = list(pool.map(work, tokens, timeout=30))
        assert users == [f"user_{n}" for n in range(100)]
        assert server.fetches == 1


async def test_100_tasks_cold_one_fetch(clerk_issuer):
    """100 concurrent cold verifications as tasks cause exactly one fetch."""
    tokens = [clerk_issuer.mint(user_id=f"user_{n}") for n in range(100)]
    with JWKSServer(clerk_issuer) as server:
        server.mode, server.delay = "slow", 0.3
        guard = AsyncGuard(clerk_issuer.config(jwks_url=server.url))
        results = await asyncio.wait_for(
            asyncio.gather(*(guard.verify(t) for t in tokens)), timeout=30
        )
        await guard.aclose()
        assert [r.user_id for r in results] == [f"user_{n}" for n in range(100)]
        assert server.fetches == 1


def test_500_random_kids_at_most_two_fetches(clerk_issuer):
    """500 tokens with random kids cost at most 2 fetches (the cold one and one refresh)."""
    with JWKSServer(clerk_issuer) as server, Guard(clerk_issuer.config(jwks_url=server.url)) as g:
        for _ in range(500):
            with pytest.raises(TokenInvalidError):
                g.verify(clerk_issuer.mint(headers={"kid": secrets.token_urlsafe(12)}))
        assert server.fetches <= 2


async def test_async_random_kids_at_most_two_fetches(clerk_issuer):
    """The same bound holds for concurrent tasks with random kids."""
    tokens = [clerk_issuer.mint(headers={"kid": secrets.token_urlsafe(12)}) for _ in range(500)]
    with JWKSServer(clerk_issuer) as server:
        guard = AsyncGuard(clerk_issuer.config(jwks_url=server.url))
        results = await asyncio.gather(*(guard.verify(t) for t in tokens), return_exceptions=True)
        await guard.aclose()
        assert all(isinstance(r, TokenInvalidError) for r in results)
        assert server.fetches <= 2


def test_new_kid_via_real_server(clerk_issuer, clock):
    """On the real server a rotated key is picked up after the cooldown with one more fetch."""
    with JWKSServer(clerk_issuer) as server:
        guard = Guard(clerk_issuer.config(jwks_url=server.url, clock=clock))
        with guard:
            guard.verify(clerk_issuer.mint(now=clock.now))
            clerk_issuer.rotate()
            clock.now += 31
            assert guard.verify(clerk_issuer.mint(now=clock.now, user_id="new")).user_id == "new"
        assert server.fetches == 2


def test_serve_stale_via_real_server(clerk_issuer, clock):
    """On the real server the last good set keeps serving while the endpoint answers 500."""
    with JWKSServer(clerk_issuer) as server:
        guard = Guard(clerk_issuer.config(jwks_url=server.url, clock=clock, jwks_ttl=10))
        with guard:
            guard.verify(clerk_issuer.mint(now=clock.now))
            server.mode = "error"
            clock.now += 11
            for n in range(5):
                assert guard.verify(clerk_issuer.mint(now=clock.now, user_id=f"s{n}")).user_id
        assert server.fetches == 2


async def test_warm_up(clerk_issuer):
    """warm_up fetches the set before any request, sync and async."""
    with JWKSServer(clerk_issuer) as server:
        with Guard(clerk_issuer.config(jwks_url=server.url)) as guard:
            guard.warm_up()
        assert server.fetches == 1
        clerk_issuer_config = clerk_issuer.config(jwks_url=server.url)
        from clerk_guard import clear_key_caches

        clear_key_caches()
        aguard = AsyncGuard(clerk_issuer_config)
        await aguard.warm_up()
        await aguard.aclose()
        assert server.fetches == 2


def test_outage_errors_are_fresh_and_count_down(clerk_issuer, transport, clock):
    """Each caller gets its own error (no shared traceback) with Retry-After counting down."""
    transport.status_code = 500
    with sync_guard(clerk_issuer, transport, clock) as guard:
        errors = []
        for _ in range(3):
            with pytest.raises(KeysUnavailableError) as info:
                guard.verify(clerk_issuer.mint(now=clock.now))
            errors.append(info.value)
        assert len({id(e) for e in errors}) == 3
        depth = len(list(_walk(errors[-1].__traceback__)))
        assert depth < 20
        clock.now += 0.6
        with pytest.raises(KeysUnavailableError) as info:
            guard.verify(clerk_issuer.mint(now=clock.now))
        assert info.value.retry_after == 1


def _walk(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_forged_kid_after_a_successful_fetch_is_401(clerk_issuer, transport, clock):
    """A kid missing from a set fetched successfully within the cooldown is jwk-kid-mismatch
    (401), even while the endpoint has since started failing: no fetch is due."""
    with sync_guard(clerk_issuer, transport, clock) as guard:
        guard.verify(clerk_issuer.mint(now=clock.now))
        transport.status_code = 500
        clock.now += 29  # inside the 30-s cooldown of a successful fetch
        for _ in range(20):
            with pytest.raises(TokenInvalidError) as info:
                guard.verify(clerk_issuer.mint(now=clock.now, headers={"kid": "ins_forged"}))
            assert info.value.code == "jwk-kid-mismatch"
        assert transport.fetches == 1


def _new_kid_outage(clerk_issuer, transport, clock):
    """Cached set, then the endpoint fails and the instance rotates: (old token, new token)."""
    transport.status_code = 500
    clerk_issuer.rotate()
    clock.now += 31  # past the cooldown: the unknown kid may fetch
    return clerk_issuer.mint(now=clock.now, kid=clerk_issuer.kids[0]), clerk_issuer.mint(
        now=clock.now, user_id="user_rotated"
    )


def test_new_kid_during_outage_is_503_then_accepted(clerk_issuer, transport, clock):
    """A kid the cached set lacks while the set cannot be refreshed is 503 with Retry-After
    counting down to the next attempt (never 401); once the endpoint is back it is accepted
    at the next attempt, at most jwks_max_backoff (10 s) later."""
    with sync_guard(clerk_issuer, transport, clock) as guard:
        guard.verify(clerk_issuer.mint(now=clock.now))
        old, new = _new_kid_outage(clerk_issuer, transport, clock)
        with pytest.raises(KeysUnavailableError) as info:
            guard.verify(new)
        assert (info.value.code, info.value.retry_after) == ("jwk-remote-failed-to-load", 1)
        assert "kid" in info.value.message
        assert transport.fetches == 2
        # In the back-off: still 503, no fetch, and the cached key keeps serving.
        for _ in range(20):
            with pytest.raises(KeysUnavailableError):
                guard.verify(new)
        assert guard.verify(old).user_id == "user_2test"
        assert transport.fetches == 2
        # Each failed attempt doubles the wait, up to the 10-s bound.
        waits = []
        for _ in range(7):
            clock.now += info.value.retry_after
            with pytest.raises(KeysUnavailableError) as info:
                guard.verify(new)
            waits.append(info.value.retry_after)
        assert waits == [2, 4, 8, 10, 10, 10, 10]
        assert transport.fetches == 9
        transport.status_code = 200
        clock.now += 9.5
        with pytest.raises(KeysUnavailableError) as info:
            guard.verify(new)  # the endpoint is back, but the next attempt is not due yet
        assert info.value.retry_after == 1
        clock.now += 0.5
        assert guard.verify(new).user_id == "user_rotated"
        assert transport.fetches == 10


async def test_async_new_kid_during_outage_is_503_then_accepted(clerk_issuer, transport, clock):
    """The same for AsyncGuard: 503 with Retry-After during the outage, from the fetch and
    from the cache alike, then the new kid is accepted at the first attempt after recovery."""
    guard = AsyncGuard(clerk_issuer.config(clock=clock), transport=transport)
    await guard.verify(clerk_issuer.mint(now=clock.now))
    old, new = _new_kid_outage(clerk_issuer, transport, clock)
    for expected in (1, 1):  # the failed fetch, then the back-off decided from the cache
        with pytest.raises(KeysUnavailableError) as info:
            await guard.verify(new)
        assert (info.value.code, info.value.retry_after) == ("jwk-remote-failed-to-load", expected)
    assert (await guard.verify(old)).user_id == "user_2test"
    assert transport.fetches == 2
    clock.now += 1
    with pytest.raises(KeysUnavailableError) as info:
        await guard.verify(new)
    assert info.value.retry_after == 2
    transport.status_code = 200
    clock.now += 2
    assert (await guard.verify(new)).user_id == "user_rotated"
    assert transport.fetches == 4
    # Recovered: a forged kid is 401 again, and within the cooldown costs no fetch.
    for _ in range(20):
        with pytest.raises(TokenInvalidError) as forged:
            await guard.verify(clerk_issuer.mint(now=clock.now, headers={"kid": "ins_forged"}))
        assert forged.value.code == "jwk-kid-mismatch"
    assert transport.fetches == 4
    await guard.aclose()


def test_forged_kids_during_outage_cause_no_fetch_storm(clerk_issuer, transport, clock):
    """During an outage a flood of random kids is answered 503 (they are not known to be
    forged) yet costs at most one fetch per back-off step; after recovery they are 401."""
    with sync_guard(clerk_issuer, transport, clock) as guard:
        guard.verify(clerk_issuer.mint(now=clock.now))
        transport.status_code = 500
        clock.now += 31
        for _ in range(100):
            with pytest.raises(KeysUnavailableError):
                guard.verify(
                    clerk_issuer.mint(now=clock.now, headers={"kid": secrets.token_hex(8)})
                )
        assert transport.fetches == 2
        transport.status_code = 200
        clock.now += 1
        for _ in range(100):
            with pytest.raises(TokenInvalidError):
                guard.verify(
                    clerk_issuer.mint(now=clock.now, headers={"kid": secrets.token_hex(8)})
                )
        assert transport.fetches == 3


async def test_async_forged_kids_during_outage_cause_no_fetch_storm(clerk_issuer, transport, clock):
    """The same bound for concurrent tasks: 200 random kids during an outage, one fetch."""
    guard = AsyncGuard(clerk_issuer.config(clock=clock), transport=transport)
    await guard.verify(clerk_issuer.mint(now=clock.now))
    transport.status_code = 500
    clock.now += 31
    tokens = [clerk_issuer.mint(now=clock.now, headers={"kid": secrets.token_hex(8)})] * 200
    results = await asyncio.gather(*(guard.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, KeysUnavailableError) for r in results)
    assert transport.fetches == 2
    await guard.aclose()


def test_token_without_kid_during_outage_is_401(clerk_issuer, transport, clock):
    """A token with no kid can match no key: 401, never a fetch, outage or not."""
    with sync_guard(clerk_issuer, transport, clock) as guard:
        guard.verify(clerk_issuer.mint(now=clock.now))
        transport.status_code = 500
        clock.now += 31
        with pytest.raises(TokenInvalidError) as info:
            guard.verify(clerk_issuer.mint(now=clock.now, headers={"kid": None}))
        assert info.value.code == "jwk-kid-mismatch"
        assert transport.fetches == 1


@pytest.mark.parametrize(("cap", "waits"), [(3, [1, 2, 3, 3]), (1, [1, 1, 1, 1])])
def test_backoff_cap_is_configurable(clerk_issuer, transport, clock, cap, waits):
    """jwks_max_backoff caps the doubling back-off after failures."""
    transport.status_code = 500
    seen = []
    with sync_guard(clerk_issuer, transport, clock, jwks_max_backoff=cap) as guard:
        for _ in waits:
            with pytest.raises(KeysUnavailableError) as info:
                guard.verify(clerk_issuer.mint(now=clock.now))
            seen.append(info.value.retry_after)
            clock.now += info.value.retry_after
    assert seen == waits
    assert transport.fetches == len(waits)


@pytest.mark.parametrize("value", [0, 0.5, 61, float("inf"), "10", True])
def test_backoff_cap_is_validated(clerk_issuer, value):
    """jwks_max_backoff outside 1..60 seconds (or not a number) is a configuration error."""
    with pytest.raises(ConfigurationError) as info:
        clerk_issuer.config(jwks_max_backoff=value)
    assert info.value.field == "jwks_max_backoff"


async def test_async_client_survives_new_event_loops(clerk_issuer):
    """The async key client works from several event loops (each fetch has its own client)."""
    import threading as _threading

    guard = AsyncGuard(clerk_issuer.config(jwks_ttl=0), transport=clerk_issuer.transport())
    results = []

    def other_loop():
        results.append(asyncio.run(guard.verify(clerk_issuer.mint(user_id="other"))).user_id)

    assert (await guard.verify(clerk_issuer.mint())).user_id == "user_2test"
    thread = _threading.Thread(target=other_loop)
    thread.start()
    thread.join(timeout=30)
    assert results == ["other"]


async def test_async_guard_takes_cached_keys_until_a_fetch_is_due(clerk_issuer, transport, clock):
    """AsyncGuard reads a fresh cached key without awaiting and fetches only when the policy
    says so: cold, then after the TTL (a refresh), each once."""
    guard = AsyncGuard(clerk_issuer.config(clock=clock, jwks_ttl=300), transport=transport)
    for n in range(5):
        assert (await guard.verify(clerk_issuer.mint(now=clock.now, user_id=f"u{n}"))).user_id
    assert transport.fetches == 1
    assert guard.jwks is not None and guard.jwks.cached_key(clerk_issuer.kid) is not None
    clock.now += 301
    assert (await guard.verify(clerk_issuer.mint(now=clock.now, user_id="later"))).user_id
    assert transport.fetches == 2
    await guard.aclose()


async def test_async_guard_key_errors_from_the_cache(clerk_issuer, transport, clock):
    """Errors the key cache decides alone (an unknown kid inside the cooldown, the back-off
    after a failed fetch) come out of AsyncGuard as they did from a fetch: annotated, without
    a chained KeyFetchNeeded, and without another fetch."""
    guard = AsyncGuard(clerk_issuer.config(clock=clock), transport=transport)
    await guard.verify(clerk_issuer.mint(now=clock.now))
    unknown = clerk_issuer.mint(now=clock.now, headers={"kid": "ins_unknown"})
    with pytest.raises(TokenInvalidError) as info:
        await guard.verify(unknown, source="header")
    assert info.value.code == "jwk-kid-mismatch"
    assert (info.value.source, len(info.value.fingerprint)) == ("header", 12)
    assert transport.fetches == 1  # the cooldown holds the fetch the kid triggered
    await guard.aclose()

    transport.status_code = 500
    other = f"https://{secrets.token_hex(4)}.test/jwks"  # its own, empty key cache
    cold = AsyncGuard(clerk_issuer.config(clock=clock, jwks_url=other), transport=transport)
    for _ in range(2):
        with pytest.raises(KeysUnavailableError) as failure:
            await cold.verify(clerk_issuer.mint(now=clock.now))
        assert failure.value.__context__ is None
    assert transport.fetches == 2  # one failed fetch; the second call was inside the back-off
    await cold.aclose()
