"""A local stand-in for a Clerk instance, for tests and local development.

No Clerk account and no network are needed:

- :class:`LocalIssuer` holds RSA keys, publishes them as a JWKS and mints Clerk-shaped session
  tokens (v1 and v2 claims) with any claims you like.
- :meth:`LocalIssuer.transport` is an in-process ``httpx.MockTransport`` serving that JWKS.
- :class:`JWKSServer` serves it over real HTTP on 127.0.0.1, with switchable failure modes
  (errors, garbage, slow or dripping answers, oversized and gzip-bomb bodies, redirects, resets).

This module is also a pytest plugin (registered through the ``pytest11`` entry point), giving the
fixtures ``clerk_issuer``, ``clerk_jwks_server`` and ``clerk_mint``::

    def test_me(client, clerk_mint):
        token = clerk_mint(user_id="user_123", org_id="org_1", org_role="org:admin")
        response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200

.. warning::
    Everything here is for tests and local development. The keys live in memory and tokens are
    minted for anyone who asks: never point a production configuration at a local issuer.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import math
import re
import secrets
import socket
import string
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._config import GuardConfig

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixtures
    pytest = None  # type: ignore[assignment]

__all__ = ["JWKSServer", "JWKSTransport", "LocalIssuer"]

_log = logging.getLogger("clerk_guard.testing")

_HOST_RE = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_ID_ALPHABET = string.ascii_letters + string.digits
# Clerk ids are a prefix and 27 base62 characters, e.g. ins_2GIoQhbUpy0hX7B2cVkuTMinXoD.
_ID_LENGTH = 27
# What Clerk puts between nbf and iat: tokens are valid from 10 s before they were issued.
_NBF_SKEW = 10
_SCOPES = {"o": "o", "u": "u", "ou": "ou", "uo": "uo", "org": "o", "user": "u"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint_b64url(value: int) -> str:
    return _b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def _random_kid() -> str:
    return "ins_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def _whole_seconds(value: float) -> int:
    return math.floor(value)


def _parse_scoped(kind: str, values: Sequence[str]) -> list[list[str]]:
    """Turn ``["o:x", "user:y", "z"]`` into ``[["o", "x"], ["u", "y"], ["u", "z"]]``.

    A bare name is user-scoped, as features and plans without an organization are.
    """
    if isinstance(values, str):
        raise TypeError(f"{kind} must be a sequence of strings, not a single string.")
    entries: list[list[str]] = []
    for value in values:
        scope, sep, name = value.rpartition(":")
        if not sep:
            scope = "u"
        if scope not in _SCOPES or not name or "," in name or name != name.strip():
            raise ValueError(
                f"{kind} entries look like 'o:name', 'u:name', 'ou:name', 'org:name', "
                f"'user:name' or a bare user-scoped 'name'; got {value!r}."
            )
        entries.append([_SCOPES[scope], name])
    return entries


def _join_scoped(entries: list[list[str]]) -> str:
    return ",".join(f"{scope}:{name}" for scope, name in entries)


def _compact_org_claim(
    *,
    org_id: str | None,
    org_role: str | None,
    org_slug: str | None,
    org_permissions: Sequence[str] | None,
    features: list[list[str]],
) -> dict[str, str] | None:
    """Build the v2 ``o`` claim, adding the permissions' features to ``features`` in place.

    ``o.per`` lists every permission name once; ``o.fpm`` holds one integer per org-scoped
    feature of ``fea`` (in that order) whose bit ``i`` (least significant first) grants
    ``per[i]``. This is how ``@clerk/shared``'s ``jwtPayloadParser`` rebuilds
    ``org:<feature>:<permission>``.
    """
    if org_id is None:
        if org_role is not None or org_slug is not None or org_permissions:
            raise ValueError(
                "version 2 tokens carry organization claims only for an active organization: "
                "pass org_id too (or build the payload yourself and use sign())."
            )
        return None
    claim: dict[str, str] = {"id": org_id}
    if org_role is not None:
        claim["rol"] = org_role.removeprefix("org:")
    if org_slug is not None:
        claim["slg"] = org_slug
    if not org_permissions:
        return claim
    if isinstance(org_permissions, str):
        raise TypeError("org_permissions must be a sequence of strings, not a single string.")

    granted: dict[str, list[str]] = {}  # feature -> permission names, in order of appearance
    names: list[str] = []
    for permission in org_permissions:
        parts = permission.split(":")
        if len(parts) != 3 or parts[0] != "org" or not all(parts) or "," in permission:
            raise ValueError(
                "version 2 tokens can only encode permissions of the form "
                f"'org:<feature>:<permission>'; got {permission!r}."
            )
        _, feature, name = parts
        granted.setdefault(feature, []).append(name)
        if name not in names:
            names.append(name)

    for feature in granted:
        entry = next((e for e in features if e[1] == feature), None)
        if entry is None:
            features.append(["o", feature])
        elif "o" not in entry[0]:
            entry[0] = "o" + entry[0]
    masks = [
        sum(1 << names.index(name) for name in set(granted.get(feature, ())))
        for scope, feature in features
        if "o" in scope
    ]
    claim["per"] = ",".join(names)
    claim["fpm"] = ",".join(str(mask) for mask in masks)
    return claim


class LocalIssuer:
    """A local stand-in for a Clerk instance: RSA keys, a JWKS, and session tokens.

    Thread-safe: a :class:`JWKSServer` may serve the key set while a test rotates keys.

    :param frontend_api: the Frontend API host the publishable key encodes.
    :param kid: the first signing key's id; random and Clerk-like (``ins_…``) by default.
    :param key_size: RSA modulus size in bits. Below 2048 the keys are refused by clerk-guard,
        which is what negative tests want.
    :param private_key: sign with this key instead of a new one (e.g. loaded from a file, so
        tokens minted in one run verify in the next).
    """

    def __init__(
        self,
        *,
        frontend_api: str = "clerk.local-issuer.test",
        kid: str | None = None,
        key_size: int = 2048,
        private_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        if not _HOST_RE.fullmatch(frontend_api):
            raise ValueError(
                f"frontend_api must be a host name such as 'clerk.example.test' (no scheme or "
                f"path); got {frontend_api!r}."
            )
        self.frontend_api = frontend_api
        self.key_size = key_size
        encoded = base64.b64encode(f"{frontend_api}$".encode()).decode("ascii").rstrip("=")
        #: ``pk_test_`` + base64(``<frontend_api>$``), padding stripped as in Clerk's keys.
        self.publishable_key = f"pk_test_{encoded}"
        #: The ``iss`` of every minted token: ``https://<frontend_api>``.
        self.issuer = f"https://{frontend_api}"
        #: Where Clerk would publish this instance's keys.
        self.jwks_url = f"{self.issuer}/.well-known/jwks.json"
        self._lock = threading.RLock()
        self._initial_kid = kid or _random_kid()
        first = private_key if private_key is not None else self._new_key()
        self._keys: dict[str, rsa.RSAPrivateKey] = {self._initial_kid: first}
        self._published: list[str] = [self._initial_kid]
        self._kid = self._initial_kid
        # Keys made by rotate() and dropped by reset(), reused so tests that rotate stay fast.
        self._spare: list[rsa.RSAPrivateKey] = []

    def __repr__(self) -> str:
        return f"<LocalIssuer {self.issuer} kid={self.kid!r}>"

    def _new_key(self) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=self.key_size)

    @property
    def kid(self) -> str:
        """The id of the current signing key."""
        with self._lock:
            return self._kid

    @property
    def kids(self) -> tuple[str, ...]:
        """Ids of every published key, oldest first."""
        with self._lock:
            return tuple(self._published)

    @property
    def public_pem(self) -> str:
        """The current signing key's public key as an armoured PEM (``CLERK_JWT_KEY``)."""
        return self.public_key_pem(self.kid)

    def public_key_pem(self, kid: str) -> str:
        """The public key of ``kid`` (published or retired) as an armoured PEM."""
        public_key = self._private_key(kid).public_key()
        pem = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode("ascii")

    def _private_key(self, kid: str) -> rsa.RSAPrivateKey:
        with self._lock:
            try:
                return self._keys[kid]
            except KeyError:
                raise ValueError(f"this issuer has no key with kid {kid!r}.") from None

    def jwks(self) -> dict[str, Any]:
        """The published key set, as Clerk serves it: ``{"keys": [...]}`` of RS256 signing keys."""
        with self._lock:
            published = [(kid, self._keys[kid]) for kid in self._published]
        keys = []
        for kid, key in published:
            numbers = key.public_key().public_numbers()
            keys.append(
                {
                    "use": "sig",
                    "kty": "RSA",
                    "kid": kid,
                    "alg": "RS256",
                    "n": _uint_b64url(numbers.n),
                    "e": _uint_b64url(numbers.e),
                }
            )
        return {"keys": keys}

    def rotate(self, *, kid: str | None = None, retire_old: bool = False) -> str:
        """Sign with a new key from now on, and publish it.

        Older keys stay published (as during a real rotation) unless ``retire_old`` is true; a
        retired key is no longer in :meth:`jwks` but can still sign via ``mint(kid=...)``, to
        test tokens whose key has gone.

        :returns: the new key's ``kid``.
        """
        new_kid = kid or _random_kid()
        with self._lock:
            if new_kid in self._keys:
                raise ValueError(f"kid {new_kid!r} is already used by this issuer.")
            key = self._spare.pop() if self._spare else self._new_key()
            self._keys[new_kid] = key
            self._published = [new_kid] if retire_old else [*self._published, new_kid]
            self._kid = new_kid
        return new_kid

    def reset(self) -> None:
        """Undo every :meth:`rotate`: only the first key is published and signs again."""
        with self._lock:
            for kid, key in self._keys.items():
                if kid != self._initial_kid:
                    self._spare.append(key)
            self._keys = {self._initial_kid: self._keys[self._initial_kid]}
            self._published = [self._initial_kid]
            self._kid = self._initial_kid

    def sign(
        self,
        payload: Mapping[str, Any] | bytes,
        *,
        headers: Mapping[str, Any] | bytes | None = None,
        kid: str | None = None,
    ) -> str:
        """Sign any payload with RS256, for tokens :meth:`mint` will not make.

        The header starts as ``{"alg": "RS256", "kid": <kid>, "typ": "JWT"}``; ``headers`` adds
        or replaces members, and a member given as ``None`` is removed. The signature is always
        RS256 with the key of ``kid`` (default: the current key), whatever the header says, so
        ``headers={"alg": "none"}`` or ``{"kid": "other"}`` make the usual negative tests.

        :param payload: a mapping, or raw JSON bytes used verbatim (e.g. with duplicate names).
        :param headers: header members to change, or raw JSON bytes used verbatim.
        """
        signing_kid = kid or self.kid
        key = self._private_key(signing_kid)
        if isinstance(headers, bytes):
            header_bytes = headers
        else:
            header: dict[str, Any] = {"alg": "RS256", "kid": signing_kid, "typ": "JWT"}
            for name, value in (headers or {}).items():
                if value is None:
                    header.pop(name, None)
                else:
                    header[name] = value
            header_bytes = _json_bytes(header)
        payload_bytes = payload if isinstance(payload, bytes) else _json_bytes(dict(payload))
        signing_input = f"{_b64url(header_bytes)}.{_b64url(payload_bytes)}"
        signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def mint(
        self,
        *,
        user_id: str = "user_2test",
        session_id: str = "sess_2test",
        version: int = 1,
        lifetime: float = 60,
        now: float | None = None,
        issued_at: float | None = None,
        azp: str | None = "http://localhost:3000",
        org_id: str | None = None,
        org_role: str | None = None,
        org_slug: str | None = None,
        org_permissions: Sequence[str] | None = None,
        features: Sequence[str] | None = None,
        plans: Sequence[str] | None = None,
        status: str | None = "active",
        actor: Mapping[str, Any] | None = None,
        fva: tuple[int, int] | None = None,
        kid: str | None = None,
        headers: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """Mint a Clerk-shaped session token signed by this issuer.

        The header is ``{"alg": "RS256", "kid": …, "typ": "JWT"}``. The payload has ``azp``,
        ``exp`` (``now + lifetime``), ``iat`` (``issued_at``, default ``now``), ``iss``, ``nbf``
        (``iat - 10``, as Clerk), ``sid``, ``sub`` and ``sts``, plus ``fva`` and ``act`` when given.
        Times are whole Unix seconds; ``now`` defaults to the current time.

        Organization, feature and plan claims depend on ``version``:

        - **1**: ``org_id``, ``org_role``, ``org_slug`` and ``org_permissions`` (a list) are written
          as given, e.g. ``org_role="org:admin"``, ``org_permissions=["org:invoices:read"]``.
        - **2**: ``"v": 2`` and Clerk's compact claims. ``"o"`` holds ``id``, ``slg`` and ``rol``
          (the role without its ``org:`` prefix); ``org_permissions`` must then be
          ``org:<feature>:<permission>`` names and become ``o.per`` (each permission name once,
          comma-joined) and ``o.fpm`` (one integer per org-scoped feature of ``fea``, in order,
          whose bit *i*, least significant first, grants ``per[i]``). Every permission's feature
          is added to ``fea`` with the ``o`` scope. Clerk's ``jwtPayloadParser`` decodes this back
          to the same ``org_permissions``. Organization claims need ``org_id`` in version 2.

        In both versions ``features`` and ``plans`` become ``fea`` and ``pla``: comma-joined
        ``scope:name`` entries (``o``, ``u``, ``ou``; ``org:``/``user:`` are accepted and a bare
        name is user-scoped), e.g. ``features=["o:sso", "u:export"]`` gives ``"o:sso,u:export"``.

        Extra keyword arguments add or replace payload members; one given as ``None`` is removed,
        e.g. ``mint(sid=None)`` makes a token without ``sid``.

        :param status: the ``sts`` claim; ``None`` leaves it out.
        :param fva: factor verification ages in minutes, ``(first, second)``; ``-1`` means never.
        :param kid: sign with this key (the current key by default); retired keys work too.
        :param headers: header members to add or replace (``None`` removes one).
        """
        if version not in (1, 2):
            raise ValueError(f"version must be 1 or 2; got {version!r}.")
        base = time.time() if now is None else now
        iat = base if issued_at is None else issued_at
        payload: dict[str, Any] = {
            "azp": azp,
            "exp": _whole_seconds(base + lifetime),
            "fva": list(fva) if fva is not None else None,
            "iat": _whole_seconds(iat),
            "iss": self.issuer,
            "nbf": _whole_seconds(iat) - _NBF_SKEW,
            "sid": session_id,
            "sts": status,
            "sub": user_id,
        }
        feature_entries = _parse_scoped("features", features or ())
        if version == 2:
            payload["v"] = 2
            payload["o"] = _compact_org_claim(
                org_id=org_id,
                org_role=org_role,
                org_slug=org_slug,
                org_permissions=org_permissions,
                features=feature_entries,
            )
        else:
            payload["org_id"] = org_id
            payload["org_role"] = org_role
            payload["org_slug"] = org_slug
            payload["org_permissions"] = (
                list(org_permissions) if org_permissions is not None else None
            )
        payload["fea"] = _join_scoped(feature_entries) if feature_entries else None
        plan_entries = _parse_scoped("plans", plans or ())
        payload["pla"] = _join_scoped(plan_entries) if plan_entries else None
        payload["act"] = dict(actor) if actor is not None else None
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return self.sign(payload, headers=headers, kid=kid)

    def transport(self) -> JWKSTransport:
        """A fresh in-process transport serving this issuer's live JWKS to httpx clients."""
        return JWKSTransport(self)

    def config(self, **overrides: Any) -> GuardConfig:
        """A :class:`GuardConfig` for this issuer: its publishable key plus ``overrides``.

        Pass ``jwks_url=server.url`` to fetch keys from a :class:`JWKSServer` instead of the
        (unreachable) Frontend API, or ``jwt_key=issuer.public_pem`` to verify without a network.
        """
        return GuardConfig(**{"publishable_key": self.publishable_key, **overrides})


class JWKSTransport(httpx.MockTransport):
    """An ``httpx`` transport answering every ``GET`` with the issuer's current JWKS.

    Works with ``httpx.Client`` and ``httpx.AsyncClient``. Requests are recorded in
    :attr:`requests` and counted in :attr:`fetches`. To simulate failures set
    :attr:`status_code` and :attr:`body`, or replace :attr:`handler` with your own
    ``(request) -> httpx.Response`` function (requests are still recorded); set it back to
    :meth:`serve_jwks` to restore the default.
    """

    def __init__(self, issuer: LocalIssuer) -> None:
        super().__init__(self.serve_jwks)
        self.issuer = issuer
        #: Every request received, oldest first.
        self.requests: list[httpx.Request] = []
        #: Number of requests received.
        self.fetches = 0
        #: Status of the default answer.
        self.status_code = 200
        #: When not ``None``, the body of the default answer instead of the JWKS: bytes and
        #: strings are sent as they are, anything else as JSON.
        self.body: Any = None
        self._lock = threading.Lock()

    def serve_jwks(self, request: httpx.Request) -> httpx.Response:
        """The default handler: :attr:`body` or the issuer's JWKS with :attr:`status_code`."""
        if request.method != "GET":
            return httpx.Response(405, headers={"Allow": "GET"})
        body = self.body
        if body is None:
            content = _json_bytes(self.issuer.jwks())
        elif isinstance(body, bytes):
            content = body
        elif isinstance(body, str):
            content = body.encode()
        else:
            content = _json_bytes(body)
        return httpx.Response(
            self.status_code, headers={"Content-Type": "application/json"}, content=content
        )

    def _record(self, request: httpx.Request) -> None:
        with self._lock:
            self.requests.append(request)
            self.fetches += 1

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Record the request, then answer it with :attr:`handler`."""
        self._record(request)
        return super().handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Record the request, then answer it with :attr:`handler` (which may be async)."""
        self._record(request)
        return await super().handle_async_request(request)


_JWKS_PATHS = frozenset({"/.well-known/jwks.json", "/v1/jwks"})
# Always answers with the key set: where mode "redirect" points, so a client that follows
# redirects visibly succeeds (and is caught by the fetch count).
_REDIRECT_TARGET = "/redirected/jwks.json"
_DRIP_INTERVAL = 0.5
_DRIP_CONTENT_LENGTH = 4096  # small enough to pass a size cap: only a deadline stops it
_HUGE_SIZE = 5 << 20
_BOMB_SIZE = 50 << 20
# Bounds reading a request line and headers, so a silent client cannot pin a handler thread.
_HANDLER_TIMEOUT = 5.0
_JOIN_TIMEOUT = 5.0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = _HANDLER_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        owner._record(self.path, self.headers.items())
        path = urlsplit(self.path).path
        try:
            if path == _REDIRECT_TARGET:
                self._mode_ok()
            elif path not in _JWKS_PATHS:
                self._send(404, b'{"errors":[{"code":"resource_not_found"}]}')
            else:
                getattr(self, "_mode_" + owner.mode.replace("-", "_"))()
        except OSError:
            pass  # the client went away: nothing to answer
        self.close_connection = True

    def _send(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _wait(self) -> bool:
        """Sleep for the server's delay; true when the server is stopping instead."""
        owner = self.server.owner
        return owner._stopping.wait(owner.delay)

    def _mode_ok(self) -> None:
        self._send(200, _json_bytes(self.server.owner.issuer.jwks()))

    def _mode_error(self) -> None:
        self._send(500, b'{"errors":[{"code":"internal_error","message":"local test failure"}]}')

    def _mode_garbage(self) -> None:
        self._send(200, b"<html>\x00\xff not JSON at all")

    def _mode_empty(self) -> None:
        self._send(200, b'{"keys":[]}')

    def _mode_not_object(self) -> None:
        self._send(200, _json_bytes(self.server.owner.issuer.jwks()["keys"]))

    def _mode_slow(self) -> None:
        if not self._wait():
            self._mode_ok()

    def _mode_hang(self) -> None:
        self._wait()

    def _mode_drip(self) -> None:
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(_DRIP_CONTENT_LENGTH))
        self.send_header("Connection", "close")
        self.end_headers()
        for _ in range(max(1, math.ceil(owner.delay / _DRIP_INTERVAL))):
            self.wfile.write(b" ")
            self.wfile.flush()
            if owner._stopping.wait(_DRIP_INTERVAL):
                break

    def _mode_huge(self) -> None:
        keys = _json_bytes(self.server.owner.issuer.jwks()["keys"])
        # Valid JSON holding the real keys: only a size cap stops a client from accepting it.
        prefix = b'{"keys":' + keys + b',"padding":"'
        body = prefix + b"x" * max(0, _HUGE_SIZE - len(prefix) - 2) + b'"}'
        self._send(200, body)

    def _mode_gzip_bomb(self) -> None:
        self._send(200, JWKSServer._gzip_bomb(), extra={"Content-Encoding": "gzip"})

    def _mode_redirect(self) -> None:
        location = self.server.owner.base_url + _REDIRECT_TARGET
        self._send(302, b"", extra={"Location": location})

    def _mode_reset(self) -> None:
        # Linger 0 turns close() into a TCP RST; _Server.shutdown_request skips the FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.reset_requests.add(self.connection)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Threads are tracked and joined with a timeout by JWKSServer.stop() instead.
    block_on_close = False

    def __init__(self, owner: JWKSServer, address: tuple[str, int]) -> None:
        self.owner = owner
        self.reset_requests: set[Any] = set()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="clerk-guard-jwks-handler",
            daemon=True,
        )
        self.owner._track(thread, request)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        self.owner._untrack(request)
        if request in self.reset_requests:
            self.reset_requests.discard(request)
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("JWKSServer handler failed", exc_info=True)


