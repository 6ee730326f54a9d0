"""``clerk-guard doctor``: one token per rejection reason, each with its named cause and fix."""

from __future__ import annotations

import base64
import io
import json
import os
import pathlib
import re

import httpx
import pytest

from clerk_guard import ClerkGuardError, Guard, GuardConfig
from clerk_guard._cli import main
from clerk_guard._doctor import check_names, diagnose, in_words, relative_time, render_text
from clerk_guard.testing import LocalIssuer
from tests._servers import FlakyJWKSServer, free_port, make_tls_files

NOW = 1_700_000_000
VECTORS = json.loads(
    (pathlib.Path(__file__).resolve().parent / "vectors" / "clerk-fixtures.json").read_text()
)
OTHER = LocalIssuer(frontend_api="happy-cat-12.clerk.accounts.dev")
PROD_HOST = "clerk.example.com"
PK_LIVE = "pk_live_" + base64.b64encode(f"{PROD_HOST}$".encode()).decode().rstrip("=")


def doctor(capsys, *argv, stdin=None, monkeypatch=None):
    """Run ``clerk-guard doctor --json`` in-process: (exit status, report, stderr)."""
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["doctor", "--json", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else None), err


def pem_flags(issuer, *extra):
    """Doctor flags verifying with the issuer's PEM key at NOW, ignoring the environment."""
    return [
        "--no-env",
        "--publishable-key",
        issuer.publishable_key,
        "--jwt-key",
        issuer.public_pem,
        "--at",
        str(NOW),
        *extra,
    ]


def failure(report):
    """The first failed check of a report."""
    return next(check for check in report["checks"] if check["status"] == "failed")


def tamper(token, **changes):
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


# Accepted ------------------------------------------------------------------------------------


def test_valid_token_is_accepted_with_every_check_passed(capsys, clerk_issuer):
    """A valid token exits 0, passes every check in order, and names the session."""
    token = clerk_issuer.mint(now=NOW, org_id="org_1", org_role="org:admin")
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), token)
    assert code == 0
    assert report["verdict"] == "accepted"
    assert report["code"] is None
    assert report["http_status"] == 200
    assert all(check["ok"] for check in report["checks"])
    assert report["session"]["user_id"] == "user_2test"
    assert report["session"]["org_role"] == "org:admin"
    assert report["times"]["exp"]["relative"] == "expires in 1 min"
    assert report["times"]["iat"]["relative"] == "issued now"


def test_report_structure_is_stable(capsys, clerk_issuer):
    """The JSON report has the documented keys, and checks follow the verifier's order."""
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), clerk_issuer.mint(now=NOW))
    assert code == 0
    assert set(report) == {
        "input",
        "fingerprint",
        "header",
        "claims",
        "decode_error",
        "times",
        "config",
        "checks",
        "verdict",
        "code",
        "http_status",
        "session",
    }
    for check in report["checks"]:
        assert set(check) == {"name", "ok", "status", "code", "detail", "cause", "fix"}
    with Guard(clerk_issuer.config(jwt_key=clerk_issuer.public_pem)) as guard:
        names = check_names(guard)
    assert [check["name"] for check in report["checks"]] == names
    assert names == [
        "token found",
        "token format and header",
        "signing key",
        "signature",
        "required claims (sub, sid, exp, iat)",
        "lifetime (exp, nbf, iat)",
        "issuer and parties (iss, azp, aud)",
        "session status (sts)",
        "session claims",
    ]
    assert report["config"]["key_source"] == "jwt_key"
    assert report["header"]["alg"] == "RS256"


def test_text_report_shows_decoded_parts_but_never_the_token(capsys, clerk_issuer):
    """The text report shows header, claims and times in words, never the token itself."""
    token = clerk_issuer.mint(now=NOW - 192)
    code = main(["doctor", *pem_flags(clerk_issuer), token])
    out, _ = capsys.readouterr()
    assert code == 1
    assert token not in out
    assert token.split(".")[2] not in out
    assert '"sub": "user_2test"' in out
    assert "expired 2 min 12 s ago" in out
    assert "FAIL  lifetime (exp, nbf, iat)" in out
    assert "Verdict: REJECTED [token-expired]" in out


def test_token_from_stdin(capsys, clerk_issuer, monkeypatch):
    """'-' reads the token from stdin."""
    token = clerk_issuer.mint(now=NOW)
    code, report, _ = doctor(
        capsys, *pem_flags(clerk_issuer), "-", stdin=token + "\n", monkeypatch=monkeypatch
    )
    assert code == 0
    assert report["verdict"] == "accepted"


# One token per rejection reason --------------------------------------------------------------


