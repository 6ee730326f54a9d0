"""Property-based tests: whatever is thrown at extraction and verification, only a verified
result or the package's own error comes out, and no mutated token is ever accepted."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clerk_guard import ClerkGuardError, Guard, SessionAuth, extract_token, parse_cookies
from clerk_guard.testing import LocalIssuer

ISSUER = LocalIssuer(frontend_api="clerk.props.test")
NOW = 1_700_000_000
GUARD = Guard(ISSUER.config(jwt_key=ISSUER.public_pem, clock=lambda: NOW, token_cache_size=0))
VALID = ISSUER.mint(now=NOW, org_id="org_1", org_role="org:admin", org_permissions=["org:a:b"])
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def test_valid_token_baseline():
    """The unmutated token is accepted (so the mutation tests below mean something)."""
    assert GUARD.verify(VALID).user_id == "user_2test"


@SETTINGS
@given(st.data())
def test_mutated_tokens_never_accepted(data):
    """Changing, inserting or deleting characters of a valid token never yields acceptance."""
    chars = list(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        pos = data.draw(st.integers(0, len(chars) - 1))
        if op == "replace":
            chars[pos] = data.draw(st.sampled_from(URLSAFE + "=+/ %"))
        elif op == "insert":
            chars.insert(pos, data.draw(st.sampled_from(URLSAFE + "=")))
        else:
            del chars[pos]
    mutated = "".join(chars)
    if mutated == VALID:
        return
    with pytest.raises(ClerkGuardError):
        GUARD.verify(mutated)


@SETTINGS
@given(st.text(max_size=2000) | st.text(alphabet=URLSAFE, max_size=2000))
def test_random_tokens(value):
    """Random strings are rejected with our own error, never anything else."""
    with pytest.raises(ClerkGuardError):
        GUARD.verify(value)


@SETTINGS
@given(
    st.lists(st.text(max_size=300), max_size=3),
    st.lists(st.text(max_size=300), max_size=3),
)
def test_random_header_lines(authorization, cookies):
    """Any Authorization/Cookie lines give a token, None, or our own error."""
    try:
        found = extract_token(
            authorization, cookies, suffix="abcdefgh", frontend_api="clerk.props.test", now=NOW
        )
    except ClerkGuardError:
        return
    assert found is None or isinstance(found[0], str)
    try:
        result = GUARD.authenticate(authorization, cookies, required=False)
    except ClerkGuardError:
        return
    assert result is None or isinstance(result, SessionAuth)


def _outcome(guard: Guard, cookies: list[str]) -> object:
    try:
        auth = guard.authenticate([], cookies, required=False)
    except ClerkGuardError as exc:
        return exc.code
    return None if auth is None else (auth.user_id, auth.session_id, auth.token_source)


SUFFIX = ISSUER.config().cookie_suffix
COOKIE_PARTS = st.sampled_from(
    [
        f"__session={VALID}",
        f"__session_{SUFFIX}={VALID}",
        f"__session={ISSUER.mint(now=NOW, user_id='user_other')}",
        f"__session_{SUFFIX}={ISSUER.mint(now=NOW, user_id='user_suffixed')}",
        "__session=a.b.c",
        "__client_uat=0",
        f"__client_uat={NOW}",
        f"__client_uat_{SUFFIX}=0",
        f"__client_uat_{SUFFIX}={NOW}",
        "theme=dark",
        "",
    ]
)


@SETTINGS
@given(st.lists(COOKIE_PARTS | st.text(max_size=40), max_size=6))
def test_remembered_cookie_lines_answer_as_extraction(parts):
    """A guard asked about the same Cookie line again (answering from its memory of lines)
    answers as a guard seeing the line for the first time."""
    line = "; ".join(parts)
    fresh = _outcome(Guard(ISSUER.config(jwt_key=ISSUER.public_pem, clock=lambda: NOW)), [line])
    warm = Guard(ISSUER.config(jwt_key=ISSUER.public_pem, clock=lambda: NOW))
    assert [_outcome(warm, [line]) for _ in range(3)] == [fresh] * 3


@SETTINGS
@given(st.text(max_size=500))
def test_cookie_parsing_total(line):
    """Cookie parsing never raises and a well-formed pair after junk is still found."""
    cookies = parse_cookies([line + "; __session=tok"])
    assert isinstance(cookies, dict)
    if "__session" not in line:
        assert cookies.get("__session") == "tok"


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(
            ["o", "fea", "pla", "org_permissions", "fva", "act", "v", "sts", "org_role", "org_id"]
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
            max_leaves=8,
        ),
    )
)
def test_signed_odd_claims_never_crash(extra):
    """Validly signed tokens with odd claim values end in a result or our own error."""
    token = ISSUER.sign({**_claims(), **extra})
    try:
        auth = GUARD.verify(token)
    except ClerkGuardError:
        return
    assert isinstance(auth, SessionAuth)
    auth.has(role="admin", permission="org:a:b", feature="x", plan="y", reverification="strict")


def _claims():
    return {
        "sub": "user_1",
        "sid": "sess_1",
        "exp": NOW + 60,
        "iat": NOW,
        "iss": ISSUER.issuer,
        "nbf": NOW - 10,
    }
