"""Core verification benchmark: clerk-guard against the bare RSA check, PyJWT and Clerk's SDK.

Run from the repository root::

    python bench/bench_core.py            # full run: speed, then memory (200,000 unique tokens)
    python bench/bench_core.py --quick    # speed only
    python bench/bench_core.py --write    # also rewrite the "Core verification" section of
                                          # bench/README.md with this run's numbers
    python bench/bench_core.py --profile  # also break the unique path down by stage (+ cProfile)

The machine is shared and noisy, so nothing here is an absolute number to quote. The variants are
interleaved (the order rotates every round), every measurement is repeated (9 rounds by default,
each batch sized to ~0.3 s) and the report gives medians and ratios to the floor, the bare RSA
check, measured in the same rounds. Every variant is checked to accept the benchmark tokens and to
reject a forged one before it is timed, and the timed loops check each result, so a verifier that
fails cannot look fast.

Nothing touches the network: clerk-guard and Clerk's SDK get the instance's PEM key (``jwt_key``).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import dataclasses
import datetime
import gc
import importlib.metadata
import json
import math
import multiprocessing
import os
import platform
import pstats
import re
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import jwt
from clerk_backend_api.security import authenticate_request
from clerk_backend_api.security.types import AuthenticateRequestOptions, AuthStatus
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from clerk_guard import Guard, GuardConfig
from clerk_guard.testing import LocalIssuer

AZP = "http://localhost:3000"
LEEWAY = 5
#: Long enough for the whole run (the memory phase alone takes minutes); no clock injection needed.
LIFETIME = 4 * 3600
#: Distinct tokens for the variants without a cache (floor, PyJWT, Clerk SDK), cycled.
SHARED_POOL = 2000
MEMORY_TOKENS = 200_000
MEMORY_CHECKPOINTS = (1_024, 2_048, 4_096, 8_192, 16_384, 50_000, 100_000, 200_000)
README = Path(__file__).with_name("README.md")
SECTION = "## Core verification"
BEGIN = "<!-- bench_core.py --write: generated from here -->"
END = "<!-- bench_core.py --write: generated up to here -->"
README_INTRO = (
    "# Benchmarks\n\n"
    "Each section says how to reproduce its numbers. The machine these ran on is shared and noisy: "
    "compare ratios measured in the same run, not absolute rates.\n"
)
COMMAND = "python bench/bench_core.py --write"

# Targets (issue 2).
UNIQUE_TARGET = 0.5  # clerk-guard, unique tokens, at least this fraction of the floor's rate
REPEAT_TARGET = 20.0  # clerk-guard, repeated token, at least this many times the unique rate
MEMORY_SLACK = 1.10  # traced memory after 200k unique tokens within 10% of that after 4,096

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


# Minting ----------------------------------------------------------------------------------------

#: A few organization roles, as in a real instance (users share roles, plans and features).
ROLES: tuple[dict[str, Any], ...] = (
    {
        "org_role": "org:admin",
        "org_permissions": ["org:invoices:read", "org:invoices:create", "org:members:manage"],
        "features": ["o:invoices", "o:members", "u:export"],
        "plans": ["o:business"],
    },
    {
        "org_role": "org:member",
        "org_permissions": ["org:invoices:read"],
        "features": ["o:invoices", "u:export"],
        "plans": ["o:business"],
    },
    {
        "org_role": "org:billing",
        "org_permissions": ["org:invoices:read", "org:invoices:create"],
        "features": ["o:invoices"],
        "plans": ["o:starter", "u:pro"],
    },
    {
        "org_role": "org:viewer",
        "org_permissions": [],
        "features": ["u:export"],
        "plans": ["u:free"],
    },
)
_ISSUER: LocalIssuer | None = None  # inherited by the forked minting workers


def _mint_range(job: tuple[str, int, int]) -> list[str]:
    """Mint ``count`` distinct, realistic (v2, with an organization) session tokens."""
    prefix, start, count = job
    issuer = _ISSUER
    assert issuer is not None
    return [
        issuer.mint(
            user_id=f"user_{prefix}{i:07d}",
            session_id=f"sess_{prefix}{i:07d}",
            version=2,
            lifetime=LIFETIME,
            org_id=f"org_{i % 97:04d}",
            org_slug=f"acme-{i % 97}",
            fva=(i % 30, -1 if i % 3 else i % 20),
            **ROLES[i % len(ROLES)],
        )
        for i in range(start, start + count)
    ]


class Minter:
    """Mints tokens on every core with a forked pool: 2048-bit RSA signing is ~1 ms a token."""

    def __init__(self, issuer: LocalIssuer, processes: int) -> None:
        global _ISSUER
        _ISSUER = issuer
        self.pool = multiprocessing.get_context("fork").Pool(processes)
        self.minted = 0

    def mint(self, count: int, prefix: str, *, label: str = "") -> list[str]:
        chunk = 1000
        jobs = [(prefix, start, min(chunk, count - start)) for start in range(0, count, chunk)]
        started = time.perf_counter()
        tokens: list[str] = []
        for part in self.pool.imap(_mint_range, jobs):
            tokens.extend(part)
            if label and len(jobs) > 20 and len(tokens) % 20_000 < chunk:
                print(f"  {label}: {len(tokens):,}/{count:,} minted", flush=True)
        self.minted += count
        if label:
            print(
                f"  {label}: {count:,} tokens in {time.perf_counter() - started:.1f} s", flush=True
            )
        assert len(set(tokens)) == count, "minted tokens must be distinct"
        return tokens

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


# The variants -----------------------------------------------------------------------------------


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def split_token(token: str) -> tuple[bytes, bytes]:
    """(signature, signing input) of a token: the floor gets these pre-split."""
    header, payload, signature = token.split(".")
    return _b64url(signature), f"{header}.{payload}".encode("ascii")


def guard_config(issuer: LocalIssuer, **overrides: Any) -> GuardConfig:
    """A networkless configuration as a user would write it; the token cache is on by default."""
    return GuardConfig(
        jwt_key=issuer.public_pem,
        publishable_key=issuer.publishable_key,
        authorized_parties=[AZP],
        **overrides,
    )


@dataclasses.dataclass
class Variant:
    name: str
    label: str
    #: run(n) performs n verifications, checking each result, and returns nothing.
    run: Callable[[int], None]
    #: Used instead of ``run`` to size the batch (the unique variant must not spend its tokens).
    calibrate_with: Callable[[int], None] | None = None
    batch: int = 0
    rates: list[float] = dataclasses.field(default_factory=list)


class Bench:
    """Holds the tokens, verifiers and cursors for one run."""

    def __init__(self, issuer: LocalIssuer, shared: list[str]) -> None:
        self.issuer = issuer
        self.shared = shared
        self.key = guard_config(issuer).public_key
        assert self.key is not None
        self.split = [split_token(t) for t in shared]
        self.requests = [
            httpx.Request("GET", "http://localhost/me", headers={"Authorization": f"Bearer {t}"})
            for t in shared
        ]
        self.clerk_options = AuthenticateRequestOptions(
            jwt_key=issuer.public_pem, authorized_parties=[AZP]
        )
        self.unique_guard = Guard(guard_config(issuer))
        self.unique_tokens: list[str] = []
        self.unique_cursor = 0
        self.repeat_guard = Guard(guard_config(issuer))
        self.repeat_token = shared[0]
        self.calibration_guard = Guard(guard_config(issuer))
        self._cursor = 0

    def _indices(self, n: int) -> range:
        start = self._cursor
        self._cursor = (start + n) % len(self.shared)
        return range(start, start + n)

    # Each run_* does n verifications and checks every result.

    def run_floor(self, n: int) -> None:
        verify, pairs, size = self.key.verify, self.split, len(self.split)
        for i in self._indices(n):
            signature, signing_input = pairs[i % size]
            verify(signature, signing_input, _PKCS1, _SHA256)  # raises when it fails

    def run_pyjwt(self, n: int) -> None:
        key, tokens, size, issuer = self.key, self.shared, len(self.shared), self.issuer.issuer
        decode, options = jwt.decode, {"require": ["exp", "iat", "iss", "sub", "sid"]}
        for i in self._indices(n):
            claims = decode(
                tokens[i % size],
                key,
                algorithms=["RS256"],
                issuer=issuer,
                leeway=LEEWAY,
                options=options,
            )
            if claims.get("azp") != AZP:  # what GuardConfig.authorized_parties does
                raise AssertionError("PyJWT: unexpected azp")

    def run_clerk(self, n: int) -> None:
        requests, size, options = self.requests, len(self.requests), self.clerk_options
        signed_in = AuthStatus.SIGNED_IN
        for i in self._indices(n):
            state = authenticate_request(requests[i % size], options)
            if state.status is not signed_in:  # it answers SIGNED_OUT instead of raising
                raise AssertionError(f"Clerk SDK rejected a valid token: {state.reason}")

    def run_guard_unique(self, n: int) -> None:
        start = self.unique_cursor
        end = start + n
        if end > len(self.unique_tokens):
            raise RuntimeError("ran out of unique tokens; the calibration was off")
        self.unique_cursor = end
        verify = self.unique_guard.verify
        for token in self.unique_tokens[start:end]:
            if verify(token).session_id is None:  # raises when it fails
                raise AssertionError("clerk-guard: no session id")

    def run_guard_calibration(self, n: int) -> None:
        """The unique path on a throw-away guard and the shared tokens, to size its batch."""
        verify, tokens, size = self.calibration_guard.verify, self.shared, len(self.shared)
        for i in self._indices(n):
            verify(tokens[i % size])

    def run_guard_repeated(self, n: int) -> None:
        verify, token = self.repeat_guard.verify, self.repeat_token
        for _ in range(n):
            if verify(token).session_id is None:
                raise AssertionError("clerk-guard: no session id")

    def variants(self) -> list[Variant]:
        return [
            Variant("floor", "floor: cryptography RSA verify (pre-split token)", self.run_floor),
            Variant("pyjwt", "PyJWT jwt.decode, key object", self.run_pyjwt),
            Variant("clerk", "clerk-backend-api authenticate_request (jwt_key)", self.run_clerk),
            Variant(
                "unique",
                "clerk-guard Guard.verify, unique tokens",
                self.run_guard_unique,
                calibrate_with=self.run_guard_calibration,
            ),
            Variant(
                "repeated", "clerk-guard Guard.verify, repeated token", self.run_guard_repeated
            ),
        ]

    def sanity_check(self) -> None:
        """Every variant accepts the benchmark tokens and rejects a forged one."""
        token = self.shared[1]
        head, body, sig = token.split(".")
        flipped = "A" if sig[10] != "A" else "B"
        forged = f"{head}.{body}.{sig[:10]}{flipped}{sig[11:]}"
        expected = jwt.decode(token, options={"verify_signature": False})["sub"]

        signature, signing_input = split_token(token)
        self.key.verify(signature, signing_input, _PKCS1, _SHA256)
        bad_signature, bad_input = split_token(forged)
        _expect_raise("floor", lambda: self.key.verify(bad_signature, bad_input, _PKCS1, _SHA256))

        def pyjwt(t: str) -> Any:
            return jwt.decode(t, self.key, algorithms=["RS256"], issuer=self.issuer.issuer)

        assert pyjwt(token)["sub"] == expected
        _expect_raise("PyJWT", lambda: pyjwt(forged))

        def clerk(t: str) -> Any:
            request = httpx.Request(
                "GET", "http://localhost/", headers={"Authorization": f"Bearer {t}"}
            )
            return authenticate_request(request, self.clerk_options)

        state = clerk(token)
        assert state.status is AuthStatus.SIGNED_IN, state.reason
        assert state.payload is not None and state.payload["sub"] == expected
        assert clerk(forged).status is AuthStatus.SIGNED_OUT, "Clerk SDK accepted a forged token"

        guard = Guard(guard_config(self.issuer))
        assert guard.verify(token).user_id == expected
        _expect_raise("clerk-guard", lambda: guard.verify(forged))
        assert (
            guard.verify(self.repeat_token).user_id
            == self.repeat_guard.verify(self.repeat_token).user_id
        )
        assert len(self.repeat_guard.token_cache) == 1


def _expect_raise(name: str, call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:  # noqa: BLE001 - any rejection will do
        return
    raise AssertionError(f"{name} accepted a forged token")


# Speed ------------------------------------------------------------------------------------------


def _timed(run: Callable[[int], None], n: int) -> float:
    gc.collect()
    started = time.perf_counter()
    run(n)
    return time.perf_counter() - started


def calibrate(variants: list[Variant], seconds: float) -> None:
    """Size each variant's batch so that one measurement lasts about ``seconds``."""
    for variant in variants:
        n = 30_000 if variant.name == "repeated" else 400
        run = variant.calibrate_with or variant.run
        elapsed = min(_timed(run, n) for _ in range(3))  # the least disturbed of three
        variant.batch = max(100, math.ceil(seconds * n / elapsed))


