"""Key fetches over real loopback sockets: the environment's CA and proxies, an SSL context of
the user's, and a key endpoint that fails and recovers, in process and under real uvicorn."""

from __future__ import annotations

import os
import ssl
import time

import certifi
import httpx
import pytest

from clerk_guard import (
    AsyncGuard,
    ConfigurationError,
    Guard,
    KeysUnavailableError,
    TokenInvalidError,
    clear_key_caches,
    error_response,
)
from clerk_guard.testing import JWKSServer
from tests._servers import (
    FlakyJWKSServer,
    ForwardProxy,
    free_port,
    make_tls_files,
    server_process,
)

pytestmark = pytest.mark.anyio

TLS_FAILED = "jwk-remote-tls-failed"
PROXY_FAILED = "jwk-remote-proxy-failed"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A private CA and a server certificate for 127.0.0.1 it signed."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def env(monkeypatch):
    """No proxy and no CA variables from the developer's shell; tests set their own."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            monkeypatch.delenv(name)
    return monkeypatch


async def verify_both(config, token):
    """Verify ``token`` with a fresh Guard, then a fresh AsyncGuard: (user ids, errors)."""
    users, errors = [], []
    with Guard(config) as guard:
        try:
            users.append(guard.verify(token).user_id)
        except KeysUnavailableError as exc:
            errors.append(exc)
    clear_key_caches()  # the async guard fetches for itself
    guard = AsyncGuard(config)
    try:
        users.append((await guard.verify(token)).user_id)
    except KeysUnavailableError as exc:
        errors.append(exc)
    finally:
        await guard.aclose()
    return users, errors


# TLS: SSL_CERT_FILE and ssl_context ----------------------------------------------------------


async def test_ssl_cert_file_trusts_a_private_ca(clerk_issuer, tls, env):
    """A CA given only through SSL_CERT_FILE is trusted by the sync and async key fetch."""
    env.setenv("SSL_CERT_FILE", str(tls.ca))
    with FlakyJWKSServer(clerk_issuer, tls=tls.server_context()) as server:
        assert server.url.startswith("https://127.0.0.1:")
        users, errors = await verify_both(
            clerk_issuer.config(jwks_url=server.url), clerk_issuer.mint()
        )
        assert (users, errors) == (["user_2test", "user_2test"], [])
        assert server.fetches == 2


async def test_without_the_ca_the_fetch_fails_in_tls(clerk_issuer, tls, env):
    """Without SSL_CERT_FILE the same fetch fails as jwk-remote-tls-failed: 503, Retry-After."""
    with FlakyJWKSServer(clerk_issuer, tls=tls.server_context()) as server:
        users, errors = await verify_both(
            clerk_issuer.config(jwks_url=server.url), clerk_issuer.mint()
        )
        assert users == []
        assert [e.code for e in errors] == [TLS_FAILED, TLS_FAILED]
        for error in errors:
            assert "certificate verify failed" in error.message
            response = error_response(error, log=False)
            assert response.status == 503
            assert ("retry-after", "1") in [(k.lower(), v) for k, v in response.headers]
        assert server.fetches == 0  # refused in the handshake, before any request


async def test_ssl_context_setting(clerk_issuer, tls, env):
    """GuardConfig(ssl_context=...) trusts what it loads, and takes precedence over
    SSL_CERT_FILE: a context without the CA fails even when SSL_CERT_FILE names it."""
    with FlakyJWKSServer(clerk_issuer, tls=tls.server_context()) as server:
        config = clerk_issuer.config(jwks_url=server.url, ssl_context=tls.client_context())
        users, errors = await verify_both(config, clerk_issuer.mint())
        assert (users, errors) == (["user_2test", "user_2test"], [])
        clear_key_caches()
        env.setenv("SSL_CERT_FILE", str(tls.ca))
        public_only = ssl.create_default_context(cafile=certifi.where())
        config = clerk_issuer.config(jwks_url=server.url, ssl_context=public_only)
        users, errors = await verify_both(config, clerk_issuer.mint())
        assert users == []
        assert [e.code for e in errors] == [TLS_FAILED, TLS_FAILED]


def test_ssl_context_must_verify(clerk_issuer):
    """An ssl_context that skips verification, or is not a context, is refused at start-up."""
    lax = ssl.create_default_context()
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    for value in (lax, "ca.pem", True):
        with pytest.raises(ConfigurationError) as info:
            clerk_issuer.config(ssl_context=value)
        assert info.value.field == "ssl_context"


def test_unreadable_ssl_cert_file_is_a_configuration_error(clerk_issuer, env, tmp_path):
    """SSL_CERT_FILE naming a file that holds no certificates fails when the guard is built,
    as a ConfigurationError that names the variable (not an ssl error)."""
    bad = tmp_path / "not-a-bundle.pem"
    bad.write_text("not a certificate\n")
    env.setenv("SSL_CERT_FILE", str(bad))
    with pytest.raises(ConfigurationError, match="SSL_CERT_FILE"):
        Guard(clerk_issuer.config(jwks_url="https://127.0.0.1:1/jwks"))


# Proxies: HTTP_PROXY, HTTPS_PROXY, NO_PROXY --------------------------------------------------


async def test_http_proxy_carries_the_key_fetch(clerk_issuer, env):
    """With HTTP_PROXY set, the sync and async key fetches go through the proxy."""
    with FlakyJWKSServer(clerk_issuer) as server, ForwardProxy() as proxy:
        env.setenv("HTTP_PROXY", proxy.url)
        users, errors = await verify_both(
            clerk_issuer.config(jwks_url=server.url), clerk_issuer.mint()
        )
        assert (users, errors) == (["user_2test", "user_2test"], [])
        assert proxy.seen == [("GET", server.url)] * 2
        assert server.fetches == 2


async def test_https_proxy_tunnels_to_a_private_ca(clerk_issuer, tls, env):
    """With HTTPS_PROXY and SSL_CERT_FILE, the fetch tunnels (CONNECT) and trusts the CA."""
    with FlakyJWKSServer(clerk_issuer, tls=tls.server_context()) as server, ForwardProxy() as proxy:
        env.setenv("HTTPS_PROXY", proxy.url)
        env.setenv("SSL_CERT_FILE", str(tls.ca))
        users, errors = await verify_both(
            clerk_issuer.config(jwks_url=server.url), clerk_issuer.mint()
        )
        assert (users, errors) == (["user_2test", "user_2test"], [])
        assert proxy.seen == [("CONNECT", f"127.0.0.1:{server.port}")] * 2


async def test_no_proxy_bypasses_the_proxy(clerk_issuer, env):
    """A host in NO_PROXY is fetched directly, the proxy untouched."""
    with FlakyJWKSServer(clerk_issuer) as server, ForwardProxy() as proxy:
        env.setenv("HTTP_PROXY", proxy.url)
        env.setenv("NO_PROXY", "example.test, 127.0.0.1")
        users, errors = await verify_both(
            clerk_issuer.config(jwks_url=server.url), clerk_issuer.mint()
        )
        assert (users, errors) == (["user_2test", "user_2test"], [])
        assert proxy.seen == []
        assert server.fetches == 2


async def test_unreachable_proxy_is_named(clerk_issuer, env):
    """A proxy nothing listens on: jwk-remote-proxy-failed, naming the proxy (503)."""
    proxy = f"http://127.0.0.1:{free_port()}"
    env.setenv("HTTP_PROXY", proxy)
    with FlakyJWKSServer(clerk_issuer) as server:
        users, errors = await verify_both(
            clerk_issuer.config(jwks_url=server.url), clerk_issuer.mint()
        )
        assert users == []
        assert [e.code for e in errors] == [PROXY_FAILED, PROXY_FAILED]
        assert all(proxy in e.message for e in errors)
        assert server.fetches == 0


async def test_proxy_refusing_the_tunnel_is_named(clerk_issuer, tls, env):
    """A proxy answering 403 to CONNECT: jwk-remote-proxy-failed with its answer."""
    with (
        FlakyJWKSServer(clerk_issuer, tls=tls.server_context()) as server,
        ForwardProxy(refuse=True) as proxy,
    ):
        env.setenv("HTTPS_PROXY", proxy.url)
        env.setenv("SSL_CERT_FILE", str(tls.ca))
        users, errors = await verify_both(
            clerk_issuer.config(jwks_url=server.url), clerk_issuer.mint()
        )
        assert users == []
        assert [e.code for e in errors] == [PROXY_FAILED, PROXY_FAILED]
        assert all("403" in e.message for e in errors)


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("redirect", "jwk-remote-failed-to-load"),
        ("gzip-bomb", "jwk-remote-invalid"),
        ("huge", "jwk-remote-invalid"),
    ],
)
async def test_caps_hold_through_a_proxy(clerk_issuer, env, mode, code):
    """Through a proxy, redirects are still not followed, and compressed or huge bodies
    still refused."""
    with JWKSServer(clerk_issuer) as server, ForwardProxy() as proxy:
        server.mode = mode
        env.setenv("HTTP_PROXY", proxy.url)
        users, errors = await verify_both(
            clerk_issuer.config(jwks_url=server.url, jwks_timeout=3), clerk_issuer.mint()
        )
        assert users == []
        assert [e.code for e in errors] == [code, code]
        assert [method for method, _ in proxy.seen] == ["GET", "GET"]
        assert server.fetches == 2  # the redirect target was never asked


def test_unusable_proxy_variable_fails_at_start_up(clerk_issuer, env):
    """A proxy URL httpx cannot use fails when the guard is built (sync and async), as a
    ConfigurationError naming the variables, its password masked."""
    env.setenv("HTTPS_PROXY", "ftp://user:hunter2@proxy.example.test:21")
    for kind in (Guard, AsyncGuard):
        with pytest.raises(ConfigurationError) as info:
            kind(clerk_issuer.config())
        assert "HTTPS_PROXY" in info.value.message
        assert "hunter2" not in info.value.message


async def test_a_transport_of_the_users_is_used_as_is(clerk_issuer, env):
    """A transport handed over is used as it is: the environment's proxy does not apply."""
    env.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")
    with Guard(clerk_issuer.config(), transport=clerk_issuer.transport()) as guard:
        assert guard.verify(clerk_issuer.mint()).user_id == "user_2test"
    clear_key_caches()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=clerk_issuer.jwks()))
    guard = AsyncGuard(clerk_issuer.config(), transport=transport)
    assert (await guard.verify(clerk_issuer.mint())).user_id == "user_2test"
    await guard.aclose()


