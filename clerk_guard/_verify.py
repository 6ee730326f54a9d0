"""Strict JWT verification of Clerk session tokens: parsing, signature, claims. No I/O.

PyJWT's ``decode`` accepts padded segments, duplicate JSON members and numeric claims sent as
strings, and spends most of its time outside the RSA check; so the parsing is owned here and the
signature is checked with ``cryptography`` directly (``Verifier.verify_signature``).
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ._claims import SessionAuth
from ._config import GuardConfig
from ._errors import TokenInvalidError, TokenMissingError
from ._tokens import MAX_TOKEN_LENGTH, TokenSource

__all__ = ["ParsedToken", "Verifier", "fingerprint"]

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


def _b64decode(segment: str, *, canonical: bool = False) -> bytes:
    """Decode one base64url segment, refusing padding and stray characters.

    With ``canonical``, also refuse a final character whose unused low bits are set: it decodes
    to the same bytes as the canonical one, so accepting it would let one signed token exist in
    several spellings. Only the signature needs it: the header and payload segments are signed
    as the characters they are, so any other spelling fails the signature check.
    """
    # "+", "/" and "=" would pass the strict standard-alphabet decoder below; base64url has none.
    if len(segment) % 4 == 1 or "+" in segment or "/" in segment or "=" in segment:
        raise _invalid("A token segment is not unpadded base64url.")
    if canonical and segment and _UNUSED_BITS[len(segment) % 4] & _B64_VALUE.get(segment[-1], 0):
        raise _invalid("A token segment is not canonical base64url.")
    try:
        padded = (segment + "=" * (-len(segment) % 4)).encode("ascii")
        return _strict_b64decode(padded.translate(_TO_STANDARD))
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        raise _invalid("A token segment is not unpadded base64url.") from None


_TO_STANDARD = bytes.maketrans(b"-_", b"+/")  # bytes.translate: several times str's speed
if sys.version_info >= (3, 11):

    def _strict_b64decode(text: bytes) -> bytes:
        return binascii.a2b_base64(text, strict_mode=True)

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
        value = _DECODER.decode(raw.decode("utf-8"))
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


ClaimCheck = Callable[[Mapping[str, Any], float], None]
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

    ``claim_checks`` is the ordered list of checks after the signature, each a ``(name, check)``
    pair; :meth:`check_claims` runs them in order and the ``doctor`` command runs the same list.
    """

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self._leeway = config.leeway
        self._issuer = config.resolved_issuer
        self._parties = frozenset(config.authorized_parties)
        self._audience = frozenset(config.audience)
        # Header segment -> checked (header, kid): valid headers repeat from token to token.
        self._headers: dict[str, tuple[dict[str, Any], str | None]] = {}
        self.claim_checks: tuple[tuple[str, ClaimCheck], ...] = (
            ("required claims", self._check_required),
            ("session token type", self._check_type),
            ("not expired (exp)", self._check_exp),
            ("active (nbf)", self._check_nbf),
            ("issued in the past (iat)", self._check_iat),
            ("issuer (iss)", self._check_iss),
            ("authorized party (azp)", self._check_azp),
            ("audience (aud)", self._check_aud),
            ("session status (sts)", self._check_sts),
        )
        # The checks this configuration can fail, in the same order; the others always pass.
        inactive = {
            self._check_iss: self._issuer is None,
            self._check_azp: not self._parties,
            self._check_aud: not self._audience,
            self._check_sts: config.accept_pending,
        }
        self._active_checks = tuple(
            check for _, check in self.claim_checks if not inactive.get(check, False)
        )

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
            # fails that check, and decode_payload() refuses it even then.
            raise _invalid("The payload segment is not base64url.")
        checked = self._headers.get(header_segment)
        if checked is None:
            checked = _check_header(header_segment)
            if len(self._headers) >= _HEADER_CACHE_SIZE:
                self._headers.clear()  # a flood of odd headers cannot grow it
            self._headers[header_segment] = checked
        header, kid = checked
        signature = _b64decode(signature_segment, canonical=True)
        return ParsedToken(
            token=token,
            header=header,
            kid=kid,
            signing_input=token[: len(header_segment) + 1 + len(payload_segment)].encode("ascii"),
            signature=signature,
            payload_segment=payload_segment,
        )

    @staticmethod
    def verify_signature(parsed: ParsedToken, key: RSAPublicKey) -> None:
        """:raises TokenInvalidError: ``token-invalid-signature``."""
        if len(parsed.signature) != (key.key_size + 7) // 8:
            raise _invalid("Signature length does not match the key.", "token-invalid-signature")
        try:
            key.verify(parsed.signature, parsed.signing_input, _PKCS1, _SHA256)
        except InvalidSignature:
            raise _invalid("Signature does not verify.", "token-invalid-signature") from None

    @staticmethod
    def decode_payload(parsed: ParsedToken) -> dict[str, Any]:
        """Decode the payload (after the signature has been verified)."""
        return _json_object(_b64decode(parsed.payload_segment), "payload")

    # Claims ---------------------------------------------------------------------------------

    def check_claims(self, claims: Mapping[str, Any], now: float) -> None:
        """Run every claim check in order; the first failure raises."""
        for check in self._active_checks:
            check(claims, now)

    def _check_required(self, claims: Mapping[str, Any], now: float) -> None:
        for name in ("sub", "sid"):
            value = claims.get(name)
            if not isinstance(value, str) or not value:
                raise _invalid(f"Claim {name!r} must be a non-empty string.")
        for name in ("exp", "iat"):
            if not _is_number(claims.get(name)):
                raise _invalid(f"Claim {name!r} must be a JSON number.")
        if "nbf" in claims and not _is_number(claims["nbf"]):
            raise _invalid("Claim 'nbf' must be a JSON number.")

    def _check_type(self, claims: Mapping[str, Any], now: float) -> None:
        if claims["sub"].startswith("mch_"):
            raise _invalid("A machine token is not a session token.", "token-type-mismatch")

    def _check_exp(self, claims: Mapping[str, Any], now: float) -> None:
        if claims["exp"] <= now - self._leeway:
            raise _invalid("The token has expired.", "token-expired")

    def _check_nbf(self, claims: Mapping[str, Any], now: float) -> None:
        nbf = claims.get("nbf")
        if nbf is not None and nbf > now + self._leeway:
            raise _invalid("The token is not active yet (nbf).", "token-not-active-yet")

    def _check_iat(self, claims: Mapping[str, Any], now: float) -> None:
        if claims["iat"] > now + self._leeway:
            raise _invalid("The token was issued in the future (iat).", "token-iat-in-the-future")

    def _check_iss(self, claims: Mapping[str, Any], now: float) -> None:
        if self._issuer is not None and claims.get("iss") != self._issuer:
            raise _invalid("The issuer (iss) is not this instance.", "token-invalid-issuer")

    def _check_azp(self, claims: Mapping[str, Any], now: float) -> None:
        if self._parties and claims.get("azp") not in self._parties:
            raise _invalid(
                "The authorized party (azp) is not allowed.", "token-invalid-authorized-parties"
            )

    def _check_aud(self, claims: Mapping[str, Any], now: float) -> None:
        if not self._audience:
            return
        aud = claims.get("aud")
        values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(value, str) and value in self._audience for value in values):
            raise _invalid("The audience (aud) does not match.", "token-invalid-audience")

    def _check_sts(self, claims: Mapping[str, Any], now: float) -> None:
        if claims.get("sts") == "pending" and not self.config.accept_pending:
            # Clerk treats a pending session as signed out, not as a bad token.
            raise TokenMissingError("The session is pending.", code="session-token-pending")

    # All together ---------------------------------------------------------------------------

    def finish(
        self, parsed: ParsedToken, key: RSAPublicKey, source: TokenSource | None
    ) -> SessionAuth:
        """Verify the signature with ``key``, then the claims, and build the result."""
        self.verify_signature(parsed, key)
        claims = self.decode_payload(parsed)
        self.check_claims(claims, self.config.clock())
        return SessionAuth.from_claims(claims, token_source=source)
