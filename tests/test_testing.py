"""The public test kit: local issuer, JWKS transport, loopback JWKS server and fixtures."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import zlib

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from clerk_guard._config import GuardConfig
from clerk_guard.testing import JWKSServer, JWKSTransport, LocalIssuer

NOW = 1_700_000_000
FAST = httpx.Timeout(2.0)


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def decode(issuer: LocalIssuer, token: str, kid: str | None = None) -> dict:
    """Verify the signature with PyJWT against the issuer's key; no time or audience checks."""
    return jwt.decode(
        token,
        issuer.public_key_pem(kid or jwt.get_unverified_header(token)["kid"]),
        algorithms=["RS256"],
        options={
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": False,
        },
    )


def clerk_org_permissions(claims: dict) -> list[str]:
    """Clerk's v2 decoding of o.per/o.fpm, as @clerk/shared's jwtPayloadParser describes it.

    Org-scoped features come from ``fea`` (any scope containing ``o``), in order; feature ``k``
    gets ``fpm[k]`` whose binary form, padded to ``len(per)`` and read least significant bit
    first, grants ``per[i]`` for each 1 bit.
    """
    org = claims.get("o") or {}
    per, fpm = org.get("per"), org.get("fpm")
    if not per or not fpm:
        return []
    names = [p.strip() for p in per.split(",")]
    features = [
        f.split(":")[1] for f in (claims.get("fea") or "").split(",") if "o" in f.split(":")[0]
    ]
    result = []
    for feature, mask in zip(features, fpm.split(","), strict=False):
        bits = list(reversed(format(int(mask), "b").zfill(len(names))))
        result += [f"org:{feature}:{names[i]}" for i, bit in enumerate(bits) if bit == "1"]
    return result


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("clerk-guard-jwks")]


@pytest.fixture(scope="module")
def issuer() -> LocalIssuer:
    return LocalIssuer()


@pytest.fixture
def fresh() -> LocalIssuer:
    return LocalIssuer(frontend_api="clerk.fresh.test", kid="ins_first")


# --- LocalIssuer: identity and keys -----------------------------------------------------------


def test_publishable_key_round_trips_through_guard_config(issuer):
    """The publishable key decodes to the issuer's Frontend API, issuer and JWKS URL."""
    assert issuer.publishable_key.startswith("pk_test_")
    assert "=" not in issuer.publishable_key
    config = issuer.config()
    assert isinstance(config, GuardConfig)
    assert config.frontend_api == "clerk.local-issuer.test"
    assert config.resolved_issuer == issuer.issuer == "https://clerk.local-issuer.test"
    assert config.resolved_jwks_url == issuer.jwks_url
    assert issuer.jwks_url == "https://clerk.local-issuer.test/.well-known/jwks.json"


def test_config_overrides_win(issuer):
    """config() passes overrides through, including a replacement publishable key."""
    config = issuer.config(jwt_key=issuer.public_pem, leeway=1)
    assert config.key_source == "jwt_key"
    assert config.leeway == 1
    other = issuer.config(publishable_key="pk_test_Y2xlcmsuY2xlcmsuZGV2JA")
    assert other.frontend_api == "clerk.clerk.dev"


def test_bad_frontend_api_is_refused():
    """A frontend_api with a scheme or path raises ValueError."""
    with pytest.raises(ValueError, match="frontend_api"):
        LocalIssuer(frontend_api="https://clerk.example.test/")


def test_default_kid_looks_like_a_clerk_instance_id(issuer):
    """The default kid is ins_ followed by 27 alphanumerics."""
    assert issuer.kid.startswith("ins_")
    assert len(issuer.kid) == 31
    assert issuer.kid[4:].isalnum()


