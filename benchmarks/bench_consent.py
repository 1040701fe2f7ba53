"""Consent propagation: how long until every touchpoint hears of a consent change.

One ``quanyu serve`` on 127.0.0.1 and 10 subscriber webhook endpoints in this process
(threads on 127.0.0.1) that verify each Standard Webhooks signature and note when each
change first arrives. Changes are recorded one per request through
``POST /v1/tenants/{t}/consent/decisions`` at a steady rate, bounded in count and time.
The figure is, per change and subscriber, arrival minus the moment the API answered
(a change that arrives before the answer counts as 0): p50 and p99 over all of them.
Every subscriber must get every change, in order per person.
Run: python benchmarks/bench_consent.py [--changes 200] [--rate 20] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, machine, process  # noqa: E402

from quanyu.delivery.signing import SignatureInvalid, verify  # noqa: E402

SUBSCRIBERS = 10


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class Endpoint:
    """A touchpoint: checks signatures, keeps each webhook-id's first arrival."""

    def __init__(self) -> None:
        self.secret = ""
        self.lock = threading.Lock()
        self.first: dict[str, tuple[float, dict[str, Any]]] = {}  # webhook-id -> (at, data)
        self.order: list[str] = []  # webhook-ids in first-arrival order
        self.duplicates = 0
        self.forged = 0
        ep = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                at = time.time()
                try:
                    msg_id = verify(ep.secret, dict(self.headers.items()), body)
                except SignatureInvalid:
                    with ep.lock:
                        ep.forged += 1
                    self._answer(401)
                    return
                with ep.lock:
                    if msg_id in ep.first:
                        ep.duplicates += 1
                    else:
                        ep.first[msg_id] = (at, json.loads(body)["data"])
                        ep.order.append(msg_id)
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/consent"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def arrivals(self) -> dict[int, float]:
        """First arrival time of each ledger entry."""
        with self.lock:
            return {int(d["entry"]): at for at, d in self.first.values()}

    def in_order(self) -> bool:
        """Whether each person's entries arrived in ledger order."""
        per: dict[str, list[int]] = {}
        with self.lock:
            for msg_id in self.order:
                d = self.first[msg_id][1]
                who = d["profile"] or json.dumps(d["identifiers"], sort_keys=True)
                per.setdefault(who, []).append(int(d["entry"]))
        return all(seqs == sorted(seqs) for seqs in per.values())


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=200, help="changes recorded (at most)")
    parser.add_argument("--rate", type=float, default=20.0, help="changes per second")
    parser.add_argument("--people", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=60.0, help="bound on recording")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="quanyu-bench-consent-"))
    data = work / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    endpoints = [Endpoint() for _ in range(SUBSCRIBERS)]
    print(
        f"machine: {machine()}; {SUBSCRIBERS} subscribers, up to {args.changes} changes at"
        f" {args.rate:g}/s over {args.people} people, one change per request"
    )
    with process(
        [sys.executable, "-m", "quanyu.cli", "serve", "--port", str(port)],
        {
            "QUANYU_DATA_DIR": str(data),
            "QUANYU_LOG_LEVEL": "WARNING",
            "QUANYU_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        },
        f"{url}/readyz",
    ):
        token = json.loads((data / "server.json").read_text())["token"]
        api = httpx.Client(base_url=url, timeout=30.0, headers={"Authorization": f"Bearer {token}"})
        tenant = api.post("/v1/tenants", json={"name": "Bench Group"}).json()["id"]
        base = f"/v1/tenants/{tenant}/consent"
        for i, ep in enumerate(endpoints):
            r = api.post(f"{base}/subscribers", json={"name": f"touchpoint-{i}", "url": ep.url})
            assert r.status_code == 201, r.text
            ep.secret = r.json()["secret"]

        request_ms: list[float] = []

        def record(i: int) -> tuple[int, float]:
            status = "granted" if (i // args.people) % 2 == 0 else "withdrawn"
            decision = {
                "subject": {"type": "unionid", "value": f"o6_bench_{i % args.people:04d}"},
                "purpose": "marketing",
                "status": status,
                "surface": "mini_program",
            }
            sent = time.time()
            r = api.post(f"{base}/decisions", json={"decisions": [decision]})
            answered = time.time()
            request_ms.append((answered - sent) * 1000)
            assert r.status_code == 201, r.text
            return int(r.json()[0]["entry"]["seq"]), answered

        for i in range(5):  # warm-up: first requests import and plan
            record(i)
        time.sleep(1.0)
        for ep in endpoints:
            ep.first.clear()
            ep.order.clear()

        answered: dict[int, float] = {}
        start = time.monotonic()
        for i in range(args.changes):
            if time.monotonic() - start > args.seconds:
                break
            seq, at = record(i)
            answered[seq] = at
            pause = start + (i + 1) / args.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        took = time.monotonic() - start
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and any(
            not answered.keys() <= ep.arrivals().keys() for ep in endpoints
        ):
            time.sleep(0.05)
        api.close()

    lat: list[float] = []
    missing = 0
    for ep in endpoints:
        got = ep.arrivals()
        missing += len(answered.keys() - got.keys())
        lat.extend(max(0.0, got[s] - at) * 1000 for s, at in answered.items() if s in got)
    ordered = all(ep.in_order() for ep in endpoints)
    forged = sum(ep.forged for ep in endpoints)
    dupes = sum(ep.duplicates for ep in endpoints)
    for ep in endpoints:
        ep.httpd.shutdown()
    print(
        f"consent_propagation_p50_ms={statistics.median(lat):.1f} p99_ms={pct(lat, 99):.1f}"
        f" max_ms={max(lat):.1f} changes={len(answered)} subscribers={SUBSCRIBERS}"
        f" deliveries={len(lat)} missing={missing} duplicates={dupes} forged={forged}"
        f" in_order={'OK' if ordered else 'NO'}"
    )
    api_ms = request_ms[5:]
    print(
        f"consent_record_api_p50_ms={statistics.median(api_ms):.1f}"
        f" p99_ms={pct(api_ms, 99):.1f} changes_per_s={len(answered) / took:.1f}"
    )
    if missing or forged or not ordered:
        sys.exit(1)


if __name__ == "__main__":
    main()
