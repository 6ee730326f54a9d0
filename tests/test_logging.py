"""Rejection log lines: routine reasons at INFO, the rest at WARNING, where servers show them."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import httpx
import pytest

from clerk_guard import (
    KeysUnavailableError,
    PermissionDeniedError,
    SessionPendingError,
    TokenInvalidError,
    TokenMissingError,
    error_response,
)
from clerk_guard._http import ROUTINE_CODES, log_level
from clerk_guard.testing import LocalIssuer
from tests._servers import free_port, server_process

ROOT = Path(__file__).resolve().parent.parent

ROUTINE = [
    TokenMissingError("none"),
    TokenInvalidError("old", code="token-expired"),
    SessionPendingError("tasks left"),
    PermissionDeniedError("no role"),
]
SUSPECT_CODES = [
    "token-invalid",
    "token-invalid-algorithm",
    "token-invalid-signature",
    "token-type-mismatch",
    "token-too-long",
    "token-not-active-yet",
    "token-iat-in-the-future",
    "token-invalid-issuer",
    "token-invalid-authorized-parties",
    "token-invalid-audience",
    "token-invalid-claims",
    "jwk-kid-mismatch",
    "authorization-header-malformed",
    "authorization-header-duplicated",
]
UNAVAILABLE_CODES = [
    "jwk-remote-failed-to-load",
    "jwk-remote-invalid",
    "jwk-remote-missing",
    "jwk-remote-tls-failed",
    "jwk-remote-proxy-failed",
    "secret-key-invalid",
]


def logged(caplog, exc):
    """The one record ``error_response`` logs for ``exc``."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="clerk_guard"):
        error_response(exc, path="/me")
    [record] = caplog.records
    return record


@pytest.mark.parametrize("exc", ROUTINE, ids=lambda exc: exc.code)
def test_routine_reasons_are_info(caplog, exc):
    """No token, an expired token, a pending session and a missing role are logged at INFO."""
    assert logged(caplog, exc).levelno == logging.INFO


@pytest.mark.parametrize("code", SUSPECT_CODES)
def test_misconfiguration_or_attack_reasons_are_warnings(caplog, code):
    """Every other refused token is logged at WARNING, with its reason code."""
    record = logged(caplog, TokenInvalidError("bad", code=code, source="header"))
    assert record.levelno == logging.WARNING
    assert f"reason={code}" in record.getMessage()


@pytest.mark.parametrize("code", UNAVAILABLE_CODES)
def test_every_503_is_a_warning(caplog, code):
    """A 503 is logged at WARNING, whatever its code."""
    assert logged(caplog, KeysUnavailableError("down", code=code)).levelno == logging.WARNING


def test_a_routine_code_on_a_503_is_still_a_warning():
    """The level follows the answer too: only 401s and 403s can be routine."""
    assert log_level(KeysUnavailableError("down", code="token-expired")) == logging.WARNING


def test_the_readme_lists_the_info_codes():
    """The README's errors section names exactly the codes logged at INFO."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Seeing the reasons", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith("| INFO"))
    assert set(re.findall(r"`([a-z-]+)`", row)) == ROUTINE_CODES


@pytest.mark.integration
def test_uvicorn_default_log_shows_the_forged_token_not_the_expired_one(tmp_path):
    """Under uvicorn's default logging, a forged token's WARNING reaches the server's output
    (Python's last-resort handler, stderr); an expired token's INFO line does not."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    issuer, forger = LocalIssuer(), LocalIssuer()
    env = {
        "CLERK_PUBLISHABLE_KEY": issuer.publishable_key,
        "CLERK_JWT_KEY": issuer.public_pem,
        "CLERK_GUARD_WARM_UP": "",
    }
    for name in ("CLERK_SECRET_KEY", "CLERK_PEM_PUBLIC_KEY", "CLERK_JWKS_URL", "CLERK_ISSUER"):
        env[name] = ""
    for name in ("CLERK_AUTHORIZED_PARTIES", "CLERK_AUDIENCE"):
        env[name] = ""
    port = free_port()
    output = tmp_path / "server.log"
    args = ["uvicorn", "examples.starlette_app:app", "--host", "127.0.0.1", "--port", str(port)]
    expired = issuer.mint(now=time.time() - 3600)
    forged = forger.mint()
    with server_process(args, port=port, env=env, output=output) as base:
        for token in (expired, forged):  # in this order: the second line is the one awaited
            response = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401
        deadline = time.monotonic() + 10
        while "reason=token-invalid-signature" not in output.read_text(errors="replace"):
            assert time.monotonic() < deadline, output.read_text(errors="replace")
            time.sleep(0.05)
    text = output.read_text(errors="replace")
    assert "clerk_guard: rejected '/me' reason=token-invalid-signature source=header" in text
    assert "token-expired" not in text
    assert forged not in text
    assert expired not in text