def test_jwks_has_clerk_shape(issuer):
    """jwks() lists RS256 signing keys with unpadded base64url n and e matching the PEM."""
    jwks = issuer.jwks()
    assert list(jwks) == ["keys"]
    (key,) = jwks["keys"]
    assert set(key) == {"use", "kty", "kid", "alg", "n", "e"}
    assert key["use"] == "sig"
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["kid"] == issuer.kid
    assert key["e"] == "AQAB"
    assert "=" not in key["n"]
    assert "+" not in key["n"]
    assert "/" not in key["n"]
    numbers = load_pem_public_key(issuer.public_pem.encode()).public_numbers()
    assert int.from_bytes(b64url_decode(key["n"]), "big") == numbers.n
    assert len(b64url_decode(key["n"])) == 256


def test_jwks_key_loads_in_pyjwt(issuer):
    """PyJWT's PyJWK loads the published key and verifies a minted token with it."""
    key = jwt.PyJWK(issuer.jwks()["keys"][0])
    token = issuer.mint()
    assert jwt.decode(token, key, algorithms=["RS256"])["sub"] == "user_2test"


def test_public_pem_is_armoured(issuer):
    """public_pem is an armoured SubjectPublicKeyInfo PEM."""
    assert issuer.public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert issuer.public_pem.rstrip().endswith("-----END PUBLIC KEY-----")


def test_rotate_publishes_new_kid_and_keeps_old(fresh):
    """rotate() signs with a new kid and keeps the old key published."""
    old = fresh.kid
    new = fresh.rotate()
    assert new != old
    assert fresh.kid == new
    assert [k["kid"] for k in fresh.jwks()["keys"]] == [old, new]
    assert fresh.kids == (old, new)
    assert jwt.get_unverified_header(fresh.mint())["kid"] == new
    assert fresh.public_key_pem(old) != fresh.public_pem


def test_rotate_retire_old_unpublishes_but_can_still_sign(fresh):
    """rotate(retire_old=True) drops old keys from the JWKS; mint(kid=old) still signs."""
    old = fresh.kid
    new = fresh.rotate(kid="ins_second", retire_old=True)
    assert new == "ins_second"
    assert [k["kid"] for k in fresh.jwks()["keys"]] == ["ins_second"]
    token = fresh.mint(kid=old)
    assert jwt.get_unverified_header(token)["kid"] == old
    assert decode(fresh, token)["sub"] == "user_2test"


def test_rotate_refuses_a_used_kid(fresh):
    """rotate() with a kid the issuer already has raises ValueError."""
    with pytest.raises(ValueError, match="already used"):
        fresh.rotate(kid=fresh.kid)


def test_reset_undoes_rotations(fresh):
    """reset() publishes and signs with the first key only."""
    first = fresh.kid
    first_pem = fresh.public_pem
    fresh.rotate()
    fresh.rotate()
    fresh.reset()
    assert fresh.kid == first
    assert fresh.kids == (first,)
    assert fresh.public_pem == first_pem
    assert fresh.rotate() != first


def test_unknown_kid_is_refused(issuer):
    """Signing with a kid the issuer never had raises ValueError."""
    with pytest.raises(ValueError, match="no key"):
        issuer.mint(kid="ins_nope")


# --- mint: v1 ---------------------------------------------------------------------------------


def test_mint_v1_default_payload(issuer):
    """A default v1 token carries Clerk's session claims and header, and nothing else."""
    token = issuer.mint(now=NOW)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": issuer.kid, "typ": "JWT"}
    assert decode(issuer, token) == {
        "azp": "http://localhost:3000",
        "exp": NOW + 60,
        "iat": NOW,
        "iss": issuer.issuer,
        "nbf": NOW - 10,
        "sid": "sess_2test",
        "sts": "active",
        "sub": "user_2test",
    }


def test_mint_v1_verifies_now_with_pyjwt_defaults(issuer):
    """A token minted with the real clock passes PyJWT's own time checks."""
    claims = jwt.decode(issuer.mint(), issuer.public_pem, algorithms=["RS256"])
    assert claims["exp"] - claims["iat"] == 60