def test_expired(capsys, clerk_issuer):
    """An expired token: how long ago, the 60 s lifetime, and to fetch a fresh token."""
    token = clerk_issuer.mint(now=NOW - 192)  # exp = NOW - 132
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), token)
    assert code == 1
    check = failure(report)
    assert (check["name"], check["code"]) == ("lifetime (exp, nbf, iat)", "token-expired")
    assert "expired 2 min 12 s ago" in check["cause"]
    assert "getToken()" in check["fix"]
    assert "clock" in check["fix"]
    assert report["times"]["exp"]["relative"] == "expired 2 min 12 s ago"


def test_not_active_yet_names_clock_skew(capsys, clerk_issuer):
    """nbf in the future beyond the leeway is explained as clock skew."""
    token = clerk_issuer.mint(now=NOW, nbf=NOW + 100)
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), token)
    check = failure(report)
    assert code == 1
    assert check["code"] == "token-not-active-yet"
    assert "becomes valid in 1 min 40 s" in check["cause"]
    assert "clock" in check["cause"]
    assert "NTP" in check["fix"]


def test_issued_in_the_future_names_clock_skew(capsys, clerk_issuer):
    """iat in the future beyond the leeway: 'issued in 9 s', the clock is behind."""
    token = clerk_issuer.mint(now=NOW, issued_at=NOW + 9, nbf=None)
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), token)
    check = failure(report)
    assert check["code"] == "token-iat-in-the-future"
    assert "issued in 9 s" in check["cause"]
    assert "clock" in check["cause"]


def test_signature_from_another_instance(capsys, clerk_issuer):
    """A token signed by another instance: the cause compares its iss with the configuration."""
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), OTHER.mint(now=NOW))
    check = failure(report)
    assert code == 1
    assert (check["name"], check["code"]) == ("signature", "token-invalid-signature")
    assert "another Clerk instance" in check["cause"]
    assert OTHER.issuer in check["cause"]
    assert clerk_issuer.issuer in check["cause"]
    assert all(c["status"] == "skipped" for c in report["checks"][4:])


def test_development_token_against_production_keys(capsys):
    """A development token checked against production keys (pk_live_) is named as such."""
    prod = LocalIssuer(frontend_api=PROD_HOST)
    flags = ["--no-env", "--publishable-key", PK_LIVE, "--jwt-key", prod.public_pem]
    code, report, _ = doctor(capsys, *flags, "--at", str(NOW), OTHER.mint(now=NOW))
    check = failure(report)
    assert check["code"] == "token-invalid-signature"
    assert "development instance" in check["cause"]
    assert "pk_live_" in check["cause"]


def test_tampered_token(capsys, clerk_issuer):
    """A token whose payload was changed after signing is called tampered."""
    token = tamper(clerk_issuer.mint(now=NOW), org_role="org:admin")
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), token)
    check = failure(report)
    assert check["code"] == "token-invalid-signature"
    assert "tampered" in check["cause"]
    assert report["claims"]["org_role"] == "org:admin"  # still shown, decoded but not trusted


def test_truncated_token(capsys, clerk_issuer):
    """A token cut short when copied is named truncated, with how to copy it again."""
    token = clerk_issuer.mint(now=NOW)
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), token[: token.index(".") + 40])
    check = failure(report)
    assert (check["name"], check["code"]) == ("token format and header", "token-invalid")
    assert "truncated" in check["cause"]
    assert "Copy the whole token" in check["fix"]
    assert report["decode_error"]


def test_azp_not_allowed(capsys, clerk_issuer):
    """azp outside the authorized parties: the cause names both, the fix the variable."""
    flags = pem_flags(clerk_issuer, "--authorized-party", "https://app.example.com")
    code, report, _ = doctor(capsys, *flags, clerk_issuer.mint(now=NOW))
    check = failure(report)
    assert check["code"] == "token-invalid-authorized-parties"
    assert "'http://localhost:3000'" in check["cause"]
    assert "https://app.example.com" in check["cause"]
    assert "CLERK_AUTHORIZED_PARTIES" in check["fix"]


def test_every_failing_group_is_reported(capsys, clerk_issuer):
    """The doctor resumes after a failing claim check: an expired token from a party that is
    not allowed fails two checks; the verdict is the middleware's, the first of them."""
    flags = pem_flags(clerk_issuer, "--authorized-party", "https://app.example.com")
    code, report, _ = doctor(capsys, *flags, clerk_issuer.mint(now=NOW - 192))
    failed = [(c["name"], c["code"]) for c in report["checks"] if c["status"] == "failed"]
    assert failed == [
        ("lifetime (exp, nbf, iat)", "token-expired"),
        ("issuer and parties (iss, azp, aud)", "token-invalid-authorized-parties"),
    ]
    passed = [c["name"] for c in report["checks"] if c["status"] == "passed"]
    assert "session status (sts)" in passed
    assert (code, report["code"]) == (1, "token-expired")


