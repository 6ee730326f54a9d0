"""The demo page in headless Chromium: sign in, call /me by cookie and by header, the doctor.

The page runs its whole flow on load when given ``?autotest=1`` and writes the results into
the DOM; Chromium's ``--dump-dom`` (with a virtual time budget, so the page's fetches finish
first) hands that DOM back. No WebDriver, no DevTools client.
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import html  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402

from tests._servers import free_port, server_process  # noqa: E402

CHROMIUM = pathlib.Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium); CI installs it",
    ),
]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # Virtual time only advances when the page is idle, so the page's fetches all complete
    # before the DOM is dumped; 20 s of virtual time is far more than the flow needs.
    "--virtual-time-budget=20000",
]
RESULT = re.compile(r'<pre id="autotest-result"[^>]*>(.*?)</pre>', re.DOTALL)


@pytest.fixture(scope="module")
def demo_url():
    """The demo command running on a free port."""
    port = free_port()
    with server_process(["clerk_guard", "demo", "--port", str(port)], port=port) as base:
        yield base


def chromium(tmp_path, *args):
    """Run headless Chromium with a fresh profile; return its stdout."""
    profile = tmp_path / "profile"
    result = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_page_flow_in_chromium(tmp_path, demo_url):
    """Sign-in, /me by cookie and by Bearer header, /admin 403 and the doctor all work."""
    dom = chromium(tmp_path, "--dump-dom", f"{demo_url}/?autotest=1")
    assert 'data-autotest="done"' in dom
    match = RESULT.search(dom)
    assert match is not None, dom[-2000:]
    results = json.loads(html.unescape(match.group(1)))
    assert "error" not in results
    assert results["signedOutMe"] == 401
    assert results["signIn"] == 200
    assert results["meCookie"] == {"status": 200, "user": "user_2demoTestUser"}
    assert results["meBearer"] == {"status": 200, "user": "user_2demoTestUser"}
    assert results["adminAsMember"] == 403
    assert results["doctorValid"] == {"verdict": "accepted", "code": None}
    assert results["doctorTampered"] == {"verdict": "rejected", "code": "token-invalid-signature"}
    # What the user sees: the verdict and the explained failure are rendered.
    assert 'data-verdict="rejected"' in dom
    assert "signed in as user_2demoTestUser" in dom


def test_page_screenshot(tmp_path, demo_url):
    """Chromium renders the page after the flow (PNG kept when CLERK_GUARD_SCREENSHOTS is set)."""
    shot = tmp_path / "demo.png"
    chromium(tmp_path, "--window-size=1280,1700", f"--screenshot={shot}", f"{demo_url}/?autotest=1")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 1700)
    keep = os.environ.get("CLERK_GUARD_SCREENSHOTS")
    if keep:
        pathlib.Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, pathlib.Path(keep) / "demo.png")
