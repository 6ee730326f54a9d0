"""Strict JWT verification of Clerk session tokens: parsing, signature, claims. No I/O.

PyJWT's ``decode`` accepts padded segments, duplicate JSON members and numeric claims sent as
strings, and spends most of its time outside the RSA check; so the parsing is owned here and the
signature is checked with ``cryptography`` directly (``Verifier.verified_claims``).
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ._claims import SessionAuth
from ._config import GuardConfig
from ._errors import TokenInvalidError, TokenMissingError
from ._tokens import MAX_TOKEN_LENGTH, TokenSource

__all__ = ["CLAIM_CHECKS", "ParsedToken", "Verifier", "fingerprint"]

_FORBIDDEN_HEADERS = ("crit", "jku", "x5u", "jwk", "x5c")
_MACHINE_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: The ``cat`` header Clerk puts on machine-to-machine JWTs.
_M2M_CATEGORY = "cl_B7d4PD333AAA"
_B64_VALUE = {
    char: value
    for value, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
#: By segment length mod 4, the low bits of the last character that carry no data.
_UNUSED_BITS = (0, 0, 0b1111, 0b11)
_PKCS1 = padding.PKCS1v15()
_new_tuple = tuple.__new__
_SHA256 = hashes.SHA256()


def fingerprint(token: str) -> str:
    """A short, non-reversible name for a token, for logs."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]


def _invalid(message: str, code: str = "token-invalid") -> TokenInvalidError:
    return TokenInvalidError(message, code=code)


def _b64decode(segment: str, *, canonical: bool = False) -> bytes:
    """Decode one base64url segment, refusing padding and stray characters.

    With ``canonical``, also refuse a final character whose unused low bits are set: it decodes
    to the same bytes as the canonical one, so accepting it would let one signed token exist in
    several spellings. Only the signature needs it: the header and payload segments are signed
    as the characters they are, so any other spelling fails the signature check.
    """
    if canonical and segment and _UNUSED_BITS[len(segment) % 4] & _B64_VALUE.get(segment[-1], 0):
        raise _invalid("A token segment is not canonical base64url.")
    try:
        text = segment.encode("ascii").translate(_TO_STANDARD) + _PADDING[len(segment) % 4]
        return _strict_b64decode(text)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        raise _invalid("A token segment is not unpadded base64url.") from None


# "-" and "_" become the standard alphabet's "+" and "/"; "+", "/" and "=", which base64url
# segments never hold, become "!", which the strict decoder refuses. bytes.translate is several
# times str.translate's speed.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
#: By length mod 4; a length of 1 mod 4 is no base64 at all, and the decoder refuses it.
_PADDING = (b"", b"", b"==", b"=")
if sys.version_info >= (3, 11):
    _strict_b64decode = functools.partial(binascii.a2b_base64, strict_mode=True)

