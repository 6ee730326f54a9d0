"""The two Quick start commands of the README, run from a fresh clone in a fresh venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_has_exactly_two_commands():
    """The Quick start opens with two commands: the demo, then the test suite."""
    demo, suite = quick_start_commands()
    assert "clerk-guard demo" in demo
    assert suite == "pip install nox && nox"


def test_ci_runs_the_readme_test_command():
    """.ci/run installs nox and runs `nox`: the README's test command."""
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"pip install .*nox", script)
    assert re.search(r"^nox\s*$", script, re.M)


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to clone the repository")
def test_demo_command_from_fresh_clone(tmp_path):
    """The README's demo command works in a fresh clone and a fresh virtual environment."""
    demo, _ = quick_start_commands()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "PYTHON"))},
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
    }
    log = tmp_path / "demo.log"
    with log.open("wb") as sink:  # a file, not a pipe: pip's output could fill a pipe and stall
        proc = subprocess.Popen(
            ["bash", "-c", demo],
            cwd=clone,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600  # pip install from PyPI, then start-up
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                response = httpx.get("http://127.0.0.1:8000/public", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo did not start in time"
                time.sleep(0.5)
        assert response.status_code == 200
        assert httpx.get("http://127.0.0.1:8000/me", timeout=5).status_code == 401
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=15)
    output = log.read_text(errors="replace")
    assert "curl -i http://127.0.0.1:8000/me -H 'Authorization: Bearer" in output
    assert "clerk-guard doctor" in output
