"""``clerk-guard demo``: the app in-process, then the real command and its printed commands."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402

from clerk_guard._cli import main  # noqa: E402
from clerk_guard._demo import (  # noqa: E402
    LIFETIME,
    ORG_ID,
    USER_ID,
    Demo,
    RequestLog,
    banner,
    create_app,
    request_line,
    tamper,
    terminal_commands,
)
from tests._servers import ROOT, free_port  # noqa: E402

pytestmark = pytest.mark.anyio

ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def demo(clerk_issuer):
    return Demo(clerk_issuer, port=8000)


@pytest.fixture
async def client(demo):
    transport = httpx.ASGITransport(app=create_app(demo))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        yield client


# The app, in-process -------------------------------------------------------------------------


async def test_page_is_served(client):
    """/ serves the demo page, which says debug reasons are on."""
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "clerk-guard demo" in response.text
    assert "Debug reasons are on" in response.text
    assert 'id="doctor-token"' in response.text


async def test_examples_routes_without_a_session(client):
    """/public needs nothing; /me without a token is the 401 of contract §5, reason included."""
    assert (await client.get("/public")).json() == {"ok": True}
    response = await client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["reason"] == "session-token-missing"


async def test_sign_in_sets_the_session_cookie(client, demo):
    """POST /demo/sign-in sets an HttpOnly __session cookie that /me accepts."""
    response = await client.post("/demo/sign-in", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith("__session=")
    assert "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie
    assert f"Max-Age={LIFETIME}" in set_cookie
    me = await client.get("/me")
    assert me.status_code == 200
    assert me.json() == {
        "user_id": USER_ID,
        "session_id": me.json()["session_id"],
        "org_id": ORG_ID,
        "org_role": "org:member",
        "org_permissions": ["org:sys_memberships:read"],
    }


async def test_admin_needs_the_admin_role(client):
    """/admin is 403 for a member and 200 for an org admin."""
    await client.post("/demo/sign-in")
    assert (await client.get("/admin")).status_code == 403
    await client.post("/demo/sign-in", params={"role": "admin"})
    response = await client.get("/admin")
    assert response.status_code == 200
    assert response.json()["org_role"] == "org:admin"


async def test_sign_in_rejects_unknown_role(client):
    """An unknown role is a 400, not a session."""
    response = await client.post("/demo/sign-in", params={"role": "owner"})
    assert response.status_code == 400
    assert "set-cookie" not in response.headers


async def test_token_endpoint_gives_a_bearer_token(client):
    """/demo/token needs a session and returns a token that works alone as a Bearer header."""
    assert (await client.get("/demo/token")).status_code == 401
    await client.post("/demo/sign-in", headers={"Origin": "http://localhost:8000"})
    token = (await client.get("/demo/token")).json()["token"]
    client.cookies.clear()
    me = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["user_id"] == USER_ID


async def test_sign_out_clears_the_cookie(client):
    """POST /demo/sign-out removes the cookie; /me is 401 again."""
    await client.post("/demo/sign-in")
    assert (await client.get("/me")).status_code == 200
    await client.post("/demo/sign-out")
    assert (await client.get("/me")).status_code == 401


async def test_jwks_and_info(client, demo, clerk_issuer):
    """The demo publishes its issuer's JWKS, and /demo/info gives the doctor command."""
    assert (await client.get("/.well-known/jwks.json")).json() == clerk_issuer.jwks()
    info = (await client.get("/demo/info")).json()
    assert info["issuer"] == clerk_issuer.issuer
    assert info["debug"] is True
    assert info["jwks_url"] == f"{ORIGIN}/.well-known/jwks.json"
    assert info["doctor_command"].startswith("clerk-guard doctor --no-env")


async def test_doctor_endpoint_accepts_a_valid_token(client, demo):
    """POST /demo/doctor returns the doctor's JSON report."""
    response = await client.post("/demo/doctor", json={"token": demo.mint()})
    report = response.json()
    assert response.status_code == 200
    assert report["verdict"] == "accepted"
    assert report["session"]["user_id"] == USER_ID
    assert [check["status"] for check in report["checks"]] == ["passed"] * len(report["checks"])