@dataclasses.dataclass
class SpeedResult:
    variants: list[Variant]
    rounds: int
    ratios: dict[str, list[float]]  # per-round rate / floor rate
    repeat_over_unique: list[float]
    others_cpu: float | None  # CPUs other processes kept busy during the timed rounds

    def median_rate(self, name: str) -> float:
        return statistics.median(self._by_name(name).rates)

    def _by_name(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)


class OthersCPU:
    """How many CPUs other processes kept busy, from /proc/stat minus this process (Linux)."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
        busy = (user + nice + system + irq + softirq + steal) / ticks
        own = os.times()
        return busy, own.user + own.system, time.monotonic()

    def stop(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None:
            return None
        wall = end[2] - self.start[2]
        others = (end[0] - self.start[0]) - (end[1] - self.start[1])
        return max(0.0, others / wall) if wall > 0 else None


def run_speed(bench: Bench, minter: Minter, rounds: int, seconds: float) -> SpeedResult:
    variants = bench.variants()
    unique = next(v for v in variants if v.name == "unique")
    calibrate(variants, seconds)
    cache_size = bench.unique_guard.config.token_cache_size
    needed = cache_size + rounds * unique.batch
    print(f"minting {needed:,} unique tokens for the unique-token variant...", flush=True)
    bench.unique_tokens = minter.mint(needed, "u", label="unique")
    # Fill the cache first: the measured state is the steady one, where every new token evicts
    # the least recently used entry.
    bench.run_guard_unique(cache_size)
    assert len(bench.unique_guard.token_cache) == cache_size

    print(f"timing {len(variants)} variants x {rounds} rounds (~{seconds} s each)...", flush=True)
    noise = OthersCPU()
    for round_ in range(rounds):
        shift = round_ % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            elapsed = _timed(variant.run, variant.batch)
            variant.rates.append(variant.batch / elapsed)
    others_cpu = noise.stop()
    if others_cpu is not None:
        print(f"other processes kept {others_cpu:.2f} CPUs busy meanwhile", flush=True)
    assert bench.unique_cursor == len(bench.unique_tokens), "every unique token verified once"
    assert len(bench.unique_guard.token_cache) == cache_size

    floor = variants[0].rates
    ratios = {v.name: [r / f for r, f in zip(v.rates, floor, strict=True)] for v in variants}
    unique_rates = next(v for v in variants if v.name == "unique").rates
    repeated_rates = next(v for v in variants if v.name == "repeated").rates
    return SpeedResult(
        variants=variants,
        rounds=rounds,
        ratios=ratios,
        repeat_over_unique=[r / u for r, u in zip(repeated_rates, unique_rates, strict=True)],
        others_cpu=others_cpu,
    )


# Memory -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class MemoryPoint:
    verified: int
    entries: int
    current: int  # traced bytes above the baseline, after gc
    peak: int  # traced peak above the baseline since the guard was built


def run_memory(issuer: LocalIssuer, minter: Minter) -> list[MemoryPoint]:
    """Verify 200,000 unique tokens through one default Guard; trace its memory on the way.

    The tokens are minted before tracing starts; each is copied into a fresh string just before
    it is verified (as a request's header would be), so a token string the cache keeps is
    counted and one it drops is freed, as in a server.
    """
    print(f"minting {MEMORY_TOKENS:,} unique tokens for the memory run...", flush=True)
    tokens = minter.mint(MEMORY_TOKENS, "m", label="memory")
    gc.collect()
    tracemalloc.start()
    guard = Guard(guard_config(issuer))
    gc.collect()
    baseline, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    points: list[MemoryPoint] = []
    done = 0
    started = time.perf_counter()
    for checkpoint in MEMORY_CHECKPOINTS:
        while done < checkpoint:
            fresh = (tokens[done] + " ")[:-1]
            if guard.verify(fresh).session_id is None:
                raise AssertionError("clerk-guard: no session id")
            tokens[done] = ""  # the benchmark's own copy goes too
            done += 1
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        points.append(
            MemoryPoint(done, len(guard.token_cache), current - baseline, peak - baseline)
        )
        print(
            f"  {done:>7,} verified: {len(guard.token_cache):,} cached, "
            f"traced {_mib(current - baseline)} (peak {_mib(peak - baseline)})",
            flush=True,
        )
    tracemalloc.stop()
    print(f"  memory run: {time.perf_counter() - started:.1f} s (tracing slows it)", flush=True)
    return points


def _mib(value: float) -> str:
    return f"{value / 2**20:.2f} MiB"


# Profile ----------------------------------------------------------------------------------------


def minimal_verify(token: str, key: Any, issuer: str) -> dict[str, Any]:
    """A reference, not a verifier to use: the least work that still returns checked claims.

    Split, decode header and payload with plain ``json``, check ``alg``, the RSA signature and
    ``exp``/``iss``/``azp``. No strictness (padding, duplicates, types), no result object.
    """
    header_segment, payload_segment, signature_segment = token.split(".")
    if json.loads(_b64url(header_segment)).get("alg") != "RS256":
        raise ValueError("alg")
    key.verify(
        _b64url(signature_segment),
        f"{header_segment}.{payload_segment}".encode("ascii"),
        _PKCS1,
        _SHA256,
    )
    claims: dict[str, Any] = json.loads(_b64url(payload_segment))
    if claims["exp"] <= time.time() - LEEWAY or claims["iss"] != issuer or claims["azp"] != AZP:
        raise ValueError("claims")
    return claims


def run_profile(issuer: LocalIssuer, tokens: Sequence[str], rounds: int) -> str:
    """Where the time of one unique verification goes.

    Four views, the first three the median of ``rounds``: the whole path against the floor and a
    minimal verifier; ``Guard.verify``'s stages timed in place (one pass, the stages of
    ``Verifier.verify`` marked through its ``trace`` hook, the guard's own steps bracketed by
    ``perf_counter_ns``), which is what they really cost between the others; functions alone in
    a hot loop (cheaper: warm caches), with standard-library operations for scale; and cProfile
    by function.
    """
    from clerk_guard import SessionAuth

    key = guard_config(issuer).public_key
    assert key is not None
    probe = Guard(guard_config(issuer))
    verifier = probe.verifier
    segments = [t.split(".") for t in tokens]
    signed = [split_token(t) for t in tokens]
    claims = [json.loads(_b64url(s[1])) for s in segments]
    payload_bytes = [_b64url(s[1]) for s in segments]
    now = time.time()
    count = len(tokens)
    clock = time.perf_counter_ns

    def whole() -> None:
        verify = Guard(guard_config(issuer)).verify
        for token in tokens:
            verify(token)

    def floor() -> None:
        for signature, signing_input in signed:
            key.verify(signature, signing_input, _PKCS1, _SHA256)

    def minimal() -> None:
        for token in tokens:
            minimal_verify(token, key, issuer.issuer)

    in_place_names = [
        "cache lookup, a miss",
        "Verifier.read: structure, header (cached), signature segment",
        "key (the PEM key here; a JWKS lookup otherwise)",
        "Verifier.signed_claims: RSA check, then the payload decoded",
        "claim stages (Verifier.claim_stages) and the result (SessionAuth)",
        "token cache put (+ eviction)",
    ]

    def in_place() -> list[float]:
        """Guard.verify's stages, called one by one as Verifier.verify calls them, each timed."""
        guard = Guard(guard_config(issuer))
        verifier, cache, cached = guard.verifier, guard.token_cache, guard._cached
        read, signed_claims, stages = verifier.read, verifier.signed_claims, verifier.claim_stages
        key_for, pem = guard.key_for, guard.config.public_key
        result = SessionAuth._from_own_claims
        totals = [0] * 7
        for token in tokens:
            t0 = clock()
            cached(token, None)
            t1 = clock()
            parts = read(token)
            t2 = clock()
            key = pem if key_for is None else key_for(parts.kid)
            t3 = clock()
            claims = signed_claims(parts, key)
            t4 = clock()
            now = time.time()
            for _, check in stages:
                check(claims, now)
            auth = result(claims, None)
            t5 = clock()
            cache.put(token, auth)
            t6 = clock()
            t7 = clock()
            for k, (a, b) in enumerate(
                ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6), (t6, t7))
            ):
                totals[k] += b - a
        bracket = totals[6]  # one mark's cost (a clock() call), taken off each stage
        return [(total - bracket) / count / 1000 for total in totals[:6]]

    # Only stable methods and the standard library for scale: the private helpers change as the
    # core is tuned; cProfile below names whatever functions the path has today.
    alone: list[tuple[str, Callable[[int], object]]] = [
        ("Verifier.verify (no token cache)", lambda i: verifier.verify(tokens[i])),
        (
            "Verifier.claim_stages, all",
            lambda i: [check(claims[i], now) for _, check in verifier.claim_stages],
        ),
        ("SessionAuth.from_claims", lambda i: SessionAuth.from_claims(claims[i])),
        ("for scale: base64.urlsafe_b64decode(signature)", lambda i: _b64url(segments[i][2])),
        ("for scale: base64.urlsafe_b64decode(payload)", lambda i: _b64url(segments[i][1])),
        ("for scale: json.loads(payload)", lambda i: json.loads(payload_bytes[i])),
        ("for scale: dict(claims)", lambda i: dict(claims[i])),
    ]

    def timed_loop(call: Callable[[int], object]) -> float:
        gc.collect()
        started = time.perf_counter()
        for i in range(count):
            call(i)
        return (time.perf_counter() - started) / count * 1e6

    def timed(run: Callable[[], object]) -> float:
        gc.collect()
        started = time.perf_counter()
        run()
        return (time.perf_counter() - started) / count * 1e6

    top: dict[str, list[float]] = {"whole": [], "floor": [], "minimal": []}
    staged: list[list[float]] = [[] for _ in in_place_names]
    detail: dict[str, list[float]] = {name: [] for name, _ in alone}
    for _ in range(rounds):
        top["whole"].append(timed(whole))
        top["floor"].append(timed(floor))
        top["minimal"].append(timed(minimal))
        for k, value in enumerate(in_place()):
            staged[k].append(value)
        for name, call in alone:
            detail[name].append(timed_loop(call))

    med = statistics.median
    floor_us, whole_us, minimal_us = med(top["floor"]), med(top["whole"]), med(top["minimal"])
    lines = [
        "| path | µs per token | × floor rate |",
        "| --- | ---: | ---: |",
        f"| floor: `key.verify` alone, hot loop | {floor_us:.1f} | 1.00× |",
        f"| reference: minimal Python verifier (`minimal_verify` in the script) | "
        f"{minimal_us:.1f} | {floor_us / minimal_us:.2f}× |",
        f"| clerk-guard `Guard.verify`, unique tokens | {whole_us:.1f} | "
        f"{floor_us / whole_us:.2f}× |",
        "",
        "`Guard.verify`'s stages, timed in place (one pass; the cost of a mark subtracted):",
        "",
        "| stage | µs per token | share |",
        "| --- | ---: | ---: |",
    ]
    stage_values = [med(values) for values in staged]
    total = sum(stage_values)
    for name, value in zip(in_place_names, stage_values, strict=True):
        lines.append(f"| {name} | {value:.1f} | {value / total:.0%} |")
    lines += [
        f"| sum of stages | {total:.1f} | |",
        "",
        "Functions alone in a hot loop (cheaper than in place: warm caches), and "
        "standard-library operations for scale:",
        "",
        "| function | µs per call |",
        "| --- | ---: |",
    ]
    for name, values in detail.items():
        indent = "&nbsp;&nbsp;&nbsp;&nbsp;" if name.startswith("  ") else ""
        lines.append(f"| {indent}{name.strip()} | {med(values):.2f} |")

    lines += ["", *cprofile_table(issuer, tokens)]
    return "\n".join(lines)


