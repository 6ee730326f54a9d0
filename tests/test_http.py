"""The neutral HTTP answers of contract §5 and the rejection log line."""

from __future__ import annotations

import json
import logging

from clerk_guard import (
    KeysUnavailableError,
    PermissionDeniedError,
    TokenInvalidError,
    TokenMissingError,
    error_response,
)


def test_missing_token_401():
    """No token: 401, Invalid Token, WWW-Authenticate: Bearer without error=."""
    response = error_response(TokenMissingError("x"))
    assert response.status == 401
    body = json.loads(response.body)
    assert body["error"] == "Invalid Token" and "no session token" in body["message"]
    assert dict(response.headers)["www-authenticate"] == "Bearer"


def test_invalid_token_401_says_nothing_more():
    """A failing token: 401 with the fixed message; the reason is not in the body."""
    exc = TokenInvalidError("The token has expired.", code="token-expired")
    response = error_response(exc)
    assert response.status == 401
    assert json.loads(response.body) == {
        "error": "Invalid Token",
        "message": "The token provided is malformed or invalid.",
    }
    assert dict(response.headers)["www-authenticate"] == 'Bearer error="invalid_token"'
    assert b"expired" not in response.body


def test_debug_adds_reason():
    """With the debug switch the reason code is added to the body."""
    exc = TokenInvalidError("expired", code="token-expired")
    assert json.loads(error_response(exc, debug=True).body)["reason"] == "token-expired"


def test_forbidden_403():
    """Lacking a role: 403 Forbidden without WWW-Authenticate."""
    response = error_response(PermissionDeniedError("no"))
    assert response.status == 403
    assert json.loads(response.body)["error"] == "Forbidden"
    assert "www-authenticate" not in dict(response.headers)


def test_unavailable_503_with_retry_after():
    """Keys unavailable: 503 Service Unavailable with Retry-After."""
    exc = KeysUnavailableError("down")
    exc.retry_after = 8
    response = error_response(exc)
    assert response.status == 503
    assert json.loads(response.body)["error"] == "Service Unavailable"
    assert dict(response.headers)["retry-after"] == "8"


def test_rejection_logged_once_without_token(caplog):
    """Each rejection is logged with reason, path, source and fingerprint, never the token."""
    exc = TokenInvalidError(
        "bad", code="token-invalid-signature", source="header", fingerprint="abc123def456"
    )
    with caplog.at_level(logging.INFO, logger="clerk_guard"):
        error_response(exc, path="/me")
    [record] = caplog.records
    message = record.getMessage()
    for part in ("/me", "token-invalid-signature", "header", "abc123def456"):
        assert part in message


def test_path_cannot_forge_log_lines(caplog):
    """A path with a newline is logged escaped, on one line."""
    exc = TokenInvalidError("bad", code="token-invalid")
    with caplog.at_level(logging.INFO, logger="clerk_guard"):
        error_response(exc, path="/x\nclerk_guard: accepted /admin")
    [record] = caplog.records
    assert "\n" not in record.getMessage()
