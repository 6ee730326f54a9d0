"""Run a real server process on 127.0.0.1 for integration tests, bounded in time."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

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
) -> Iterator[str]:
    """Start ``python -m <args>`` listening on ``port``; yield its base URL; stop it.

    Waits until ``ready_path`` answers (any status), at most ``startup_timeout`` seconds.
    """
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    full_env.pop("PYTHONDEVMODE", None)  # server noise, not ours to judge here
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                raise RuntimeError(f"server exited with {proc.returncode}:\n{output[-4000:]}")
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
