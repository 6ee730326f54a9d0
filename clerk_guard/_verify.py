"""Strict JWT verification of Clerk session tokens: parsing, signature, claims. No I/O.

PyJWT's ``decode`` accepts padded segments, duplicate JSON members and numeric claims sent as
strings, and spends most of its time outside the RSA check; so the parsing is owned here and the
signature is checked with ``cryptography`` directly, in named stages (``Verifier``).
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from . import _b64
from ._claims import SessionAuth
from ._config import GuardConfig
from ._errors import SessionPendingError, TokenInvalidError
from ._tokens import MAX_TOKEN_LENGTH, TokenSource

__all__ = [
    "CLAIM_CHECKS",
    "ISSUER_AND_PARTIES",
    "LIFETIME",
    "REQUIRED_CLAIMS",
    "SESSION_STATUS",
    "TokenParts",
    "Verifier",
    "fingerprint",
]

#: Registered JOSE header parameters (RFC 7515 §4.1, RFC 7516 §4.1, RFC 7518 §4.6-4.8,
#: RFC 7797, RFC 8555 §6.4, RFC 8225 §5.2) that a Clerk session token never carries. Each
#: either asks the verifier to fetch or trust key material named by the token (jku, jwk, x5u,
#: x5c, and their thumbprints), changes how the token is read (crit, b64, cty, zip), or belongs
#: to encryption or to other protocols. Refused rather than ignored: a token naming one was not
#: made by Clerk for a session. Unregistered private names are ignored (RFC 7515 §4.3).
_FORBIDDEN_HEADERS = frozenset(
    {
        "crit", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "cty", "b64", "zip", "enc",
        "epk", "apu", "apv", "iv", "tag", "p2s", "p2c", "url", "nonce", "ppt", "svt",
    }
)  # fmt: skip
_MACHINE_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: The ``cat`` header values ``@clerk/backend`` accepts on a session token: the session-token
#: category, and the category instances stamp on every kind of token when they opt out of
#: categories. Any other value (the M2M and JWT-template categories, or anything else) names a
#: token that is not a session token. An absent ``cat`` is accepted (tokens minted before the
#: categories).
_SESSION_CATEGORY = "cl_B7d4PD111AAA"
_SESSION_CATEGORIES = frozenset({_SESSION_CATEGORY, "cl_I7d4PD111III"})
_new_tuple = tuple.__new__
_decode, _canonical = _b64.decode, _b64.canonical
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def fingerprint(token: str) -> str:
    """A short, non-reversible name for a token, for logs."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]


def _invalid(message: str, code: str = "token-invalid") -> TokenInvalidError:
    return TokenInvalidError(message, code=code)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _invalid("Duplicate JSON member name.")
    return result


def _no_constants(name: str) -> Any:
    raise _invalid("NaN and Infinity are not JSON.")


def _is_number(value: object) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


def _is_audience(value: object) -> bool:
    """RFC 7519 §4.1.3: a string, or an array of strings (non-empty, as @clerk/backend)."""
    if type(value) is str:
        return True
    return type(value) is list and bool(value) and all(type(item) is str for item in value)


def _is_ijson(text: str, value: object) -> bool:
    """Whether decoded JSON holds no unpaired UTF-16 surrogate (RFC 7493 §2.1), given the text
    it was decoded from. UTF-8 cannot encode a surrogate, so one can only come from a ``\\u``
    escape: without a backslash followed by ``u`` in the text (every Clerk token), nothing is
    walked. (The text, not the bytes: ``in`` on bytes first tries the operand as an integer,
    and pays for a raised and cleared TypeError.)"""
    if "\\u" not in text:
        return True
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def _finite_float(text: str) -> float:
    """JSON numbers too large for a double (``1e400``) would decode as infinity, which no
    framework can encode back: not I-JSON (RFC 7493 §2.2)."""
    value = float(text)
    if not math.isfinite(value):
        raise _invalid("A JSON number is out of range (not I-JSON).")
    return value


# One decoder for every token: json.loads() with hooks builds a new decoder per call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_no_constants, parse_float=_finite_float
)


# The claim stages, in the order Verifier.verify() runs them (Verifier.claim_stages), each with
# the reason codes it can fail with.
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
        raw = _decode(segment)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        raise _invalid("The token header is not unpadded base64url.") from None
    if not _canonical(segment):
        raise _invalid("The token header is not canonical base64url.")
    try:
        text = raw.decode("utf-8")
        header = _DECODER.decode(text)
    except TokenInvalidError:
        raise  # a number out of range
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _invalid("The token header is not JSON.") from None
    if type(header) is not dict:
        raise _invalid("The token header is not a JSON object.")
    alg = header.get("alg")
    if alg != "RS256":
        raise _invalid(f"Algorithm {alg!r} is not RS256.", "token-invalid-algorithm")
    typ = header.get("typ")
    if isinstance(typ, str) and typ in _MACHINE_TYPES:
        raise _invalid("A machine token is not a session token.", "token-type-mismatch")
    cat = header.get("cat", _SESSION_CATEGORY)
    if type(cat) is not str or cat not in _SESSION_CATEGORIES:
        raise _invalid(
            "The token's category (cat) is not a session token's.", "token-type-mismatch"
        )
    if typ is not None and typ != "JWT":
        raise _invalid(f"Header typ {typ!r} is not JWT.")
    forbidden = _FORBIDDEN_HEADERS.intersection(header)
    if forbidden:
        raise _invalid(f"Header {min(forbidden)!r} is not allowed.")
    if not _is_ijson(text, header):
        raise _invalid("The token header holds an unpaired surrogate (not I-JSON).")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise _invalid("Header kid is not a non-empty string.")
    return header, kid