def test_azp_missing(capsys, clerk_issuer):
    """A token without azp under configured parties says the claim is missing."""
    flags = pem_flags(clerk_issuer, "--authorized-party", "http://localhost:3000")
    code, report, _ = doctor(capsys, *flags, clerk_issuer.mint(now=NOW, azp=None))
    assert failure(report)["code"] == "token-invalid-authorized-parties"
    assert "no azp claim" in failure(report)["cause"]


def test_issuer_mismatch(capsys, clerk_issuer):
    """iss different from the configured issuer names both and CLERK_ISSUER."""
    flags = pem_flags(clerk_issuer, "--issuer", "https://clerk.elsewhere.test")
    code, report, _ = doctor(capsys, *flags, clerk_issuer.mint(now=NOW))
    check = failure(report)
    assert check["code"] == "token-invalid-issuer"
    assert clerk_issuer.issuer in check["cause"]
    assert "CLERK_ISSUER" in check["fix"]


def test_audience_mismatch(capsys, clerk_issuer):
    """A required audience the token lacks is explained."""
    flags = pem_flags(clerk_issuer, "--audience", "api.example.com")
    code, report, _ = doctor(capsys, *flags, clerk_issuer.mint(now=NOW))
    check = failure(report)
    assert check["code"] == "token-invalid-audience"
    assert "api.example.com" in check["cause"]


@pytest.mark.parametrize(
    ("mint_kwargs", "step", "words"),
    [
        ({"user_id": "mch_2machine"}, "required claims (sub, sid, exp, iat)", "machine token"),
        ({"headers": {"typ": "at+jwt"}}, "token format and header", "OAuth access token"),
    ],
    ids=["machine-sub", "oauth-typ"],
)
def test_machine_tokens(capsys, clerk_issuer, mint_kwargs, step, words):
    """Machine and OAuth tokens of the same instance are named as not session tokens."""
    code, report, _ = doctor(
        capsys, *pem_flags(clerk_issuer), clerk_issuer.mint(now=NOW, **mint_kwargs)
    )
    check = failure(report)
    assert (check["name"], check["code"]) == (step, "token-type-mismatch")
    assert words in check["cause"]
    assert "session token" in check["fix"]


def test_template_token_without_sid(capsys, clerk_issuer):
    """A token without sid is recognised as a JWT template token, not a session token."""
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), clerk_issuer.mint(now=NOW, sid=None))
    check = failure(report)
    assert (check["name"], check["code"]) == (
        "required claims (sub, sid, exp, iat)",
        "token-invalid",
    )
    assert "JWT template" in check["cause"]
    assert "without a template" in check["fix"]


def test_wrong_algorithm(capsys, clerk_issuer):
    """alg other than RS256 is refused at the header, with the reason."""
    token = clerk_issuer.sign(
        {"sub": "user_1", "sid": "sess_1", "iat": NOW, "exp": NOW + 60}, headers={"alg": "HS256"}
    )
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), token)
    check = failure(report)
    assert check["code"] == "token-invalid-algorithm"
    assert "'HS256'" in check["cause"]


def test_pending_session(capsys, clerk_issuer):
    """A pending session is signed out for Clerk: explained, and answered 401."""
    code, report, _ = doctor(
        capsys, *pem_flags(clerk_issuer), clerk_issuer.mint(now=NOW, status="pending")
    )
    check = failure(report)
    assert code == 1
    assert check["code"] == "session-token-pending"
    assert "pending" in check["cause"]
    assert report["http_status"] == 401


def test_malformed_session_claims(capsys, clerk_issuer):
    """A verified token with a claim shape Clerk never issues fails the last step."""
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), clerk_issuer.mint(now=NOW, act="x"))
    check = failure(report)
    assert (check["name"], check["code"]) == ("session claims", "token-invalid-claims")
    assert "act" in check["cause"]


# The request as the middleware sees it -------------------------------------------------------


def test_non_bearer_scheme_falls_back_to_the_cookie(capsys, clerk_issuer):
    """'Authorization: Token …' is not ours: the report says the cookie is used instead."""
    token = clerk_issuer.mint(now=NOW)
    code, report, _ = doctor(
        capsys,
        *pem_flags(clerk_issuer),
        "--header",
        "Authorization: Token abc",
        "--cookie",
        f"__session={token}",
    )
    assert code == 0
    assert report["input"]["source"] == "cookie"
    assert report["input"]["cookie"] == "__session"
    assert (
        "Authorization header uses scheme 'Token', which is not Bearer: the cookie would be used "
        "instead." in report["input"]["notes"]
    )


def test_non_bearer_scheme_without_cookie_is_missing(capsys, clerk_issuer):
    """A non-Bearer header and no cookie: no token, with the scheme named."""
    code, report, _ = doctor(
        capsys, *pem_flags(clerk_issuer), "--header", "Authorization: Token abc"
    )
    check = failure(report)
    assert code == 1
    assert (check["name"], check["code"]) == ("token found", "session-token-missing")
    assert "scheme 'Token'" in check["detail"]
    assert "Bearer" in check["fix"]


