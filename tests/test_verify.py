"""One test per rejection reason of the verifier (contract §3)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from clerk_guard import (
    ClerkGuardError,
    Guard,
    GuardConfig,
    SessionPendingError,
    TokenInvalidError,
)
from clerk_guard._verify import CLAIM_CHECKS, Verifier

NOW = 1_700_000_000
ISSUER = "https://clerk.example.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: bytes | str, payload: bytes | str, key=KEY) -> str:
    """Sign exact header and payload bytes, so tests control every byte of the JSON."""
    header = header.encode() if isinstance(header, str) else header
    payload = payload.encode() if isinstance(payload, str) else payload
    signing_input = f"{b64(header)}.{b64(payload)}".encode()
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64(signature)}"


def claims(**overrides):
    payload = {
        "azp": "https://app.example.test",
        "exp": NOW + 60,
        "iat": NOW,
        "iss": ISSUER,
        "nbf": NOW - 10,
        "sid": "sess_1",
        "sub": "user_1",
        "sts": "active",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def token(header=None, key=KEY, **overrides) -> str:
    head = {"alg": "RS256", "kid": "ins_1", "typ": "JWT"}
    head.update(header or {})
    head = {k: v for k, v in head.items() if v is not None}
    return raw_token(json.dumps(head), json.dumps(claims(**overrides)), key)


def guard(**overrides) -> Guard:
    options = {"jwt_key": PEM, "issuer": ISSUER, "clock": lambda: NOW}
    options.update(overrides)
    return Guard(GuardConfig(**options))


def reason(token_value: str, **config) -> str:
    with pytest.raises(TokenInvalidError) as info:
        guard(**config).verify(token_value)
    return info.value.code


def test_valid_token_accepted():
    """A well-formed token signed by the configured key is accepted with its claims."""
    auth = guard().verify(token())
    assert (auth.user_id, auth.session_id, auth.session_status) == ("user_1", "sess_1", "active")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        token() + ".",
        token().replace(".", "..", 1),
    ],
)
def test_structure_rejected(value):
    """A token without exactly three non-empty segments is token-invalid."""
    assert reason(value) == "token-invalid"


def test_padded_segment_rejected():
    """Base64 padding in a segment is refused (RFC 7515 §2: unpadded base64url)."""
    head, payload, sig = token().split(".")
    assert reason(f"{head}=.{payload}.{sig}") == "token-invalid"
    assert reason(f"{head}.{payload}.{sig}==") == "token-invalid"


def test_standard_alphabet_rejected():
    """'+' or '/' (standard base64) in a segment is refused."""
    head, payload, sig = token().split(".")
    assert reason(f"{head}.{payload}.{sig[:-2]}+/") == "token-invalid"


def test_non_canonical_base64_rejected():
    """A final character with non-zero unused bits (same bytes, other spelling) is refused."""
    head, payload, sig = token().split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(sig) % 4 == 2  # 256 bytes -> 342 chars: the last char carries 4 unused bits
    twin = sig[:-1] + alphabet[alphabet.index(sig[-1]) | 1]
    assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(sig + "==")
    assert reason(f"{head}.{payload}.{twin}") == "token-invalid"


@pytest.mark.parametrize(
    "header",
    [
        b"not json",
        b"[1, 2]",
        b'"RS256"',
        b'{"alg": "RS256", "alg": "RS256"}',
        b"\xff\xfe{}",
        b'{"alg": "RS256", "x": NaN}',
    ],
    ids=["not-json", "array", "string", "duplicate-member", "not-utf8", "nan"],
)
def test_bad_header_json_rejected(header):
    """A header that is not one strict JSON object is token-invalid."""
    assert reason(raw_token(header, json.dumps(claims()))) == "token-invalid"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        json.dumps(claims())[:-1].encode() + b', "sub": "user_2"}',
        b'{"sub": "user_1", "sid": "s", "exp": Infinity, "iat": 1}',
        b"[" * 2500 + b"]" * 2500,
    ],
    ids=["not-json", "array", "duplicate-sub", "infinity", "deep-nesting"],
)
def test_bad_payload_json_rejected(payload):
    """A signed payload that is not one strict JSON object is token-invalid."""
    assert reason(raw_token(b'{"alg":"RS256","typ":"JWT"}', payload)) == "token-invalid"


@pytest.mark.parametrize(
    ("overrides", "config", "group"),
    [
        ({"sid": None}, {}, 0),
        ({"sub": "mch_1", "sid": None}, {}, 0),  # a machine token: named so, sid or not
        ({"exp": "1700000060"}, {}, 0),
        ({"exp": NOW - 10}, {}, 1),
        ({"nbf": NOW + 60}, {}, 1),
        ({"iat": NOW + 60}, {}, 1),
        ({"iss": "https://other.test"}, {}, 2),
        ({}, {"authorized_parties": ["https://other.test"]}, 2),
        ({}, {"audience": ["api"]}, 2),
        ({"sts": "pending"}, {}, 3),
    ],
)
def test_claim_check_codes_belong_to_their_group(overrides, config, group):
    """Each claim stage fails with a code CLAIM_CHECKS lists for it, and only that stage fails,
    so the doctor, stepping through the stages, names the check the middleware failed."""
    verifier = guard(**config).verifier
    payload = claims(**overrides)
    names = [name for name, _ in CLAIM_CHECKS]
    assert [name for name, _ in verifier.claim_stages] == names
    failed = {}
    for index, (_name, check) in enumerate(verifier.claim_stages):
        if index == 1 and 0 in failed:
            continue  # the lifetime stage runs on the required claims' types
        try:
            check(payload, NOW)
        except ClerkGuardError as exc:
            failed[index] = exc.code
    assert list(failed) == [group]
    assert failed[group] in CLAIM_CHECKS[group][1]
    with pytest.raises(ClerkGuardError) as info:
        verifier.verify(token(**overrides))
    assert info.value.code == failed[group]


def test_payload_with_data_after_the_object_rejected():
    """Anything after the JSON object, even another object, is token-invalid."""
    payload = json.dumps(claims()).encode()
    for tail in (b" x", b"{}", b"\x00"):
        assert reason(raw_token(b'{"alg":"RS256"}', payload + tail)) == "token-invalid"


def test_json_whitespace_accepted():
    """Whitespace around and inside the JSON is valid JSON: header and payload still verify."""
    header = b' \n{ "alg" : "RS256" }\t'
    payload = b"\r\n " + json.dumps(claims(), indent=2).encode() + b" \n"
    assert guard().verify(raw_token(header, payload)).user_id == "user_1"


@pytest.mark.parametrize("alg", ["HS256", "none", "RS512", "ES256", "PS256", None, ["RS256"]])
def test_algorithm_other_than_rs256_rejected(alg):
    """Only RS256 is accepted; every other alg, or none, is token-invalid-algorithm."""
    assert reason(token(header={"alg": alg})) == "token-invalid-algorithm"


@pytest.mark.parametrize("name", ["crit", "jku", "x5u", "jwk", "x5c"])
def test_dangerous_headers_rejected(name):
    """Tokens carrying crit, jku, x5u, jwk or x5c are refused and those are never used."""
    assert reason(token(header={name: "https://attacker.example/keys"})) == "token-invalid"


@pytest.mark.parametrize("typ", ["jwt", "JWS", "", 1])
def test_unknown_typ_rejected(typ):
    """A typ other than absent or exactly JWT is token-invalid."""
    assert reason(token(header={"typ": typ})) == "token-invalid"


def test_absent_typ_accepted():
    """A token without typ is accepted."""
    assert guard().verify(token(header={"typ": None})).user_id == "user_1"


@pytest.mark.parametrize(
    "change",
    [
        {"header": {"typ": "at+jwt"}},
        {"header": {"typ": "application/at+jwt"}},
        {"header": {"cat": "cl_B7d4PD333AAA"}},
        {"sub": "mch_123"},
    ],
    ids=["at+jwt", "application/at+jwt", "m2m-category", "machine-subject"],
)
def test_machine_tokens_rejected(change):
    """Machine and OAuth tokens signed by the same key are token-type-mismatch."""
    assert reason(token(**change)) == "token-type-mismatch"


@pytest.mark.parametrize("kid", [1, "", ["a"]])
def test_malformed_kid_rejected(kid):
    """A kid that is not a non-empty string is token-invalid."""
    assert reason(token(header={"kid": kid})) == "token-invalid"


def test_tampered_payload_rejected():
    """Changing the payload after signing is token-invalid-signature."""
    head, _, sig = token().split(".")
    forged = b64(json.dumps(claims(sub="user_admin")).encode())
    assert reason(f"{head}.{forged}.{sig}") == "token-invalid-signature"


def test_other_key_rejected():
    """A token signed by another key (same kid) is token-invalid-signature."""
    assert reason(token(key=OTHER_KEY)) == "token-invalid-signature"


@pytest.mark.parametrize(
    "change",
    [
        lambda sig: sig[:-1],  # a byte short
        lambda sig: sig[1:],  # the first byte dropped
        lambda sig: b"\0" + sig,  # the same number, one byte longer
        lambda sig: sig + b"\0",
        lambda sig: b"\0" * len(sig),
        lambda sig: sig + sig,
    ],
    ids=["short", "first-byte-dropped", "leading-zero-added", "byte-appended", "zeros", "twice"],
)
def test_signature_of_another_length_rejected(change: Callable[[bytes], bytes]) -> None:
    """A signature that is not exactly the key's length (RFC 7518 §3.3) is
    token-invalid-signature, even when it is the right one with a leading zero byte added."""
    head, payload, sig = token().split(".")
    other = b64(change(base64.urlsafe_b64decode(sig + "==")))
    assert reason(f"{head}.{payload}.{other}") == "token-invalid-signature"


def test_signature_with_its_leading_zero_stripped_rejected():
    """A valid signature whose first byte is 0, sent without it (the same number, one byte
    short), is token-invalid-signature: RFC 7518 wants exactly the key's length, and the
    math alone would accept it. The unstripped token verifies."""
    for n in range(5000):  # about 1 signature in 256 starts with a zero byte
        valid = token(sid=f"sess_{n}")
        head, payload, sig = valid.split(".")
        raw = base64.urlsafe_b64decode(sig + "==")
        if raw[0] == 0:
            break
    else:  # pragma: no cover - (255/256)**5000 < 1e-8
        pytest.fail("no signature with a leading zero byte")
    assert guard().verify(valid).session_id == f"sess_{n}"
    assert reason(f"{head}.{payload}.{b64(raw[1:])}") == "token-invalid-signature"


def test_forged_token_learns_nothing_about_claims():
    """A forged token with wrong issuer and expired claims still fails on the signature."""
    forged = token(key=OTHER_KEY, iss="https://evil.example", exp=1)
    assert reason(forged) == "token-invalid-signature"


@pytest.mark.parametrize(
    "change",
    [
        {"sub": None},
        {"sid": None},
        {"sub": ""},
        {"sid": 5},
        {"exp": None},
        {"iat": None},
        {"exp": str(NOW + 60)},
        {"iat": str(NOW)},
        {"exp": True},
        {"iat": False},
        {"nbf": str(NOW)},
        {"exp": [NOW + 60]},
    ],
    ids=lambda c: ",".join(f"{k}={v!r}" for k, v in c.items()),
)
def test_required_claims(change):
    """sub and sid must be non-empty strings, exp/iat (and nbf) JSON numbers."""
    assert reason(token(**change)) == "token-invalid"


def test_expired_rejected_at_leeway_edge():
    """Expired when exp <= now - leeway: exp exactly now-5 fails, now-4 passes."""
    assert reason(token(exp=NOW - 5, iat=NOW - 60, nbf=NOW - 70)) == "token-expired"
    assert guard().verify(token(exp=NOW - 4, iat=NOW - 60, nbf=NOW - 70)).user_id


def test_not_active_yet_rejected():
    """nbf > now + leeway is token-not-active-yet; nbf = now + leeway passes."""
    assert reason(token(nbf=NOW + 6, iat=NOW)) == "token-not-active-yet"
    assert guard().verify(token(nbf=NOW + 5)).user_id


def test_iat_in_future_rejected():
    """iat > now + leeway is token-iat-in-the-future."""
    assert reason(token(iat=NOW + 6, nbf=NOW)) == "token-iat-in-the-future"


def test_leeway_configurable():
    """leeway=0 rejects a token expired one second ago that the default accepts."""
    expired = token(exp=NOW - 1, iat=NOW - 60, nbf=NOW - 70)
    assert guard().verify(expired).user_id
    assert reason(expired, leeway=0) == "token-expired"


@pytest.mark.parametrize(
    "iss", ["https://clerk.other.test", "https://clerk.example.test/", None, 7]
)
def test_issuer_must_match_exactly(iss):
    """When an issuer is known, iss must equal it exactly."""
    assert reason(token(iss=iss)) == "token-invalid-issuer"


def test_issuer_not_checked_when_unknown():
    """With only a PEM key and no issuer configured, iss is not checked."""
    assert guard(issuer=None).verify(token(iss="https://anything.test")).user_id


@pytest.mark.parametrize(
    "azp", ["https://evil.example", None, "https://app.example.test/", ["https://app.example.test"]]
)
def test_authorized_parties(azp):
    """With authorized_parties set, azp must be present and equal one entry."""
    parties = ["https://app.example.test", "https://admin.example.test"]
    assert reason(token(azp=azp), authorized_parties=parties) == "token-invalid-authorized-parties"
    assert guard(authorized_parties=parties).verify(token()).authorized_party


def test_azp_not_checked_without_parties():
    """Without authorized_parties, azp is not checked."""
    assert guard().verify(token(azp="https://anything.test")).user_id


@pytest.mark.parametrize("aud", ["other", ["a", "b"], None, 3])
def test_audience(aud):
    """With audience set, aud (string or list) must contain one of its values."""
    assert reason(token(aud=aud), audience=["api"]) == "token-invalid-audience"
    assert guard(audience=["api"]).verify(token(aud=["x", "api"])).user_id
    assert guard(audience="api").verify(token(aud="api")).user_id


def test_pending_session_is_signed_out():
    """sts=pending is refused (SessionPendingError, code session-token-pending) unless
    accept_pending."""
    pending = token(sts="pending")
    with pytest.raises(SessionPendingError) as info:
        guard().verify(pending)
    assert info.value.code == "session-token-pending"
    assert guard(accept_pending=True).verify(pending).session_status == "pending"


def test_malformed_org_claims_fail_closed():
    """An org claim of a shape Clerk never issues rejects the token (token-invalid-claims)."""
    assert reason(token(org_permissions="org:a:b")) == "token-invalid-claims"
    assert reason(token(v=2, o={"id": "org_1", "per": "read", "fpm": "x"}, fea="o:a")) == (
        "token-invalid-claims"
    )


def test_errors_carry_no_token():
    """Error messages never contain the token or its segments."""
    bad = token(key=OTHER_KEY)
    with pytest.raises(TokenInvalidError) as info:
        guard().verify(bad)
    for part in bad.split("."):
        assert part not in str(info.value)
    assert info.value.fingerprint and info.value.fingerprint not in bad


def test_real_clock_default():
    """Without an injected clock the current time is used."""
    now = time.time()
    fresh = token(exp=now + 60, iat=now, nbf=now - 10)
    assert Guard(GuardConfig(jwt_key=PEM)).verify(fresh).user_id == "user_1"


@pytest.mark.parametrize("segment", ["\u00e9", "\u00e9" * 40, "a\u2028b"])
def test_non_ascii_payload_segment_rejected(segment):
    """A payload segment with non-ASCII characters is token-invalid, never a crash."""
    head, _, sig = token().split(".")
    assert reason(f"{head}.{segment}.{sig}") == "token-invalid"


@pytest.mark.parametrize("segment", ["e y", "abc=", "a+b", "ab\u0000c", "a/b"])
def test_stray_ascii_in_payload_segment_rejected(segment):
    """Stray ASCII in the payload segment fails the signature it was not signed with."""
    head, _, sig = token().split(".")
    assert reason(f"{head}.{segment}.{sig}") == "token-invalid-signature"


@pytest.mark.parametrize("junk", ["=", "+", "/", " ", "!"])
def test_signed_payload_with_stray_characters_rejected(junk):
    """Even correctly signed, a payload segment outside unpadded base64url is token-invalid."""
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    payload = payload[:10] + junk + payload[10:]
    signing_input = f"{header}.{payload}".encode()
    signature = KEY.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    assert reason(f"{header}.{payload}.{b64(signature)}") == "token-invalid"


def test_verify_enforces_length_cap():
    """Guard.verify() refuses tokens over 8 KiB too, not only the extraction."""
    head, payload, sig = token().split(".")
    assert reason(f"{head}.{payload + 'A' * 9000}.{sig}") == "token-too-long"


def test_unicode_digits_in_fpm_fail_closed():
    """Non-ASCII digits in o.fpm reject the token instead of raising."""
    claims_v2 = {"v": 2, "o": {"id": "org_1", "per": "read", "fpm": "\u00b2"}, "fea": "o:a"}
    assert reason(token(**claims_v2)) == "token-invalid-claims"


def test_verifier_without_a_key_is_a_programming_error():
    """Verifier.verify needs key_for when the configuration has no PEM key (a JWKS URL): a
    TypeError naming the fix, never a token rejection."""
    jwks_url = "https://clerk.example.test/.well-known/jwks.json"
    verifier = Verifier(GuardConfig(jwks_url=jwks_url, issuer=ISSUER, clock=lambda: NOW))
    with pytest.raises(TypeError, match="key_for"):
        verifier.verify(token())
    assert verifier.verify(token(), lambda kid: KEY.public_key()).user_id == "user_1"


# Strictness audit: what a Clerk session token never carries (README, "What is verified") -----


@pytest.mark.parametrize("cat", ["cl_B7d4PD111AAA", "cl_I7d4PD111III"])
def test_session_categories_accepted(cat):
    """The session-token category and the "ignore" category are session tokens."""
    assert guard().verify(token({"cat": cat})).user_id == "user_1"


@pytest.mark.parametrize(
    "cat", ["cl_B7d4PD222AAA", "cl_B7d4PD333AAA", "cl_other", "", None, 5, ["cl_B7d4PD111AAA"]]
)
def test_other_categories_are_not_session_tokens(cat):
    """Any other cat (JWT template, M2M, unknown, null, not a string) is token-type-mismatch."""
    header = json.dumps({"alg": "RS256", "kid": "ins_1", "typ": "JWT", "cat": cat})
    assert reason(raw_token(header, json.dumps(claims()))) == "token-type-mismatch"


@pytest.mark.parametrize(
    "name",
    ["crit", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "cty", "b64", "zip", "enc", "nonce"],
)
def test_registered_header_parameters_clerk_never_sends_are_refused(name):
    """A registered JOSE header parameter a Clerk session token never carries is refused."""
    assert reason(token({name: "x"})) == "token-invalid"


def test_private_header_parameters_are_ignored():
    """An unregistered header name (RFC 7515 §4.3) is ignored."""
    assert guard().verify(token({"x-trace": "1"})).user_id == "user_1"


@pytest.mark.parametrize(
    "where",
    [
        {"sub": "user_\ud800"},
        {"org_role": "org:\udfff"},
        {"custom": ["ok", {"deep": "\udc00x"}]},
        {"\ud800key": 1},
    ],
)
def test_unpaired_surrogates_in_claims_refused(where):
    """An unpaired UTF-16 surrogate anywhere in the payload is not I-JSON (RFC 7493 §2.1)."""
    assert reason(token(**where)) == "token-invalid"


def test_unpaired_surrogate_in_header_refused():
    """The same in the header."""
    assert reason(token({"kid": "ins_1", "x": "\ud800"})) == "token-invalid"


def test_paired_surrogates_and_escaped_backslashes_accepted():
    """A paired surrogate escape is a character outside the BMP, and an escaped backslash
    before a u is no escape at all: both are I-JSON."""
    auth = guard().verify(token(custom="\ud83d\ude00", path="C:\\users\\x"))
    assert auth.claims["custom"] == "\U0001f600"
    assert auth.claims["path"] == "C:\\users\\x"


@pytest.mark.parametrize("where", ["header", "payload"])
def test_numbers_beyond_a_double_refused(where):
    """1e400 would decode as infinity, which no framework can encode back: not I-JSON."""
    head = '{"alg":"RS256","kid":"ins_1","typ":"JWT"'
    body = json.dumps(claims())[:-1]
    if where == "header":
        head += ',"x":1e400'
    else:
        body += ', "x": 1e400'
    assert reason(raw_token(head + "}", body + "}")) == "token-invalid"


@pytest.mark.parametrize("segment", [0, 1])
def test_non_canonical_base64url_refused(segment):
    """A header or payload segment whose last character has unused bits set is another
    spelling of the same bytes; @clerk/backend's decoder refuses it, and so do we."""
    tested = 0
    for extra in ("", "x", "xy"):
        # Payloads of each length mod 3, so that the last character carries unused bits.
        body = json.dumps(claims(pad=extra)).encode()
        head = b'{"alg":"RS256","kid":"ins_1","typ":"JWT","p":"' + extra.encode() + b'"}'
        parts = [b64(head), b64(body)]
        if len(parts[segment]) % 4 == 0:
            continue
        last = parts[segment][-1]
        parts[segment] = parts[segment][:-1] + b64_next(last)
        signing_input = ".".join(parts).encode()
        signature = KEY.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        assert reason(f"{signing_input.decode()}.{b64(signature)}") == "token-invalid"
        tested += 1
    assert tested >= 2


