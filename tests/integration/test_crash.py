"""Kill -9 the server mid-stream: every event that got a 200 survives, exactly once.

Clients send batches of 100 events with unique messageIds and retry on connection
errors and 5xx, as the SDKs do. The server is killed while they send and started
again on the same data dir; the clients finish their retries; then the database is
opened read-only and counted.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import pytest

from .harness import Server, Tenant

CLIENTS = 2
BATCH = 100
MAX_BATCHES = 200  # per client: bounds the test in count
DEADLINE = 60.0  # seconds: bounds it in time


@dataclass
class Stream:
    """One client: what it sent and what the server acknowledged."""

    tenant: Tenant
    url: str
    stop: threading.Event
    acked: list[tuple[float, list[str]]] = field(default_factory=list)  # (when, batch ids)
    sent: list[str] = field(default_factory=list)
    retries: int = 0
    failures: list[str] = field(default_factory=list)

    def run(self) -> None:
        deadline = time.monotonic() + DEADLINE
        with httpx.Client(base_url=self.url, auth=(self.tenant.write_key, ""), timeout=5.0) as c:
            for n in range(MAX_BATCHES):
                if self.stop.is_set():
                    return
                ids = [f"crash-{uuid.uuid4().hex}" for _ in range(BATCH)]
                batch = [
                    {
                        "type": "track",
                        "userId": f"u{n}",
                        "event": "Tick",
                        "messageId": m,
                        "properties": {"n": n},
                    }
                    for m in ids
                ]
                self.sent.extend(ids)
                while True:  # retry this batch until it is acknowledged
                    if time.monotonic() > deadline:
                        self.failures.append(f"batch {n} not acknowledged in {DEADLINE} s")
                        return
                    try:
                        r = c.post("/v1/batch", json={"batch": batch})
                    except httpx.TransportError:
                        self.retries += 1
                        time.sleep(0.05)
                        continue
                    if r.status_code == 200:
                        self.acked.append((time.monotonic(), ids))
                        break
                    if r.status_code >= 500 or r.status_code == 429:
                        self.retries += 1
                        time.sleep(0.05)
                        continue
                    self.failures.append(f"batch {n}: {r.status_code} {r.text}")
                    return


def stored(server: Server, sql: str, key: str) -> dict[str, int]:
    """(key, count) rows of ``sql`` over the stopped server's database file, as a dict."""
    con = duckdb.connect(str(server.data_dir / "quanyu.duckdb"), read_only=True)
    try:
        return dict(con.execute(sql, [key]).fetchall())
    finally:
        con.close()


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_event(fresh_server: Server) -> None:
    server = fresh_server
    tenant = server.new_tenant()
    stop = threading.Event()
    streams = [Stream(tenant, server.url, stop) for _ in range(CLIENTS)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in streams]
    for t in threads:
        t.start()

    time.sleep(1.5)
    killed_at = time.monotonic()
    server.kill()
    acked_before_kill = {m for s in streams for at, ids in s.acked if at < killed_at for m in ids}
    time.sleep(0.3)
    server.restart()
    time.sleep(0.5)  # let the clients send a little to the new process
    stop.set()
    for t in threads:
        t.join(DEADLINE + 5)
    assert not any(t.is_alive() for t in threads), "a client did not finish in time"
    assert not [f for s in streams for f in s.failures], [f for s in streams for f in s.failures]

    acked = [m for s in streams for _, ids in s.acked for m in ids]
    sent = [m for s in streams for m in s.sent]
    assert acked_before_kill, "nothing was acknowledged before the kill: the test proves nothing"
    assert sum(s.retries for s in streams) > 0, "the kill interrupted no request"
    assert len(acked) == len(set(acked)) == len(sent), "every batch is acknowledged in the end"

    via_api = [e["message_id"] for e in server.events(tenant)]
    assert len(via_api) == len(set(via_api)), "the API lists a messageId twice"
    server.stop()
    counts = stored(
        server,
        "SELECT message_id, count(*) FROM events WHERE source_id = ? GROUP BY message_id",
        tenant.source_id,
    )
    twice = [m for m, n in counts.items() if n != 1]
    assert not twice, f"{len(twice)} messageIds stored more than once, e.g. {twice[:3]}"
    lost = set(acked) - set(counts)
    assert not lost, f"{len(lost)} acknowledged events were lost, e.g. {sorted(lost)[:3]}"
    assert not acked_before_kill - set(counts)
    assert set(counts) == set(via_api) == set(sent)


def test_sigterm_shuts_down_cleanly(fresh_server: Server) -> None:
    """A plain stop finishes the lifespan, keeps what was acknowledged, removes server.json."""
    server = fresh_server
    tenant = server.new_tenant()
    ids = [f"term-{uuid.uuid4().hex}" for _ in range(500)]
    batch = [{"type": "track", "userId": "u", "event": "E", "messageId": m} for m in ids]
    r = httpx.post(f"{server.url}/v1/batch", json={"batch": batch}, auth=(tenant.write_key, ""))
    assert r.status_code == 200, r.text
    # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit too
    assert server.stop() in (0, -15)
    assert "Application shutdown complete" in server.log_tail(), server.log_tail()
    assert not (server.data_dir / "server.json").exists(), "server.json outlived the server"
    con = duckdb.connect(str(server.data_dir / "quanyu.duckdb"), read_only=True)
    try:
        (n,) = con.execute(
            "SELECT count(DISTINCT message_id) FROM events WHERE source_id = ?", [tenant.source_id]
        ).fetchone() or (0,)
    finally:
        con.close()
    assert n == len(ids)


