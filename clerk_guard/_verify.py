"""Strict JWT verification of Clerk session tokens: parsing, signature, claims. No I/O.

PyJWT's ``decode`` accepts padded segments, duplicate JSON members and numeric claims sent as
strings, and spends most of its time outside the RSA check; so the parsing is owned here and the
signature is checked with ``cryptography`` directly, all in one method (``Verifier.verify``).
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ._claims import SessionAuth
from ._config import GuardConfig
from ._errors import TokenInvalidError, TokenMissingError
from ._tokens import MAX_TOKEN_LENGTH, TokenSource

__all__ = ["CLAIM_CHECKS", "Verifier", "fingerprint"]

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
_SHA256 = hashes.SHA256()


def fingerprint(token: str) -> str:
    """A short, non-reversible name for a token, for logs."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]


def _invalid(message: str, code: str = "token-invalid") -> TokenInvalidError:
    return TokenInvalidError(message, code=code)


# "-" and "_" become the standard alphabet's "+" and "/"; "+", "/" and "=", which base64url
# segments never hold, become "!", which the strict decoder refuses. bytes.translate is several
# times str.translate's speed.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
#: By length mod 4; a length of 1 mod 4 is no base64 at all, and the decoder refuses it.
_PADDING = (b"", b"", b"==", b"=")
# Called as a2b_base64(text, strict_mode=True): a functools.partial with a keyword argument would
# build a dict on every call.
if sys.version_info >= (3, 11):
    _a2b_base64 = binascii.a2b_base64

else:  # pragma: no cover - Python 3.10 has no strict mode: check the alphabet first

    def _a2b_base64(text: bytes, *, strict_mode: bool = False) -> bytes:
        if strict_mode and _STANDARD.fullmatch(text) is None:
            raise binascii.Error("not base64")
        return binascii.a2b_base64(text)

    _STANDARD = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _invalid("Duplicate JSON member name.")
    return result


def _no_constants(name: str) -> Any:
    raise _invalid("NaN and Infinity are not JSON.")


# One decoder for every token: json.loads() with hooks builds a new decoder per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def _b64url(segment: str) -> bytes:
    """Decode an unpadded base64url segment, strictly. :meth:`Verifier.verify` spells this out
    for the signature and the payload rather than call it: it runs for every new token.

    :raises binascii.Error: not unpadded base64url. :raises ValueError: non-ASCII characters.
    """
    return _a2b_base64(
        segment.encode("ascii").translate(_TO_STANDARD) + _PADDING[len(segment) % 4],
        strict_mode=True,
    )