def test_mint_v1_org_and_extra_claims(issuer):
    """v1 writes org_* claims, act, fva, fea and pla as given."""
    token = issuer.mint(
        now=NOW,
        user_id="user_a",
        session_id="sess_a",
        org_id="org_1",
        org_role="org:admin",
        org_slug="acme",
        org_permissions=["org:invoices:read", "org:sys_memberships:manage"],
        features=["o:sso", "user:export"],
        plans=["u:free", "org:pro"],
        actor={"sub": "user_admin"},
        fva=(5, -1),
        status="pending",
        azp=None,
    )
    claims = decode(issuer, token)
    assert claims["sub"] == "user_a"
    assert claims["sid"] == "sess_a"
    assert claims["org_id"] == "org_1"
    assert claims["org_role"] == "org:admin"
    assert claims["org_slug"] == "acme"
    assert claims["org_permissions"] == ["org:invoices:read", "org:sys_memberships:manage"]
    assert claims["fea"] == "o:sso,u:export"
    assert claims["pla"] == "u:free,o:pro"
    assert claims["act"] == {"sub": "user_admin"}
    assert claims["fva"] == [5, -1]
    assert claims["sts"] == "pending"
    assert "azp" not in claims
    assert "v" not in claims
    assert "o" not in claims


def test_mint_times(issuer):
    """exp is now + lifetime, iat is issued_at (default now), nbf is iat - 10, in whole seconds."""
    claims = decode(issuer, issuer.mint(now=NOW + 0.9, lifetime=-30))
    assert (claims["iat"], claims["exp"], claims["nbf"]) == (NOW, NOW - 30, NOW - 10)
    claims = decode(issuer, issuer.mint(now=NOW, issued_at=NOW + 100))
    assert (claims["iat"], claims["exp"], claims["nbf"]) == (NOW + 100, NOW + 60, NOW + 90)


def test_mint_extra_claims_add_replace_and_remove(issuer):
    """Keyword claims add or replace members, and None removes one."""
    claims = decode(issuer, issuer.mint(sid=None, status=None, iss="https://evil.test", aud="x"))
    assert "sid" not in claims
    assert "sts" not in claims
    assert claims["iss"] == "https://evil.test"
    assert claims["aud"] == "x"
    claims = decode(issuer, issuer.mint(exp="soon", sub=None))
    assert claims["exp"] == "soon"
    assert "sub" not in claims


def test_mint_headers_override(issuer):
    """mint(headers=...) adds header members and None removes one."""
    token = issuer.mint(headers={"typ": None, "jku": "https://evil.test/jwks"})
    assert jwt.get_unverified_header(token) == {
        "alg": "RS256",
        "kid": issuer.kid,
        "jku": "https://evil.test/jwks",
    }


def test_mint_rejects_unknown_version(issuer):
    """Only versions 1 and 2 exist."""
    with pytest.raises(ValueError, match="version"):
        issuer.mint(version=3)


def test_mint_rejects_bad_feature_entries(issuer):
    """Features with an unknown scope, a comma, or given as one string are refused."""
    with pytest.raises(ValueError, match="features"):
        issuer.mint(features=["x:sso"])
    with pytest.raises(ValueError, match="plans"):
        issuer.mint(plans=["u:a,b"])
    with pytest.raises(TypeError, match="single string"):
        issuer.mint(features="o:sso")


# --- mint: v2 compact claims ------------------------------------------------------------------


def test_mint_v2_compact_claims_shape(issuer):
    """v2 writes v=2 and an o claim with the role unprefixed, per and fpm, and org features."""
    token = issuer.mint(
        version=2,
        now=NOW,
        org_id="org_1",
        org_role="org:admin",
        org_slug="acme",
        org_permissions=[
            "org:impersonation:read",
            "org:memberships:read",
            "org:memberships:manage",
        ],
        features=["u:export"],
        plans=["u:free"],
    )
    claims = decode(issuer, token)
    assert claims["v"] == 2
    assert claims["o"] == {
        "id": "org_1",
        "rol": "admin",
        "slg": "acme",
        "per": "read,manage",
        "fpm": "1,3",
    }
    assert claims["fea"] == "u:export,o:impersonation,o:memberships"
    assert claims["pla"] == "u:free"
    for name in ("org_id", "org_role", "org_slug", "org_permissions"):
        assert name not in claims