def test_wrong_cookie_name(capsys, clerk_issuer):
    """A session cookie under another name is pointed out."""
    token = clerk_issuer.mint(now=NOW)
    code, report, _ = doctor(
        capsys, *pem_flags(clerk_issuer), "--cookie", f"Cookie: session={token}"
    )
    assert failure(report)["code"] == "session-token-missing"
    assert "'session' looks like a wrong cookie name" in failure(report)["detail"]


def test_header_wins_over_cookie(capsys, clerk_issuer):
    """A Bearer header is used and the cookie ignored, as in the middleware; the report says so."""
    good = clerk_issuer.mint(now=NOW)
    code, report, _ = doctor(
        capsys,
        *pem_flags(clerk_issuer),
        "--header",
        "Authorization: Bearer not.a.token",
        "--cookie",
        f"__session={good}",
    )
    assert code == 1
    assert report["input"]["source"] == "header"
    assert any("cookie is not consulted" in note for note in report["input"]["notes"])


def test_bare_bearer_value_and_other_headers(capsys, clerk_issuer):
    """A header line without a name is the Authorization value; other headers are noted."""
    token = clerk_issuer.mint(now=NOW)
    code, report, _ = doctor(
        capsys, *pem_flags(clerk_issuer), "--header", f"Bearer {token}", "--header", "X-Token: 1"
    )
    assert code == 0
    assert any("'X-Token' is ignored" in note for note in report["input"]["notes"])


@pytest.mark.parametrize(
    ("headers", "code_", "words"),
    [
        (
            ["Authorization: Bearer a", "Authorization: Bearer b"],
            "authorization-header-duplicated",
            "two Authorization",
        ),
        (["Authorization: Bearer a b"], "authorization-header-malformed", "exactly one token"),
        (["Authorization: Bearer " + "a" * 9000], "token-too-long", "8192"),
    ],
    ids=["duplicated", "malformed", "too-long"],
)
def test_header_problems(capsys, clerk_issuer, headers, code_, words):
    """Duplicated, malformed and oversized Authorization headers each get their cause."""
    argv = [arg for header in headers for arg in ("--header", header)]
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), *argv)
    check = failure(report)
    assert (check["name"], check["code"]) == ("token found", code_)
    assert words in check["cause"]


# Keys from a JWKS ----------------------------------------------------------------------------


def jwks_flags(issuer, url, *extra):
    return ["--no-env", "--publishable-key", issuer.publishable_key, "--jwks-url", url, *extra]


def test_jwks_accepted_names_the_key(capsys, clerk_issuer, clerk_jwks_server):
    """With a JWKS, the key check names the kid and the URL it came from."""
    code, report, _ = doctor(
        capsys, *jwks_flags(clerk_issuer, clerk_jwks_server.url), clerk_issuer.mint()
    )
    key_check = report["checks"][2]
    assert code == 0
    assert key_check["name"] == "signing key"
    assert clerk_issuer.kid in key_check["detail"]
    assert clerk_jwks_server.url in key_check["detail"]
    assert clerk_jwks_server.fetches == 1  # the verdict reuses the fetched key set


def test_unknown_kid(capsys, clerk_issuer, clerk_jwks_server):
    """A kid not in the instance's JWKS: the cause names the kid and the other instance."""
    code, report, _ = doctor(capsys, *jwks_flags(clerk_issuer, clerk_jwks_server.url), OTHER.mint())
    check = failure(report)
    assert (check["name"], check["code"]) == ("signing key", "jwk-kid-mismatch")
    assert OTHER.kid in check["cause"]
    assert "another Clerk instance" in check["cause"]


def test_unknown_kid_report_does_not_contradict_itself(capsys, clerk_issuer, clerk_jwks_server):
    """The key check's finding names the token's kid and the kids the key set holds, so it
    never reads as if the kid had been found right before saying no key has it."""
    flags = jwks_flags(clerk_issuer, clerk_jwks_server.url)
    code, report, _ = doctor(capsys, *flags, OTHER.mint())
    detail = failure(report)["detail"]
    assert detail == (
        f"the token's kid {OTHER.kid!r}; the key set at {clerk_jwks_server.url} holds kid "
        f"{clerk_issuer.kid!r}"
    )
    assert main(["doctor", *flags, OTHER.mint()]) == 1
    text = capsys.readouterr().out
    found = next(line for line in text.splitlines() if line.strip().startswith("found:"))
    assert "the token's kid" in found
    assert not re.search(r"found: kid", text)


def test_kid_check_when_keys_cannot_load_says_so(capsys, clerk_issuer):
    """With the key set unreachable, the finding says it could not be loaded."""
    url = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    code, report, _ = doctor(capsys, *jwks_flags(clerk_issuer, url), clerk_issuer.mint())
    assert failure(report)["detail"] == (
        f"the token's kid {clerk_issuer.kid!r}; the key set at {url} could not be loaded"
    )


