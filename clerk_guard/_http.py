"""The framework-neutral HTTP answer to a failure: status, JSON body, headers (contract §5).

The core decides; each adapter only turns an :class:`ErrorResponse` into its framework's
response. Every rejection is logged here, once, with its reason code and never the token, at the
level :func:`log_level` gives it.
"""

from __future__ import annotations

import dataclasses
import json
import logging

from ._errors import (
    AuthenticationError,
    ClerkGuardError,
    KeysUnavailableError,
    PermissionDeniedError,
    TokenMissingError,
)

__all__ = ["ROUTINE_CODES", "ErrorResponse", "error_response", "log_failure", "log_level"]

logger = logging.getLogger("clerk_guard")

MISSING_MESSAGE = "Authentication required: no session token was provided."
INVALID_MESSAGE = "The token provided is malformed or invalid."
FORBIDDEN_MESSAGE = "You do not have permission to access this resource."
UNAVAILABLE_MESSAGE = "Authentication is temporarily unavailable; try again shortly."

#: Reason codes every working deployment sees all day, logged at INFO: a signed-out visitor, a
#: token that expired on its way (they live 60 s), a session with tasks left, a signed-in user
#: without a role. Every other code is logged at WARNING, so that it reaches a server's default
#: log (Python prints WARNING and above when no handler is configured): a failing check of a
#: token that was sent points at a misconfiguration (another instance's keys, a missing
#: authorized party, a clock off) or at an attack (a forged or altered token), and a 503 means
#: the keys cannot be had. The README's "Errors and reason codes" section documents this split.
ROUTINE_CODES = frozenset(
    {"session-token-missing", "token-expired", "session-token-pending", "permission-denied"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorResponse:
    """What to send back: ``status``, a JSON ``body`` (bytes) and ``headers``."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    code: str

    @property
    def data(self) -> dict[str, str]:
        """The body as a mapping, for frameworks that serialise JSON themselves."""
        result: dict[str, str] = json.loads(self.body)
        return result


def _response(
    status: int, error: str, message: str, code: str, debug: bool, *extra: tuple[str, str]
) -> ErrorResponse:
    body: dict[str, str] = {"error": error, "message": message}
    if debug:
        body["reason"] = code  # only with the explicit debug switch: it is an oracle
    headers = (
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
        *extra,
    )
    return ErrorResponse(status, json.dumps(body).encode(), headers, code)


def error_response(
    exc: ClerkGuardError, *, path: str = "", debug: bool = False, log: bool = True
) -> ErrorResponse:
    """Log the failure and return the answer of contract §5 for it.

    :param debug: add the reason code to the body. For local development only.
    :param log: set to False when the caller logs the failure itself.
    """
    if log:
        log_failure(exc, path=path)
    if isinstance(exc, TokenMissingError):
        return _response(
            401, "Invalid Token", MISSING_MESSAGE, exc.code, debug, ("www-authenticate", "Bearer")
        )
    if isinstance(exc, AuthenticationError):
        return _response(
            401,
            "Invalid Token",
            INVALID_MESSAGE,
            exc.code,
            debug,
            ("www-authenticate", 'Bearer error="invalid_token"'),
        )
    if isinstance(exc, PermissionDeniedError):
        return _response(403, "Forbidden", FORBIDDEN_MESSAGE, exc.code, debug)
    retry_after = exc.retry_after if isinstance(exc, KeysUnavailableError) else 5
    return _response(
        503,
        "Service Unavailable",
        UNAVAILABLE_MESSAGE,
        exc.code,
        debug,
        ("retry-after", str(retry_after)),
    )


def log_level(exc: ClerkGuardError) -> int:
    """The level a rejection is logged at: INFO for :data:`ROUTINE_CODES`, else WARNING.

    A 503 is always a WARNING, whatever its code.
    """
    if exc.code in ROUTINE_CODES and isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return logging.INFO
    return logging.WARNING


def log_failure(exc: ClerkGuardError, *, path: str = "") -> None:
    """One log line per rejection: reason code, path, token source and fingerprint.

    Logged at :func:`log_level`'s level. The path is logged with ``%r`` so that a crafted path
    cannot forge log lines.
    """
    level = log_level(exc)
    if isinstance(exc, AuthenticationError):
        logger.log(
            level,
            "clerk_guard: rejected %r reason=%s source=%s token=%s",
            path or "-",
            exc.code,
            exc.source or "-",
            exc.fingerprint or "-",
        )
    elif isinstance(exc, PermissionDeniedError):
        logger.log(level, "clerk_guard: forbidden %r reason=%s", path or "-", exc.code)
    else:
        logger.log(level, "clerk_guard: unavailable %r reason=%s", path or "-", exc.code)