def _is_number(value: object) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


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
    try:
        raw = _b64url(segment)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        raise _invalid("The token header is not unpadded base64url.") from None
    try:
        header = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _invalid("The token header is not JSON.") from None
    if type(header) is not dict:
        raise _invalid("The token header is not a JSON object.")
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
    """Judges a token against one configuration; does no I/O (keys come from ``key_for``).

    :meth:`verify` runs every check in one method: the structure and header, the key, the
    signature, then :meth:`check_claims` (the checks named in :data:`CLAIM_CHECKS`, in that
    order) and the result. The ``doctor`` command runs the same method, told by its ``trace``
    hook which stages passed, and resumes :meth:`check_claims` after each failing group.
    """

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self._clock = config.clock
        self._public_key = config.public_key
        self._leeway = config.leeway
        self._issuer = config.resolved_issuer
        self._parties = frozenset(config.authorized_parties)
        self._audience = frozenset(config.audience)
        self._pending_ok = config.accept_pending
        # Header segment -> checked (header, kid): valid headers repeat from token to token.
        self._headers: dict[str, tuple[dict[str, Any], str | None]] = {}

    def verify(
        self,
        token: str,
        key_for: Callable[[str | None], RSAPublicKey] | None = None,
        source: TokenSource | None = None,
        trace: Callable[[str, Any], None] | None = None,
    ) -> SessionAuth:
        """Verify one token: structure and header, key, signature, claims; then the result.

        One method on purpose, with no helper call on the way: it runs for every new token, and
        each Python call between the stages costs a measurable share of a verification (more
        than in a hot loop: the RSA check leaves the CPU caches cold).

        :param key_for: the key for the header's ``kid`` (may fetch, may raise); ``None`` for
            the configured PEM key.
        :param trace: told ``(stage, value)`` as each stage passes: ``("header", header)``,
            ``("key", key)``, ``("signature", claims)`` (the claims are trusted from then on).
            The values are the verifier's own (the header is cached, the claims become the
            result's): read them, never change them.
        :raises TokenInvalidError: with ``code`` naming the failed check.
        :raises TokenMissingError: ``session-token-pending``.
        """
        # Structure and header.
        if len(token) > MAX_TOKEN_LENGTH:
            raise _invalid(f"Token longer than {MAX_TOKEN_LENGTH} characters.", "token-too-long")
        parts = token.split(".")
        if len(parts) != 3:
            raise _invalid("A JWT has three dot-separated segments.")
        header_segment, payload_segment, signature_segment = parts
        if not payload_segment or not payload_segment.isascii():
            # The signature is computed over these characters, as ASCII.
            raise _invalid("The payload segment is not base64url.")
        checked = self._headers.get(header_segment)
        if checked is None:
            checked = _check_header(header_segment)
            if len(self._headers) >= _HEADER_CACHE_SIZE:
                self._headers.clear()  # a flood of odd headers cannot grow it
            self._headers[header_segment] = checked
        # The signature segment, as _b64url() would decode it, and canonical: a final
        # character with unused low bits set decodes to the same bytes, and would let one
        # signed token exist in several spellings (the other segments are signed as the
        # characters they are, so any other spelling of them fails the signature).
        length = len(signature_segment)
        if length and _UNUSED_BITS[length % 4] & _B64_VALUE.get(signature_segment[-1], 0):
            raise _invalid("The signature segment is not canonical base64url.")
        try:
            signature = _a2b_base64(
                signature_segment.encode("ascii").translate(_TO_STANDARD) + _PADDING[length % 4],
                strict_mode=True,
            )
        except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
            raise _invalid("The signature segment is not unpadded base64url.") from None
        header, kid = checked
        if trace is not None:
            trace("header", header)

        # Key and signature.
        key = self._public_key if key_for is None else key_for(kid)
        if key is None:  # a JWKS configuration, and no key_for
            raise TypeError("No key: this configuration has no PEM key, so give key_for.")
        if trace is not None:
            trace("key", key)
        signing_input = token[: len(header_segment) + 1 + len(payload_segment)].encode("ascii")
        try:
            # OpenSSL also refuses a signature that is not exactly the key's length (RFC 7518
            # §3.3), leading zero bytes added or stripped included: tests pin it.
            key.verify(signature, signing_input, _PKCS1, _SHA256)
        except InvalidSignature:
            raise _invalid("Signature does not verify.", "token-invalid-signature") from None
        # The payload, as _b64url() and _DECODER.decode() would decode it. raw_decode() skips
        # decode()'s whitespace handling: a token's JSON never has any, and when it does (or
        # anything follows the value), decode() judges it.
        try:
            raw = _a2b_base64(
                payload_segment.encode("ascii").translate(_TO_STANDARD)
                + _PADDING[len(payload_segment) % 4],
                strict_mode=True,
            )
        except binascii.Error:  # the segment is ASCII: checked above
            raise _invalid("The token payload is not unpadded base64url.") from None
        try:
            text = raw.decode("utf-8")
            try:
                claims, end = _DECODER.raw_decode(text)
            except json.JSONDecodeError:
                end = -1
            if end != len(text):
                claims = _DECODER.decode(text)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _invalid("The token payload is not JSON.") from None
        if type(claims) is not dict:
            raise _invalid("The token payload is not a JSON object.")
        if trace is not None:
            trace("signature", claims)

        # Claims, then the result.
        self.check_claims(claims, self._clock())
        return SessionAuth._from_own_claims(claims, source)

    # Claims ---------------------------------------------------------------------------------

    def check_claims(self, claims: Mapping[str, Any], now: float, first: int = 0) -> None:
        """Run the checks of :data:`CLAIM_CHECKS` from the ``first``-th on; the first failure
        raises. One method on purpose: it runs for every new token, and a call per check
        costs a measurable share of a verification.

        :raises TokenInvalidError: with the failed check's reason code.
        :raises TokenMissingError: ``session-token-pending``.
        """
        get: Callable[[str], Any] = claims.get  # Any, not Any | None: the checks narrow it
        sub, sid, exp, iat, nbf = get("sub"), get("sid"), get("exp"), get("iat"), get("nbf")
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
