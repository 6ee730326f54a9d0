"""Every ```python block of the README runs, so a renamed API breaks a test, not a reader.

How each block is tested, by what it holds:

- a block with ``<!-- readme-test: compile-only ... -->`` on the line right before its fence is
  only compiled (keep these few: each needs what a test cannot have, and says what);
- a block defining ``def test_`` is a test module: it runs under pytest, in a fresh process;
- any other block runs in a fresh interpreter with the environment of a local issuer
  (``CLERK_PUBLISHABLE_KEY`` and ``CLERK_JWT_KEY``: no network). Then, when it defines ``app``,
  ``GET /me`` with a valid token must answer 200 with the token's user id; Django settings it
  defines must name importable clerk_guard objects, and a ``LOGGING`` must configure.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
COMPILE_ONLY = "<!-- readme-test: compile-only"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)

# Runs one block (argv[1]) in a fresh namespace, then probes what it defined; prints a JSON
# summary on its last line.
RUNNER = r"""
import asyncio, json, logging.config, os, sys
from clerk_guard.testing import LocalIssuer

issuer = LocalIssuer()
os.environ["CLERK_PUBLISHABLE_KEY"] = issuer.publishable_key
os.environ["CLERK_JWT_KEY"] = issuer.public_pem
source = open(sys.argv[1], encoding="utf-8").read()
namespace = {"__name__": "readme_block"}
exec(compile(source, sys.argv[2], "exec"), namespace)
result = {"names": sorted(name for name in namespace if not name.startswith("__"))}

app = namespace.get("app")
if app is not None:
    headers = {"Authorization": "Bearer " + issuer.mint(user_id="user_readme")}
    if hasattr(app, "test_client"):  # Flask
        response = app.test_client().get("/me", headers=headers)
        result["me"] = [response.status_code, response.get_json()]
    else:  # ASGI
        import httpx

        async def get():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                response = await client.get("/me", headers=headers)
                return [response.status_code, response.json()]

        result["me"] = asyncio.run(get())

if "INSTALLED_APPS" in namespace or "MIDDLEWARE" in namespace:
    from django.conf import settings

    settings.configure()
    from django.utils.module_loading import import_string
    import importlib

    for name in namespace.get("INSTALLED_APPS", []):
        if isinstance(name, str):
            importlib.import_module(name)
    for path in namespace.get("MIDDLEWARE", []):
        if isinstance(path, str):
            import_string(path)
    result["django"] = True

if "LOGGING" in namespace:
    logging.config.dictConfig(namespace["LOGGING"])
    result["logging"] = True

print(json.dumps(result))
"""


def blocks():
    """``(line number, source, compile_only)`` for every python block of the README."""
    text = README.read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        found.append((line, match.group(1), before.startswith(COMPILE_ONLY)))
    return found


BLOCKS = blocks()


def clean_env():
    """This environment without CLERK_* variables, so the developer's shell changes nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLERK_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_the_readme_has_python_blocks_and_few_compile_only():
    """The extraction finds the blocks, and compile-only stays the exception."""
    assert len(BLOCKS) >= 8
    assert sum(compile_only for _, _, compile_only in BLOCKS) <= 2


@pytest.mark.parametrize(
    ("line", "source", "compile_only"), BLOCKS, ids=[f"line-{b[0]}" for b in BLOCKS]
)
def test_readme_block(tmp_path, line, source, compile_only):
    """Each README block compiles, and runs unless marked compile-only: apps answer /me."""
    name = f"README.md, block at line {line}"
    compile(source, name, "exec")  # to bytecode: syntax and compile-time errors
    tree = ast.parse(source)
    if compile_only:
        return
    # The core-only run has no framework: a block that needs one is skipped there (never in the
    # full run, which installs every extra).
    needed = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    needed |= {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    if re.search(r"^(INSTALLED_APPS|MIDDLEWARE) = ", source, re.M):
        needed.add("django")
    for root in sorted({module.split(".")[0] for module in needed}):
        spec = importlib.util.find_spec(root)
        # No origin: a namespace package, such as this suite's own tests/django folder.
        if spec is None or spec.origin is None:
            pytest.skip(f"needs {root}")
    if re.search(r"^(async )?def test_", source, re.M):
        module = tmp_path / "test_readme_block.py"
        module.write_text(source)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
            + ["-W", "error", str(module)],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, f"{name}:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
        assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]
        return
    block = tmp_path / "block.py"
    block.write_text(source)
    run = subprocess.run(
        [sys.executable, "-c", RUNNER, str(block), name],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"{name}:\n{run.stderr[-4000:]}"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["names"], f"{name} defines nothing"
    if "app" in result["names"]:
        status, body = result["me"]
        assert status == 200, (name, body)
        assert body["user_id"] == "user_readme"
