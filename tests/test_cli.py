"""The ``clerk-guard`` command: parser, ``mint``, ``jwks``, ``demo`` start-up errors, exit codes."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys

import pytest

from clerk_guard import Guard, GuardConfig
from clerk_guard._cli import main
from tests._servers import ROOT, free_port

NOW = 1_700_000_000


def run(capsys, *argv):
    """Run ``clerk-guard`` in-process: (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def claims_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def hint(err, name):
    """The value of ``NAME=value`` in mint's hints, unquoted and unescaped."""
    line = next(line.strip() for line in err.splitlines() if line.strip().startswith(name + "="))
    value = line.split("=", 1)[1].strip('"')
    return value.replace("\\n", "\n")


# The parser ----------------------------------------------------------------------------------


def test_module_help_in_a_subprocess():
    """`python -m clerk_guard --help` works and lists every command."""
    result = subprocess.run(
        [sys.executable, "-m", "clerk_guard", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0
    for command in ("doctor", "jwks", "mint", "demo"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["doctor", "jwks", "mint", "demo"])
def test_command_help(capsys, command):
    """Each command has --help, exiting 0."""
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert out.startswith("usage: clerk-guard " + command)


def test_no_command_is_a_usage_error(capsys):
    """Without a command, the help goes to stderr with exit status 2."""
    code, out, err = run(capsys)
    assert code == 2
    assert out == ""
    assert "usage: clerk-guard" in err


def test_unknown_flag_is_a_usage_error(capsys):
    """argparse errors become exit status 2 instead of raising SystemExit."""
    code, _, err = run(capsys, "mint", "--no-such-flag")
    assert code == 2
    assert "unrecognized arguments" in err


def test_version(capsys):
    """--version prints the package version."""
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith("clerk-guard 0.")


# mint ----------------------------------------------------------------------------------------


def test_mint_prints_only_the_token_on_stdout(capsys):
    """stdout holds the token alone, so $(clerk-guard mint) works; the hints go to stderr."""
    code, out, err = run(capsys, "mint")
    token = out.strip()
    assert code == 0
    assert out == token + "\n"
    assert token.count(".") == 2
    assert "CLERK_PUBLISHABLE_KEY=pk_test_" in err
    assert "--key-file" in err  # the key lives in memory only
    config = GuardConfig(
        publishable_key=hint(err, "CLERK_PUBLISHABLE_KEY"), jwt_key=hint(err, "CLERK_JWT_KEY")
    )
    with Guard(config) as guard:
        auth = guard.verify(token)
    assert auth.user_id == "user_2test"
    assert auth.session_id == "sess_2test"


def test_mint_claims_from_flags(capsys):
    """--user, --session, --org, --role, --permission, --azp, --lifetime and --claim shape it."""
    code, out, _ = run(
        capsys,
        "mint",
        "--user",
        "user_abc",
        "--session",
        "sess_abc",
        "--org",
        "org_abc",
        "--org-slug",
        "acme",
        "--role",
        "admin",
        "--permission",
        "org:invoices:read",
        "--permission",
        "org:invoices:write",
        "--azp",
        "https://app.example.com",
        "--lifetime",
        "120",
        "--claim",
        "email=ada@example.com",
        "--claim",
        'meta={"tier": 2}',
        "--quiet",
    )
    claims = claims_of(out.strip())
    assert code == 0
    assert claims["sub"] == "user_abc"
    assert claims["sid"] == "sess_abc"
    assert claims["org_id"] == "org_abc"
    assert claims["org_slug"] == "acme"
    assert claims["org_role"] == "org:admin"
    assert claims["org_permissions"] == ["org:invoices:read", "org:invoices:write"]
    assert claims["azp"] == "https://app.example.com"
    assert claims["exp"] - claims["iat"] == 120
    assert claims["email"] == "ada@example.com"
    assert claims["meta"] == {"tier": 2}


def test_mint_v2_and_no_azp(capsys):
    """--v2 writes Clerk's compact claims; --no-azp leaves azp out."""
    code, out, err = run(
        capsys, "mint", "--v2", "--org", "org_1", "--role", "org:admin", "--no-azp", "-q"
    )
    claims = claims_of(out.strip())
    assert code == 0
    assert err == ""
    assert claims["v"] == 2
    assert claims["o"] == {"id": "org_1", "rol": "admin"}
    assert "azp" not in claims


@pytest.mark.parametrize(
    "argv",
    [
        ["--role", "admin"],
        ["--v2", "--org", "org_1", "--permission", "not-a-v2-permission"],
        ["--claim", "novalue"],
        ["--lifetime", "-5"],
    ],
    ids=["role-without-org", "bad-v2-permission", "bad-claim", "negative-lifetime"],
)
def test_mint_usage_errors(capsys, argv):
    """Inconsistent mint flags are usage errors (exit status 2), with nothing on stdout."""
    code, out, err = run(capsys, "mint", *argv)
    assert code == 2
    assert out == ""
    assert err


def test_mint_key_file_persists_the_key(capsys, tmp_path):
    """--key-file creates a private key (mode 0600) once; later tokens verify with the same key."""
    key_file = tmp_path / "dev-key.pem"
    code, first, err = run(capsys, "mint", "--key-file", str(key_file))
    assert code == 0
    assert "Created the signing key" in err
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert "PRIVATE KEY" in key_file.read_text()
    code, second, err_again = run(capsys, "mint", "--key-file", str(key_file), "--user", "user_2")
    assert "Created" not in err_again
    assert hint(err, "CLERK_JWT_KEY") == hint(err_again, "CLERK_JWT_KEY")
    assert claims_of(first)["iss"] == claims_of(second)["iss"]
    assert json.loads(base64.urlsafe_b64decode(first.split(".")[0] + "==").decode()) == json.loads(
        base64.urlsafe_b64decode(second.split(".")[0] + "==").decode()
    )
    # The doctor reads the public key straight from the private key file.
    for token in (first.strip(), second.strip()):
        code, _, _ = run(capsys, "doctor", "--no-env", "--jwt-key", f"@{key_file}", token)
        assert code == 0


def test_mint_expired_is_rejected_as_expired(capsys, tmp_path):
    """--expired makes a token the doctor reports as expired a minute ago."""
    key_file = tmp_path / "key.pem"
    _, out, _ = run(capsys, "mint", "--expired", "--key-file", str(key_file), "-q")
    code, report, _ = run(capsys, "doctor", "--json", "--no-env", "--jwt-key", f"@{key_file}", out)
    report = json.loads(report)
    assert code == 1
    assert report["code"] == "token-expired"
    assert report["times"]["exp"]["relative"].startswith("expired 1 min")


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"not a key", "not an unencrypted PEM private key"), (None, "must hold an RSA private key")],
    ids=["garbage", "ec-key"],
)
def test_mint_bad_key_file(capsys, tmp_path, content, words):
    """A key file that is not an RSA private key is a usage error."""
    key_file = tmp_path / "key.pem"
    if content is None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        content = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    key_file.write_bytes(content)
    code, out, err = run(capsys, "mint", "--key-file", str(key_file))
    assert code == 2
    assert out == ""
    assert words in err


