"""The real analytics.js (``@segment/analytics-next``) in headless Chromium.

A tiny local web server serves ``js/page.html`` and the package's UMD bundle; the
page loads analytics with ``cdnURL`` set to Quanyu, so it fetches its settings
from ``/v1/projects/{writeKey}/settings`` and sends events where they say.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.sealed import opened

from .harness import Server, Tenant, metric, samples

JS = Path(__file__).parent / "js"
PACKAGE = JS / "node_modules" / "@segment" / "analytics-next"
BUNDLE = "node_modules/@segment/analytics-next/dist/umd/index.js"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine (make chromium installs Debian's)")


#: Headless flags for this machine's closed network (no background or update traffic).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def ensure_analytics_next() -> str:
    """Install the pinned package with npm when missing or stale; return its version."""
    wanted = json.loads((JS / "package.json").read_text())["dependencies"][
        "@segment/analytics-next"
    ]
    installed = PACKAGE / "package.json"
    if not (JS / BUNDLE).exists() or json.loads(installed.read_text())["version"] != wanted:
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is missing: cannot install @segment/analytics-next")
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"npm install failed:\n{done.stdout}\n{done.stderr}"
        assert (JS / BUNDLE).exists(), f"npm installed no {BUNDLE}"
    version = str(json.loads(installed.read_text())["version"])
    assert version == wanted, f"npm installed analytics-next {version}, package.json pins {wanted}"
    return version


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def page_server() -> Iterator[str]:
    """A static web server for js/ on 127.0.0.1 (a different origin from Quanyu's)."""
    handler = functools.partial(QuietHandler, directory=str(JS))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # the OS picks a free port
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def run_page(browser: str, url: str, profile: Path) -> str:
    """Load ``url`` in headless Chromium and return the page's DOM once it settles."""
    done = subprocess.run(
        [
            browser,
            "--headless",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout


def test_analytics_js_sends_to_quanyu(
    server: Server, tenant: Tenant, page_server: str, tmp_path: Path
) -> None:
    browser = chromium()
    version = ensure_analytics_next()
    user = f"web-{uuid.uuid4().hex[:8]}"
    query = urllib.parse.urlencode(
        {"writeKey": tenant.write_key, "api": server.url, "user": user, "bundle": f"/{BUNDLE}"}
    )
    before = samples(server)
    dom = run_page(browser, f"{page_server}/page.html?{query}", tmp_path / "profile")
    status = re.search(r'<pre id="status">(.*?)</pre>', dom, re.S)
    assert status, f"no status in the page:\n{dom[:2000]}"
    text = status.group(1).replace("&quot;", '"')
    assert text.startswith("done "), f"the page says: {text}"
    sent = {s["id"]: s for s in json.loads(text[5:])}
    assert [s["failed"] for s in sent.values()] == [None] * 3, sent

    stored: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(stored) < len(sent):
        stored = server.events(tenant)
        time.sleep(0.2)
    by_id = {e["message_id"]: e for e in stored}
    assert len(stored) == len(by_id) == 3, [e["message_id"] for e in stored]
    assert set(by_id) == set(sent)
    for e in stored:
        assert e["source_id"] == tenant.source_id
        # analytics-next reports itself as analytics.js, version "next-<package version>"
        assert e["context"]["library"] == {"name": "analytics.js", "version": f"next-{version}"}
        assert e["context"]["page"]["url"].startswith(page_server)
        assert "HeadlessChrome" in e["context"]["userAgent"]
        assert e["anonymous_id"], "analytics.js always sends an anonymousId"
        assert e["sent_at"] is not None
    # it loaded its settings from us, then used the one-letter paths they lead to
    after = samples(server)
    for route in ("/v1/projects/{write_key}/settings", "/v1/i", "/v1/t", "/v1/p"):
        name, labels = "quanyu_request_duration_seconds_count", {"route": route, "status": "200"}
        hits = metric(after, name, **labels) - metric(before, name, **labels)
        assert hits >= 1, f"analytics.js never got a 200 from {route}"
    types = {e["type"]: e for e in stored}
    assert set(types) == {"identify", "track", "page"}
    assert types["identify"]["user_id"] == user
    traits = types["identify"]["traits"]
    assert traits["email"].startswith("qy1:"), "an e-mail identifier is stored sealed"
    assert opened(traits, server.data_dir, tenant.id) == {
        "email": f"{user}@example.com",
        "plan": "pro",
    }
    assert types["track"]["event"] == "Browser Test"
    assert types["track"]["properties"] == {"price": 12.5, "currency": "CNY"}
    assert types["track"]["user_id"] == user, "track carries the identified user"
    assert types["page"]["name"] == "Home"
    assert types["page"]["properties"]["section"] == "intro"
