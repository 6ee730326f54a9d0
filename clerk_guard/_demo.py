"""``clerk-guard demo``: a FastAPI app protected by clerk-guard, against a local issuer.

No Clerk account and no network: a :class:`~clerk_guard.testing.LocalIssuer` signs the tokens,
the app verifies them with its public key, and serves that key set at
``/.well-known/jwks.json`` too (for ``clerk-guard doctor --jwks-url`` and ``jwks``).

Routes: those of the examples (contract §8: ``/public``, ``/me``, ``/admin``) plus a page at ``/``
and its helpers under ``/demo/``. FastAPI and uvicorn are imported only when the demo runs:
they are extras.

.. warning::
    The demo mints a token for anyone who asks and puts rejection reasons in 401 bodies
    (``debug=True``). It listens on loopback only; never deploy it.
"""

from __future__ import annotations

import base64
import dataclasses
import errno
import json
import os
import secrets
import shlex
import socket
import sys
import time
from importlib import resources
from typing import TYPE_CHECKING, Any, TextIO

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._b64 import peek_json
from ._claims import SessionAuth
from ._config import GuardConfig
from ._doctor import diagnose, in_words, split_cookie_lines, split_header_lines
from ._guard import Guard
from .fastapi import ClerkAuth, install_error_handler

if TYPE_CHECKING:
    from .testing import LocalIssuer

__all__ = [
    "Demo",
    "RequestLog",
    "create_app",
    "listen",
    "listen_error",
    "request_line",
    "serve",
    "terminal_commands",
]

#: Lifetime of the demo's tokens: Clerk's live 60 s and are refreshed by its frontend; the demo
#: has no frontend SDK, so its tokens last long enough to paste into a terminal.
LIFETIME = 3600
USER_ID = "user_2demoTestUser"
ORG_ID = "org_2demoOrganization"
ROLES = {
    "member": ("org:member", ["org:sys_memberships:read"]),
    "admin": ("org:admin", ["org:sys_memberships:read", "org:sys_memberships:manage"]),
}
_MAX_DOCTOR_BODY = 64 * 1024
#: Enough of a refusal's body to read its reason (contract §5 bodies are about 150 bytes).
_MAX_LOGGED_BODY = 4096


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclasses.dataclass
class Demo:
    """One demo instance: its issuer, where it listens, and the configuration it verifies with.

    The app and the doctor use the same configuration: the issuer's publishable key (issuer and
    cookie name), its PEM public key (no network), the page's origins as authorized parties,
    and ``debug=True`` so 401 bodies say why.
    """

    issuer: LocalIssuer
    host: str = "127.0.0.1"
    port: int = 8000
    config: GuardConfig = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.config = GuardConfig(
            publishable_key=self.issuer.publishable_key,
            jwt_key=self.issuer.public_pem,
            authorized_parties=self.origins,
            debug=True,
        )

    @property
    def origin(self) -> str:
        """The base URL of the demo, also the ``azp`` of its tokens."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def origins(self) -> tuple[str, ...]:
        """The origins a browser may use for the page: the configured host and its aliases."""
        hosts = [self.host] + [h for h in ("127.0.0.1", "localhost") if h != self.host]
        return tuple(f"http://{_url_host(host)}:{self.port}" for host in hosts)

    @property
    def jwks_url(self) -> str:
        """Where the demo serves its issuer's key set."""
        return f"{self.origin}/.well-known/jwks.json"

    def mint(
        self,
        role: str = "member",
        *,
        session_id: str | None = None,
        azp: str | None = None,
        now: float | None = None,
    ) -> str:
        """A session token for the demo user, in the demo organization with ``role``."""
        org_role, permissions = ROLES[role]
        return self.issuer.mint(
            user_id=USER_ID,
            session_id=session_id or "sess_2demo" + secrets.token_hex(8),
            org_id=ORG_ID,
            org_role=org_role,
            org_slug="demo",
            org_permissions=permissions,
            azp=azp or self.origin,
            lifetime=LIFETIME,
            now=now,
        )

    def doctor_flags(self) -> list[str]:
        """``clerk-guard doctor`` flags giving the demo's configuration, keys from its JWKS."""
        flags = ["--no-env", "--publishable-key", self.issuer.publishable_key]
        flags += ["--jwks-url", self.jwks_url]
        for origin in self.origins:
            flags += ["--authorized-party", origin]
        return flags


def tamper(token: str, **changes: Any) -> str:
    """The token with claims changed and the original signature kept: it must fail."""
    header, payload, signature = token.split(".")
    claims = peek_json(payload)
    claims.update(changes)
    raw = json.dumps(claims, separators=(",", ":")).encode()
    forged = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return f"{header}.{forged}.{signature}"


