"""Token extraction from raw header lines (contract §2)."""

from __future__ import annotations

import base64
import json

import pytest

from clerk_guard import TokenInvalidError, extract_token, parse_cookies
from clerk_guard._tokens import MAX_TOKEN_LENGTH, choose_session_cookie

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"


def fake_jwt(**payload) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.c2ln"


@pytest.mark.parametrize(
    "value",
    [f"Bearer {JWT}", f"bearer {JWT}", f"BEARER {JWT}", f"  Bearer   {JWT}  ", f"Bearer\t{JWT}"],
)
def test_bearer_scheme_case_insensitive_spaces_tolerated(value):
    """Bearer is matched case-insensitively with spaces around."""
    assert extract_token([value], []) == (JWT, "header")


def test_bare_jwt_accepted():
    """A header value with no scheme that looks like a JWT is taken as the token."""
    assert extract_token([JWT], []) == (JWT, "header")


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Token abc", "garbage", "", "   "])
def test_other_schemes_fall_back_to_cookie(value):
    """Another scheme is not ours: the cookie is used instead."""
    assert extract_token([value], [f"__session={JWT}"]) == (JWT, "cookie")


@pytest.mark.parametrize(
    "value", ["Bearer", "Bearer  ", f"Bearer {JWT} extra", f"Bearer a, Bearer {JWT}"]
)
def test_bearer_without_exactly_one_token_rejected(value):
    """Bearer with zero or several tokens is a malformed header, not a fallback."""
    with pytest.raises(TokenInvalidError) as info:
        extract_token([value], [f"__session={JWT}"])
    assert info.value.code == "authorization-header-malformed"


def test_two_authorization_lines_rejected():
    """Two Authorization field lines are rejected."""
    with pytest.raises(TokenInvalidError) as info:
        extract_token([f"Bearer {JWT}", f"Bearer {JWT}"], [])
    assert info.value.code == "authorization-header-duplicated"


def test_header_wins_over_cookie_even_if_bad():
    """When the header yields a token, the cookie is never consulted."""
    assert extract_token(["Bearer not-a-jwt"], [f"__session={JWT}"]) == ("not-a-jwt", "header")


def test_no_token():
    """No header and no session cookie gives None."""
    assert extract_token([], ["other=1"]) is None
    assert extract_token([], []) is None


def test_too_long_rejected_before_decoding():
    """Tokens over 8 KiB are rejected, from the header or the cookie."""
    long = "a" * (MAX_TOKEN_LENGTH + 1)
    for args in (([f"Bearer {long}"], []), ([], [f"__session={long}"])):
        with pytest.raises(TokenInvalidError) as info:
            extract_token(*args)
        assert info.value.code == "token-too-long"
    assert extract_token([f"Bearer {'a' * MAX_TOKEN_LENGTH}"], []) is not None


def test_cookie_parsing_is_tolerant():
    """A malformed pair never hides the others; quotes are stripped; first value wins."""
    cookies = parse_cookies(['junk; =novalue; a=1; b="two"; __session=x', "a=2; c = 3 "])
    assert cookies == {"a": "1", "b": "two", "__session": "x", "c": "3"}


def test_cookie_across_several_lines():
    """Cookie field lines are all read (HTTP/2 sends one cookie per line)."""
    assert extract_token([], ["a=1", f"__session={JWT}"]) == (JWT, "cookie")


def test_empty_session_cookie_is_no_token():
    """An empty __session cookie counts as no token."""
    assert extract_token([], ["__session="]) is None


ISS = "https://clerk.example.test"
SUFFIX = "abcd1234"


def choose(cookies, production=False, now=1000):
    return choose_session_cookie(
        cookies, suffix=SUFFIX, frontend_api="clerk.example.test", production=production, now=now
    )


def test_suffixed_cookie_preferred_when_client_uat_suffixed():
    """With __client_uat_<suffix> set, the suffixed session cookie is used."""
    plain, suffixed = fake_jwt(iss=ISS, iat=10), fake_jwt(iss=ISS, iat=20, exp=2000)
    cookies = {
        "__session": plain,
        f"__session_{SUFFIX}": suffixed,
        f"__client_uat_{SUFFIX}": "5",
        "__client_uat": "5",
    }
    assert choose(cookies) == suffixed


def test_plain_cookie_from_other_instance_means_suffixed():
    """A plain __session from another Clerk app on the domain is ignored for the suffixed one."""
    other, mine = fake_jwt(iss="https://clerk.other.test", iat=10), fake_jwt(iss=ISS, iat=5)
    assert choose({"__session": other, f"__session_{SUFFIX}": mine}) == mine


