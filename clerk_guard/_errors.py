"""The exception tree of clerk-guard.

Every error has a class-level ``code``: a stable string for logs and metrics. Reason codes follow
the names ``@clerk/backend`` uses (``TokenVerificationErrorReason``) where it has one.

    ClerkGuardError
    ├── ConfigurationError           invalid settings, raised at construction
    ├── AuthenticationError          the client's fault: answered with 401
    │   ├── TokenMissingError        no session token on a protected route
    │   └── TokenInvalidError        a token was sent and fails a check (``code`` says which)
    │       └── SessionPendingError  a valid token of a pending session: signed out, not forged
    ├── PermissionDeniedError        signed in, but lacks a required role/permission: 403
    └── KeysUnavailableError         no usable key set could be loaded: 503

The client never sees ``reason`` or the message unless debug responses are switched on: telling a
caller why its token failed is an oracle.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ClerkGuardError",
    "ConfigurationError",
    "KeysUnavailableError",
    "PermissionDeniedError",
    "SessionPendingError",
    "TokenInvalidError",
    "TokenMissingError",
]


class ClerkGuardError(Exception):
    """Root of every error clerk-guard raises."""

    code: str = "clerk-guard-error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigurationError(ClerkGuardError, ValueError):
    """The configuration cannot work; the message says what to change.

    ``field`` names the setting at fault (``"publishable_key"``, ``"leeway"``, …;
    ``"key_source"`` when none is given at all).
    """

    code = "configuration-invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AuthenticationError(ClerkGuardError):
    """The request did not prove a session: answered with 401.

    ``source`` is where the token came from (``"header"``, ``"cookie"`` or ``None``) and
    ``fingerprint`` a short hash of the token, so logs can correlate failures without the token.
    """

    code = "authentication-failed"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        source: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.source = source
        self.fingerprint = fingerprint


class TokenMissingError(AuthenticationError):
    """No session token in the ``Authorization`` header or the session cookie."""

    code = "session-token-missing"


class TokenInvalidError(AuthenticationError):
    """A token was presented and failed verification; ``code`` names the check."""

    code = "token-invalid"


class SessionPendingError(TokenInvalidError):
    """A verified token of a pending session (``sts: "pending"``): the user has session tasks
    left. Clerk treats it as signed out, so optional routes see no session; a protected route
    answers it as any refused token (401 ``invalid_token``), since a token was sent."""

    code = "session-token-pending"


class PermissionDeniedError(ClerkGuardError):
    """A valid session lacks a required role, permission, feature or plan: answered with 403."""

    code = "permission-denied"


class KeysUnavailableError(ClerkGuardError):
    """No key set could be loaded and none is cached: answered with 503 and ``Retry-After``."""

    code = "jwk-remote-failed-to-load"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
