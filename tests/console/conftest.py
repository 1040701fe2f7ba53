"""Fixtures for the console's end-to-end tests: the real server with a small demo loaded,
one console user per role, and headless Chromium driven by Playwright.

Every test signs in through the sign-in form, like a person. Screenshots go to
``build/artifacts/console/`` (``QUANYU_ARTIFACTS`` moves them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.harness import Server, server_env
from tests.integration.test_browser import CHROMIUM_FLAGS, chromium

ARTIFACTS = Path(os.environ.get("QUANYU_ARTIFACTS", "build/artifacts")) / "console"
ROLES = ("admin", "marketer", "analyst", "operator", "auditor")
PASSWORD = "console-test-password"
DEMO_CONSUMERS = 300


@dataclass
class ConsoleSite:
    """The running server, its demo tenant and a user per role (login = role name)."""

    server: Server
    tenant_id: str
    admin_key: str
    keys: dict[str, Any]
    other_tenant_id: str = ""
    logins: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def page_url(self, path: str = "", tenant: str | None = None) -> str:
        return f"{self.url}/console/t/{tenant or self.tenant_id}/{path.lstrip('/')}"

    def api(self, method: str, path: str, **kw: Any) -> Any:
        """One management call with the demo tenant's admin key; must succeed."""
        return self.server.call(method, path, self.admin_key, **kw)

    def cli(self, *args: str) -> str:
        """``quanyu ARGS`` against the running server; must succeed; returns stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "quanyu.cli", *args],
            env={**server_env(self.server.data_dir), "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (
            f"quanyu {' '.join(args)}:\n{done.stdout}\n{done.stderr}\n"
            f"the server's log:\n{self.server.log_tail()}"
        )
        return done.stdout


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    """The server with ``quanyu demo`` loaded (small), users per role, a second tenant."""
    srv = Server(tmp_path_factory.mktemp("quanyu-console"))
    srv.start()
    try:
        s = ConsoleSite(server=srv, tenant_id="", admin_key="", keys={})
        s.cli("demo", "--consumers", str(DEMO_CONSUMERS), "--seed", "7")
        s.keys = json.loads((srv.data_dir / "demo-keys.json").read_text())
        s.tenant_id, s.admin_key = s.keys["tenant_id"], s.keys["admin_key"]
        for role in ROLES:
            s.api(
                "POST",
                f"/v1/tenants/{s.tenant_id}/users",
                json={"login": role, "password": PASSWORD, "role": role},
            )
            s.logins[role] = role
        other = srv.create_tenant("Another brand group")
        s.other_tenant_id = other["id"]
        srv.call(
            "POST",
            f"/v1/tenants/{other['id']}/users",
            json={"login": "other-admin", "password": PASSWORD, "role": "admin"},
        )
        yield s
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module: Playwright's sync API runs an event loop on this
    thread while it is open, which later tests calling ``asyncio.run`` must not see."""
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, site: ConsoleSite) -> Iterator[Any]:
    """A fresh browser context (no cookies) in English, 1280×900."""
    context = browser.new_context(
        base_url=site.url, locale="en-US", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def sign_in(page: Any, login: str, password: str = PASSWORD) -> None:
    """Fill in the sign-in form and wait for the tenant's home page."""
    page.goto("/console/sign-in")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/t/[^/]+/.*"))


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as an artefact; return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@contextmanager
def session_client(
    site: ConsoleSite, login: str, password: str = PASSWORD
) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the console (for checks a browser makes awkward)."""
    with httpx.Client(base_url=site.url, timeout=30.0) as c:
        yield _signed_in(c, login, password)


def _signed_in(c: httpx.Client, login: str, password: str) -> httpx.Client:
    form = c.get("/console/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "the sign-in form has no CSRF token"
    r = c.post(
        "/console/sign-in",
        data={"login": login, "password": password, "csrf_token": token.group(1)},
    )
    assert r.status_code == 303, f"sign-in as {login} -> {r.status_code}: {r.text[:300]}"
    return c


def csrf_of(html: str) -> str:
    """The CSRF token a signed-in page carries."""
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)
