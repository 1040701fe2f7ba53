"""The real ``quanyu serve`` as a subprocess, and small helpers to talk to it.

Integration tests start the server the way a user does (``python -m quanyu.cli serve``)
on 127.0.0.1 with a temporary data dir, and speak to it only over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

#: Ports this suite may use (kept clear of the other suites on this machine).
PORT_RANGE = range(18200, 18300)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A port in :data:`PORT_RANGE` nothing listens on right now (random order)."""
    start = uuid.uuid4().int % len(PORT_RANGE)
    for i in range(len(PORT_RANGE)):
        port = PORT_RANGE[(start + i) % len(PORT_RANGE)]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"No free port in {PORT_RANGE.start}-{PORT_RANGE.stop - 1} on 127.0.0.1.")


def server_env(data_dir: Path) -> dict[str, str]:
    """The environment of a server or CLI process: ours, less any QUANYU_ setting, plus
    the data dir (so a developer's own settings never leak into a test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANYU_")}
    env["QUANYU_DATA_DIR"] = str(data_dir)
    env["QUANYU_REFRESH_INTERVAL"] = "1"  # tags and audiences refresh within a second
    env["QUANYU_WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"  # receivers are on 127.0.0.1
    return env


@dataclass
class Tenant:
    """A tenant made for one test: its source's write key and an admin secret key."""

    id: str
    name: str
    source_id: str
    write_key: str
    secret: str


class Server:
    """One ``quanyu serve`` process on a data dir; it can be killed and restarted."""

    def __init__(self, root: Path, port: int | None = None, env: dict[str, str] | None = None):
        """``env``: settings of this server beyond :func:`server_env`'s."""
        self.root = root
        self.env = env or {}
        self.data_dir = root / "data"
        self.log_path = root / "server-stderr.log"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.started = False
        self.last_exit: int | None = None

    # -- process ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait until ``/readyz`` answers 200.

        On a first start, a port taken meanwhile by another process means another
        port; a restart keeps its port, since clients are still sending there.
        """
        for attempt in range(3):
            if self._spawn():
                return
            if self.started or attempt == 2 or b"address already in use" not in self._log_bytes():
                raise RuntimeError(f"quanyu serve exited with {self.last_exit}:\n{self.log_tail()}")
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"

    def _spawn(self) -> bool:
        """One start; False if the process exited before it was ready."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "quanyu.cli", "serve", "--port", str(self.port)],
            env={**server_env(self.data_dir), **self.env},
            cwd=self.root,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.last_exit, self.proc = self.proc.returncode, None
                return False
            try:
                # ours only once its server.json names it: with tests in parallel, another
                # test's server may hold the port ours is failing to bind
                ready = httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
                info = self._info() if ready else None
                if info is not None and info["pid"] == self.proc.pid:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(
                f"quanyu serve was not ready in {START_TIMEOUT} s:\n{self.log_tail()}"
            )
        self.token = info["token"]
        self.started = True
        return True

    def _info(self) -> dict[str, Any] | None:
        """The server.json of this data dir (pid, token), if written yet."""
        path = self.data_dir / "server.json"
        try:
            return dict(json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _log_bytes(self) -> bytes:
        return self.log_path.read_bytes() if self.log_path.exists() else b""

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server is not running"
        return self.proc.pid

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`; return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        code, self.proc = self.proc.returncode, None
        return code

    def kill(self) -> None:
        """``kill -9``: no shutdown hook runs, nothing is flushed."""
        assert self.proc is not None, "the server is not running"
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)
        self.proc = None

    def restart(self) -> None:
        """Start again on the same data dir and port (after :meth:`kill` or :meth:`stop`)."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` of the server's stderr."""
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_lines(self) -> list[str]:
        """Every non-empty line the server wrote to stderr so far."""
        return [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]

    # -- management API -----------------------------------------------------------------

    def api(self, secret: str | None = None) -> httpx.Client:
        """A management-API client with ``secret`` (default: the local admin token)."""
        return httpx.Client(
            base_url=self.url,
            timeout=30.0,
            headers={"Authorization": f"Bearer {secret or self.token}"},
        )

    def call(self, method: str, path: str, secret: str | None = None, **kw: Any) -> Any:
        """One management call that must succeed; returns the decoded body."""
        with self.api(secret) as c:
            r = c.request(method, path, **kw)
        assert r.is_success, f"{method} {path} -> {r.status_code} {r.text}"
        return r.json()

    def create_tenant(
        self, name: str | None = None, *, secret: str | None = None
    ) -> dict[str, Any]:
        """POST /v1/tenants."""
        body = {"name": name or f"T-{uuid.uuid4().hex[:8]}"}
        return dict(self.call("POST", "/v1/tenants", secret, json=body))

    def create_source(
        self,
        tenant_id: str,
        name: str | None = None,
        *,
        kind: str = "server",
        secret: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """POST /v1/tenants/{id}/sources; the answer holds the write key."""
        body = {"name": name or f"S-{uuid.uuid4().hex[:8]}", "kind": kind, **extra}
        return dict(self.call("POST", f"/v1/tenants/{tenant_id}/sources", secret, json=body))

    def create_key(self, tenant_id: str, scopes: list[str] | None = None) -> str:
        """POST /v1/tenants/{id}/keys; returns the secret."""
        body = {"name": f"K-{uuid.uuid4().hex[:8]}", "scopes": scopes or ["admin"]}
        return str(self.call("POST", f"/v1/tenants/{tenant_id}/keys", json=body)["secret"])

    def new_tenant(self, **source: Any) -> Tenant:
        """A fresh tenant with one source and an admin key of its own."""
        t = self.create_tenant()
        s = self.create_source(t["id"], **source)
        return Tenant(t["id"], t["name"], s["id"], s["write_key"], self.create_key(t["id"]))

    def events(self, tenant: Tenant, **filters: Any) -> list[dict[str, Any]]:
        """Every stored event of ``tenant`` (paged through), read with its own key."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 1000, **filters}
        with self.api(tenant.secret) as c:
            while True:
                r = c.get(f"/v1/tenants/{tenant.id}/events", params=params)
                assert r.status_code == 200, r.text
                page = r.json()
                items.extend(page["items"])
                if not page["next_cursor"]:
                    return items
                params["cursor"] = page["next_cursor"]

    def dead_letters(self, tenant: Tenant, **filters: Any) -> list[dict[str, Any]]:
        """The tenant's dead letters (first 1000)."""
        page = self.call(
            "GET",
            f"/v1/tenants/{tenant.id}/dead-letters",
            tenant.secret,
            params={"limit": 1000, **filters},
        )
        return list(page["items"])


def track(user: str = "u1", event: str = "Tested", **extra: Any) -> dict[str, Any]:
    """A valid track message with a fresh messageId."""
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "messageId": f"m-{uuid.uuid4().hex}",
        **extra,
    }


Samples = dict[str, list[tuple[dict[str, str], float]]]


def samples(server: Server) -> Samples:
    """Every sample of the server's /metrics, by sample name."""
    r = httpx.get(f"{server.url}/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value))
    return found


def metric(found: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``; 0 if none."""
    return float(sum(v for lbl, v in found.get(name, []) if labels.items() <= lbl.items()))