def test_jwt_key_file_unreadable(capsys, tmp_path):
    """--jwt-key @FILE that does not exist is a usage error."""
    code, _, err = run(capsys, "doctor", "--no-env", "--jwt-key", f"@{tmp_path}/nope.pem", "a.b.c")
    assert code == 2
    assert "cannot read" in err


# jwks ----------------------------------------------------------------------------------------


def test_jwks_lists_the_keys(capsys, clerk_issuer, clerk_jwks_server):
    """jwks fetches the key set and shows kid, size in bits, source URL and cache age."""
    code, out, _ = run(capsys, "jwks", "--no-env", "--jwks-url", clerk_jwks_server.url)
    assert code == 0
    assert clerk_issuer.kid in out
    assert "2048" in out
    assert clerk_jwks_server.url in out
    assert "cache age" in out


def test_jwks_json(capsys, clerk_issuer, clerk_jwks_server):
    """jwks --json gives a stable structure."""
    clerk_issuer.rotate()
    code, out, _ = run(
        capsys,
        "jwks",
        "--json",
        "--no-env",
        "--publishable-key",
        clerk_issuer.publishable_key,
        "--jwks-url",
        clerk_jwks_server.url,
        "--at",
        str(NOW),
    )
    report = json.loads(out)
    assert code == 0
    assert report["url"] == clerk_jwks_server.url
    assert report["key_source"] == "jwks_url"
    assert report["issuer"] == clerk_issuer.issuer
    assert report["cache_age"] == 0
    assert report["ttl"] == 300
    assert report["keys"] == [{"kid": kid, "bits": 2048} for kid in clerk_issuer.kids]


def test_jwks_with_a_pem_key(capsys, clerk_issuer):
    """With a PEM key there is nothing to fetch: the key's size is shown."""
    code, out, _ = run(capsys, "jwks", "--json", "--no-env", "--jwt-key", clerk_issuer.public_pem)
    report = json.loads(out)
    assert code == 0
    assert report["url"] is None
    assert report["keys"] == [{"kid": None, "bits": 2048}]
    code, out, _ = run(capsys, "jwks", "--no-env", "--jwt-key", clerk_issuer.public_pem)
    assert "no network" in out


def test_jwks_unreachable(capsys):
    """Keys that cannot be fetched: exit status 1 with the cause and the fix."""
    url = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    code, out, err = run(capsys, "jwks", "--no-env", "--jwks-url", url)
    assert code == 1
    assert out == ""
    assert "jwk-remote-failed-to-load" in err
    assert "fix:" in err
    code, out, _ = run(capsys, "jwks", "--json", "--no-env", "--jwks-url", url)
    assert json.loads(out)["error"]["code"] == "jwk-remote-failed-to-load"


def test_verbose_shows_library_logs(capsys):
    """-v shows clerk_guard's own log lines (here the failed key fetch) on stderr."""
    url = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    code, _, err = run(capsys, "-v", "jwks", "--no-env", "--jwks-url", url)
    assert code == 1
    assert "key fetch failed" in err


def test_jwks_configuration_error(capsys):
    """An invalid publishable key is a configuration error (exit status 2)."""
    code, _, err = run(capsys, "jwks", "--no-env", "--publishable-key", "pk_test_bad")
    assert code == 2
    assert "configuration error" in err


# demo start-up -------------------------------------------------------------------------------


def test_demo_refuses_a_public_host(capsys):
    """The demo mints tokens for anyone, so it listens on loopback only."""
    code, _, err = run(capsys, "demo", "--host", "0.0.0.0")
    assert code == 2
    assert "loopback" in err


def test_demo_port_range(capsys):
    """A port outside 1-65535 is a usage error."""
    code, _, err = run(capsys, "demo", "--port", "70000")
    assert code == 2
    assert "--port" in err


@pytest.mark.parametrize("missing", ["fastapi", "uvicorn"])
def test_demo_without_fastapi_says_what_to_install(capsys, monkeypatch, missing):
    """Without FastAPI or uvicorn, the demo says which extra to install (exit status 2)."""
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.delitem(sys.modules, "clerk_guard._demo", raising=False)
    code, _, err = run(capsys, "demo", "--port", str(free_port()))
    assert code == 2
    assert "pip install 'clerk-guard[demo]'" in err
    assert missing in err