def test_clerk_decoder_helper_matches_clerk_vectors():
    """The test's decoder reproduces the v2 examples of Clerk's jwtPayloadParser tests."""
    assert clerk_org_permissions(
        {"fea": "o:impersonation,o:memberships", "o": {"per": "read,manage", "fpm": "1,3"}}
    ) == ["org:impersonation:read", "org:memberships:read", "org:memberships:manage"]
    assert sorted(
        clerk_org_permissions(
            {
                "fea": "o:repositories,uo:projects,u:goldprofileborder",
                "o": {"per": "read,create,update,delete,revoke", "fpm": "7,21"},
            }
        )
    ) == sorted(
        [
            "org:repositories:read",
            "org:repositories:create",
            "org:repositories:update",
            "org:projects:read",
            "org:projects:update",
            "org:projects:revoke",
        ]
    )
    assert clerk_org_permissions(
        {"fea": "o:a,o:b,o:c,o:d", "o": {"per": "r,m", "fpm": "1,2,3"}}
    ) == [
        "org:a:r",
        "org:b:m",
        "org:c:r",
        "org:c:m",
    ]


@pytest.mark.parametrize(
    ("permissions", "features"),
    [
        (["org:billing:read"], []),
        (["org:a:read", "org:b:manage", "org:a:manage", "org:c:read"], []),
        (["org:repositories:read", "org:projects:revoke", "org:projects:update"], ["o:sso"]),
        (["org:x:p1", "org:x:p2", "org:y:p3", "org:y:p4", "org:z:p5"], ["u:x", "o:w", "u:v"]),
        (["org:sys_memberships:manage", "org:sys_profile:delete"], ["ou:reports"]),
    ],
)
def test_mint_v2_permissions_decode_like_clerk(issuer, permissions, features):
    """Clerk's v2 decoding of a minted token gives back exactly the org_permissions given."""
    claims = decode(
        issuer,
        issuer.mint(version=2, org_id="org_1", org_permissions=permissions, features=features),
    )
    assert sorted(clerk_org_permissions(claims)) == sorted(permissions)
    org_features = [f for f in claims["fea"].split(",") if "o" in f.split(":")[0]]
    assert len(org_features) == len(claims["o"]["fpm"].split(","))


def test_mint_v2_user_feature_shared_with_org_gets_both_scopes(issuer):
    """A feature given as user-scoped that also has org permissions becomes 'ou:'."""
    claims = decode(
        issuer,
        issuer.mint(
            version=2, org_id="org_1", org_permissions=["org:x:read"], features=["u:x", "u:y"]
        ),
    )
    assert claims["fea"] == "ou:x,u:y"
    assert claims["o"]["fpm"] == "1"


def test_mint_v2_without_org(issuer):
    """v2 without org_id has no o claim; user features and plans still appear."""
    claims = decode(issuer, issuer.mint(version=2, features=["export"], plans=["free"]))
    assert claims["v"] == 2
    assert "o" not in claims
    assert claims["fea"] == "u:export"
    assert claims["pla"] == "u:free"


def test_mint_v2_org_without_permissions(issuer):
    """v2 with an org but no permissions has no per/fpm, and a role keeps only its key."""
    claims = decode(issuer, issuer.mint(version=2, org_id="org_1", org_role="member"))
    assert claims["o"] == {"id": "org_1", "rol": "member"}


def test_mint_v2_org_claims_need_org_id(issuer):
    """v2 refuses org role, slug or permissions without an org_id."""
    with pytest.raises(ValueError, match="org_id"):
        issuer.mint(version=2, org_role="org:admin")
    with pytest.raises(ValueError, match="org_id"):
        issuer.mint(version=2, org_permissions=["org:a:read"])


def test_mint_v2_refuses_unencodable_permissions(issuer):
    """v2 refuses permissions that are not org:<feature>:<permission>."""
    for bad in ("invoices:read", "org:read", "org:a:b:c", "org::read"):
        with pytest.raises(ValueError, match="org:<feature>:<permission>"):
            issuer.mint(version=2, org_id="org_1", org_permissions=[bad])