def cprofile_table(issuer: LocalIssuer, tokens: Sequence[str], top: int = 18) -> list[str]:
    """cProfile of ``Guard.verify`` over unique tokens, as µs per token by function."""
    guard = Guard(guard_config(issuer))
    verify = guard.verify
    profiler = cProfile.Profile()
    profiler.enable()
    for token in tokens:
        verify(token)
    profiler.disable()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    root = str(Path(__file__).resolve().parent.parent) + "/"
    rows = []
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in stats.items():
        if name == "disable" or "_lsprof" in name:
            continue
        where = filename.replace(root, "")
        where = re.sub(r"^.*/(site-packages|python3\.\d+)/", "", where)
        label = f"{where}:{line}({name})" if where != "~" else name
        rows.append((own, cumulative, calls, label))
    rows.sort(reverse=True)
    count = len(tokens)
    total = sum(row[0] for row in rows)
    lines = [
        f"cProfile of `Guard.verify` over {count:,} unique tokens: own and cumulative time per "
        f"token, top {top} by own time (the profiler adds to every Python call: the total own "
        f"time is {total / count * 1e6:.1f} µs per token here).",
        "",
        "| function | calls per token | own µs per token | cumulative µs per token |",
        "| --- | ---: | ---: | ---: |",
    ]
    for own, cumulative, calls, label in rows[:top]:
        lines.append(
            f"| `{label}` | {calls / count:g} | {own / count * 1e6:.2f} | "
            f"{cumulative / count * 1e6:.2f} |"
        )
    return lines