def test_tampered_token_with_this_instances_kid(capsys, clerk_issuer, clerk_jwks_server):
    """A token whose kid names a key of this instance but whose signature fails was altered
    after signing: the advice is to copy it again unmodified, not to change the keys."""
    token = tamper(clerk_issuer.mint(), org_role="org:admin")
    code, report, _ = doctor(capsys, *jwks_flags(clerk_issuer, clerk_jwks_server.url), token)
    check = failure(report)
    assert code == 1
    assert (check["name"], check["code"]) == ("signature", "token-invalid-signature")
    assert "altered after it was signed" in check["cause"]
    assert "not signed by another instance" in check["cause"]
    assert "Copy the whole token again" in check["fix"]
    assert "Never edit a token" in check["fix"]
    assert "Use the keys of the instance" not in check["fix"]


def test_tampered_issuer_with_this_instances_kid(capsys, clerk_issuer, clerk_jwks_server):
    """An edited iss under this instance's kid is named as a change, not as another instance."""
    token = tamper(clerk_issuer.mint(), iss=OTHER.issuer)
    code, report, _ = doctor(capsys, *jwks_flags(clerk_issuer, clerk_jwks_server.url), token)
    check = failure(report)
    assert check["code"] == "token-invalid-signature"
    assert (
        f"its iss {OTHER.issuer!r} is not this instance's, so it was changed too"
        in (check["cause"])
    )


@pytest.mark.parametrize("mode", ["pem", "jwks"])
def test_signature_cut_short(capsys, clerk_issuer, clerk_jwks_server, mode):
    """A signature shorter than the key's signatures: the token was cut when copied."""
    header, payload, signature = clerk_issuer.mint(now=NOW).split(".")
    token = f"{header}.{payload}.{signature[:-2]}"  # still canonical base64url, 255 bytes
    if mode == "pem":
        flags = pem_flags(clerk_issuer)
    else:
        flags = jwks_flags(clerk_issuer, clerk_jwks_server.url, "--at", str(NOW))
    code, report, _ = doctor(capsys, *flags, token)
    check = failure(report)
    assert check["code"] == "token-invalid-signature"
    assert "255 bytes" in check["cause"]
    assert "256 bytes" in check["cause"]
    assert "cut short" in check["cause"]
    assert check["fix"].startswith("Copy the whole token again")


def test_keys_unreachable(capsys, clerk_issuer):
    """A closed port: keys unavailable, 503, and how to check the network or go networkless."""
    url = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    code, report, _ = doctor(capsys, *jwks_flags(clerk_issuer, url), clerk_issuer.mint())
    check = failure(report)
    assert code == 1
    assert (check["name"], check["code"]) == ("signing key", "jwk-remote-failed-to-load")
    assert url in check["cause"]
    assert "CLERK_JWT_KEY" in check["fix"]
    assert report["http_status"] == 503


@pytest.mark.parametrize(
    ("mode", "code_"), [("garbage", "jwk-remote-invalid"), ("empty", "jwk-remote-missing")]
)
def test_jwks_not_a_key_set(capsys, clerk_issuer, clerk_jwks_server, mode, code_):
    """A URL that answers without usable keys is told apart from an unreachable one."""
    clerk_jwks_server.mode = mode
    code, report, _ = doctor(
        capsys, *jwks_flags(clerk_issuer, clerk_jwks_server.url), clerk_issuer.mint()
    )
    check = failure(report)
    assert check["code"] == code_
    assert "CLERK_JWKS_URL" in check["fix"]


def test_secret_key_refused(clerk_issuer):
    """A secret key the Backend API refuses is named as the cause."""
    transport = httpx.MockTransport(lambda request: httpx.Response(401, json={"errors": []}))
    config = GuardConfig(secret_key="sk_test_wrongkey", clock=lambda: NOW)
    with Guard(config, transport=transport) as guard:
        diagnosis = diagnose(guard, token=clerk_issuer.mint(now=NOW))
    check = diagnosis.failure
    assert check is not None
    assert check.code == "secret-key-invalid"
    assert "secret key" in check.cause
    assert "CLERK_SECRET_KEY" in check.fix


def test_secret_key_mode_accepts(capsys, clerk_issuer, clerk_jwks_server):
    """With a secret key, keys come from the Backend API's /v1/jwks."""
    flags = ["--no-env", "--secret-key", "sk_test_abc", "--api-url", clerk_jwks_server.base_url]
    code, report, _ = doctor(capsys, *flags, clerk_issuer.mint())
    assert code == 0
    assert clerk_jwks_server.last_path == "/v1/jwks"
    assert report["config"]["secret_key"] == "sk_test_…"


# Clerk's own fixtures ------------------------------------------------------------------------


