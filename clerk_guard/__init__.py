"""clerk-guard: verify Clerk session tokens in any Python web backend.

The core is framework-neutral; adapters live in ``clerk_guard.asgi``, ``clerk_guard.fastapi``,
``clerk_guard.wsgi``, ``clerk_guard.flask`` and ``clerk_guard.django``.
"""

from __future__ import annotations

from ._claims import SessionAuth
from ._config import GuardConfig
from ._errors import (
    AuthenticationError,
    ClerkGuardError,
    ConfigurationError,
    KeysUnavailableError,
    PermissionDeniedError,
    SessionPendingError,
    TokenInvalidError,
    TokenMissingError,
)
from ._guard import AsyncGuard, Guard, check_requirements, missing_token
from ._http import ErrorResponse, error_response, log_failure
from ._jwks import AsyncJWKSClient, JWKSClient, clear_key_caches
from ._tokens import extract_token, parse_cookies, split_joined_authorization

__all__ = [
    "AsyncGuard",
    "AsyncJWKSClient",
    "AuthenticationError",
    "ClerkGuardError",
    "ConfigurationError",
    "ErrorResponse",
    "Guard",
    "GuardConfig",
    "JWKSClient",
    "KeysUnavailableError",
    "PermissionDeniedError",
    "SessionAuth",
    "SessionPendingError",
    "TokenInvalidError",
    "TokenMissingError",
    "__version__",
    "check_requirements",
    "clear_key_caches",
    "error_response",
    "extract_token",
    "log_failure",
    "missing_token",
    "parse_cookies",
    "split_joined_authorization",
]

__version__ = "0.1.0"