# A key endpoint that fails, then recovers ----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_new_kid_while_the_real_endpoint_fails_then_recovers(clerk_issuer, env):
    """Against a real endpoint (500, then connection refused, then serving again): a token of
    a newly rotated key is 503 with Retry-After while the set cannot be refreshed, and is
    accepted within jwks_max_backoff (10 s, on the injected clock) once the endpoint serves."""
    clock = Clock()
    with (
        FlakyJWKSServer(clerk_issuer) as server,
        Guard(clerk_issuer.config(jwks_url=server.url, clock=clock)) as guard,
    ):
        guard.verify(clerk_issuer.mint(now=clock.now))
        server.mode = "error"
        clerk_issuer.rotate()
        clock.now += 31
        new = clerk_issuer.mint(now=clock.now, user_id="user_rotated", lifetime=120)
        with pytest.raises(KeysUnavailableError) as info:
            guard.verify(new)
        assert info.value.retry_after == 1
        assert server.fetches == 2
        server.mode = "down"
        for _ in range(6):  # connection refused, the back-off growing to its bound
            clock.now += info.value.retry_after
            with pytest.raises(KeysUnavailableError) as info:
                guard.verify(new)
            assert info.value.code == "jwk-remote-failed-to-load"
            assert info.value.retry_after <= 10
        assert info.value.retry_after == 10
        server.mode = "ok"
        clock.now += 10
        assert guard.verify(new).user_id == "user_rotated"
        assert server.fetches == 3
        with pytest.raises(TokenInvalidError):  # recovered: an unknown kid is 401 again
            guard.verify(clerk_issuer.mint(now=clock.now, headers={"kid": "ins_forged"}))