@dataclass
class Scans:
    """A client scanning codes (each scan from its own device id), retrying like an app."""

    url: str
    tenant: str
    stop: threading.Event
    acked: list[tuple[float, str, int]] = field(default_factory=list)  # (when, device, tries)
    failures: list[str] = field(default_factory=list)

    def run(self) -> None:
        deadline = time.monotonic() + DEADLINE
        path = f"/v1/public/tenants/{self.tenant}/scans"
        client: httpx.Client | None = None
        for n in range(2_000):
            if self.stop.is_set():
                break
            if n % 20 == 0:  # a new address now and then: the per-IP limit is 5 a second
                if client is not None:
                    client.close()
                local = f"127.0.{n // 20 // 250}.{n // 20 % 250 + 2}"
                transport = httpx.HTTPTransport(local_address=local)
                client = httpx.Client(base_url=self.url, transport=transport, timeout=5.0)
            assert client is not None
            device = f"dev-{uuid.uuid4().hex}"
            body = {"code": f"NOTACODE{n:012d}", "device_id": device, "city": "遵义"}
            tries = 0
            while True:
                if time.monotonic() > deadline:
                    self.failures.append(f"scan {n} not answered in {DEADLINE} s")
                    return
                tries += 1
                try:
                    r = client.post(path, json=body)
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                if r.status_code == 200:
                    self.acked.append((time.monotonic(), device, tries))
                    break
                if r.status_code >= 500:
                    time.sleep(0.05)
                    continue
                self.failures.append(f"scan {n}: {r.status_code} {r.text}")
                return
        if client is not None:
            client.close()


@pytest.mark.slow
def test_kill_9_loses_no_answered_scan_and_folds_each_once(fresh_server: Server) -> None:
    """Scans are answered once durable in the scan journal, before they reach the
    database: a kill -9 between the two loses none, and the restart folds each once."""
    server = fresh_server
    tenant = server.new_tenant()
    stop = threading.Event()
    client = Scans(server.url, tenant.id, stop)
    thread = threading.Thread(target=client.run, daemon=True)
    thread.start()
    # kill mid-stream once enough scans were answered (a loaded machine answers fewer a
    # second, so wait for a count, not for a time)
    deadline = time.monotonic() + DEADLINE
    while len(client.acked) < 40 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    killed_at = time.monotonic()
    server.kill()
    before_kill = {d for at, d, _ in client.acked if at < killed_at}
    time.sleep(0.3)
    server.restart()
    time.sleep(0.5)
    stop.set()
    thread.join(DEADLINE + 5)
    assert not thread.is_alive() and not client.failures, client.failures
    assert len(before_kill) > 20, "too few scans before the kill: the test proves nothing"
    listed = server.call(
        "GET",
        f"/v1/tenants/{tenant.id}/events",
        tenant.secret,
        params={"event": "Product Scanned", "limit": 1000},
    )
    assert len(listed["items"]) >= len(client.acked)
    server.stop()
    counts = stored(
        server,
        "SELECT device_id, count(*) FROM code_scans WHERE tenant_id = ? GROUP BY device_id",
        tenant.id,
    )
    lost = {d for _, d, _ in client.acked} - set(counts)
    assert not lost, f"{len(lost)} answered scans were lost, e.g. {sorted(lost)[:3]}"
    once = [d for _, d, tries in client.acked if tries == 1]
    assert all(counts[d] == 1 for d in once), "a scan was folded twice"


def test_kill_9_after_a_journal_answer_keeps_the_events(tmp_path: Path) -> None:
    """A request answered from the journal (its commit late) survives a kill -9 that comes
    before the commit: the next start commits it, once."""
    # the writer waits 5 s for more events before it commits; the journal answers at once
    server = Server(
        tmp_path, env={"QUANYU_JOURNAL_ACK_MS": "0", "QUANYU_COMMIT_INTERVAL_MS": "5000"}
    )
    server.start()
    try:
        tenant = server.new_tenant()
        ids = [f"journal-{uuid.uuid4().hex}" for _ in range(50)]
        batch: list[object] = [{"type": "track", "userId": "u", "event": "E", "messageId": m}
                               for m in ids]  # fmt: skip
        batch.append({"type": "track", "event": "No user"})  # a dead letter, kept once too
        started = time.monotonic()
        r = httpx.post(f"{server.url}/v1/batch", json={"batch": batch},
                       auth=(tenant.write_key, ""), timeout=10)  # fmt: skip
        assert r.status_code == 200, r.text
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        server.kill()
        assert time.monotonic() - started < 5, "the commit may have come before the kill"
        assert "quanyu_events_journal_acked_total 50.0" in metrics
        assert list((server.data_dir / "journal").glob("ingest-*")), "nothing in the journal"
        server.restart()
        assert sorted(e["message_id"] for e in server.events(tenant)) == sorted(ids)
        letters = server.dead_letters(tenant)
        assert [x["code"] for x in letters] == ["missing_identity"], letters
        server.restart()  # the journal is spent: a second start adds nothing
        assert len(server.events(tenant)) == len(ids)
    finally:
        server.stop()