def vector_flags(*extra):
    return [
        "--no-env",
        "--publishable-key",
        VECTORS["publishable_keys"]["pk_test"],
        "--jwt-key",
        VECTORS["pem_public_key"],
        "--at",
        str(VECTORS["valid_at_unix"]),
        *extra,
    ]


def test_vector_token_accepted(capsys):
    """Clerk's fixture token is accepted at valid_at_unix."""
    code, report, _ = doctor(capsys, *vector_flags(), VECTORS["token"])
    assert code == 0
    assert report["session"]["user_id"] == VECTORS["payload"]["sub"]


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS["negative_vectors"] if "token" in v], ids=lambda v: v["name"]
)
def test_vector_negatives_rejected_with_reason(capsys, vector):
    """Each negative fixture is rejected with the reason it documents."""
    code, report, _ = doctor(capsys, *vector_flags(), vector["token"])
    assert code == 1
    assert report["code"] in vector["expected_at_valid_at_unix"]
    assert failure(report)["cause"]


@pytest.mark.parametrize("vector", VECTORS["machine_jwt_vectors"], ids=lambda v: v["name"])
def test_vector_machine_tokens(capsys, vector):
    """Clerk's OAuth access token fixtures are named as not session tokens."""
    code, report, _ = doctor(capsys, *vector_flags(), vector["token"])
    assert report["code"] == "token-type-mismatch"
    assert "OAuth access token" in failure(report)["cause"]


def test_vector_wrong_key(capsys):
    """The fixture token against another instance's PEM key fails its signature."""
    other = next(v for v in VECTORS["negative_vectors"] if "pem_public_key" in v)
    flags = [
        "--no-env",
        "--jwt-key",
        other["pem_public_key"],
        "--at",
        str(VECTORS["valid_at_unix"]),
    ]
    code, report, _ = doctor(capsys, *flags, VECTORS["token"])
    assert report["code"] == "token-invalid-signature"


def test_vectors_with_their_jwks():
    """The fixture token verifies with the fixture JWKS at valid_at_unix, via the JWKS client."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=VECTORS["jwks"]))
    config = GuardConfig(
        publishable_key=VECTORS["publishable_keys"]["pk_test"],
        clock=lambda: VECTORS["valid_at_unix"],
    )
    with Guard(config, transport=transport) as guard:
        assert diagnose(guard, token=VECTORS["token"]).accepted
        expired = VECTORS["negative_vectors"][0]
        assert diagnose(guard, token=expired["token"]).code == "token-expired"


# One code path -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda i: i.mint(now=NOW),
        lambda i: i.mint(now=NOW - 500),
        lambda i: i.mint(now=NOW, nbf=NOW + 60),
        lambda i: i.mint(now=NOW, user_id="mch_1"),
        lambda i: i.mint(now=NOW, status="pending"),
        lambda i: i.mint(now=NOW, sid=None),
        lambda i: i.mint(now=NOW, act=[1]),
        lambda i: OTHER.mint(now=NOW),
        lambda i: tamper(i.mint(now=NOW), sub="user_evil"),
        lambda i: "a.b",
    ],
    ids=[
        "valid",
        "expired",
        "nbf",
        "machine",
        "pending",
        "template",
        "bad-act",
        "other",
        "tampered",
        "garbage",
    ],
)
def test_verdict_matches_guard_verify(clerk_issuer, make):
    """The doctor's verdict and first failing check agree with Guard.verify on the same token."""
    config = clerk_issuer.config(jwt_key=clerk_issuer.public_pem, clock=lambda: NOW)
    token = make(clerk_issuer)
    with Guard(config) as guard:
        diagnosis = diagnose(guard, token=token)
    with Guard(config) as guard:
        try:
            guard.verify(token)
            expected = None
        except ClerkGuardError as exc:
            expected = exc.code
    assert diagnosis.code == expected
    first = diagnosis.failure
    assert (first.code if first else None) == expected


# Times in words ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 s"),
        (4, "4 s"),
        (59.6, "1 min"),
        (192, "3 min 12 s"),
        (3600, "1 h"),
        (7500, "2 h 5 min"),
        (90000, "1 d 1 h"),
        (-192, "3 min 12 s"),
    ],
)
def test_in_words(seconds, words):
    """Durations read as their two largest units."""
    assert in_words(seconds) == words


@pytest.mark.parametrize(
    ("claim", "value", "words"),
    [
        ("exp", NOW - 192, "expired 3 min 12 s ago"),
        ("exp", NOW + 55, "expires in 55 s"),
        ("iat", NOW + 4, "issued in 4 s"),
        ("iat", NOW - 4, "issued 4 s ago"),
        ("nbf", NOW - 10, "became valid 10 s ago"),
        ("nbf", NOW, "becomes valid now"),
    ],
)
def test_relative_time(claim, value, words):
    """Token times read relative to now."""
    assert relative_time(claim, value, NOW) == words