def terminal_commands(demo: Demo) -> list[tuple[str, int, list[list[str]]]]:
    """What to paste: ``(title, expected status, [curl argv, doctor argv...])`` per example."""
    member = demo.mint("member")
    expired = demo.mint("member", now=time.time() - LIFETIME - 600)
    tampered = tamper(member, org_role="org:admin")
    me, admin = f"{demo.origin}/me", f"{demo.origin}/admin"
    doctor = ["clerk-guard", "doctor", *demo.doctor_flags()]
    bearer = f"Authorization: Bearer {member}"
    return [
        (
            "A valid token in the Authorization header",
            200,
            [["curl", "-i", me, "-H", bearer], [*doctor, "--header", bearer]],
        ),
        (
            "The same session as the __session cookie",
            200,
            [
                ["curl", "-i", me, "--cookie", f"__session={member}"],
                [*doctor, "--cookie", f"__session={member}"],
            ],
        ),
        (
            "Signed in, but /admin needs the org:admin role",
            403,
            [["curl", "-i", admin, "-H", bearer]],
        ),
        ("No token at all", 401, [["curl", "-i", me]]),
        (
            "An expired token",
            401,
            [["curl", "-i", me, "-H", f"Authorization: Bearer {expired}"], [*doctor, expired]],
        ),
        (
            "A tampered token: the payload now says org:admin, the signature disagrees",
            401,
            [
                ["curl", "-i", admin, "-H", f"Authorization: Bearer {tampered}"],
                [*doctor, tampered],
            ],
        ),
    ]


def banner(demo: Demo) -> str:
    """The text printed at start: where the demo is and ready-to-paste commands."""
    lines = [
        f"clerk-guard demo: {demo.origin}/  (Ctrl+C to stop)",
        "",
        "A local issuer stands in for Clerk: no Clerk account, no network.",
        f"Issuer {demo.issuer.issuer}, publishable key {demo.issuer.publishable_key}.",
        f"Debug reasons are ON: 401 bodies include a 'reason' (local use only). Tokens below "
        f"last {in_words(LIFETIME)}.",
        "",
        "Each request is listed below as it is answered: method, path, status and, for a "
        "refusal, its reason code.",
        "",
        f"Open {demo.origin}/ in a browser, or paste these into a terminal:",
    ]
    for title, status, commands in terminal_commands(demo):
        lines += ["", f"# {title} (expect {status})"]
        lines += [shlex.join(argv) for argv in commands]
    return "\n".join(lines) + "\n"


def _page() -> str:
    return (resources.files("clerk_guard") / "demo_static" / "index.html").read_text("utf-8")