# --- sign ----------------------------------------------------------------------------------


def test_sign_writes_header_verbatim_and_signs_rs256(issuer):
    """sign() keeps a lying header (alg none) and still signs with RS256."""
    token = issuer.sign({"sub": "user_x"}, headers={"alg": "none", "kid": "ins_other"})
    assert jwt.get_unverified_header(token) == {"alg": "none", "kid": "ins_other", "typ": "JWT"}
    header, payload, signature = token.split(".")
    assert signature
    # The signature is a valid RS256 signature by the current key.
    fixed = issuer.sign({"sub": "user_x"}, headers={"kid": "ins_other"})
    assert jwt.decode(fixed, issuer.public_pem, algorithms=["RS256"]) == {"sub": "user_x"}


def test_sign_raw_bytes(issuer):
    """sign() accepts raw JSON bytes for payload and header, e.g. with duplicate names."""
    raw = b'{"sub":"user_a","sub":"user_b"}'
    token = issuer.sign(raw, headers=b'{"alg":"RS256","alg":"RS256"}')
    header, payload, _ = token.split(".")
    assert b64url_decode(payload) == raw
    assert b64url_decode(header) == b'{"alg":"RS256","alg":"RS256"}'
    signing_input = f"{header}.{payload}".encode()
    key = load_pem_public_key(issuer.public_pem.encode())
    jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).verify(
        signing_input, key, b64url_decode(token.split(".")[2])
    )


# --- JWKSTransport ---------------------------------------------------------------------------


def test_transport_serves_live_jwks_and_counts(fresh):
    """The transport answers any GET with the current JWKS and records every request."""
    transport = fresh.transport()
    assert isinstance(transport, JWKSTransport)
    assert isinstance(transport, httpx.MockTransport)
    with httpx.Client(transport=transport) as client:
        first = client.get(fresh.jwks_url)
        fresh.rotate()
        second = client.get("https://anything.test/v1/jwks", headers={"Authorization": "Bearer x"})
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert [k["kid"] for k in first.json()["keys"]] == ["ins_first"]
    assert len(second.json()["keys"]) == 2
    assert transport.fetches == 2
    assert [str(r.url) for r in transport.requests] == [
        fresh.jwks_url,
        "https://anything.test/v1/jwks",
    ]
    assert transport.requests[1].headers["authorization"] == "Bearer x"


def test_transport_overrides(issuer):
    """status_code, body and handler change the answers; requests are still counted."""
    transport = issuer.transport()
    with httpx.Client(transport=transport) as client:
        transport.status_code = 503
        transport.body = b"down"
        response = client.get(issuer.jwks_url)
        assert (response.status_code, response.content) == (503, b"down")
        transport.status_code = 200
        transport.body = {"keys": []}
        assert client.get(issuer.jwks_url).json() == {"keys": []}
        transport.body = "[1]"
        assert client.get(issuer.jwks_url).json() == [1]
        transport.handler = lambda request: httpx.Response(418)
        assert client.get(issuer.jwks_url).status_code == 418
        transport.handler = transport.serve_jwks
        transport.body = None
        assert client.get(issuer.jwks_url).json() == issuer.jwks()
        assert client.post(issuer.jwks_url).status_code == 405
    assert transport.fetches == 6


@pytest.mark.anyio
async def test_transport_works_with_async_client(issuer):
    """The transport serves an AsyncClient, with sync or async custom handlers."""
    transport = issuer.transport()
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(issuer.jwks_url)).json() == issuer.jwks()

        async def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(500)

        transport.handler = handler
        assert (await client.get(issuer.jwks_url)).status_code == 500
    assert transport.fetches == 2


# --- JWKSServer --------------------------------------------------------------------------------


@pytest.fixture
def server(issuer):
    with JWKSServer(issuer) as running:
        running.delay = 0.3
        yield running