def test_render_text_for_missing_token(clerk_issuer):
    """The text report of a request without a token lists every check as not run."""
    with Guard(clerk_issuer.config(jwt_key=clerk_issuer.public_pem)) as guard:
        diagnosis = diagnose(guard, authorization=[], cookies=[])
    text = render_text(diagnosis)
    assert "FAIL  token found" in text
    assert "not run: no token" in text
    assert text.count("skip") == len(diagnosis.checks) - 1


# Usage and configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["tok", "--header", "Authorization: Bearer x"],
        ["   "],
    ],
    ids=["nothing", "token-and-header", "empty"],
)
def test_usage_errors(capsys, clerk_issuer, argv):
    """Missing or conflicting input is a usage error: exit status 2, message on stderr."""
    code = main(["doctor", *pem_flags(clerk_issuer), *argv])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "clerk-guard doctor:" in err


def test_configuration_error(capsys):
    """No key source at all is a configuration error with exit status 2."""
    code = main(["doctor", "--no-env", "a.b.c"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "configuration error" in err
    assert "CLERK_PUBLISHABLE_KEY" in err
    assert "Could not decode" in out  # the report still shows what it could


def test_without_configuration_the_token_is_still_decoded(capsys, clerk_issuer):
    """No configuration: the header, claims and times are shown, the checks that need one are
    listed as not run, the report says how to give one, and the exit status is 2."""
    token = clerk_issuer.mint(now=NOW)
    code, report, err = doctor(capsys, "--no-env", "--at", str(NOW), token)
    assert code == 2
    assert "configuration error: No key source" in err
    assert report["verdict"] == "unverified"
    assert report["code"] == "configuration-invalid"
    assert report["http_status"] is None
    assert report["session"] is None
    assert report["header"] == {"alg": "RS256", "kid": clerk_issuer.kid, "typ": "JWT"}
    assert report["claims"]["sub"] == "user_2test"
    assert report["times"]["exp"]["relative"] == "expires in 1 min"
    assert report["config"]["field"] == "key_source"
    assert "CLERK_PUBLISHABLE_KEY" in report["config"]["help"]
    assert "--publishable-key" in report["config"]["help"]
    statuses = [(check["name"], check["status"]) for check in report["checks"]]
    assert statuses[:2] == [("token found", "passed"), ("token format and header", "passed")]
    assert [status for _, status in statuses[2:]] == ["skipped"] * 7
    assert all("no configuration" in check["detail"] for check in report["checks"][2:3])


def test_without_configuration_the_text_report(capsys, clerk_issuer):
    """The text report without a configuration: decoded parts, how to configure, no verdict."""
    code = main(["doctor", "--no-env", "--at", str(NOW), clerk_issuer.mint(now=NOW)])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Header (decoded, not trusted):" in out
    assert "Claims (decoded, not trusted):" in out
    assert "expires in 1 min" in out
    assert "Configuration: none that works" in out
    assert "how:   Give the doctor the configuration your app uses" in out
    assert "skip  signing key" in out
    assert "Verdict: NOT VERIFIED [configuration-invalid]" in out
    assert "ACCEPTED" not in out and "REJECTED" not in out
    assert clerk_issuer.mint(now=NOW) not in out + err


def test_without_configuration_a_malformed_token_fails_its_format(capsys, clerk_issuer):
    """Without a configuration the form and header are still checked: they need none."""
    token = clerk_issuer.mint(now=NOW, headers={"alg": "HS256"})
    code, report, _ = doctor(capsys, "--no-env", token)
    assert code == 2
    check = failure(report)
    assert (check["name"], check["code"]) == ("token format and header", "token-invalid-algorithm")
    assert report["verdict"] == "unverified"


def test_an_invalid_setting_still_decodes(capsys, clerk_issuer):
    """Any configuration error, not only a missing key source, still gets the decoded report."""
    code, report, err = doctor(
        capsys, "--no-env", "--publishable-key", "pk_test_nonsense", clerk_issuer.mint()
    )
    assert code == 2
    assert report["verdict"] == "unverified"
    assert report["config"]["field"] == "publishable_key"
    assert "(publishable_key)" in report["config"]["help"]
    assert report["claims"]["sub"] == "user_2test"
    assert "configuration error" in err


def test_configuration_from_environment(capsys, clerk_issuer, monkeypatch):
    """Without flags the doctor reads CLERK_* like GuardConfig.from_env(); --no-env ignores it."""
    monkeypatch.setenv("CLERK_PUBLISHABLE_KEY", clerk_issuer.publishable_key)
    monkeypatch.setenv("CLERK_JWT_KEY", clerk_issuer.public_pem.replace("\n", "\\n"))
    code, report, _ = doctor(capsys, clerk_issuer.mint())
    assert code == 0
    assert report["config"]["issuer"] == clerk_issuer.issuer
    assert main(["doctor", "--no-env", clerk_issuer.mint()]) == 2
    capsys.readouterr()


def test_at_accepts_iso_time(capsys, clerk_issuer):
    """--at takes ISO 8601 as well as Unix seconds."""
    flags = pem_flags(clerk_issuer)
    flags[flags.index("--at") + 1] = "2023-11-14T22:13:20Z"  # NOW
    code, report, _ = doctor(capsys, *flags, clerk_issuer.mint(now=NOW))
    assert code == 0
    assert report["times"]["now"]["value"] == NOW


def test_suffixed_cookie_is_named(capsys, clerk_issuer):
    """With a publishable key, the instance's suffixed cookie is found and named in the report."""
    with Guard(clerk_issuer.config(jwt_key=clerk_issuer.public_pem)) as guard:
        name = guard.config.session_cookie_names[0]
    assert name.startswith("__session_")
    token = clerk_issuer.mint(now=NOW)
    code, report, _ = doctor(
        capsys,
        *pem_flags(clerk_issuer),
        "--header",
        f"Cookie: {name}={token}; __client_uat_{name[10:]}={NOW}",
    )
    assert code == 0
    assert report["input"] == {"kind": "request", "source": "cookie", "cookie": name, "notes": []}


def test_token_pasted_with_bearer_prefix(capsys, clerk_issuer):
    """A TOKEN pasted with its 'Bearer ' prefix is still diagnosed, with a note."""
    code, report, _ = doctor(
        capsys, *pem_flags(clerk_issuer), "Bearer " + clerk_issuer.mint(now=NOW)
    )
    assert code == 0
    assert any("after 'Bearer '" in note for note in report["input"]["notes"])


def test_token_with_a_line_break(capsys, clerk_issuer):
    """A token broken by a line break when copied is rejected, and the whitespace is pointed out."""
    token = clerk_issuer.mint(now=NOW)
    code, report, _ = doctor(capsys, *pem_flags(clerk_issuer), token[:50] + "\n" + token[50:])
    assert code == 1
    assert any("whitespace" in note for note in report["input"]["notes"])


def _without_proxy_or_ca_variables(monkeypatch):
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            monkeypatch.delenv(name)


def test_tls_failure_is_named(capsys, clerk_issuer, monkeypatch, tmp_path):
    """A JWKS endpoint whose certificate this process does not trust: the doctor says the
    certificate failed verification and points at SSL_CERT_FILE/SSL_CERT_DIR or ssl_context."""
    _without_proxy_or_ca_variables(monkeypatch)
    tls = make_tls_files(tmp_path)
    with FlakyJWKSServer(clerk_issuer, tls=tls.server_context()) as server:
        code, report, _ = doctor(capsys, *jwks_flags(clerk_issuer, server.url), clerk_issuer.mint())
    check = failure(report)
    assert code == 1
    assert (check["name"], check["code"]) == ("signing key", "jwk-remote-tls-failed")
    assert "certificate verify failed" in check["cause"]
    assert server.url in check["cause"]
    for needle in ("SSL_CERT_FILE", "SSL_CERT_DIR", "ssl_context"):
        assert needle in check["fix"]
    assert report["http_status"] == 503


def test_proxy_failure_is_named(capsys, clerk_issuer, monkeypatch):
    """A proxy from the environment that cannot be reached: the doctor names the proxy and
    points at HTTPS_PROXY and NO_PROXY."""
    _without_proxy_or_ca_variables(monkeypatch)
    proxy = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    url = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    code, report, _ = doctor(capsys, *jwks_flags(clerk_issuer, url), clerk_issuer.mint())
    check = failure(report)
    assert code == 1
    assert (check["name"], check["code"]) == ("signing key", "jwk-remote-proxy-failed")
    assert "proxy" in check["cause"] and proxy in check["cause"]
    assert "HTTPS_PROXY" in check["fix"] and "NO_PROXY" in check["fix"]
    assert report["http_status"] == 503


def test_new_kid_during_an_outage_is_a_503(clerk_issuer):
    """A kid the cached key set lacks while the endpoint fails is reported as keys that cannot
    be refreshed (503, retry), not as a kid of another instance (401)."""
    transport = clerk_issuer.transport()
    now = [NOW]
    with Guard(clerk_issuer.config(clock=lambda: now[0]), transport=transport) as guard:
        guard.verify(clerk_issuer.mint(now=NOW))
        transport.status_code = 500
        clerk_issuer.rotate()
        now[0] += 31
        diagnosis = diagnose(guard, token=clerk_issuer.mint(now=now[0]))
    check = diagnosis.failure
    assert check is not None
    assert (check.name, check.code) == ("signing key", "jwk-remote-failed-to-load")
    assert "cannot be refreshed" in check.cause
    assert diagnosis.http_status == 503
    assert transport.fetches == 2  # the verdict reused the back-off: no second failing fetch