@pytest.mark.integration
def test_new_kid_during_an_outage_under_uvicorn(clerk_issuer, env):
    """Under real uvicorn (real clock, 1-s cooldown and back-off cap): while the endpoint
    fails a token of a new key gets 503 with Retry-After (the old key keeps working), and
    once the endpoint serves again it gets 200 within the back-off bound."""
    pytest.importorskip("uvicorn")
    bound = 1.0  # the app's jwks_max_backoff
    with FlakyJWKSServer(clerk_issuer) as jwks:
        port = free_port()
        app_env = {
            "CLERK_PUBLISHABLE_KEY": clerk_issuer.publishable_key,
            "CLERK_JWKS_URL": jwks.url,
        }
        for name in ("CLERK_SECRET_KEY", "CLERK_JWT_KEY", "CLERK_PEM_PUBLIC_KEY", "CLERK_ISSUER"):
            app_env[name] = ""
        args = ["uvicorn", "tests._outage_app:app", "--host", "127.0.0.1", "--port", str(port)]
        args += ["--log-level", "warning", "--lifespan", "off"]
        with (
            server_process(args, port=port, env=app_env) as base,
            httpx.Client(base_url=base, timeout=10, trust_env=False) as client,
        ):

            def me(token):
                return client.get("/me", headers={"Authorization": f"Bearer {token}"})

            old = clerk_issuer.mint()
            assert me(old).status_code == 200
            fetched = time.monotonic()
            jwks.mode = "error"
            clerk_issuer.rotate()
            new = clerk_issuer.mint(user_id="user_rotated")
            time.sleep(max(0.0, fetched + 1.05 - time.monotonic()))  # the 1-s cooldown
            response = me(new)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.json()["error"] == "Service Unavailable"
            fetches = jwks.fetches
            for _ in range(10):  # inside the back-off: 503 from the cache, no fetch
                assert me(new).status_code == 503
            assert jwks.fetches <= fetches + 1
            assert me(old).status_code == 200  # the cached key keeps serving
            jwks.mode = "down"
            time.sleep(bound)
            response = me(new)
            assert response.status_code == 503
            assert 1 <= int(response.headers["retry-after"]) <= bound

            jwks.mode = "ok"
            recovered = time.monotonic()
            statuses = []
            while time.monotonic() - recovered < bound + 3:  # bounded: bound plus slack
                response = me(new)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    break
                assert response.status_code == 503
                time.sleep(0.1)
            assert statuses[-1] == 200, statuses
            assert response.json() == {"user_id": "user_rotated"}
            assert time.monotonic() - recovered <= bound + 1.5