class JWKSServer:
    """A real JWKS HTTP server on 127.0.0.1 (random port), in a background thread.

    Serves the issuer's live key set on ``/.well-known/jwks.json`` and ``/v1/jwks``. Set
    :attr:`mode` at any time to misbehave:

    ``"ok"``
        200 with the JWKS.
    ``"error"``
        500 with a JSON error body.
    ``"garbage"``
        200, ``application/json``, body that is not JSON.
    ``"empty"``
        200 ``{"keys": []}``.
    ``"not-object"``
        200 with a JSON list (the keys, without the ``{"keys": …}`` object).
    ``"slow"``
        waits :attr:`delay` seconds, then answers as ``"ok"``.
    ``"drip"``
        sends headers announcing 1 MiB, then one byte every 0.5 s for :attr:`delay` seconds.
    ``"huge"``
        200 with a valid 5 MiB JSON body holding the keys.
    ``"gzip-bomb"``
        200, ``Content-Encoding: gzip``, ~50 KB that inflate to 50 MiB of zeros.
    ``"redirect"``
        302 to another URL of this server, which serves the keys.
    ``"hang"``
        reads the request, then says nothing for :attr:`delay` seconds and closes.
    ``"reset"``
        reads the request, then resets the connection (TCP RST).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Stopping is prompt in
    every mode: waiting handlers are woken and open connections shut down.
    """

    MODES: ClassVar[frozenset[str]] = frozenset(
        {
            "ok",
            "error",
            "garbage",
            "empty",
            "not-object",
            "slow",
            "drip",
            "huge",
            "gzip-bomb",
            "redirect",
            "hang",
            "reset",
        }
    )
    _bomb: ClassVar[bytes | None] = None
    _bomb_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, issuer: LocalIssuer, *, host: str = "127.0.0.1") -> None:
        self.issuer = issuer
        self.host = host
        #: Seconds the ``"slow"``, ``"drip"`` and ``"hang"`` modes take.
        self.delay = 10.0
        self._mode = "ok"
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._fetches = 0
        self._last_headers: dict[str, str] = {}
        self._last_path: str | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[Any] = set()
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._base_url: str | None = None

    def __repr__(self) -> str:
        where = self._base_url if self._server is not None else "stopped"
        return f"<JWKSServer {where} mode={self._mode!r}>"

    @property
    def mode(self) -> str:
        """How the next request is answered; see the class documentation."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in self.MODES:
            raise ValueError(f"mode must be one of {sorted(self.MODES)}; got {value!r}.")
        self._mode = value

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>``: an ``api_url`` whose ``/v1/jwks`` is this server."""
        if self._base_url is None:
            raise RuntimeError("JWKSServer is not started: call start() or use it in a with block.")
        return self._base_url

    @property
    def url(self) -> str:
        """The JWKS URL: ``http://<host>:<port>/.well-known/jwks.json``."""
        return self.base_url + "/.well-known/jwks.json"

    @property
    def fetches(self) -> int:
        """Number of requests received, in any mode."""
        with self._lock:
            return self._fetches

    @property
    def last_headers(self) -> dict[str, str]:
        """Headers of the last request, names lower-cased (e.g. ``"authorization"``)."""
        with self._lock:
            return dict(self._last_headers)

    @property
    def last_path(self) -> str | None:
        """Path and query of the last request."""
        with self._lock:
            return self._last_path

    def _record(self, path: str, headers: Any) -> None:
        with self._lock:
            self._fetches += 1
            self._last_path = path
            self._last_headers = {name.lower(): value for name, value in headers}

    def _track(self, thread: threading.Thread, connection: Any) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            self._connections.add(connection)

    def _untrack(self, connection: Any) -> None:
        with self._lock:
            self._connections.discard(connection)

    @classmethod
    def _gzip_bomb(cls) -> bytes:
        with cls._bomb_lock:
            if cls._bomb is None:
                compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip
                chunk = bytes(1 << 20)
                parts = [compressor.compress(chunk) for _ in range(_BOMB_SIZE // len(chunk))]
                parts.append(compressor.flush())
                cls._bomb = b"".join(parts)
            return cls._bomb

    def start(self) -> JWKSServer:
        """Bind a random port and serve in a background thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("JWKSServer is already running.")
        self._stopping.clear()
        server = _Server(self, (self.host, 0))
        port = server.server_address[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._base_url = f"http://{host}:{port}"
        self._server = server
        self._serve_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="clerk-guard-jwks-server",
            daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake and join handler threads, and close every socket. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        if self._serve_thread is not None:
            self._serve_thread.join(_JOIN_TIMEOUT)
            self._serve_thread = None
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
            self._threads = []
        for connection in connections:
            try:
                # Unblocks a handler still reading a request from a silent client.
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(_JOIN_TIMEOUT)
        server.server_close()

    def __enter__(self) -> JWKSServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if pytest is not None:

    @pytest.fixture(scope="session")
    def _clerk_guard_issuer() -> LocalIssuer:
        """One issuer per test session: RSA key generation costs tens of milliseconds."""
        return LocalIssuer()

    @pytest.fixture
    def clerk_issuer(_clerk_guard_issuer: LocalIssuer) -> Iterator[LocalIssuer]:
        """A :class:`LocalIssuer`, shared by the session but with rotations undone per test."""
        _clerk_guard_issuer.reset()
        yield _clerk_guard_issuer
        _clerk_guard_issuer.reset()

    @pytest.fixture
    def clerk_jwks_server(clerk_issuer: LocalIssuer) -> Iterator[JWKSServer]:
        """A started :class:`JWKSServer` for ``clerk_issuer``, stopped after the test."""
        with JWKSServer(clerk_issuer) as server:
            yield server

    @pytest.fixture
    def clerk_mint(clerk_issuer: LocalIssuer) -> Callable[..., str]:
        """``clerk_issuer.mint``: mint a session token with any claims."""
        return clerk_issuer.mint
