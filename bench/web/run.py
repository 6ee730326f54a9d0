"""Web benchmark: requests per second through real servers, with and without clerk-guard.

Run from the repository root (needs ``pip install -r bench/requirements.txt`` and ``wrk``:
``apt-get install -y wrk``)::

    python bench/web/run.py                  # every framework: ASGI, Flask, Django (~20 min)
    python bench/web/run.py --quick          # smoke run: 1 round of 2 s, fewer tokens
    python bench/web/run.py --only flask     # one framework: asgi, flask or django
    python bench/web/run.py --write          # full run, then rewrite the "Web frameworks"
                                             # section of bench/README.md
    python bench/web/run.py --profile starlette-guard   # where a variant's time goes (py-spy)

Every variant is one server process (uvicorn, with uvloop and httptools or pure Python, or
gunicorn's default sync worker; one worker) on 127.0.0.1 serving
``GET /me`` (apps in ``bench/web/apps/``), loaded by ``wrk`` on the same machine with a fixed
number of connections. The harness mints the tokens, serves the key set from a real loopback
JWKS server (``clerk_guard.testing.JWKSServer``) and starts and stops every server itself; each
measured run gets a fresh server, which first passes a correctness check (a valid token gets
200 and its user id, a forged and a missing token are refused) and a 1 s warm-up.

Token modes:

``repeated``
    every request sends the same token (a browser session between refreshes).
``unique``
    every request sends a different valid token, so no verification cache can help: each token
    is verified once per run (the server is fresh each run and its cache, 4,096 entries, is far
    smaller than the list). The list is long enough that a run does not wrap; the report says
    so if one did.

Variants are interleaved: in every round each variant of a framework runs once, the order
rotating from round to round. The report gives medians over the rounds and ratios to the
framework's bare app (the ceiling), measured in the same rounds. The machine is shared: compare
ratios, not absolute rates.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import http.client
import importlib.metadata
import importlib.util
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
README = HERE.parent / "README.md"
LUA = HERE / "tokens.lua"
sys.path.insert(0, str(ROOT))  # clerk_guard, when run from a checkout without installing

from clerk_guard.testing import JWKSServer, LocalIssuer  # noqa: E402

SECTION = "## Web frameworks"
BEGIN = "<!-- web:start -->"
END = "<!-- web:end -->"
README_INTRO = (
    "# Benchmarks\n\n"
    "Each section says how to reproduce its numbers. The machine these ran on is shared and noisy: "
    "compare ratios measured in the same run, not absolute rates.\n"
)
COMMAND = "python bench/web/run.py --write"

AZP = "http://localhost:3000"
USER_ID = "user_2benchWebFrameworks"
#: Token lifetime: longer than any run (minting included).
LIFETIME = 4 * 3600
DURATION = 5.0
WARMUP = 1.0
CONNECTIONS = 32
WRK_THREADS = 1
ROUNDS = 5
UNIQUE_TOKENS = 60_000
QUICK_ROUNDS, QUICK_DURATION, QUICK_TOKENS = 1, 2.0, 8_000
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
#: uvicorn's two stacks: ``standard`` is what ``pip install "uvicorn[standard]"`` (and
#: ``fastapi[standard]``) runs, uvloop and httptools; ``pure`` is plain ``pip install uvicorn``.
UVICORN_STACKS = {"standard": ("uvloop", "httptools"), "pure": ("asyncio", "h11")}
#: gunicorn's default worker: one request at a time, one connection per request.
GUNICORN_ARGS = ("--workers", "1", "--worker-class", "sync")

# Targets (issues 3, 4 and 5): (group, variant, reference, minimum ratio, label); a minimum of
# None is a comparison reported without a verdict.
TARGETS: tuple[tuple[str, str, str, float | None, str], ...] = (
    ("asgi", "starlette-guard", "starlette-bare", 0.85, "Starlette + clerk-guard, repeated token"),
    ("asgi", "starlette-guard-unique", "starlette-bare", 0.5, "Starlette + clerk-guard, unique"),
    (
        "asgi",
        "starlette-guard",
        "starlette-sdk",
        3.0,
        "Starlette: clerk-guard vs clerk-backend-api",
    ),
    (
        "asgi-pure",
        "starlette-guard",
        "starlette-bare",
        0.85,
        "pure-Python uvicorn: Starlette + clerk-guard, repeated token",
    ),
    (
        "asgi-pure",
        "starlette-guard-unique",
        "starlette-bare",
        0.5,
        "pure-Python uvicorn: Starlette + clerk-guard, unique",
    ),
    (
        "asgi-pure",
        "starlette-guard",
        "starlette-sdk",
        3.0,
        "pure-Python uvicorn: Starlette, clerk-guard vs clerk-backend-api",
    ),
    ("flask", "flask-guard", "flask-bare", 0.9, "Flask + clerk-guard, repeated token"),
    ("flask", "flask-guard", "flask-sdk", 2.0, "Flask: clerk-guard vs clerk-backend-api"),
    ("django-wsgi", "django-guard", "django-bare", 0.9, "Django WSGI + clerk-guard, repeated"),
    ("django-asgi", "django-guard", "django-bare", 0.9, "Django ASGI + clerk-guard, repeated"),
    (
        "asgi",
        "starlette-guard-unique",
        "starlette-sdk",
        None,
        "Starlette: clerk-guard unique vs clerk-backend-api",
    ),
    ("asgi", "fastapi-guard", "fastapi-bare", None, "FastAPI + clerk-guard, repeated"),
    ("asgi", "fastapi-guard-unique", "fastapi-bare", None, "FastAPI + clerk-guard, unique"),
    (
        "asgi",
        "fastapi-guard",
        "fastapi-clerk-auth",
        None,
        "FastAPI: clerk-guard vs fastapi-clerk-auth",
    ),
    ("flask", "flask-guard-unique", "flask-bare", None, "Flask + clerk-guard, unique"),
    (
        "flask",
        "flask-guard-unique",
        "flask-sdk",
        None,
        "Flask: clerk-guard unique vs clerk-backend-api",
    ),
    (
        "django-wsgi",
        "django-guard",
        "django-sdk",
        None,
        "Django WSGI: clerk-guard vs clerk-backend-api",
    ),
    (
        "django-asgi",
        "django-guard",
        "django-sdk",
        None,
        "Django ASGI: clerk-guard vs clerk-backend-api",
    ),
)


# Variants -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Variant:
    """One app under one server with one token mode."""

    key: str
    label: str
    server: str  # "uvicorn" or "gunicorn"
    target: str  # the app: "module:factory" (uvicorn --factory), "module:app", gunicorn spec
    tokens: str = "repeated"  # or "unique"
    authenticated: bool = True  # False: the bare ceiling (no token check)
    refusal: int = 401  # status for a forged or missing token
    factory: bool = False
    lifespan: str = "on"
    env: tuple[tuple[str, str], ...] = ()
    stack: str = "standard"  # uvicorn only: a key of UVICORN_STACKS


@dataclasses.dataclass(frozen=True)
class Group:
    """A framework under one server: its variants share a bare ceiling."""

    key: str
    title: str
    server_note: str
    variants: tuple[Variant, ...]


def uvicorn_note(stack: str) -> str:
    loop, http = UVICORN_STACKS[stack]
    return f"uvicorn, 1 process, `--loop {loop} --http {http} --no-access-log`"


GUNICORN_NOTE = "gunicorn, 1 worker, its default `sync` worker class"


def groups() -> dict[str, Group]:
    """Every framework group, by key."""
    asgi = "apps.asgi_apps:"
    flask = "apps.flask_apps:create_app('{}')"

    def django(server: str, variant: str, key: str, label: str, **kw: Any) -> Variant:
        env = (
            ("BENCH_DJANGO_VARIANT", variant),
            ("DJANGO_SETTINGS_MODULE", "apps.django_site.settings"),
        )
        if server == "uvicorn":
            return Variant(
                key,
                label,
                "uvicorn",
                "apps.django_site.asgi:application",
                lifespan="off",
                env=env,
                **kw,
            )
        return Variant(key, label, "gunicorn", "apps.django_site.wsgi:application", env=env, **kw)

    def django_variants(server: str) -> tuple[Variant, ...]:
        return (
            django(server, "bare", "django-bare", "bare Django (ceiling)", authenticated=False),
            django(
                server, "guard", "django-guard", "clerk_guard.django middleware, repeated token"
            ),
            django(
                server,
                "guard",
                "django-guard-unique",
                "clerk_guard.django middleware, unique tokens",
                tokens="unique",
            ),
            django(
                server,
                "sdk",
                "django-sdk",
                "clerk-backend-api `authenticate_request` middleware, repeated token",
            ),
        )

    asgi_variants = (
        Variant(
            "starlette-bare",
            "bare Starlette (ceiling)",
            "uvicorn",
            asgi + "starlette_bare",
            authenticated=False,
            factory=True,
        ),
        Variant(
            "starlette-guard",
            "Starlette + `ClerkGuardMiddleware`, repeated token",
            "uvicorn",
            asgi + "starlette_guard",
            factory=True,
        ),
        Variant(
            "starlette-guard-unique",
            "Starlette + `ClerkGuardMiddleware`, unique tokens",
            "uvicorn",
            asgi + "starlette_guard",
            tokens="unique",
            factory=True,
        ),
        Variant(
            "starlette-sdk",
            "Starlette + clerk-backend-api `authenticate_request_async`, repeated",
            "uvicorn",
            asgi + "starlette_clerk_sdk",
            factory=True,
        ),
        Variant(
            "fastapi-bare",
            "bare FastAPI",
            "uvicorn",
            asgi + "fastapi_bare",
            authenticated=False,
            factory=True,
        ),
        Variant(
            "fastapi-guard",
            "FastAPI + clerk-guard `ClerkAuth` dependency, repeated",
            "uvicorn",
            asgi + "fastapi_guard",
            factory=True,
        ),
        Variant(
            "fastapi-guard-unique",
            "FastAPI + clerk-guard `ClerkAuth` dependency, unique tokens",
            "uvicorn",
            asgi + "fastapi_guard",
            tokens="unique",
            factory=True,
        ),
        Variant(
            "fastapi-clerk-auth",
            "FastAPI + fastapi-clerk-auth, repeated token",
            "uvicorn",
            asgi + "fastapi_clerk_auth",
            refusal=403,
            factory=True,
        ),
    )
    return {
        "asgi": Group(
            "asgi",
            "ASGI: Starlette and FastAPI, uvicorn[standard]",
            uvicorn_note("standard"),
            asgi_variants,
        ),
        # The same Starlette variants under plain `pip install uvicorn`: a slower server, so
        # the same verifier weighs less against it, and the other library's more.
        "asgi-pure": Group(
            "asgi-pure",
            "ASGI: Starlette, pure-Python uvicorn",
            uvicorn_note("pure"),
            tuple(
                dataclasses.replace(variant, stack="pure")
                for variant in asgi_variants
                if variant.key.startswith("starlette-")
            ),
        ),
        "flask": Group(
            "flask",
            "Flask",
            GUNICORN_NOTE,
            (
                Variant(
                    "flask-bare",
                    "bare Flask (ceiling)",
                    "gunicorn",
                    flask.format("bare"),
                    authenticated=False,
                ),
                Variant(
                    "flask-guard",
                    "Flask + `@clerk_required`, repeated token",
                    "gunicorn",
                    flask.format("guard"),
                ),
                Variant(
                    "flask-guard-unique",
                    "Flask + `@clerk_required`, unique tokens",
                    "gunicorn",
                    flask.format("guard"),
                    tokens="unique",
                ),
                Variant(
                    "flask-sdk",
                    "Flask + clerk-backend-api `authenticate_request` (before_request), repeated",
                    "gunicorn",
                    flask.format("sdk"),
                ),
            ),
        ),
        "django-wsgi": Group(
            "django-wsgi", "Django under WSGI", GUNICORN_NOTE, django_variants("gunicorn")
        ),
        "django-asgi": Group(
            "django-asgi", "Django under ASGI", uvicorn_note("standard"), django_variants("uvicorn")
        ),
    }


ONLY = {
    "asgi": ("asgi", "asgi-pure"),
    "flask": ("flask",),
    "django": ("django-wsgi", "django-asgi"),
}


# Tokens ---------------------------------------------------------------------------------------

_ISSUER: LocalIssuer | None = None
_NOW = 0.0


def _mint_range(bounds: tuple[int, int]) -> list[str]:
    assert _ISSUER is not None
    return [
        _ISSUER.mint(
            user_id=USER_ID,
            session_id=f"sess_bench{i:07d}",
            version=2,
            lifetime=LIFETIME,
            now=_NOW,
            azp=AZP,
        )
        for i in range(*bounds)
    ]


def mint_unique(issuer: LocalIssuer, count: int) -> list[str]:
    """``count`` distinct valid tokens (distinct ``sid``), minted on two processes."""
    global _ISSUER, _NOW
    _ISSUER, _NOW = issuer, time.time()
    step = 1000
    chunks = [(start, min(start + step, count)) for start in range(0, count, step)]
    with multiprocessing.get_context("fork").Pool(min(2, os.cpu_count() or 1)) as pool:
        tokens = [token for chunk in pool.map(_mint_range, chunks) for token in chunk]
    if len(set(tokens)) != count:
        raise RuntimeError("minted tokens are not all distinct")
    return tokens


# Servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(variant: Variant, port: int) -> list[str]:
    if variant.server == "uvicorn":
        loop, parser = UVICORN_STACKS[variant.stack]
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            variant.target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            loop,
            "--http",
            parser,
            "--lifespan",
            variant.lifespan,
            "--timeout-graceful-shutdown",
            "5",
        ]
        if variant.factory:
            command.append("--factory")
        return command
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        *GUNICORN_ARGS,
        "--log-level",
        "warning",
        "--graceful-timeout",
        "5",
        "--no-control-socket",
        variant.target,
    ]


def request(port: int, token: str | None) -> tuple[int, bytes]:
    """One ``GET /me`` on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        connection.request("GET", "/me", headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def running(variant: Variant, env: dict[str, str], logdir: Path) -> Iterator[tuple[int, int]]:
    """Start the variant's server on a free loopback port, wait for it, stop it afterwards.

    Yields the port and the server's process id.
    """
    port = free_port()
    log = (logdir / f"{variant.key}.log").open("ab")
    full_env = {
        **os.environ,
        **env,
        **dict(variant.env),
        # Ours first; a PYTHONPATH given to the harness (e.g. extra servers' packages) after.
        "PYTHONPATH": os.pathsep.join(
            [str(HERE), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    full_env.pop("PYTHONDEVMODE", None)
    process = subprocess.Popen(
        server_command(variant, port),
        cwd=HERE,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{variant.key}: server exited with {process.returncode}; see {log.name}"
                )
            try:
                request(port, None)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{variant.key}: server did not start in time") from None
                time.sleep(0.1)
        yield port, process.pid
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (ours: start_new_session), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)


def check(variant: Variant, port: int, good: str, forged: str) -> None:
    """A valid token gets 200 and its user id; a forged and a missing token are refused."""
    status, body = request(port, good)
    expected = USER_ID if variant.authenticated else "anonymous"
    if status != 200:
        raise RuntimeError(f"{variant.key}: valid token got {status}: {body[:200]!r}")
    user = json.loads(body).get("user_id")
    if user != expected:
        raise RuntimeError(f"{variant.key}: valid token gave user_id {user!r}, not {expected!r}")
    if not variant.authenticated:
        return
    for name, token in (("forged", forged), ("missing", None)):
        status, body = request(port, token)
        if status != variant.refusal:
            raise RuntimeError(
                f"{variant.key}: {name} token got {status}, not {variant.refusal}: {body[:200]!r}"
            )


# wrk ------------------------------------------------------------------------------------------


def wrk_version() -> str:
    result = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    first = (result.stdout or result.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "wrk"


def run_wrk(
    port: int, tokens_file: Path, seconds: float, connections: int, threads: int
) -> dict[str, Any]:
    """Load ``GET /me`` for ``seconds``; wrk's counts and latency percentiles (tokens.lua)."""
    env = {**os.environ, "BENCH_TOKENS": str(tokens_file), "BENCH_WRK_THREADS": str(threads)}
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}/me",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60)
    match = re.search(r"^WRKJSON (\{.*\})$", result.stdout, re.M)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    data: dict[str, Any] = json.loads(match.group(1))
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["socket_errors"] = sum(
        data[name] for name in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return data


# Measurement ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Settings:
    rounds: int
    duration: float
    connections: int
    threads: int
    tokens: int
    quick: bool


def measure(
    group: Group,
    settings: Settings,
    env: dict[str, str],
    files: dict[str, Path],
    good: str,
    forged: str,
    logdir: Path,
) -> dict[str, list[dict[str, Any]]]:
    """Every variant of ``group``, ``settings.rounds`` times, interleaved (rotating order)."""
    results: dict[str, list[dict[str, Any]]] = {v.key: [] for v in group.variants}
    variants = list(group.variants)
    for round_index in range(settings.rounds):
        shift = round_index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            with running(variant, env, logdir) as (port, _):
                check(variant, port, good, forged)
                run_wrk(port, files["repeated"], WARMUP, settings.connections, settings.threads)
                data = run_wrk(
                    port,
                    files[variant.tokens],
                    settings.duration,
                    settings.connections,
                    settings.threads,
                )
            results[variant.key].append(data)
            print(
                f"  [{group.key} round {round_index + 1}/{settings.rounds}] "
                f"{variant.key:24} {data['rps']:8.0f} req/s  p50 {data['p50_us'] / 1000:6.2f} ms"
                f"  p99 {data['p99_us'] / 1000:6.2f} ms  non-2xx {data['status_errors']}"
                f"  socket errors {data['socket_errors']}"
                + (
                    f"  WRAPPED x{data['wraps']}"
                    if variant.tokens == "unique" and data["wraps"]
                    else ""
                ),
                flush=True,
            )
    return results


@dataclasses.dataclass
class Summary:
    rps: float
    rps_min: float
    rps_max: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    wraps: int
    runs: int


def summarize(runs: Sequence[dict[str, Any]]) -> Summary:
    return Summary(
        rps=statistics.median(r["rps"] for r in runs),
        rps_min=min(r["rps"] for r in runs),
        rps_max=max(r["rps"] for r in runs),
        p50_ms=statistics.median(r["p50_us"] for r in runs) / 1000,
        p99_ms=statistics.median(r["p99_us"] for r in runs) / 1000,
        non_2xx=sum(r["status_errors"] for r in runs),
        socket_errors=sum(r["socket_errors"] for r in runs),
        wraps=max(r["wraps"] for r in runs),
        runs=len(runs),
    )


def bare_key(group: Group, variant: Variant) -> str:
    """The ceiling a variant is compared with: FastAPI variants with bare FastAPI."""
    prefix = variant.key.split("-")[0]
    for candidate in group.variants:
        if not candidate.authenticated and candidate.key.startswith(prefix):
            return candidate.key
    return next(v.key for v in group.variants if not v.authenticated)


# Report ---------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    names = (
        "clerk-guard",
        "uvicorn",
        "gunicorn",
        "starlette",
        "fastapi",
        "Flask",
        "Werkzeug",
        "Django",
        "asgiref",
        "clerk-backend-api",
        "fastapi-clerk-auth",
        "PyJWT",
        "cryptography",
        "h11",
        "httptools",
        "uvloop",
    )
    found = {"Python": platform.python_version()}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    found["wrk"] = wrk_version().removeprefix("wrk ").strip()
    return found


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = os.cpu_count()
    return f"{platform.system()} {platform.machine()}, {cores} cores (shared)" + (
        f", {model}" if model else ""
    )


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return ", ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


def fmt_rps(value: float) -> str:
    return f"{value:,.0f}"


def render(
    all_groups: dict[str, Group],
    results: dict[str, dict[str, list[dict[str, Any]]]],
    settings: Settings,
    when: str,
    versions_found: dict[str, str],
    target_rows: list[TargetRow],
    load: tuple[str, str],
) -> str:
    lines: list[str] = []
    add = lines.append
    add(
        f"Command: `{COMMAND}` (smoke run: `python bench/web/run.py --quick`; one framework: "
        "`--only asgi|flask|django`). Date: " + when + "."
    )
    add("")
    add(
        f"Machine: {machine()}. **wrk and the server run on the same machine**, over "
        "loopback, so they compete for the two cores; absolute rates are low and noisy, the "
        "ratios to each framework's bare app (measured in the same rounds) are the result. "
        f"Load averages (1, 5, 15 min) at the start: {load[0]}; at the end: {load[1]}."
    )
    add("")
    add("Versions: " + ", ".join(f"{k} {v}" for k, v in versions_found.items()) + ".")
    add("")
    add("Method:")
    add("")
    add(
        f"- Load: `wrk -t{settings.threads} -c{settings.connections} -d{settings.duration:g}s "
        f"--latency -s bench/web/tokens.lua`, {settings.rounds} rounds; in each round every "
        "variant runs once, the order rotating from round to round. Each run gets a fresh "
        f"server process, a correctness check and a {WARMUP:g} s warm-up. Tables give the median "
        "req/s over the rounds (min-max in brackets) and the median of the runs' p50 and p99 "
        "latencies. *added us/req* = 1e6/rate - 1e6/bare rate: the wall time the "
        "authentication adds to each request at saturation (the server shares the CPU with wrk, "
        "so it is not pure CPU time, but it compares the libraries in the same conditions)."
    )
    add(
        f"- Servers: ASGI apps under uvicorn {versions_found.get('uvicorn', '')}, 1 process, "
        "with uvloop and httptools (what `uvicorn[standard]` and `fastapi[standard]` install); "
        "the Starlette variants again under plain `uvicorn` (asyncio and the pure-Python h11 "
        f"parser). WSGI apps under gunicorn {versions_found.get('gunicorn', '')}, 1 worker of "
        "its default `sync` class (one request at a time; it closes each connection, so wrk "
        "reconnects for every request)."
    )
    add(
        '- Route: `GET /me` returning `{"user_id": ...}`. Every variant (the bare ones too) '
        "receives the same requests, with an `Authorization: Bearer` header."
    )
    add(
        "- Keys: clerk-guard and fastapi-clerk-auth fetch the JWKS from a real loopback server "
        "(`clerk_guard.testing.JWKSServer`) on their first request (the correctness check); "
        "clerk-backend-api gets the PEM key (`jwt_key`), its networkless mode: its JWKS mode "
        "only reaches api.clerk.com. clerk-guard and clerk-backend-api check `azp` against "
        f"`{AZP}`."
    )
    add(
        "- Correctness, before each measured run: a valid token gets 200 and its user id, a "
        "forged token (another key, same `kid`) and a missing token get 401 "
        "(fastapi-clerk-auth answers 403, its own behaviour). The `non-2xx` column counts wrk's "
        "non-2xx answers summed over the measured runs; it must be 0."
    )
    add(
        f"- Tokens: *repeated* = one token for every request. *unique* = {settings.tokens:,} "
        "distinct valid tokens (Clerk v2 claims, distinct `sid`), each sent once per run, so "
        "every request costs a full verification (the server is fresh each run; clerk-guard's "
        "cache holds 4,096). `wraps` > 0 would mean a run went past the end of the list. "
        "clerk-backend-api and fastapi-clerk-auth have no token cache: repeated or unique makes "
        "no difference to them."
    )
    add("")
    for key, group in all_groups.items():
        if key not in results:
            continue
        summaries = {k: summarize(v) for k, v in results[key].items()}
        add(f"### {group.title}")
        add("")
        add(f"{group.server_note}.")
        add("")
        add(
            "| variant | tokens | req/s (median, min-max) | vs bare | added us/req | p50 ms "
            "| p99 ms | non-2xx | socket errors |"
        )
        add("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for variant in group.variants:
            s = summaries[variant.key]
            ref = summaries[bare_key(group, variant)]
            if variant.authenticated:
                ratio = f"{s.rps / ref.rps:.2f}x"
                added = f"{1e6 / s.rps - 1e6 / ref.rps:,.0f}"
            else:
                ratio, added = "ceiling", "-"
            tokens = variant.tokens if variant.authenticated else "-"
            if variant.tokens == "unique" and s.wraps:
                tokens += f" (wrapped {s.wraps}x)"
            add(
                f"| {variant.label} | {tokens} | {fmt_rps(s.rps)} ({fmt_rps(s.rps_min)}-"
                f"{fmt_rps(s.rps_max)}) | {ratio} | {added} | {s.p50_ms:.2f} | {s.p99_ms:.2f} | "
                f"{s.non_2xx} | {s.socket_errors} |"
            )
        add("")
    if target_rows:
        add("### Targets and comparisons")
        add("")
        add(
            "*measured* = ratio of the median rates (the verdict); *per round* = the same ratio "
            "within each round, median (min-max), which cancels slow drifts of the machine's "
            "load; *bound* = for a comparison with another library, the ratio a verifier costing "
            "nothing would reach (bare / other library), which no implementation can beat on "
            "this server."
        )
        add("")
        add("| target | measured | per round | wanted | bound | result |")
        add("|---|---:|---:|---:|---:|---|")
        for row in target_rows:
            wanted = f">= {row.wanted:g}x" if row.wanted is not None else "-"
            bound = f"{row.bound:.2f}x" if row.bound is not None else "-"
            add(
                f"| {row.label} | {row.measured:.2f}x | {row.round_median:.2f} "
                f"({row.round_min:.2f}-{row.round_max:.2f}) | {wanted} | {bound} | {row.verdict} |"
            )
        add("")
        notes = reading_notes(results, target_rows)
        if notes:
            add("Reading the results:")
            add("")
            lines.extend(f"- {note}" for note in notes)
            add("")
    return "\n".join(lines)


def reading_notes(
    results: dict[str, dict[str, list[dict[str, Any]]]], rows: list[TargetRow]
) -> list[str]:
    """Remarks that follow from the numbers and from how the servers are known to work."""
    notes = []
    for row in rows:
        if row.wanted is None or row.verdict == "PASS":
            continue
        if row.bound is not None and row.bound < row.wanted:
            notes.append(
                f"{row.label}: unreachable on this server. Even a verifier costing nothing would "
                f"reach only {row.bound:.2f}x: the framework and server cost more per request "
                "than the other library's verification does."
            )
        elif row.round_max >= row.wanted:
            notes.append(
                f"{row.label}: the per-round ratios ({row.round_min:.2f}-{row.round_max:.2f}) "
                "straddle the target; the miss is within this machine's noise."
            )
    if "asgi" in results and "asgi-pure" in results:
        fast = 1e6 / summarize(results["asgi"]["starlette-bare"]).rps
        slow = 1e6 / summarize(results["asgi-pure"]["starlette-bare"]).rps
        notes.append(
            f"The two uvicorn stacks pull the ratios apart: bare Starlette costs {fast:.0f} us "
            f"per request at saturation under uvloop + httptools and {slow:.0f} us under asyncio "
            "+ h11. The same verifier cost weighs more against the faster server (the ratios "
            "to bare fall) and the other library's cost weighs more too (the ratio to it "
            "rises), so a target on one side is easier on one stack and harder on the other."
        )
    if "django-asgi" in results:
        notes.append(
            "Django under ASGI: Django's ASGIHandler runs each request's synchronous parts "
            "(request signals, response close) on a thread of its own (asgiref's "
            "ThreadSensitiveContext), started and joined per request, so the server spends "
            "most of its time waiting for threads (py-spy finds it mostly idle at saturation) and "
            "its rate swings with the machine's load. Its ratios are the least precise here."
        )
    return notes


@dataclasses.dataclass
class TargetRow:
    label: str
    measured: float
    round_median: float
    round_min: float
    round_max: float
    wanted: float | None
    bound: float | None

    @property
    def verdict(self) -> str:
        if self.wanted is None:
            return "(comparison)"
        return "PASS" if self.measured >= self.wanted else "FAIL"


def evaluate(results: dict[str, dict[str, list[dict[str, Any]]]]) -> list[TargetRow]:
    """Every target and comparison whose framework ran."""
    rows = []
    for group, variant, reference, wanted, label in TARGETS:
        if group not in results:
            continue
        runs, reference_runs = results[group][variant], results[group][reference]
        measured = summarize(runs).rps / summarize(reference_runs).rps
        per_round = [a["rps"] / b["rps"] for a, b in zip(runs, reference_runs, strict=True)]
        bound = None
        if not reference.endswith("-bare"):
            bare = next(
                k
                for k in results[group]
                if k.endswith("-bare") and k.split("-")[0] == variant.split("-")[0]
            )
            bound = summarize(results[group][bare]).rps / summarize(reference_runs).rps
        rows.append(
            TargetRow(
                f"{label} ({variant} / {reference})",
                measured,
                statistics.median(per_round),
                min(per_round),
                max(per_round),
                wanted,
                bound,
            )
        )
    return rows


def write_readme(generated: str) -> None:
    """Put ``generated`` between this script's markers under "## Web frameworks"."""
    block = f"{BEGIN}\n{generated.strip()}\n{END}"
    text = README.read_text(encoding="utf-8") if README.exists() else README_INTRO
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    elif SECTION in text:
        text = text.replace(SECTION, f"{SECTION}\n\n{block}\n", 1)
    else:
        text = f"{text.rstrip()}\n\n{SECTION}\n\n{block}\n"
    README.write_text(text.rstrip() + "\n", encoding="utf-8")
    print(f"wrote {README}")


# Profile --------------------------------------------------------------------------------------


def profile(
    variant: Variant,
    settings: Settings,
    env: dict[str, str],
    files: dict[str, Path],
    good: str,
    forged: str,
    logdir: Path,
    py_spy: str,
    top: int = 30,
) -> None:
    """Sample the variant's server with py-spy under load; print where the time goes.

    Only threads holding the GIL are sampled (``--gil``): a Python server is bound by it, and
    threads blocked in ``send`` would otherwise dominate. Prints, per function, the share of
    samples in which it is on the stack (inclusive) and at its top (self), and the share spent
    in each authentication library. Idle samples (a loop or a pool waiting) are left out.
    """
    out = logdir / f"{variant.key}.collapsed"
    with running(variant, env, logdir) as (port, pid):
        check(variant, port, good, forged)
        run_wrk(port, files["repeated"], WARMUP, settings.connections, settings.threads)
        pid = worker_pid(pid)
        seconds = max(1, round(settings.duration))
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--duration",
                str(seconds),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                "--gil",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(0.5)  # let py-spy attach
            data = run_wrk(
                port, files[variant.tokens], seconds, settings.connections, settings.threads
            )
            _, err = spy.communicate(timeout=seconds + 60)
        finally:
            if spy.poll() is None:
                spy.kill()
                spy.wait(10)
    if not out.exists():
        raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')}")
    print(f"{variant.key}: {data['rps']:.0f} req/s under py-spy (sampling slows it down)")
    inclusive: dict[str, int] = {}
    self_time: dict[str, int] = {}
    stacks: list[tuple[list[str], int]] = []
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames or _idle(frames[-1]):
            continue
        count = int(count_text)
        total += count
        stacks.append((frames, count))
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        self_time[frames[-1]] = self_time.get(frames[-1], 0) + count
    print(
        f"{total} busy samples (GIL held). Each sample goes to the innermost library on its "
        "stack (the standard library counts for its caller):"
    )
    attributed: dict[str, int] = {}
    for frames, count in stacks:
        owner = "other"
        for frame in reversed(frames):
            package = _package(frame)
            if package is not None:
                owner = package
                break
        attributed[owner] = attributed.get(owner, 0) + count
    for package, count in sorted(attributed.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * count / total:5.1f}%  {package}")
    print(f"top {top} by inclusive share (self share in brackets):")
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        print(
            f"  {100 * count / total:5.1f}% ({100 * self_time.get(frame, 0) / total:4.1f}%)  "
            f"{frame}"
        )
    print("clerk_guard frames by inclusive share (self share in brackets):")
    own = [kv for kv in inclusive.items() if "clerk_guard/" in kv[0]]
    for frame, count in sorted(own, key=lambda kv: -kv[1])[:top]:
        print(
            f"  {100 * count / total:5.1f}% ({100 * self_time.get(frame, 0) / total:4.1f}%)  "
            f"{frame}"
        )
    print(f"top {top} by self share:")
    for frame, count in sorted(self_time.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {100 * count / total:5.1f}%  {frame}")


#: Frames that mean "waiting" when at the top of a stack: the event loop's or a thread pool's
#: wait for work.
_IDLE = re.compile(
    r"^(\w+Selector\.select \(selectors|Condition\.wait \(|Event\.wait \(|"
    r"SimpleQueue\.get|_worker \(concurrent|sleep \()"
)


_PACKAGES = (
    "clerk_guard",
    "clerk_backend_api",
    "fastapi_clerk_auth",
    "jwt",
    "cryptography",
    "django",
    "flask",
    "werkzeug",
    "starlette",
    "fastapi",
    "pydantic",
    "uvicorn",
    "h11",
    "httptools",
    "gunicorn",
    "asgiref",
    "anyio",
    "apps",
)


def _package(frame: str) -> str | None:
    """The library of a frame such as ``f (django/http/response.py:12)``, if it is one of ours."""
    path = frame[frame.rfind("(") + 1 :]
    for package in _PACKAGES:
        if path.startswith(package + "/") or f"/{package}/" in path:
            return package
    return None


def _idle(frame: str) -> bool:
    return _IDLE.match(frame) is not None


def worker_pid(pid: int) -> int:
    """The process that serves requests: gunicorn's worker (the master's child), else ``pid``."""
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[-1])
    return pid


# Main -----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 2 s")
    parser.add_argument("--only", choices=sorted(ONLY), help="one framework")
    parser.add_argument(
        "--write",
        action="store_true",
        help="rewrite the Web frameworks section of bench/README.md (full run)",
    )
    parser.add_argument("--rounds", type=int, help=f"rounds (default {ROUNDS}, >= 3 for --write)")
    parser.add_argument("--duration", type=float, help=f"seconds per run (default {DURATION:g})")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument(
        "--threads", type=int, default=WRK_THREADS, choices=(1, 2), help="wrk threads"
    )
    parser.add_argument("--tokens", type=int, help=f"unique tokens (default {UNIQUE_TOKENS:,})")
    parser.add_argument(
        "--profile",
        metavar="VARIANT",
        help="instead of measuring, sample one variant under load with py-spy "
        "and print where its time goes: starlette-guard, or GROUP/VARIANT such "
        "as django-asgi/django-guard",
    )
    parser.add_argument(
        "--py-spy",
        default=shutil.which("py-spy") or "py-spy",
        help="the py-spy executable (pip install py-spy)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed: run `apt-get update && apt-get install -y wrk` "
            "(or `brew install wrk`), then try again.",
            file=sys.stderr,
        )
        return 2
    missing = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"{' and '.join(missing)} not installed: the ASGI variants run under "
            '`uvicorn[standard]`; run `pip install "uvicorn[standard]"`, then try again.',
            file=sys.stderr,
        )
        return 2
    settings = Settings(
        rounds=args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS),
        duration=args.duration or (QUICK_DURATION if args.quick else DURATION),
        connections=args.connections,
        threads=args.threads,
        tokens=args.tokens or (QUICK_TOKENS if args.quick else UNIQUE_TOKENS),
        quick=args.quick,
    )
    if args.write and (args.quick or args.only or settings.rounds < 3):
        parser.error("--write needs a full run: no --quick or --only, and at least 3 rounds")
    all_groups = groups()
    selected = ONLY[args.only] if args.only else tuple(all_groups)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    load_start = loadavg()
    issuer = LocalIssuer()
    forger = LocalIssuer(frontend_api=issuer.frontend_api, kid=issuer.kid)
    good = issuer.mint(user_id=USER_ID, version=2, lifetime=LIFETIME, azp=AZP)
    forged = forger.mint(user_id=USER_ID, version=2, lifetime=LIFETIME, azp=AZP)
    started = time.monotonic()
    print(f"minting {settings.tokens:,} unique tokens...", flush=True)
    unique = mint_unique(issuer, settings.tokens)
    print(f"  done in {time.monotonic() - started:.0f} s", flush=True)

    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="clerk-guard-web-bench-") as tmp,
        JWKSServer(issuer) as jwks,
    ):
        tmpdir = Path(tmp)
        files = {"repeated": tmpdir / "repeated.txt", "unique": tmpdir / "unique.txt"}
        files["repeated"].write_text(good + "\n")
        files["unique"].write_text("\n".join(unique) + "\n")
        env = {
            "CLERK_PUBLISHABLE_KEY": issuer.publishable_key,
            "CLERK_JWKS_URL": jwks.url,
            "CLERK_AUTHORIZED_PARTIES": AZP,
            "BENCH_JWT_KEY": issuer.public_pem,
            "BENCH_AUTHORIZED_PARTIES": AZP,
            "BENCH_JWKS_URL": jwks.url,
        }
        logdir = tmpdir / "logs"
        logdir.mkdir()
        try:
            if args.profile:
                group_key, _, variant_key = args.profile.rpartition("/")
                variant = next(
                    (
                        v
                        for k in selected
                        for v in all_groups[k].variants
                        if v.key == variant_key and group_key in ("", k)
                    ),
                    None,
                )
                if variant is None:
                    parser.error(f"no variant {args.profile!r}")
                profile(variant, settings, env, files, good, forged, logdir, args.py_spy)
                return 0
            for key in selected:
                group = all_groups[key]
                print(f"{group.title} ({group.server_note})", flush=True)
                results[key] = measure(group, settings, env, files, good, forged, logdir)
        except Exception:
            for log in sorted(logdir.glob("*.log")):
                text = log.read_text(errors="replace").strip()
                if text:
                    print(f"--- {log.name} (last lines)\n{text[-3000:]}", file=sys.stderr)
            raise
    rows = evaluate(results)
    load = (load_start, loadavg())
    report = render(all_groups, results, settings, when, versions(), rows, load)
    print()
    print(report)
    for row in rows:
        if row.wanted is not None:
            print(f"{row.verdict}  {row.label}: {row.measured:.2f}x (>= {row.wanted:g}x)")
    if args.write:
        write_readme(report)
    return 0 if all(row.verdict != "FAIL" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
