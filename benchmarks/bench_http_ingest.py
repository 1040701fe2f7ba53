"""HTTP ingest through /v1/batch: events/s, p50 and p99, against a bare baseline.

One server process; wrk (Debian's package) on 127.0.0.1 with 16 connections, bounded
in time. Every event a 200 acknowledged is checked to be in the database afterwards.
Run: python benchmarks/bench_http_ingest.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, machine, process, quanyu, segment_batch  # noqa: E402

LUA = Path(__file__).with_name("wrk_batch.lua")
EVENTS_PER_REQUEST = 100


def run_wrk(
    url: str, body_file: Path, auth: str, seconds: int, connections: int
) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(LUA),
            url,
            "--",
            str(body_file),
            auth,
            f"r{time.monotonic_ns()}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {
        "requests": requests,
        "non2xx": int(bad.group(1)) if bad else 0,
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "socket_errors": bool(errors),
    }


def catch_up(status_url: str, secret: str, bound: float = 120.0) -> tuple[int, float]:
    """Events committed but not resolved when the load stopped, and the seconds until the
    server's background resolver had them all (polled; ``bound`` at most)."""
    started = time.monotonic()
    with httpx.Client(headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http:

        def pending() -> int:
            r = http.get(status_url)
            r.raise_for_status()
            return int(r.json()["pending_events"])

        backlog = left = pending()
        while left and time.monotonic() - started <= bound:
            time.sleep(0.05)
            left = pending()
    return backlog, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="quanyu-bench-"))
    body = work / "batch.json"
    body.write_bytes(segment_batch(EVENTS_PER_REQUEST))
    print(
        f"machine: {machine()}; body {body.stat().st_size / 1024:.1f} KB,"
        f" {EVENTS_PER_REQUEST} events/request, {args.connections} connections, {args.seconds} s"
    )

    # The bare baseline first, in the same run.
    port = free_port()
    env = {"BASELINE_SINK": str(work / "sink.jsonl")}
    with process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "benchmarks.baseline_app:app",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env,
        f"http://127.0.0.1:{port}/docs",
    ):
        url = f"http://127.0.0.1:{port}/v1/batch"
        run_wrk(url, body, "eDo=", 2, args.connections)
        base = run_wrk(url, body, "eDo=", args.seconds, args.connections)

    data = work / "data"
    tenant = quanyu(data, "tenants", "create", "Bench Group")
    source = quanyu(data, "sources", "create", "Bench web", "--kind", "web")
    key = quanyu(data, "keys", "create", "bench", "--scope", "identity:read")
    assert isinstance(tenant, dict) and isinstance(source, dict) and isinstance(key, dict)
    auth = base64.b64encode(f"{source['write_key']}:".encode()).decode()
    port = free_port()
    with process(
        [sys.executable, "-m", "quanyu.cli", "serve", "--port", str(port)],
        {"QUANYU_DATA_DIR": str(data), "QUANYU_LOG_LEVEL": "WARNING"},
        f"http://127.0.0.1:{port}/readyz",
    ):
        url = f"http://127.0.0.1:{port}/v1/batch"
        warm = run_wrk(url, body, auth, 2, args.connections)
        ours = run_wrk(url, body, auth, args.seconds, args.connections)
        backlog, caught_up = catch_up(
            f"http://127.0.0.1:{port}/v1/tenants/{tenant['id']}/identity/status", key["secret"]
        )
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        journaled = re.search(r"^quanyu_events_journal_acked_total ([\d.e+]+)$", metrics, re.M)
    con = duckdb.connect(str(data / "quanyu.duckdb"), read_only=True)
    stored = con.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
    con.close()
    acked = warm["requests"] - warm["non2xx"] + ours["requests"] - ours["non2xx"]
    acked *= EVENTS_PER_REQUEST

    ours_eps = ours["rps"] * EVENTS_PER_REQUEST
    base_eps = base["rps"] * EVENTS_PER_REQUEST
    print(
        f"baseline_events_per_s={base_eps:.0f} p50_ms={base['p50_ms']:.1f}"
        f" p99_ms={base['p99_ms']:.1f}"
    )
    print(
        f"ingest_http_events_per_s={ours_eps:.0f} p50_ms={ours['p50_ms']:.1f}"
        f" p99_ms={ours['p99_ms']:.1f} non2xx={ours['non2xx']}"
    )
    print(f"ingest_http_ratio_to_baseline={ours_eps / base_eps:.2f}")
    print(
        f"journal_acked_events={float(journaled.group(1)) if journaled else 0:.0f}"
        " (answered from the ingest journal, their commit held up by a checkpoint)"
    )
    print(
        f"identity_backlog_at_end_events={backlog} resolved_all_after_s={caught_up:.2f}"
        " (the background resolver following the same ingest)"
    )
    print(
        f"durability_check: acknowledged={acked} stored={stored}"
        f" {'OK' if stored >= acked else 'LOST EVENTS'}"
    )
    shutil.rmtree(work, ignore_errors=True)
    if stored < acked:
        sys.exit(1)


if __name__ == "__main__":
    main()