def b64_next(char: str) -> str:
    """The base64url character one above ``char``: same high bits, the lowest unused bit set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return alphabet[alphabet.index(char) | 1]


@pytest.mark.parametrize("name", ["jti", "sts"])
@pytest.mark.parametrize("value", [1, None, True, ["x"], {"a": "b"}])
def test_optional_string_claims_must_be_strings(name, value):
    """jti and sts, when present, are strings (null included: a Clerk token never has it)."""
    payload = claims()
    payload[name] = value
    header = json.dumps({"alg": "RS256", "kid": "ins_1", "typ": "JWT"})
    assert reason(raw_token(header, json.dumps(payload))) == "token-invalid"


@pytest.mark.parametrize("value", [7, None, ["https://clerk.example.test"]])
def test_issuer_must_be_a_string_even_when_not_configured(value):
    """Without a configured issuer, an iss that is present must still be a string."""
    payload = {**claims(), "iss": value}
    header = json.dumps({"alg": "RS256", "kid": "ins_1", "typ": "JWT"})
    assert reason(raw_token(header, json.dumps(payload)), issuer=None) == "token-invalid-issuer"


@pytest.mark.parametrize("value", [7, None, ["https://app.example.test"]])
def test_azp_must_be_a_string_even_when_not_checked(value):
    """Without authorized parties, an azp that is present must still be a string."""
    payload = {**claims(), "azp": value}
    header = json.dumps({"alg": "RS256", "kid": "ins_1", "typ": "JWT"})
    assert reason(raw_token(header, json.dumps(payload))) == "token-invalid-authorized-parties"


@pytest.mark.parametrize("aud", [7, None, [], ["api", 3], {"a": "api"}])
def test_audience_must_be_well_formed_even_when_not_checked(aud):
    """Without a configured audience, an aud that is present is a string or a non-empty list
    of strings (RFC 7519 §4.1.3)."""
    payload = {**claims(), "aud": aud}
    header = json.dumps({"alg": "RS256", "kid": "ins_1", "typ": "JWT"})
    assert reason(raw_token(header, json.dumps(payload))) == "token-invalid-audience"


@pytest.mark.parametrize("aud", ["api", ["other", "api"]])
def test_well_formed_audience_accepted(aud):
    """A string or list audience is accepted when not checked, and when it matches."""
    assert guard().verify(token(aud=aud)).user_id == "user_1"
    assert guard(audience=["api"]).verify(token(aud=aud)).user_id == "user_1"


def test_json_with_a_byte_order_mark_refused():
    """A UTF-8 byte order mark before the JSON is not a token's JSON."""
    head = b'\xef\xbb\xbf{"alg":"RS256","typ":"JWT"}'
    assert reason(raw_token(head, json.dumps(claims()))) == "token-invalid"