else:  # pragma: no cover - Python 3.10 has no strict mode: check the alphabet first
    _STANDARD = re.compile(rb"[A-Za-z0-9+/]*={0,2}")

    def _strict_b64decode(text: bytes) -> bytes:
        if _STANDARD.fullmatch(text) is None:
            raise binascii.Error("not base64")
        return binascii.a2b_base64(text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _invalid("Duplicate JSON member name.")
    return result


def _no_constants(name: str) -> Any:
    raise _invalid("NaN and Infinity are not JSON.")


# One decoder for every token: json.loads() with hooks builds a new decoder per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        # raw_decode() skips decode()'s whitespace handling: a token's JSON never has any, and
        # when it does (or anything follows the value), decode() judges it.
        try:
            value, end = _DECODER.raw_decode(text)
        except json.JSONDecodeError:
            end = -1
        if end != len(text):
            value = _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _invalid(f"The token {what} is not JSON.") from None
    if not isinstance(value, dict):
        raise _invalid(f"The token {what} is not a JSON object.")
    return value


def _is_number(value: object) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


class ParsedToken(NamedTuple):
    """A token split and its header checked, signature not yet verified."""

    token: str
    header: dict[str, Any]
    kid: str | None
    signing_input: bytes
    signature: bytes
    payload_segment: str


# The claim checks, in the order Verifier.check_claims() runs them, each with the reason codes
# it can fail with.
REQUIRED_CLAIMS = "required claims (sub, sid, exp, iat)"
LIFETIME = "lifetime (exp, nbf, iat)"
ISSUER_AND_PARTIES = "issuer and parties (iss, azp, aud)"
SESSION_STATUS = "session status (sts)"
CLAIM_CHECKS: tuple[tuple[str, frozenset[str]], ...] = (
    (REQUIRED_CLAIMS, frozenset({"token-invalid", "token-type-mismatch"})),
    (
        LIFETIME,
        frozenset({"token-expired", "token-not-active-yet", "token-iat-in-the-future"}),
    ),
    (
        ISSUER_AND_PARTIES,
        frozenset(
            {
                "token-invalid-issuer",
                "token-invalid-authorized-parties",
                "token-invalid-audience",
            }
        ),
    ),
    (SESSION_STATUS, frozenset({"session-token-pending"})),
)
#: Distinct valid headers remembered; an instance signs with one or two keys, so a few suffice.
_HEADER_CACHE_SIZE = 64


def _check_header(segment: str) -> tuple[dict[str, Any], str | None]:
    """Decode and check a header segment: ``(header, kid)``.

    :raises TokenInvalidError: ``token-invalid``, ``token-invalid-algorithm`` or
        ``token-type-mismatch``.
    """
    header = _json_object(_b64decode(segment), "header")
    alg = header.get("alg")
    if alg != "RS256":
        raise _invalid(f"Algorithm {alg!r} is not RS256.", "token-invalid-algorithm")
    typ = header.get("typ")
    if (isinstance(typ, str) and typ in _MACHINE_TYPES) or header.get("cat") == _M2M_CATEGORY:
        raise _invalid("A machine token is not a session token.", "token-type-mismatch")
    if typ is not None and typ != "JWT":
        raise _invalid(f"Header typ {typ!r} is not JWT.")
    for name in _FORBIDDEN_HEADERS:
        if name in header:
            raise _invalid(f"Header {name!r} is not allowed.")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise _invalid("Header kid is not a non-empty string.")
    return header, kid


class Verifier:
    """Judges a token against one configuration; holds no keys and does no I/O.

    After the signature, :meth:`check_claims` runs the checks named in :data:`CLAIM_CHECKS`, in
    that order; the ``doctor`` command runs the same method, resuming after each failure.
    """

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self._leeway = config.leeway
        self._issuer = config.resolved_issuer
        self._parties = frozenset(config.authorized_parties)
        self._audience = frozenset(config.audience)
        self._pending_ok = config.accept_pending
        # Header segment -> checked (header, kid): valid headers repeat from token to token.
        self._headers: dict[str, tuple[dict[str, Any], str | None]] = {}

    # Header and structure -------------------------------------------------------------------

    def parse(self, token: str) -> ParsedToken:
        """Split the token and check its header; the signature is not verified yet.

        :raises TokenInvalidError: ``token-invalid``, ``token-invalid-algorithm`` or
            ``token-type-mismatch``.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise _invalid(f"Token longer than {MAX_TOKEN_LENGTH} characters.", "token-too-long")
        parts = token.split(".")
        if len(parts) != 3:
            raise _invalid("A JWT has three dot-separated segments.")
        header_segment, payload_segment, signature_segment = parts
        if not payload_segment or not payload_segment.isascii():
            # The signature is computed over these characters, as ASCII; a stray ASCII character
            # fails that check, and verified_claims() refuses it even then.
            raise _invalid("The payload segment is not base64url.")
        checked = self._headers.get(header_segment)
        if checked is None:
            checked = _check_header(header_segment)
            if len(self._headers) >= _HEADER_CACHE_SIZE:
                self._headers.clear()  # a flood of odd headers cannot grow it
            self._headers[header_segment] = checked
        signing_input = token[: len(header_segment) + 1 + len(payload_segment)].encode("ascii")
        signature = _b64decode(signature_segment, canonical=True)
        header, kid = checked
        # tuple.__new__ directly: the NamedTuple's own __new__ is a Python function, and this
        # runs for every new token.
        return _new_tuple(
            ParsedToken, (token, header, kid, signing_input, signature, payload_segment)
        )

    @staticmethod
    def verified_claims(parsed: ParsedToken, key: RSAPublicKey) -> dict[str, Any]:
        """Check the signature with ``key``, then decode the payload: the claims, now trusted.

        :raises TokenInvalidError: ``token-invalid-signature``; ``token-invalid`` for a signed
            payload that is not a JSON object.
        """
        if len(parsed.signature) != (key.key_size + 7) // 8:
            raise _invalid("Signature length does not match the key.", "token-invalid-signature")
        try:
            key.verify(parsed.signature, parsed.signing_input, _PKCS1, _SHA256)
        except InvalidSignature:
            raise _invalid("Signature does not verify.", "token-invalid-signature") from None
        return _json_object(_b64decode(parsed.payload_segment), "payload")

    # Claims ---------------------------------------------------------------------------------

    def check_claims(self, claims: Mapping[str, Any], now: float, first: int = 0) -> None:
        """Run the checks of :data:`CLAIM_CHECKS` from the ``first``-th on; the first failure
        raises. One method on purpose: it runs for every new token, and a call per check
        costs a measurable share of a verification.

        :raises TokenInvalidError: with the failed check's reason code.
        :raises TokenMissingError: ``session-token-pending``.
        """
        get = claims.get
        values: tuple[Any, ...] = (get("sub"), get("sid"), get("exp"), get("iat"), get("nbf"))
        sub, sid, exp, iat, nbf = values
        if first <= 0:  # required claims
            if type(sub) is not str or not sub:
                raise _invalid("Claim 'sub' must be a non-empty string.")
            if sub.startswith("mch_"):  # before sid: machine tokens have none
                raise _invalid("A machine token is not a session token.", "token-type-mismatch")
            if type(sid) is not str or not sid:
                raise _invalid("Claim 'sid' must be a non-empty string.")
            if type(exp) is not int and not _is_number(exp):
                raise _invalid("Claim 'exp' must be a JSON number.")
            if type(iat) is not int and not _is_number(iat):
                raise _invalid("Claim 'iat' must be a JSON number.")
            if (
                type(nbf) is not int
                and (nbf is not None or "nbf" in claims)
                and not _is_number(nbf)
            ):
                raise _invalid("Claim 'nbf' must be a JSON number.")
        if first <= 1:  # lifetime
            leeway = self._leeway
            if exp <= now - leeway:
                raise _invalid("The token has expired.", "token-expired")
            if nbf is not None and nbf > now + leeway:
                raise _invalid("The token is not active yet (nbf).", "token-not-active-yet")
            if iat > now + leeway:
                raise _invalid(
                    "The token was issued in the future (iat).", "token-iat-in-the-future"
                )
        if first <= 2:  # issuer and parties
            if self._issuer is not None and get("iss") != self._issuer:
                raise _invalid("The issuer (iss) is not this instance.", "token-invalid-issuer")
            if self._parties:
                azp = get("azp")
                if type(azp) is not str or azp not in self._parties:
                    raise _invalid(
                        "The authorized party (azp) is not allowed.",
                        "token-invalid-authorized-parties",
                    )
            if self._audience and not self._audience_matches(get("aud")):
                raise _invalid("The audience (aud) does not match.", "token-invalid-audience")
        # Session status. Clerk treats a pending session as signed out, not as a bad token.
        if first <= 3 and not self._pending_ok and get("sts") == "pending":
            raise TokenMissingError("The session is pending.", code="session-token-pending")

    def _audience_matches(self, aud: object) -> bool:
        values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        return any(isinstance(value, str) and value in self._audience for value in values)

    # All together ---------------------------------------------------------------------------

    def finish(
        self, parsed: ParsedToken, key: RSAPublicKey, source: TokenSource | None
    ) -> SessionAuth:
        """Verify the signature with ``key``, then the claims, and build the result."""
        claims = self.verified_claims(parsed, key)
        self.check_claims(claims, self.config.clock())
        return SessionAuth._from_own_claims(claims, source)