async def test_doctor_endpoint_explains_a_tampered_token(client, demo):
    """A tampered token is rejected by the doctor endpoint with the signature as the cause."""
    token = tamper(demo.mint(), org_role="org:admin")
    report = (await client.post("/demo/doctor", json={"token": token})).json()
    assert report["verdict"] == "rejected"
    assert report["code"] == "token-invalid-signature"
    failed = [check for check in report["checks"] if check["status"] == "failed"]
    assert "tampered" in failed[0]["cause"]


async def test_doctor_endpoint_reads_a_raw_request(client, demo):
    """The doctor endpoint takes a raw Authorization value and Cookie header too."""
    payload = {"authorization": "Token abc", "cookie": f"__session={demo.mint()}"}
    report = (await client.post("/demo/doctor", json=payload)).json()
    assert report["verdict"] == "accepted"
    assert report["input"]["source"] == "cookie"
    assert any("scheme 'Token'" in note for note in report["input"]["notes"])


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"not json", 400),
        (b"[]", 400),
        (b'{"token": 5}', 400),
        (b"{}", 400),
        (json.dumps({"token": "x" * 70000}).encode(), 413),
    ],
    ids=["not-json", "not-object", "not-string", "empty", "too-large"],
)
async def test_doctor_endpoint_bad_input(client, content, status):
    """Bad doctor requests get a 4xx with a JSON error, never a 500."""
    response = await client.post(
        "/demo/doctor", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert "error" in response.json()


async def test_terminal_commands_against_the_app(client, demo):
    """Each printed curl command gets its announced status from the app."""
    for title, status, commands in terminal_commands(demo):
        response = await client.send(curl_request(client, commands[0]))
        client.cookies.clear()
        assert response.status_code == status, title


def test_banner_lists_the_commands(demo):
    """The banner has the page URL, the debug warning, and curl plus doctor commands."""
    text = banner(demo)
    assert f"{ORIGIN}/" in text
    assert "Debug reasons are ON" in text
    assert text.count("\ncurl -i ") == 6
    assert text.count("\nclerk-guard doctor ") == 4


async def test_each_request_is_printed_with_its_status_and_reason(demo):
    """The request log prints one line per request: method, path, status, and a refusal's
    reason code."""
    out = io.StringIO()
    transport = httpx.ASGITransport(app=RequestLog(create_app(demo), out))
    member = demo.mint("member")
    expired = demo.mint("member", now=time.time() - LIFETIME - 600)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        await client.get("/public")
        await client.get("/me")
        await client.get("/me", headers={"Authorization": f"Bearer {member}"})
        await client.get("/me", headers={"Authorization": f"Bearer {expired}"})
        await client.get("/admin", headers={"Authorization": f"Bearer {member}"})
        tampered = tamper(member, org_role="org:admin")
        await client.get("/admin", headers={"Authorization": f"Bearer {tampered}"})
    assert out.getvalue().splitlines() == [
        "GET /public 200",
        "GET /me 401 session-token-missing",
        "GET /me 200",
        "GET /me 401 token-expired",
        "GET /admin 403 permission-denied",
        "GET /admin 401 token-invalid-signature",
    ]
    assert member not in out.getvalue()


def test_request_line_escapes_and_tolerates_any_body():
    """A path cannot break the line; a refusal without a JSON reason prints no reason."""
    scope = {"method": "GET", "path": "/a\nGET /forged 200"}
    assert request_line(scope, 404) == "GET /a\\nGET /forged 200 404"
    assert request_line({"method": "POST", "path": "/x"}, 500, b"Internal Server Error") == (
        "POST /x 500"
    )
    assert request_line({"method": "GET", "path": "/x"}, 400, b"[1]") == "GET /x 400"
    assert request_line({"method": "GET", "path": "/x"}, None) == "GET /x -"


def test_demo_on_a_port_in_use_says_so_on_stderr(capsys):
    """A port in use: nothing on stdout, the error and a --port hint on stderr, exit 2."""
    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"port {port} is in use" in err
    assert f"--port {port + 1}" in err


def test_tamper_keeps_the_signature(demo):
    """tamper() changes claims and keeps header and signature."""
    token = demo.mint()
    forged = tamper(token, sub="user_evil")
    assert forged.split(".")[0] == token.split(".")[0]
    assert forged.split(".")[2] == token.split(".")[2]
    assert forged.split(".")[1] != token.split(".")[1]


# The real command ----------------------------------------------------------------------------


def curl_request(client, argv):
    """Build the request a printed ``curl`` command would send (no curl needed)."""
    assert argv[:2] == ["curl", "-i"]
    url, headers, rest = argv[2], {}, argv[3:]
    for flag, value in zip(rest[::2], rest[1::2], strict=True):
        if flag == "-H":
            name, _, header_value = value.partition(":")
            headers[name.strip()] = header_value.strip()
        elif flag == "--cookie":
            headers["Cookie"] = value
        else:  # pragma: no cover - the demo prints no other flag
            raise AssertionError(f"unexpected curl flag {flag}")
    return client.build_request("GET", url, headers=headers)


def parse_banner(text):
    """Blocks of the banner: ``[(expected status, curl argv, [doctor argv...])]``."""
    blocks = []
    for chunk in text.split("\n# ")[1:]:
        lines = [line for line in chunk.splitlines() if line.strip()]
        status = int(lines[0].rsplit("(expect ", 1)[1].rstrip(")"))
        commands = [shlex.split(line) for line in lines[1:]]
        curl = next(c for c in commands if c[0] == "curl")
        doctors = [c for c in commands if c[:2] == ["clerk-guard", "doctor"]]
        blocks.append((status, curl, doctors))
    return blocks


@contextlib.contextmanager
def demo_command(port, tmp_path):
    """Run ``python -m clerk_guard demo --port PORT``; yield its printed banner; stop it."""
    output, errors = tmp_path / "demo.out", tmp_path / "demo.err"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDEVMODE", None)
    with output.open("wb") as sink, errors.open("wb") as error_sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "clerk_guard", "demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=error_sink,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"demo exited with {proc.returncode}:\n{output.read_text()}\n"
                    f"{errors.read_text()}"
                )
            try:
                httpx.get(f"http://127.0.0.1:{port}/public", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("demo did not start in time") from None
                time.sleep(0.1)
        yield output.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.integration
def test_demo_command_prints_working_commands(tmp_path, capsys):
    """`python -m clerk_guard demo` serves the app; its printed curl and doctor commands work."""
    pytest.importorskip("uvicorn")
    port = free_port()
    with demo_command(port, tmp_path) as text:
        assert f"http://127.0.0.1:{port}/" in text
        blocks = parse_banner(text)
        assert len(blocks) == 6
        with httpx.Client(timeout=10.0) as http:
            for status, curl, doctors in blocks:
                response = http.send(curl_request(http, curl))
                assert response.status_code == status, curl[2]
                for doctor in doctors:
                    code = main([*doctor[1:], "--json"])
                    report = json.loads(capsys.readouterr().out)
                    assert code == (0 if status == 200 else 1)
                    assert report["config"]["jwks_url"].startswith(f"http://127.0.0.1:{port}/")
                    if status == 401:
                        assert report["code"] in ("token-expired", "token-invalid-signature")
        # A second demo on the same port says so instead of crashing.
        assert main(["demo", "--port", str(port)]) == 2
        assert "in use" in capsys.readouterr().err
        # Each request was printed on stdout as it was answered, refusals with their reason.
        deadline = time.monotonic() + 10
        wanted = (
            "GET /public 200",
            "GET /me 200",
            "GET /me 401 token-expired",
            "GET /admin 401 token-invalid-signature",
        )
        while not all(line in (tmp_path / "demo.out").read_text() for line in wanted):
            assert time.monotonic() < deadline, (tmp_path / "demo.out").read_text()[-2000:]
            time.sleep(0.05)