def test_plain_cookie_without_issuer_is_used():
    """A plain __session that is not a Clerk token keeps the plain cookie path."""
    odd = fake_jwt(sub="x")
    assert choose({"__session": odd, f"__session_{SUFFIX}": fake_jwt(iss=ISS)}) == odd


def test_only_plain_cookie():
    """Without suffixed cookies the plain cookie is used."""
    plain = fake_jwt(iss=ISS, iat=1)
    assert choose({"__session": plain, "__client_uat": "1"}) == plain


def test_newer_plain_session_wins():
    """When both uats are set and the plain session is newer, the plain cookie is used."""
    plain, suffixed = fake_jwt(iss=ISS, iat=30), fake_jwt(iss=ISS, iat=20)
    cookies = {
        "__session": plain,
        f"__session_{SUFFIX}": suffixed,
        f"__client_uat_{SUFFIX}": "1",
        "__client_uat": "1",
    }
    assert choose(cookies) == plain


def test_suffixed_signed_out_uses_plain():
    """__client_uat_<suffix>=0 with a plain uat set means the plain cookie."""
    plain, suffixed = fake_jwt(iss=ISS, iat=10), fake_jwt(iss=ISS, iat=20)
    cookies = {
        "__session": plain,
        f"__session_{SUFFIX}": suffixed,
        f"__client_uat_{SUFFIX}": "0",
        "__client_uat": "5",
    }
    assert choose(cookies) == plain


def test_expired_suffixed_in_development_uses_plain():
    """In development, an expired suffixed session with plain uat 0 falls back to plain."""
    plain, suffixed = fake_jwt(iss=ISS, iat=10), fake_jwt(iss=ISS, iat=20, exp=500)
    cookies = {
        "__session": plain,
        f"__session_{SUFFIX}": suffixed,
        f"__client_uat_{SUFFIX}": "5",
        "__client_uat": "0",
    }
    assert choose(cookies, production=False, now=1000) == plain
    assert choose(cookies, production=True, now=1000) == suffixed


def test_suffixed_session_without_suffixed_uat_uses_plain():
    """A suffixed session but no suffixed uat (feature off in FAPI) uses the plain cookie."""
    plain, suffixed = fake_jwt(iss=ISS, iat=10), fake_jwt(iss=ISS, iat=20)
    assert choose({"__session": plain, f"__session_{SUFFIX}": suffixed}) == plain


def test_no_suffix_configured_reads_plain_only():
    """Without a publishable key only __session is read."""
    got = choose_session_cookie(
        {f"__session_{SUFFIX}": JWT}, suffix=None, frontend_api=None, production=False, now=0
    )
    assert got is None


@pytest.mark.parametrize("iss", [123, True, [], {}, ["https://clerk.example.test"]])
def test_plain_cookie_with_non_string_issuer_means_suffixed(iss):
    """A plain __session whose iss is set but not a string is not this instance's: the suffixed
    cookie is used, as @clerk/backend decides (a planted plain cookie cannot hide the real one)."""
    planted, mine = fake_jwt(iss=iss, iat=10), fake_jwt(iss=ISS, iat=5)
    assert choose({"__session": planted, f"__session_{SUFFIX}": mine}) == mine


@pytest.mark.parametrize("iss", [None, "", 0, False])
def test_plain_cookie_with_empty_issuer_is_used(iss):
    """A plain __session whose iss is absent or empty (false in JavaScript) keeps the plain
    cookie: the request is then signed out by verification, not sent to the suffixed one."""
    odd = fake_jwt(iss=iss, iat=10)
    assert choose({"__session": odd, f"__session_{SUFFIX}": fake_jwt(iss=ISS)}) == odd


def test_issuer_schemes_are_removed_anywhere():
    """Every http(s):// in the plain token's iss is removed before comparing it with the
    Frontend API host, as @clerk/backend does."""
    plain, suffixed = fake_jwt(iss="https://HTTP://clerk.example.test"), fake_jwt(iss=ISS)
    assert choose({"__session": plain, f"__session_{SUFFIX}": suffixed}) == plain


@pytest.mark.parametrize("blank", ["\xa0", "\x0b", "\x1c", "\u3000", "\x85"])
def test_bearer_with_other_white_space_rejected(blank):
    """Only spaces and tabs separate the scheme from the token (RFC 7235 §2.1): any other white
    space or control character makes the header malformed, never a token."""
    for value in (f"Bearer{blank}{JWT}", f"Bearer {JWT}{blank}", f"{JWT}{blank}"):
        with pytest.raises(TokenInvalidError) as info:
            extract_token([value], [f"__session={JWT}"])
        assert info.value.code == "authorization-header-malformed"


def test_other_scheme_with_control_characters_is_not_ours():
    """Another scheme is left alone even when its value holds odd characters."""
    assert extract_token(["Basic\xa0abc"], [f"__session={JWT}"]) == (JWT, "cookie")
