"""What a request with a token verified before costs, by where the token is: the Authorization
header, or the session cookie (plain, or with Clerk's suffixed cookies).

Run from the repository root::

    python bench/bench_lookup.py             # 9 rounds
    python bench/bench_lookup.py --rounds 15

``Guard.authenticate`` on the raw lines, as every adapter calls it, each request with new
strings (as a server builds them, so hashing them is counted). The cookie variants run twice:
as shipped (a repeated ``Cookie`` line is answered from the guard's memory of lines) and with
that memory switched off (every request parses the line and chooses the cookie). Medians over
rounds of per-round ratios to the header variant; the order of the variants rotates.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from clerk_guard import Guard
from clerk_guard.testing import LocalIssuer

REQUESTS = 20_000
OTHER_COOKIES = "theme=dark; _ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000"


def variants(issuer: LocalIssuer) -> list[tuple[str, Guard, list[str], list[str]]]:
    now = time.time()
    token = issuer.mint(now=now, lifetime=3600)
    config = issuer.config(jwt_key=issuer.public_pem)
    suffix = config.cookie_suffix
    plain = f"{OTHER_COOKIES}; __session={token}; __client_uat={int(now)}"
    suffixed = (
        f"{OTHER_COOKIES}; __session={token}; __session_{suffix}={token}; "
        f"__client_uat={int(now)}; __client_uat_{suffix}={int(now)}"
    )
    rows = []
    for name, authorization, cookies, remember in [
        ("Authorization: Bearer", [f"Bearer {token}"], [], True),
        ("__session cookie", [], [plain], True),
        ("__session cookie, no memory of lines", [], [plain], False),
        ("__session + __session_<suffix> cookies", [], [suffixed], True),
        ("__session + __session_<suffix>, no memory of lines", [], [suffixed], False),
    ]:
        guard = Guard(config)
        if not remember:
            guard._cookie_tokens.size = 0  # the bench's switch: nothing is remembered
        rows.append((name, guard, authorization, cookies))
    return rows


def timed(guard: Guard, authorization: list[str], cookies: list[str]) -> float:
    """Microseconds per request; each request gets fresh copies of its lines."""
    requests = [
        ([line[:1] + line[1:] for line in authorization], [line[:1] + line[1:] for line in cookies])
        for _ in range(REQUESTS)
    ]
    authenticate: Callable[..., object] = guard.authenticate
    started = time.perf_counter()
    for lines, cookie_lines in requests:
        if authenticate(lines, cookie_lines) is None:
            raise AssertionError("no session")
    return (time.perf_counter() - started) / REQUESTS * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    rows = variants(LocalIssuer())
    for _, guard, authorization, cookies in rows:  # verify once, fill the memory of lines
        for _ in range(3):
            guard.authenticate(authorization, cookies)
    times: dict[str, list[float]] = {name: [] for name, *_ in rows}
    ratios: dict[str, list[float]] = {name: [] for name, *_ in rows}
    for round_ in range(args.rounds):
        shift = round_ % len(rows)
        measured = {}
        for name, guard, authorization, cookies in rows[shift:] + rows[:shift]:
            measured[name] = timed(guard, authorization, cookies)
        header = measured[rows[0][0]]
        for name, value in measured.items():
            times[name].append(value)
            ratios[name].append(value / header)
    print(f"{args.rounds} rounds of {REQUESTS:,} requests, medians")
    print()
    print("| token in | µs per request | × the header's cost |")
    print("| --- | ---: | ---: |")
    for name, *_ in rows:
        print(
            f"| {name} | {statistics.median(times[name]):.1f} | "
            f"{statistics.median(ratios[name]):.1f}× |"
        )


if __name__ == "__main__":
    main()
