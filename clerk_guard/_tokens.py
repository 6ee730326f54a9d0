"""Find the session token in a request, from raw header lines.

Every adapter hands over the raw ``Authorization`` and ``Cookie`` field lines and gets the same
answer: frameworks parse cookies differently (and some drop a whole header over one bad pair), so
the parsing lives here, once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from ._b64 import peek_json
from ._errors import TokenInvalidError

__all__ = [
    "MAX_TOKEN_LENGTH",
    "TokenSource",
    "choose_session_cookie",
    "extract_token",
    "parse_cookies",
    "split_joined_authorization",
    "token_from_authorization",
]

TokenSource = Literal["header", "cookie"]

#: Every scheme prefix is removed from an issuer before comparing it with the Frontend API host,
#: anywhere in the string, as ``@clerk/backend`` does.
_SCHEME = re.compile(r"https?://", re.IGNORECASE)

#: Longer tokens are refused before any decoding. Clerk session tokens are well under 4 KiB.
MAX_TOKEN_LENGTH = 8192


def token_from_authorization(lines: Sequence[str]) -> str | None:
    """Return the token of an ``Authorization`` header, or ``None`` when it is not ours.

    ``Bearer <token>`` (scheme case-insensitive, spaces around tolerated) and a bare JWT are
    ours; any other scheme (``Basic …``) is left to the rest of the app.

    :raises TokenInvalidError: two ``Authorization`` lines, or ``Bearer`` without exactly one token.
    """
    if not lines:
        return None
    if len(lines) > 1:
        raise TokenInvalidError(
            "More than one Authorization header.", code="authorization-header-duplicated"
        )
    line = lines[0]
    parts = line.split()
    if not parts:
        return None
    if parts[0].lower() == "bearer":
        if len(parts) != 2 or not _only_blanks(line):
            raise TokenInvalidError(
                "Authorization: Bearer must be followed by exactly one token.",
                code="authorization-header-malformed",
                source="header",
            )
        return parts[1]
    if len(parts) == 1 and _is_bare_jwt(parts[0]):
        if not _only_blanks(line):
            raise TokenInvalidError(
                "The Authorization header holds a control character.",
                code="authorization-header-malformed",
                source="header",
            )
        return parts[0]  # a bare JWT, as @clerk/backend accepts
    return None


def _is_bare_jwt(value: str) -> bool:
    # A JWT has two dots and, unpadded, no "=" (which tells it from a Digest parameter).
    return value.count(".") == 2 and "=" not in value


def split_joined_authorization(value: str) -> list[str]:
    """Split an ``Authorization`` value that a server joined from several field lines (WSGI's
    ``HTTP_AUTHORIZATION``, Django's ``META``) back into its lines, when one of them is ours.

    Servers join repeated lines with ``", "``. A value holding a bearer token or a bare JWT
    (neither ever contains a comma) is split at the commas, so that two lines are refused as
    duplicated, as they are when a server keeps them apart (ASGI). Other schemes keep their
    commas (``Digest`` parameters are comma-separated) and stay one line.
    """
    if "," not in value:  # the common case: one line, one token; no split of a long value
        return [value]
    pieces = value.split(",")
    if any(_is_ours(piece.split()) for piece in pieces):
        return [piece.strip() for piece in pieces]
    return [value]


def _is_ours(parts: list[str]) -> bool:
    """Whether split credentials are ``Bearer …`` or a bare JWT: the ones this package reads."""
    if not parts:
        return False
    return parts[0].lower() == "bearer" or (len(parts) == 1 and _is_bare_jwt(parts[0]))


def _only_blanks(line: str) -> bool:
    """Whether the line's only white space is spaces and tabs, the blanks HTTP allows around
    and within credentials (RFC 9110 §5.6.3, RFC 7235 §2.1); ``str.split()`` also splits on
    control and Unicode space characters, which no client puts there."""
    return line.isprintable() or line.replace("\t", " ").isprintable()


def parse_cookies(lines: Iterable[str]) -> dict[str, str]:
    """Parse ``Cookie`` field lines into a mapping, first occurrence of a name winning.

    Tolerant: a malformed pair is skipped without hiding the others, and one pair of
    surrounding double quotes is stripped from a value. Values are not percent-decoded; a
    session token never needs it.
    """
    cookies: dict[str, str] = {}
    for line in lines:
        for pair in line.split(";"):
            name, sep, value = pair.partition("=")
            name = name.strip()
            if not sep or not name or name in cookies:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies[name] = value
    return cookies


def _unverified_payload(token: str) -> dict[str, Any] | None:
    """Decode a JWT payload without verifying it: only to choose between two cookies."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        payload = peek_json(parts[1])
    except (ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None


def _truthy(value: object) -> bool:
    """JavaScript's truthiness, which ``@clerk/backend``'s cookie choice tests claims with: an
    empty list or object is true there."""
    return value is not None and value is not False and value != 0 and value != ""


def _number(payload: dict[str, Any] | None, name: str) -> float:
    value = payload.get(name) if payload else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return value


def choose_session_cookie(
    cookies: dict[str, str],
    *,
    suffix: str | None,
    frontend_api: str | None,
    production: bool,
    now: float,
) -> str | None:
    """Pick the session cookie the way ``@clerk/backend`` does.

    Clerk sets both ``__session`` and ``__session_<suffix>``; the suffixed one is what lets several
    Clerk apps share a parent domain. Which to trust is decided from the two cookies and the
    ``__client_uat`` pair, step by step as ``AuthenticateContext.usesSuffixedCookies``.
    """
    plain = cookies.get("__session") or None
    if suffix is None:
        return plain
    suffixed = cookies.get(f"__session_{suffix}") or None
    if _uses_suffixed(cookies, suffix, plain, suffixed, frontend_api, production, now):
        return suffixed
    return plain


def _uses_suffixed(
    cookies: dict[str, str],
    suffix: str,
    plain: str | None,
    suffixed: str | None,
    frontend_api: str | None,
    production: bool,
    now: float,
) -> bool:
    suffixed_uat = cookies.get(f"__client_uat_{suffix}")
    plain_uat = cookies.get("__client_uat")
    plain_payload = _unverified_payload(plain) if plain else None
    if plain:
        iss = plain_payload.get("iss") if plain_payload else None
        if not _truthy(iss):
            return False  # no issuer, not a Clerk session token: keep the plain cookie
        if not isinstance(iss, str) or _SCHEME.sub("", iss) != frontend_api:
            return True  # the plain cookie is not this instance's (another app's, or forged)
    if not suffixed_uat and not suffixed:
        return False
    suffixed_payload = _unverified_payload(suffixed) if suffixed else None
    # A missing __client_uat counts as "not 0", as in the JavaScript string comparisons.
    if (
        suffixed_uat != "0"
        and plain_uat != "0"
        and _number(plain_payload, "iat") > _number(suffixed_payload, "iat")
    ):
        return False
    if suffixed_uat == "0" and plain_uat != "0":
        return False
    if (
        not production
        and suffixed_uat != "0"
        and plain_uat == "0"
        and suffixed_payload is not None
        and _number(suffixed_payload, "exp") <= int(now)
    ):
        return False
    return not (not suffixed_uat and suffixed)


def extract_token(
    authorization: Sequence[str],
    cookie_lines: Iterable[str],
    *,
    suffix: str | None = None,
    frontend_api: str | None = None,
    production: bool = False,
    now: float = 0.0,
) -> tuple[str, TokenSource] | None:
    """Find the session token: the ``Authorization`` header first, else the session cookie.

    When the header yields a token the cookie is never consulted, even if that token fails.

    :raises TokenInvalidError: malformed or duplicated ``Authorization`` header, or a token over
        :data:`MAX_TOKEN_LENGTH`.
    """
    token = token_from_authorization(authorization)
    source: TokenSource = "header"
    if token is None:
        cookies = parse_cookies(cookie_lines)
        token = choose_session_cookie(
            cookies, suffix=suffix, frontend_api=frontend_api, production=production, now=now
        )
        source = "cookie"
    if token is None:
        return None
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalidError(
            f"Token longer than {MAX_TOKEN_LENGTH} characters.",
            code="token-too-long",
            source=source,
        )
    return token, source
