"""Real servers on 127.0.0.1 for integration tests, bounded in time: server processes, and
loopback key endpoints, TLS files and forward proxies."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import http.client
import http.server
import ipaddress
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(
    args: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/public",
    startup_timeout: float = 30.0,
    cwd: Path = ROOT,
    output: Path | None = None,
) -> Iterator[str]:
    """Start ``python -m <args>`` listening on ``port``; yield its base URL; stop it.

    Waits until ``ready_path`` answers (any status), at most ``startup_timeout`` seconds.
    With ``output``, the server's stdout and stderr go to that file, to read while it runs.
    """
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    full_env.pop("PYTHONDEVMODE", None)  # server noise, not ours to judge here
    sink = output.open("wb") if output is not None else None
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=full_env,
        stdout=sink if sink is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if sink is not None:
        sink.close()  # the child holds its own copy
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                if output is not None:
                    text = output.read_text(errors="replace")
                else:
                    text = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                raise RuntimeError(f"server exited with {proc.returncode}:\n{text[-4000:]}")
            try:
                httpx.get(base + ready_path, timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start in time") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


# Loopback key endpoints, TLS and proxies (tests/test_jwks_network.py) -------------------------

_IO_TIMEOUT = 5.0  # every socket of the helpers below: nothing waits forever


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """A private CA and a server certificate it signed, for 127.0.0.1 and localhost (PEM files)."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """The server side: presents the certificate signed by the private CA."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting the private CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca))


def make_tls_files(directory: Path) -> TLSFiles:
    """Generate a CA and a server certificate for 127.0.0.1/localhost signed by it, valid a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clerk-guard test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(
        ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "key.pem"
    )
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a refused TLS handshake or a client gone: expected here, nothing to report


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    server: _FlakyServer
    protocol_version = "HTTP/1.1"
    timeout = _IO_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()  # here, not in the accepting thread

    def do_GET(self) -> None:
        owner = self.server.owner
        owner._record(self.path)
        if owner.mode == "ok":
            status, body = 200, json.dumps(owner.issuer.jwks()).encode()
        else:
            status, body = 500, b'{"errors":[{"code":"internal_error"}]}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


class _FlakyServer(_QuietServer):
    def __init__(self, owner: FlakyJWKSServer, port: int) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", port), _FlakyHandler)
        if owner.tls is not None:
            self.socket = owner.tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )


class FlakyJWKSServer:
    """A JWKS server on 127.0.0.1 that fails and recovers on demand, on a port that stays.

    :attr:`mode` is ``"ok"`` (200 with the issuer's live key set), ``"error"`` (500) or
    ``"down"`` (nothing listens: connection refused). With ``tls`` it serves https.
    """

    def __init__(self, issuer: Any, *, tls: ssl.SSLContext | None = None) -> None:
        self.issuer = issuer
        self.tls = tls
        self.port = free_port()
        self.paths: list[str] = []
        self._mode = "ok"
        self._lock = threading.Lock()
        self._server: _FlakyServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/.well-known/jwks.json"

    @property
    def fetches(self) -> int:
        """Requests answered (a refused connection or a failed handshake is none)."""
        with self._lock:
            return len(self.paths)

    def _record(self, path: str) -> None:
        with self._lock:
            self.paths.append(path)

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in ("ok", "error", "down"):
            raise ValueError(f"mode must be ok, error or down; got {value!r}")
        self._mode = value
        if value == "down":
            self._close()
        elif self._server is None:
            self._listen()

    def _listen(self) -> None:
        self._server = _FlakyServer(self, self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(_IO_TIMEOUT)
            self._thread = None

    def __enter__(self) -> FlakyJWKSServer:
        self._listen()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close()


_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer"}
    | {"transfer-encoding", "upgrade", "content-length"}
)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"
    timeout = _IO_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _refuse(self) -> bool:
        owner = self.server.owner
        owner._record(self.command, self.path)
        if owner.refuse:
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
        return owner.refuse

    def do_GET(self) -> None:
        """Forward an absolute-form GET (a plain-http URL through the proxy)."""
        if self._refuse():
            return
        target = urlsplit(self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(
            target.hostname or "", target.port or 80, timeout=_IO_TIMEOUT
        )
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request("GET", path or "/", headers=headers)
            response = upstream.getresponse()
            body = response.read()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
        except OSError:
            body = b""
            self.send_response(502)
        finally:
            upstream.close()
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_CONNECT(self) -> None:
        """Tunnel to ``host:port`` (an https URL through the proxy) and pipe bytes both ways."""
        if self._refuse():
            return
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=_IO_TIMEOUT)
        except (OSError, ValueError):
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = True
            return
        with upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            self._pipe(self.connection, upstream)
        self.close_connection = True

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        deadline = time.monotonic() + _IO_TIMEOUT * 2
        peers = {a: b, b: a}
        while time.monotonic() < deadline:
            readable, _, _ = select.select(list(peers), [], [], 0.1)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
                except OSError:
                    return


class _ProxyServer(_QuietServer):
    def __init__(self, owner: ForwardProxy) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1: forwards absolute-form GETs and tunnels CONNECT.

    Every request line is recorded in :attr:`seen` as ``(method, target)``. With ``refuse``
    it answers 403 to everything instead (a proxy that does not allow the destination).
    """

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _record(self, method: str, target: str) -> None:
        with self._lock:
            self.seen.append((method, target))

    def __enter__(self) -> ForwardProxy:
        self._server = _ProxyServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(_IO_TIMEOUT)
