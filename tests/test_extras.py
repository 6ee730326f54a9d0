"""An adapter whose framework is missing says which extra to install."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Run in a fresh interpreter: block the framework (None in sys.modules makes importing it raise
# ImportError, as when it is not installed), import the adapter, report what was raised.
PROBE = """
import importlib, json, sys
for name in sys.argv[2:]:
    sys.modules[name] = None
try:
    importlib.import_module(sys.argv[1])
except ImportError as exc:
    cause = exc.__cause__
    print(json.dumps({
        "type": type(exc).__name__,
        "message": str(exc),
        "cause": type(cause).__name__ if cause is not None else None,
    }))
else:
    print(json.dumps(None))
"""


def probe(module, *blocked):
    """What importing ``module`` raises with ``blocked`` modules unavailable."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, module, *blocked],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("module", "blocked", "adapter", "extra"),
    [
        ("clerk_guard.fastapi", "fastapi", "clerk_guard.fastapi", "fastapi"),
        ("clerk_guard.starlette", "starlette", "clerk_guard.starlette", "starlette"),
        ("clerk_guard.flask", "flask", "clerk_guard.flask", "flask"),
        ("clerk_guard.django", "django", "clerk_guard.django", "django"),
        ("clerk_guard.django.middleware", "django", "clerk_guard.django", "django"),
        ("clerk_guard.django.drf", "rest_framework", "clerk_guard.django.drf", "drf"),
    ],
)
def test_missing_framework_names_the_extra(module, blocked, adapter, extra):
    """Importing an adapter without its framework raises an ImportError that says what to
    pip install, chained from the original error."""
    if module.startswith("clerk_guard.django.") and adapter != "clerk_guard.django":
        pytest.importorskip("django.conf")  # else the package itself names the [django] extra
    raised = probe(module, blocked)
    assert raised is not None, f"{module} imported without {blocked}"
    assert raised["type"] == "ImportError"
    assert f'pip install "clerk-guard[{extra}]"' in raised["message"]
    assert raised["message"].startswith(f"{adapter} needs ")
    assert raised["cause"] == "ModuleNotFoundError"


def test_framework_free_adapters_need_no_extra():
    """The pure ASGI and WSGI middleware import with every framework missing."""
    frameworks = ("fastapi", "starlette", "flask", "werkzeug", "django", "rest_framework")
    for module in ("clerk_guard", "clerk_guard.asgi", "clerk_guard.wsgi", "clerk_guard.testing"):
        assert probe(module, *frameworks) is None, module
