"""Guard / AsyncGuard: authenticate() from raw lines, and the verified-token cache."""

from __future__ import annotations

import pytest

from clerk_guard import (
    AsyncGuard,
    Guard,
    SessionPendingError,
    TokenInvalidError,
    TokenMissingError,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pem_guard(clerk_issuer):
    clock = Clock(1_700_000_000)
    guard = Guard(clerk_issuer.config(jwt_key=clerk_issuer.public_pem, clock=clock))
    guard.clock = clock
    return guard


def test_authenticate_header_and_cookie(clerk_issuer, pem_guard):
    """authenticate() finds the token in the header or the cookie and says which."""
    token = clerk_issuer.mint(now=pem_guard.clock.now)
    assert pem_guard.authenticate([f"Bearer {token}"], []).token_source == "header"
    assert pem_guard.authenticate([], [f"a=b; __session={token}"]).token_source == "cookie"


def test_cached_token_keeps_the_extraction_rules(clerk_issuer, pem_guard):
    """A token answered from the cache is found by the same rules as a new one: the shortcut
    for "Bearer <token>" lines never accepts a line the extraction would refuse."""
    token = clerk_issuer.mint(now=pem_guard.clock.now)
    assert pem_guard.authenticate([], [f"__session={token}"]).token_source == "cookie"
    assert len(pem_guard.token_cache) == 1
    for line in (f"Bearer {token}", f"bearer  {token} ", token):
        assert pem_guard.authenticate([line], []).token_source == "header"
    refused = {
        (f"Bearer {token} x",): "authorization-header-malformed",
        (f"Bearer {token}", f"Bearer {token}"): "authorization-header-duplicated",
    }
    for lines, code in refused.items():
        with pytest.raises(TokenInvalidError) as info:
            pem_guard.authenticate(list(lines), [f"__session={token}"])
        assert info.value.code == code
    assert len(pem_guard.token_cache) == 1
    assert token not in repr(pem_guard.token_cache)  # a logged cache never shows a token


def _count_extractions(guard: Guard) -> list[int]:
    """Wrap guard.extract (the full extraction) to count its calls."""
    calls = [0]
    extract = guard.extract

    def counted(authorization, cookies):
        calls[0] += 1
        return extract(authorization, cookies)

    guard.extract = counted  # type: ignore[method-assign]
    return calls


def test_cookie_line_remembered_with_its_token(clerk_issuer, pem_guard):
    """A browser sending the same Cookie line again skips extraction: the line is remembered
    with the verified token chosen from it, and gets the same answer. Another line, several
    lines, or an Authorization header go through the whole extraction."""
    token = clerk_issuer.mint(now=pem_guard.clock.now)
    other = clerk_issuer.mint(now=pem_guard.clock.now, user_id="user_other")
    calls = _count_extractions(pem_guard)
    line = f"theme=dark; __session={token}; _ga=GA1.2.3"
    first = pem_guard.authenticate([], [line])  # verified
    second = pem_guard.authenticate([], [line])  # found in the cache: the line is remembered
    assert calls[0] == 2
    for _ in range(3):
        auth = pem_guard.authenticate([], [line])
        assert (auth.user_id, auth.session_id, auth.token_source) == (
            first.user_id,
            first.session_id,
            "cookie",
        )
    assert calls[0] == 2
    assert second == first
    assert pem_guard.authenticate([], [f"theme=light; __session={other}"]).user_id == "user_other"
    assert calls[0] == 3
    assert pem_guard.authenticate([], [line, "a=b"]).user_id == first.user_id
    assert pem_guard.authenticate(["Basic dTpw"], [line]).user_id == first.user_id
    assert calls[0] == 5
    long_line = f"{line}; padding={'x' * 8192}"
    for _ in range(3):
        assert pem_guard.authenticate([], [long_line]).user_id == first.user_id
    assert calls[0] == 8  # too long to remember
    assert token not in repr(pem_guard._cookie_tokens)


def test_remembered_cookie_needs_a_verified_token(clerk_issuer, pem_guard):
    """A line is only remembered with a token that verified; an evicted or expired token
    sends the line back through extraction and verification."""
    clock = pem_guard.clock
    token = clerk_issuer.mint(now=clock.now, lifetime=60)
    line = f"__session={token}"
    with pytest.raises(TokenInvalidError):
        pem_guard.authenticate([], ["__session=a.b.c"])
    assert len(pem_guard._cookie_tokens) == 0
    pem_guard.authenticate([], [line])
    pem_guard.authenticate([], [line])
    assert len(pem_guard._cookie_tokens) == 1
    pem_guard.token_cache.clear()
    calls = _count_extractions(pem_guard)
    assert pem_guard.authenticate([], [line]).user_id == "user_2test"
    assert calls[0] == 1
    clock.now += 66  # past exp and the leeway
    with pytest.raises(TokenInvalidError) as info:
        pem_guard.authenticate([], [line])
    assert info.value.code == "token-expired"


def test_remembered_cookie_choice_follows_the_clock(clerk_issuer, pem_guard):
    """In development, the suffixed session cookie stops being chosen once its token expires
    (with __client_uat=0, as @clerk/backend): a remembered line does not keep the old choice,
    even inside the leeway, where the cache would still accept the suffixed token."""
    clock = pem_guard.clock
    suffix = pem_guard.config.cookie_suffix
    assert suffix and not pem_guard._production
    plain = clerk_issuer.mint(now=clock.now, user_id="user_plain", lifetime=600)
    suffixed = clerk_issuer.mint(now=clock.now, user_id="user_suffixed", lifetime=60)
    line = (
        f"__session={plain}; __session_{suffix}={suffixed}; "
        f"__client_uat=0; __client_uat_{suffix}={int(clock.now)}"
    )
    for _ in range(3):
        assert pem_guard.authenticate([], [line]).user_id == "user_suffixed"
    assert len(pem_guard._cookie_tokens) == 1
    clock.now += 60  # the suffixed token's exp: still inside the leeway for the cache
    assert pem_guard.verify(suffixed).user_id == "user_suffixed"
    for _ in range(3):
        assert pem_guard.authenticate([], [line]).user_id == "user_plain"
    # A clock set back before the suffixed token's exp (an NTP step, a test's clock) makes
    # extraction choose it again, and the remembered choice does not stand in the way.
    clock.now -= 10
    assert pem_guard.authenticate([], [line]).user_id == "user_suffixed"


def test_authenticate_missing(pem_guard):
    """No token: TokenMissingError when required, None when optional."""
    with pytest.raises(TokenMissingError) as info:
        pem_guard.authenticate([], [])
    assert info.value.code == "session-token-missing"
    assert pem_guard.authenticate([], [], required=False) is None


def test_optional_still_rejects_invalid(pem_guard):
    """An invalid token is an error even when authentication is optional."""
    with pytest.raises(TokenInvalidError):
        pem_guard.authenticate(["Bearer a.b.c"], [], required=False)


def test_optional_pending_is_signed_out(clerk_issuer, pem_guard):
    """A pending session is signed out: None when optional; when required, a refused token
    (SessionPendingError, a TokenInvalidError), not a missing one."""
    token = clerk_issuer.mint(now=pem_guard.clock.now, status="pending")
    assert pem_guard.authenticate([f"Bearer {token}"], [], required=False) is None
    with pytest.raises(SessionPendingError) as info:
        pem_guard.authenticate([f"Bearer {token}"], [])
    assert isinstance(info.value, TokenInvalidError)
    assert info.value.code == "session-token-pending"
    assert info.value.source == "header"


def test_errors_carry_source_and_fingerprint(pem_guard):
    """A rejection records the token source and a fingerprint, never the token."""
    with pytest.raises(TokenInvalidError) as info:
        pem_guard.authenticate([], ["__session=x.y.z"])
    assert info.value.source == "cookie"
    assert len(info.value.fingerprint) == 12


def test_cache_hit_rechecks_expiry(clerk_issuer, pem_guard):
    """A cached token is never accepted past exp (+ leeway)."""
    clock = pem_guard.clock
    token = clerk_issuer.mint(now=clock.now, lifetime=60)
    assert pem_guard.verify(token).user_id
    assert len(pem_guard.token_cache) == 1
    clock.now += 64
    assert pem_guard.verify(token).user_id  # within leeway
    clock.now += 1
    with pytest.raises(TokenInvalidError) as info:
        pem_guard.verify(token)
    assert info.value.code == "token-expired"
    assert len(pem_guard.token_cache) == 0


def test_cache_hit_updates_source(clerk_issuer, pem_guard):
    """The same token seen from the cookie after the header reports the cookie."""
    token = clerk_issuer.mint(now=pem_guard.clock.now)
    assert pem_guard.verify(token, source="header").token_source == "header"
    assert pem_guard.verify(token, source="cookie").token_source == "cookie"


def test_cache_is_bounded_lru(clerk_issuer):
    """The cache never holds more than token_cache_size entries, evicting the oldest."""
    clock = Clock(1_700_000_000)
    guard = Guard(
        clerk_issuer.config(jwt_key=clerk_issuer.public_pem, clock=clock, token_cache_size=3)
    )
    tokens = [clerk_issuer.mint(now=clock.now, user_id=f"u{n}") for n in range(5)]
    for token in tokens:
        guard.verify(token)
    assert len(guard.token_cache) == 3
    assert guard.token_cache.get(tokens[0]) is None
    assert guard.token_cache.get(tokens[4]) is not None


def test_cache_off(clerk_issuer):
    """token_cache_size=0 turns the cache off, and the memory of cookie lines with it."""
    guard = Guard(clerk_issuer.config(jwt_key=clerk_issuer.public_pem, token_cache_size=0))
    guard.verify(clerk_issuer.mint())
    assert len(guard.token_cache) == 0
    line = f"__session={clerk_issuer.mint()}"
    for _ in range(3):
        assert guard.authenticate([], [line]).token_source == "cookie"
    assert len(guard._cookie_tokens) == 0


def test_failures_are_not_cached(clerk_issuer, pem_guard):
    """Rejected tokens are never cached."""
    with pytest.raises(TokenInvalidError):
        pem_guard.verify(clerk_issuer.mint(now=pem_guard.clock.now - 1000))
    assert len(pem_guard.token_cache) == 0


def test_cache_per_configuration(clerk_issuer):
    """A token accepted by one guard is not accepted by a stricter one through a shared cache."""
    clock = Clock(1_700_000_000)
    lax = Guard(clerk_issuer.config(jwt_key=clerk_issuer.public_pem, clock=clock))
    strict = Guard(
        clerk_issuer.config(
            jwt_key=clerk_issuer.public_pem, clock=clock, authorized_parties=["https://only.test"]
        )
    )
    token = clerk_issuer.mint(now=clock.now)
    assert lax.verify(token).user_id
    with pytest.raises(TokenInvalidError) as info:
        strict.verify(token)
    assert info.value.code == "token-invalid-authorized-parties"


def test_guard_options_build_config(clerk_issuer):
    """Guard(**fields) builds the configuration; Guard(config, **fields) overrides it."""
    guard = Guard(jwt_key=clerk_issuer.public_pem, leeway=1)
    assert guard.config.leeway == 1
    assert Guard(guard.config, leeway=2).config.leeway == 2


async def test_async_guard_authenticate(clerk_issuer):
    """AsyncGuard verifies through the async key client and caches like Guard."""
    transport = clerk_issuer.transport()
    guard = AsyncGuard(clerk_issuer.config(), transport=transport)
    token = clerk_issuer.mint()
    for _ in range(3):
        auth = await guard.authenticate([f"Bearer {token}"], [])
        assert auth.user_id == "user_2test"
    assert await guard.authenticate([], [], required=False) is None
    with pytest.raises(TokenMissingError):
        await guard.authenticate([], [])
    pending = clerk_issuer.mint(status="pending")
    assert await guard.authenticate([f"Bearer {pending}"], [], required=False) is None
    await guard.aclose()
    assert transport.fetches == 1