# Report -----------------------------------------------------------------------------------------


def versions() -> str:
    names = ["clerk-guard", "cryptography", "PyJWT", "clerk-backend-api", "httpx"]
    parts = [f"Python {platform.python_version()}"]
    for name in names:
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    from cryptography.hazmat.backends.openssl.backend import backend

    parts.append(backend.openssl_version_text())
    return ", ".join(parts)


def core_revision() -> str:
    """The commit the measured clerk_guard/ comes from, and whether it had local changes."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "clerk_guard"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "clerk_guard/ outside git"
    return f"clerk_guard/ at commit {commit}" + (" with uncommitted changes" if changed else "")


def _spread(values: Sequence[float]) -> str:
    return f"{min(values):,.0f}–{max(values):,.0f}"


def speed_table(result: SpeedResult) -> str:
    lines = [
        "| variant | verifications/s (median) | min–max over rounds | µs each (median) "
        "| × floor (median of per-round ratios) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for variant in result.variants:
        median = statistics.median(variant.rates)
        ratio = statistics.median(result.ratios[variant.name])
        lines.append(
            f"| {variant.label} | {median:,.0f} | {_spread(variant.rates)} | "
            f"{1e6 / median:.1f} | {ratio:.2f}× |"
        )
    return "\n".join(lines)


def memory_table(points: Sequence[MemoryPoint]) -> str:
    lines = [
        "| unique tokens verified | entries cached | traced memory above baseline (current) "
        "| traced peak since start |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for point in points:
        lines.append(
            f"| {point.verified:,} | {point.entries:,} | {_mib(point.current)} "
            f"| {_mib(point.peak)} |"
        )
    return "\n".join(lines)


def targets(
    result: SpeedResult, points: Sequence[MemoryPoint] | None
) -> list[tuple[str, str, str]]:
    unique_ratio = statistics.median(result.ratios["unique"])
    repeat_ratio = statistics.median(result.repeat_over_unique)
    rows = [
        (
            f"unique tokens ≥ {UNIQUE_TARGET}× floor",
            f"{unique_ratio:.2f}×",
            "PASS" if unique_ratio >= UNIQUE_TARGET else "FAIL",
        ),
        (
            f"repeated token ≥ {REPEAT_TARGET:.0f}× unique",
            f"{repeat_ratio:.1f}×",
            "PASS" if repeat_ratio >= REPEAT_TARGET else "FAIL",
        ),
    ]
    if points:
        at = {p.verified: p for p in points}
        small, large = at[4_096], at[MEMORY_TOKENS]
        bounded = large.current <= small.current * MEMORY_SLACK and large.entries <= small.entries
        rows.append(
            (
                "memory bounded (200,000 unique ≤ 1.1× 4,096 unique)",
                f"{_mib(large.current)} vs {_mib(small.current)}, {large.entries:,} entries",
                "PASS" if bounded else "FAIL",
            )
        )
    else:
        rows.append(("memory bounded", "not measured (--quick)", "SKIPPED"))
    return rows


def targets_table(rows: Sequence[tuple[str, str, str]]) -> str:
    lines = ["| target | measured | result |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | **{c}** |" for a, b, c in rows]
    return "\n".join(lines)


def render_section(
    result: SpeedResult,
    points: Sequence[MemoryPoint] | None,
    profile: str | None,
    seconds: float,
    command: str,
    revision: str,
) -> str:
    rows = targets(result, points)
    parts = [
        "What one process can verify: clerk-guard against the bare RSA check (the floor: no "
        "library verifies an RS256 token faster than `cryptography` checks its signature), PyJWT "
        "and Clerk's own Python SDK (`clerk-backend-api`). No network: every verifier gets the "
        "PEM key.",
        "",
        f"- Command: `{command}` (`--quick` skips the memory run; `--profile` adds the stage "
        "breakdown).",
        f"- Run: {datetime.date.today().isoformat()}, {revision}; {versions()}, "
        f"{os.cpu_count()} CPUs ({platform.machine()}), a shared, noisy machine"
        + (
            f" (other processes kept {result.others_cpu:.2f} CPUs busy on average during the "
            "timed rounds)."
            if result.others_cpu is not None
            else "."
        ),
        f"- Method: {result.rounds} rounds; in each, every variant runs one batch sized to "
        f"~{seconds} s, the order rotating from round to round. Medians over rounds; ratios are "
        "taken per round against the floor of the same round, then the median. Only the ratios "
        "travel to other machines: the absolute rates are this machine's on this day.",
        "- Tokens: Clerk-shaped v2 session tokens, 2048-bit RSA, minted with "
        "`clerk_guard.testing.LocalIssuer`: 97 organizations, four roles with their permissions, "
        "features and plans (users share them, as in a real instance), `fva`; about 810–900 "
        "characters each. Floor, PyJWT and the Clerk SDK cycle "
        f"through {SHARED_POOL:,} tokens (they cache nothing); the unique-token variant verifies "
        "each token exactly once through one `Guard` with the default cache (4,096 entries), "
        "filled beforehand so every verification also evicts; the repeated variant verifies one "
        "token over and over (the verified-token cache).",
        "- What each variant does: floor = `public_key.verify(sig, signing_input, PKCS1v15(), "
        "SHA256())` on a pre-split token; PyJWT = `jwt.decode(token, key_object, "
        "algorithms=['RS256'], issuer=..., leeway=5, options={'require': [...]})` plus the `azp` "
        "check; Clerk SDK = `authenticate_request(httpx.Request, AuthenticateRequestOptions("
        "jwt_key=PEM, authorized_parties=[...]))` with the request built beforehand; clerk-guard = "
        "`Guard(GuardConfig(jwt_key=PEM, publishable_key=..., authorized_parties=[...])).verify"
        "(token)`. Each variant is checked to accept the tokens and reject a forged one, and every "
        "timed result is checked.",
        "",
        "### Speed",
        "",
        speed_table(result),
        "",
        f"Repeated token ÷ unique tokens, median of per-round ratios: "
        f"{statistics.median(result.repeat_over_unique):.1f}×.",
        "",
    ]
    if points:
        parts += [
            "### Memory",
            "",
            f"One `Guard` with the default configuration verifies {MEMORY_TOKENS:,} distinct valid "
            "tokens; `tracemalloc` traces it from its construction (tokens are minted before "
            "tracing; each is copied into a fresh string just before it is verified, as a request "
            "header would be, so the strings the cache keeps are counted).",
            "",
            memory_table(points),
            "",
        ]
    parts += ["### Targets", "", targets_table(rows), ""]
    if profile:
        parts += [
            "### Where the unique path spends its time",
            "",
            "Over the 2,000 shared tokens, each verified once per fresh `Guard`, medians of the "
            "rounds. The minimal verifier is a yardstick, not a verifier to use: it does the least "
            "work that still returns checked claims (split, plain `json`, RSA, `exp`/`iss`/`azp`), "
            "with none of clerk-guard's strictness and no result object.",
            "",
            profile,
            "",
        ]
    return "\n".join(parts)


def write_readme(generated: str) -> None:
    """Put ``generated`` between this script's markers in the "Core verification" section.

    Text of the section outside the markers (hand-written notes) and the other sections are kept.
    """
    block = f"{BEGIN}\n{generated.strip()}\n{END}"
    text = README.read_text(encoding="utf-8") if README.exists() else README_INTRO
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        section = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
        if section.search(text):
            text = section.sub(lambda _m: f"{SECTION}\n\n{block}\n\n", text, count=1)
        else:
            text = f"{text.rstrip()}\n\n{SECTION}\n\n{block}\n"
    README.write_text(text.rstrip() + "\n", encoding="utf-8")
    print(f"wrote {README}")


# Main -------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the memory run")
    parser.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the 200,000-token memory measurement (default: on unless --quick)",
    )
    parser.add_argument("--rounds", type=int, default=9, help="rounds of every variant (>= 7)")
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one measurement")
    parser.add_argument("--profile", action="store_true", help="stage breakdown of the unique path")
    parser.add_argument(
        "--write", action="store_true", help="rewrite the section in bench/README.md"
    )
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="minting workers"
    )
    args = parser.parse_args(argv)
    memory = (not args.quick) if args.memory is None else args.memory
    if args.rounds < 7:
        print("note: fewer than 7 rounds; the medians are less trustworthy", file=sys.stderr)

    revision = core_revision()  # before the run: what was imported
    print(f"{revision}; {versions()}", flush=True)
    issuer = LocalIssuer()
    minter = Minter(issuer, max(1, args.processes))
    try:
        shared = minter.mint(SHARED_POOL, "s", label="shared")
        bench = Bench(issuer, shared)
        bench.sanity_check()
        result = run_speed(bench, minter, args.rounds, args.seconds)
        print()
        print(speed_table(result))
        print(
            f"\nrepeated / unique (median of per-round ratios): "
            f"{statistics.median(result.repeat_over_unique):.1f}x\n",
            flush=True,
        )
        profile = None
        if args.profile:
            print("profiling the unique path...", flush=True)
            profile = run_profile(issuer, shared, args.rounds)
            print(profile, flush=True)
        points = run_memory(issuer, minter) if memory else None
    finally:
        minter.close()
    if points:
        print()
        print(memory_table(points))
    rows = targets(result, points)
    print()
    for name, measured, verdict in rows:
        print(f"{verdict:7} {name}: {measured}")
    command = " ".join(
        ["python", "bench/bench_core.py", *(argv if argv is not None else sys.argv[1:])]
    )
    if args.write:
        if core_revision() != revision:
            revision += " (clerk_guard/ changed during the run; the run measured the former)"
        write_readme(render_section(result, points, profile, args.seconds, command, revision))
    return 0


if __name__ == "__main__":
    sys.exit(main())
