"""The framework-neutral HTTP answer to a failure: status, JSON body, headers (contract §5).

The core decides; each adapter only turns an :class:`ErrorResponse` into its framework's
response. Every rejection is logged here, once, with its reason code and never the token.
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

__all__ = ["ErrorResponse", "error_response", "log_failure"]

logger = logging.getLogger("clerk_guard")

MISSING_MESSAGE = "Authentication required: no session token was provided."
INVALID_MESSAGE = "The token provided is malformed or invalid."
FORBIDDEN_MESSAGE = "You do not have permission to access this resource."
UNAVAILABLE_MESSAGE = "Authentication is temporarily unavailable; try again shortly."


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


def log_failure(exc: ClerkGuardError, *, path: str = "") -> None:
    """One log line per rejection: reason code, path, token source and fingerprint.

    The path is logged with ``%r`` so that a crafted path cannot forge log lines.
    """
    if isinstance(exc, AuthenticationError):
        logger.info(
            "clerk_guard: rejected %r reason=%s source=%s token=%s",
            path or "-",
            exc.code,
            exc.source or "-",
            exc.fingerprint or "-",
        )
    elif isinstance(exc, PermissionDeniedError):
        logger.info("clerk_guard: forbidden %r reason=%s", path or "-", exc.code)
    else:
        logger.warning("clerk_guard: unavailable %r reason=%s", path or "-", exc.code)