def test_server_ok_serves_both_paths(server, issuer):
    """Mode ok serves the JWKS on /.well-known/jwks.json and /v1/jwks, and 404 elsewhere."""
    assert server.url.startswith("http://127.0.0.1:")
    assert server.url.endswith("/.well-known/jwks.json")
    with httpx.Client(timeout=FAST) as client:
        response = client.get(server.url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == issuer.jwks()
        secret = client.get(server.base_url + "/v1/jwks", headers={"Authorization": "Bearer sk"})
        assert secret.json() == issuer.jwks()
        assert server.last_headers["authorization"] == "Bearer sk"
        assert server.last_path == "/v1/jwks"
        assert client.get(server.base_url + "/other").status_code == 404
    assert server.fetches == 3


def test_server_url_is_accepted_by_guard_config(server, issuer):
    """A GuardConfig may point jwks_url at the loopback server."""
    config = issuer.config(jwks_url=server.url)
    assert config.key_source == "jwks_url"
    assert config.resolved_jwks_url == server.url


@pytest.mark.parametrize(
    ("mode", "status", "body"),
    [
        ("error", 500, None),
        ("empty", 200, {"keys": []}),
    ],
)
def test_server_simple_failure_modes(server, mode, status, body):
    """Modes error and empty answer 500 and an empty key set."""
    server.mode = mode
    with httpx.Client(timeout=FAST) as client:
        response = client.get(server.url)
    assert response.status_code == status
    if body is not None:
        assert response.json() == body


def test_server_garbage(server):
    """Mode garbage answers 200 with a body that is not JSON."""
    server.mode = "garbage"
    with httpx.Client(timeout=FAST) as client:
        response = client.get(server.url)
    assert response.status_code == 200
    with pytest.raises(ValueError):  # JSONDecodeError or UnicodeDecodeError
        json.loads(response.content)


def test_server_not_object(server, issuer):
    """Mode not-object answers 200 with a JSON list."""
    server.mode = "not-object"
    with httpx.Client(timeout=FAST) as client:
        response = client.get(server.url)
    assert response.status_code == 200
    assert response.json() == issuer.jwks()["keys"]


def test_server_slow_answers_after_delay(server, issuer):
    """Mode slow answers with the JWKS after the delay, or times out a short read timeout."""
    server.mode = "slow"
    with httpx.Client(timeout=FAST) as client:
        assert client.get(server.url).json() == issuer.jwks()
    server.delay = 10
    with (
        httpx.Client(timeout=httpx.Timeout(2.0, read=0.1)) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.get(server.url)


def test_server_hang_never_answers(server):
    """Mode hang times out a reader, and closes without an answer after the delay."""
    server.mode = "hang"
    with httpx.Client(timeout=FAST) as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(server.url)
    server.delay = 10
    with (
        httpx.Client(timeout=httpx.Timeout(2.0, read=0.1)) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.get(server.url)


def test_server_drip(server):
    """Mode drip announces a body under any size cap and sends it one byte at a time."""
    server.mode = "drip"
    server.delay = 10
    with httpx.Client(timeout=FAST) as client, client.stream("GET", server.url) as response:
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == 4096
        assert next(response.iter_raw()) == b" "


def test_server_huge(server, issuer):
    """Mode huge answers 200 with a valid JSON body of at least 5 MiB holding the keys."""
    server.mode = "huge"
    with httpx.Client(timeout=httpx.Timeout(10.0)) as client:
        response = client.get(server.url)
    assert response.status_code == 200
    assert len(response.content) >= 5 << 20
    assert response.json()["keys"] == issuer.jwks()["keys"]


def test_server_gzip_bomb(server):
    """Mode gzip-bomb sends a small gzip body that inflates to far more zeros."""
    server.mode = "gzip-bomb"
    with httpx.Client(timeout=FAST) as client, client.stream("GET", server.url) as response:
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join(response.iter_raw())
    assert len(raw) < 1 << 20
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    head = inflater.decompress(raw, 1 << 20)
    assert head == bytes(1 << 20)
    assert inflater.unconsumed_tail  # far more to come
    assert raw[:2] == b"\x1f\x8b"


def test_server_redirect(server, issuer):
    """Mode redirect answers 302 to another URL that serves the keys."""
    server.mode = "redirect"
    with httpx.Client(timeout=FAST) as client:
        response = client.get(server.url)
        assert response.status_code == 302
        location = response.headers["location"]
        assert location.startswith(server.base_url)
        assert location != server.url
        followed = client.get(server.url, follow_redirects=True)
    assert followed.json() == issuer.jwks()
    assert server.fetches == 3


def test_server_reset(server):
    """Mode reset drops the connection without an answer."""
    server.mode = "reset"
    with httpx.Client(timeout=FAST) as client, pytest.raises(httpx.TransportError):
        client.get(server.url)
    assert server.fetches == 1


def test_server_rejects_unknown_mode(server):
    """Setting an unknown mode raises ValueError and keeps the old one."""
    with pytest.raises(ValueError, match="mode"):
        server.mode = "broken"
    assert server.mode == "ok"


@pytest.mark.parametrize("mode", ["slow", "drip", "hang"])
def test_stop_is_prompt_while_a_handler_waits(issuer, mode):
    """stop() returns while a slow, drip or hang handler is mid-request, failing the client."""
    server = JWKSServer(issuer).start()
    server.mode = mode
    server.delay = 60
    errors: list[BaseException] = []
    started = threading.Event()

    def fetch() -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(30.0)) as client:
                started.set()
                client.get(server.url).read()
        except httpx.HTTPError as exc:
            errors.append(exc)

    client_thread = threading.Thread(target=fetch)
    client_thread.start()
    started.wait(5)
    for _ in range(200):  # until the handler holds the request
        if server.fetches:
            break
        threading.Event().wait(0.01)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(20)
    client_thread.join(20)
    assert not stopper.is_alive()
    assert not client_thread.is_alive()
    assert len(errors) == 1
    assert not server_threads()


def test_stop_unblocks_a_silent_client(issuer):
    """stop() returns while a client holds a connection open without sending a request."""
    server = JWKSServer(issuer).start()
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        stopper.join(20)
        assert not stopper.is_alive()


def test_server_lifecycle(issuer):
    """url needs a started server; stop() is idempotent and start() works again after it."""
    server = JWKSServer(issuer)
    with pytest.raises(RuntimeError, match="not started"):
        server.url  # noqa: B018
    with server:
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
        first = server.url
    server.stop()
    with server, httpx.Client(timeout=FAST) as client:
        assert client.get(server.url).status_code == 200
    assert not server_threads()
    assert first.startswith("http://127.0.0.1:")


# --- pytest fixtures -------------------------------------------------------------------------


def test_fixture_issuer_starts_unrotated_a(clerk_issuer):
    """clerk_issuer starts each test with one published key, whatever earlier tests rotated."""
    assert clerk_issuer.kids == (clerk_issuer.kid,)
    clerk_issuer.rotate()


def test_fixture_issuer_starts_unrotated_b(clerk_issuer):
    """clerk_issuer starts each test with one published key (twin of the test above)."""
    assert clerk_issuer.kids == (clerk_issuer.kid,)
    clerk_issuer.rotate(retire_old=True)


def test_fixture_mint_uses_the_issuer(clerk_issuer, clerk_mint):
    """clerk_mint mints tokens signed by clerk_issuer's current key."""
    token = clerk_mint(user_id="user_fixture")
    claims = jwt.decode(token, clerk_issuer.public_pem, algorithms=["RS256"])
    assert claims["sub"] == "user_fixture"
    assert claims["iss"] == clerk_issuer.issuer


def test_fixture_jwks_server_serves_the_issuer(clerk_issuer, clerk_jwks_server):
    """clerk_jwks_server is started and serves clerk_issuer's keys."""
    with httpx.Client(timeout=FAST) as client:
        assert client.get(clerk_jwks_server.url).json() == clerk_issuer.jwks()


def test_module_imports_without_pytest():
    """clerk_guard.testing imports without pytest and then defines no fixtures."""
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "import clerk_guard.testing as t\n"
        "assert t.LocalIssuer and not hasattr(t, 'clerk_issuer')\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