def create_app(demo: Demo) -> FastAPI:
    """The demo's FastAPI app: the examples' routes, the page and its helpers."""
    clerk = ClerkAuth(config=demo.config)
    clerk_admin = clerk.require(role="org:admin")
    doctor_guard = Guard(demo.config)  # sync twin of the app's guard, for the doctor endpoint
    page = _page()

    app = FastAPI(title="clerk-guard demo", docs_url="/docs", redoc_url=None)
    install_error_handler(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/public")
    async def public() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/me")
    async def me(auth: SessionAuth = Depends(clerk)) -> dict[str, Any]:
        return auth.summary()

    @app.get("/admin")
    async def admin(auth: SessionAuth = Depends(clerk_admin)) -> dict[str, Any]:
        return auth.summary()

    @app.get("/.well-known/jwks.json", include_in_schema=False)
    async def jwks() -> dict[str, Any]:
        return demo.issuer.jwks()

    @app.get("/demo/info", include_in_schema=False)
    async def info() -> dict[str, Any]:
        return {
            "origin": demo.origin,
            "issuer": demo.issuer.issuer,
            "publishable_key": demo.issuer.publishable_key,
            "jwks_url": demo.jwks_url,
            "authorized_parties": list(demo.config.authorized_parties),
            "debug": demo.config.debug,
            "lifetime": LIFETIME,
            "doctor_command": shlex.join(["clerk-guard", "doctor", *demo.doctor_flags()]),
        }

    @app.post("/demo/sign-in", include_in_schema=False)
    async def sign_in(request: Request) -> JSONResponse:
        role = request.query_params.get("role", "member")
        if role not in ROLES:
            return JSONResponse({"error": f"role must be one of {sorted(ROLES)}"}, 400)
        origin = request.headers.get("origin")
        azp = origin if origin in demo.origins else demo.origin
        token = demo.mint(role, azp=azp)
        response = JSONResponse({"signed_in": True, "user_id": USER_ID, "role": ROLES[role][0]})
        response.set_cookie(
            "__session", token, max_age=LIFETIME, httponly=True, samesite="lax", path="/"
        )
        return response

    @app.post("/demo/sign-out", include_in_schema=False)
    async def sign_out() -> JSONResponse:
        response = JSONResponse({"signed_in": False})
        response.delete_cookie("__session", path="/")
        return response

    @app.get("/demo/token", include_in_schema=False)
    async def token(request: Request, auth: SessionAuth = Depends(clerk)) -> dict[str, str]:
        # Like Clerk's getToken(): a fresh token for the signed-in session.
        role = "admin" if auth.org_role == "org:admin" else "member"
        origin = request.headers.get("origin")
        azp = origin if origin in demo.origins else auth.authorized_party
        return {"token": demo.mint(role, session_id=auth.session_id, azp=azp)}

    @app.post("/demo/doctor", include_in_schema=False)
    async def doctor(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > _MAX_DOCTOR_BODY:
            return JSONResponse({"error": "request body too large"}, 413)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return JSONResponse({"error": "send a JSON object"}, 400)
        fields = ("token", "authorization", "cookie")
        if not isinstance(data, dict) or not all(
            isinstance(data.get(name, ""), str) for name in fields
        ):
            return JSONResponse({"error": "token, authorization and cookie are strings"}, 400)
        token = data.get("token", "").strip()
        authorization, cookies = data.get("authorization", ""), data.get("cookie", "")
        if not (token or authorization or cookies):
            return JSONResponse({"error": "give a token, or authorization and/or cookie"}, 400)
        headers = [f"Authorization: {authorization}"] if authorization else []
        auth_lines, _, notes = split_header_lines(headers)
        cookie_lines = split_cookie_lines([cookies]) if cookies else []
        diagnosis = await anyio.to_thread.run_sync(
            lambda: diagnose(
                doctor_guard,
                token=token or None,
                authorization=auth_lines,
                cookies=cookie_lines,
                notes=notes,
            )
        )
        return JSONResponse(diagnosis.to_json())

    return app


class RequestLog:
    """ASGI middleware printing one line per HTTP request as its answer completes: method,
    path, status and, for a refusal, its reason code (``GET /me 401 token-expired``).

    The reason is read from the answer's JSON ``reason``, which the demo's ``debug=True`` puts
    in every refusal.
    """

    def __init__(self, app: ASGIApp, out: TextIO) -> None:
        self.app = app
        self.out = out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None
        body = bytearray()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif (
                message["type"] == "http.response.body"
                and status is not None
                and status >= 400
                and len(body) < _MAX_LOGGED_BODY
            ):
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.out.write(request_line(scope, status, bytes(body)) + "\n")
            self.out.flush()


def request_line(scope: Scope, status: int | None, body: bytes = b"") -> str:
    """``METHOD /path STATUS [reason]``; the path with anything unprintable escaped."""
    path = ascii(scope.get("path") or "/")[1:-1]  # one line, whatever the request holds
    line = f"{scope.get('method', '-')} {path} {status if status is not None else '-'}"
    if status is not None and status >= 400:
        try:
            reason = json.loads(body).get("reason")
        except (ValueError, AttributeError):  # not JSON, or not an object
            reason = None
        if isinstance(reason, str):
            line += f" {ascii(reason)[1:-1]}"
    return line


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, for uvicorn to serve on.

    Bound before the banner is printed, so that a port in use is reported as such (and not
    taken by another process between a check and uvicorn's own bind).

    :raises OSError: the address cannot be bound (``errno.EADDRINUSE``: the port is in use).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name != "nt":
            # As uvicorn binds: a port a previous run left in TIME_WAIT can be used again at
            # once. (On Windows the option would let two servers share a port.)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_error(host: str, port: int, exc: OSError) -> str:
    """What to tell the user when the demo cannot listen on ``host:port``."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"clerk-guard demo: port {port} is in use on {host} (another demo or server?); "
            f"try --port {port + 1}."
        )
    return (
        f"clerk-guard demo: cannot listen on {host}:{port}: {exc.strerror or exc}; "
        f"try another --port (e.g. --port {8000 if port != 8000 else 8001})."
    )


def serve(*, issuer: LocalIssuer, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Print the banner and run the demo under uvicorn until interrupted.

    Each request is printed to stdout as it completes (see :class:`RequestLog`). When the
    address cannot be bound, says so on stderr and returns 2.
    """
    import uvicorn

    try:
        sock = listen(host, port)
    except OSError as exc:
        sys.stderr.write(listen_error(host, port, exc) + "\n")
        sys.stderr.flush()
        return 2
    with sock:
        demo = Demo(issuer, host=host, port=port)
        app = RequestLog(create_app(demo), sys.stdout)
        sys.stdout.write(banner(demo))
        sys.stdout.flush()
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        server.run(sockets=[sock])
    return 0 if server.started else 1