class TokenParts(NamedTuple):
    """A token read by :meth:`Verifier.read`: its checked header and what the signature stage
    needs. Nothing in it is trusted yet."""

    header: Mapping[str, Any]
    kid: str | None
    signing_input: bytes
    signature: bytes
    payload_segment: str


class Verifier:
    """Judges a token against one configuration; does no I/O (keys come from ``key_for``).

    :meth:`verify` runs the named stages in order, the first failure deciding:

    1. :meth:`read`: structure, header and signature encoding (``token format and header``);
    2. the key for the header's ``kid`` (``signing key``), from the caller's ``key_for``;
    3. :meth:`signed_claims`: the signature, then the payload (``signature``);
    4. the claim checks of :attr:`claim_stages`, each a method taking the claims and the time;
    5. the result, :meth:`SessionAuth.from_claims`.

    ``clerk-guard doctor`` steps through the same stages one by one, so what it reports is what
    the middleware decides.
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
        #: The claim checks in the order :meth:`verify` runs them: ``(name, check)``, each
        #: ``check(claims, now)`` raising with the reason codes of :data:`CLAIM_CHECKS`.
        self.claim_stages: tuple[tuple[str, Callable[[Mapping[str, Any], float], None]], ...] = (
            (REQUIRED_CLAIMS, self.check_required_claims),
            (LIFETIME, self.check_lifetime),
            (ISSUER_AND_PARTIES, self.check_issuer_and_parties),
            (SESSION_STATUS, self.check_session_status),
        )

    def verify(
        self,
        token: str,
        key_for: Callable[[str | None], RSAPublicKey] | None = None,
        source: TokenSource | None = None,
    ) -> SessionAuth:
        """Verify one token through every stage; then the result.

        :param key_for: the key for the header's ``kid`` (may fetch, may raise); ``None`` for
            the configured PEM key.
        :raises TokenInvalidError: with ``code`` naming the failed check.
        :raises SessionPendingError: ``session-token-pending``, a pending session.
        """
        parts = self.read(token)
        key = self._public_key if key_for is None else key_for(parts[1])
        if key is None:  # a JWKS configuration, and no key_for
            raise TypeError("No key: this configuration has no PEM key, so give key_for.")
        claims = self.signed_claims(parts, key)
        now = self._clock()
        self.check_required_claims(claims, now)
        self.check_lifetime(claims, now)
        self.check_issuer_and_parties(claims, now)
        self.check_session_status(claims, now)
        return SessionAuth._from_own_claims(claims, source)

    # Stages ---------------------------------------------------------------------------------

    def read(self, token: str) -> TokenParts:
        """The structure, the header (checked, and remembered: valid headers repeat) and the
        signature's encoding. Nothing is trusted yet.

        :raises TokenInvalidError: ``token-too-long``, ``token-invalid``,
            ``token-invalid-algorithm`` or ``token-type-mismatch``.
        """
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
        # The signature segment, strictly decoded, and canonical: a final character with unused
        # low bits set decodes to the same bytes, and would let one signed token exist in
        # several spellings (the other segments are checked likewise).
        if not _canonical(signature_segment):
            raise _invalid("The signature segment is not canonical base64url.")
        try:
            signature = _decode(signature_segment)
        except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
            raise _invalid("The signature segment is not unpadded base64url.") from None
        signing_input = token[: len(header_segment) + 1 + len(payload_segment)].encode("ascii")
        # tuple.__new__ rather than TokenParts(...): the named tuple's own constructor is a
        # Python function, and this runs for every new token.
        return _new_tuple(
            TokenParts, (checked[0], checked[1], signing_input, signature, payload_segment)
        )

    def signed_claims(self, parts: TokenParts, key: RSAPublicKey) -> dict[str, Any]:
        """Check the signature with ``key``, then decode the payload: the claims, trusted from
        here on (the caller must not change them: they become the result's).

        :raises TokenInvalidError: ``token-invalid-signature``, or ``token-invalid`` for a
            payload that is not canonical base64url of an I-JSON object.
        """
        try:
            # OpenSSL also refuses a signature that is not exactly the key's length (RFC 7518
            # §3.3), leading zero bytes added or stripped included: tests pin it.
            key.verify(parts.signature, parts.signing_input, _PKCS1, _SHA256)
        except InvalidSignature:
            raise _invalid("Signature does not verify.", "token-invalid-signature") from None
        segment = parts.payload_segment
        if not _canonical(segment):
            raise _invalid("The token payload is not canonical base64url.")
        try:
            raw = _decode(segment)
        except binascii.Error:  # the segment is ASCII: read() checked it
            raise _invalid("The token payload is not unpadded base64url.") from None
        # raw_decode() skips decode()'s whitespace handling: a token's JSON never has any, and
        # when it does (or anything follows the value), decode() judges it.
        try:
            text = raw.decode("utf-8")
            try:
                claims, end = _DECODER.raw_decode(text)
            except json.JSONDecodeError:
                end = -1
            if end != len(text):
                claims = _DECODER.decode(text)
        except TokenInvalidError:
            raise  # a number out of range
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _invalid("The token payload is not JSON.") from None
        if type(claims) is not dict:
            raise _invalid("The token payload is not a JSON object.")
        if not _is_ijson(text, claims):
            raise _invalid("The token payload holds an unpaired surrogate (not I-JSON).")
        return claims

    def check_required_claims(self, claims: Mapping[str, Any], now: float = 0.0) -> None:
        """``sub`` and ``sid`` non-empty strings (``sub`` not a machine's), ``exp`` and ``iat``
        numbers, ``nbf`` a number when present, ``jti`` and ``sts`` strings when present.

        :raises TokenInvalidError: ``token-invalid`` or ``token-type-mismatch``.
        """
        get: Callable[..., Any] = claims.get
        sub, sid = get("sub"), get("sid")
        if type(sub) is not str or not sub:
            raise _invalid("Claim 'sub' must be a non-empty string.")
        if sub.startswith("mch_"):  # before sid: machine tokens have none
            raise _invalid("A machine token is not a session token.", "token-type-mismatch")
        if type(sid) is not str or not sid:
            raise _invalid("Claim 'sid' must be a non-empty string.")
        # Optional string claims: a string when present (a Clerk token never has null).
        if type(get("jti", "")) is not str or type(get("sts", "")) is not str:
            raise _invalid("Claims jti and sts must be strings when present.")
        exp, iat, nbf = get("exp"), get("iat"), get("nbf")
        if type(exp) is not int and not _is_number(exp):
            raise _invalid("Claim 'exp' must be a JSON number.")
        if type(iat) is not int and not _is_number(iat):
            raise _invalid("Claim 'iat' must be a JSON number.")
        if type(nbf) is not int and (nbf is not None or "nbf" in claims) and not _is_number(nbf):
            raise _invalid("Claim 'nbf' must be a JSON number.")

    def check_lifetime(self, claims: Mapping[str, Any], now: float) -> None:
        """``exp``, ``nbf`` and ``iat`` against ``now``, with the leeway. Runs after
        :meth:`check_required_claims`, which makes them numbers.

        :raises TokenInvalidError: ``token-expired``, ``token-not-active-yet`` or
            ``token-iat-in-the-future``.
        """
        error = self.lifetime_error(claims["exp"], claims["iat"], claims.get("nbf"), now)
        if error is not None:
            raise error

    def lifetime_error(
        self, exp: float, iat: float, nbf: float | None, now: float
    ) -> TokenInvalidError | None:
        """What is wrong with these times at ``now``, or ``None``: also how a cached result
        is re-checked, so a token is never accepted past its ``exp``."""
        leeway = self._leeway
        if exp <= now - leeway:
            return _invalid("The token has expired.", "token-expired")
        if nbf is not None and nbf > now + leeway:
            return _invalid("The token is not active yet (nbf).", "token-not-active-yet")
        if iat > now + leeway:
            return _invalid("The token was issued in the future (iat).", "token-iat-in-the-future")
        return None

    def check_issuer_and_parties(self, claims: Mapping[str, Any], now: float = 0.0) -> None:
        """``iss`` a string, this instance's when known; ``azp`` a string, one of the authorized
        parties when set; ``aud`` well formed, and matching when an audience is set.

        :raises TokenInvalidError: ``token-invalid-issuer``,
            ``token-invalid-authorized-parties`` or ``token-invalid-audience``.
        """
        get: Callable[..., Any] = claims.get
        iss, azp = get("iss", ""), get("azp", "")
        if type(iss) is not str or (self._issuer is not None and iss != self._issuer):
            raise _invalid("The issuer (iss) is not this instance.", "token-invalid-issuer")
        if type(azp) is not str or (self._parties and azp not in self._parties):
            raise _invalid(
                "The authorized party (azp) is not allowed.", "token-invalid-authorized-parties"
            )
        aud = get("aud")
        if ((aud is not None or "aud" in claims) and not _is_audience(aud)) or (
            self._audience and not self._audience_matches(aud)
        ):
            raise _invalid("The audience (aud) does not match.", "token-invalid-audience")

    def check_session_status(self, claims: Mapping[str, Any], now: float = 0.0) -> None:
        """A pending session (``sts: pending``) is signed out, as Clerk treats it, unless
        ``accept_pending``.

        :raises SessionPendingError: ``session-token-pending``.
        """
        if not self._pending_ok and claims.get("sts") == "pending":
            raise SessionPendingError("The session is pending.")

    def _audience_matches(self, aud: object) -> bool:
        values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        return any(isinstance(value, str) and value in self._audience for value in values)
