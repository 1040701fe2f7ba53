"""Consumer scans over HTTP with 10 million codes in the database.

Fills a fresh data dir with one order's codes in the codes core's table layout (drawn,
tagged and sorted by ``code_key`` with numpy, bulk-inserted as Arrow — no per-code
round trip), starts one server process on 127.0.0.1, and drives the public scan
endpoint from a second process: a raw asyncio HTTP/1.1 keep-alive client, bounded in
time and count, each connection from its own 127.x.y.z address so the per-IP limit
(a burst of 30) is never hit. Every scan is a genuine code (tag check, state and
history lookups in memory, the scan row and its "Product Scanned" event made durable
in the scan journal before the answer, folded into code_scans and ingest in bulk).
Prints scans/s, p50 and p99, and the server's CPU per scan.

    python -m benchmarks.bench_scans [--codes 10000000] [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, cpu_seconds, free_port, machine, process  # noqa: E402

CITIES = ["成都", "北京", "上海", "广州", "深圳", "杭州", "武汉", "西安", "贵阳", "遵义"]
PER_IP = 25  # requests per connection (and per source address), below the IP burst
GTIN = "06901234567892"


def fill(data_dir: Path, n: int, sample: int) -> tuple[str, list[str]]:
    """Make a tenant and ``n`` activated codes; return the tenant and a sample of serials."""
    from quanyu.codes import serials
    from quanyu.codes.serials import CodeKeys
    from quanyu.config import Settings
    from quanyu.engine import Statement
    from quanyu.identity.secrets import load_master_key
    from quanyu.ids import utcnow
    from quanyu.store import open_store
    from quanyu.tenancy import service as tenancy
    from quanyu.tenancy.models import TenantCreate

    engine = open_store(Settings(data_dir=data_dir))
    keys_sample: list[str] = []
    try:
        with engine.connect() as db:
            tenant = tenancy.create_tenant(db, TenantCreate(name="Guizhou"), actor="bench").id
            db.execute(
                Statement(
                    "bench.product",
                    "INSERT INTO code_products (tenant_id, id,"
                    " gtin, brand_id, name, created_at) VALUES (?, 'p1', ?, 'b1', 'Baijiu',"
                    " ?)",
                ),
                [tenant, GTIN, utcnow()],
            )
            keys = CodeKeys.derive(load_master_key(data_dir), tenant)
            insert = Statement(
                "bench.codes",
                "INSERT INTO codes (tenant_id, code_key, code,"
                " order_id, product_id, seq, level, state, state_at, scan_count) SELECT ?,"
                " code_key, code, 'o1', 'p1', seq, 'item', 'activated', ?, 0 FROM staged_codes",
            )
            started, now, chunk, done = time.perf_counter(), utcnow(), 1_000_000, 0
            rng = np.random.default_rng()
            with db.transaction():
                while done < n:
                    m = min(chunk, n - done)
                    raw = serials.draw(m)
                    key = np.ascontiguousarray(raw[:, :8]).view(">i8").reshape(-1).astype(np.int64)
                    order = np.argsort(key, kind="stable")
                    raw, key = raw[order], key[order]
                    chars = serials.encode(raw)
                    tags = serials.tags(keys, raw)
                    table = pa.table(
                        {
                            "code_key": pa.array(key),
                            "code": pa.array(
                                chars.view(f"S{serials.CODE_CHARS}").reshape(-1).astype(str)
                            ),
                            "seq": pa.array(np.arange(done + 1, done + m + 1, dtype=np.int64)),
                        }
                    )
                    db.with_table("staged_codes", table, insert, [tenant, now])
                    pick = rng.choice(m, size=min(m, sample // max(1, n // chunk)), replace=False)
                    keys_sample += [
                        bytes(chars[i]).decode() + bytes(tags[i]).decode() for i in pick
                    ]
                    done += m
            print(f"stored {n:,} codes in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        engine.close()
    return tenant, keys_sample


def serve(port: int) -> None:
    """``quanyu serve`` with the scan router included (until app.py includes it)."""
    import logging
    import os

    import uvicorn

    from quanyu.api import scans as scans_api
    from quanyu.api.app import create_app
    from quanyu.config import get_settings

    settings = get_settings()
    settings.port = port
    sys.setswitchinterval(0.0005)  # as quanyu serve does
    app = create_app(settings, announce=True)
    if not any(getattr(r, "path", "").startswith("/v1/public/") for r in app.routes):
        app.include_router(scans_api.router)
    logging.getLogger("quanyu").info("bench server pid %s", os.getpid())
    if os.environ.get("BENCH_SCANS_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        try:
            uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
        finally:
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


async def _drive(
    url: str,
    tenant: str,
    serials: list[str],
    seconds: float,
    count: int,
    concurrency: int,
    identified: bool,
) -> dict[str, object]:
    host, port = url.split("//")[1].split(":")
    path = f"/v1/public/tenants/{tenant}/scans".encode()
    lat: list[float] = []
    status: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    sent = 0

    async def worker(w: int) -> None:
        nonlocal sent
        addr = w
        while time.monotonic() < deadline and sent < count:
            local = f"127.{1 + addr // 62500}.{addr // 250 % 250}.{addr % 250 + 1}"
            addr += concurrency
            reader, writer = await asyncio.open_connection(host, int(port), local_addr=(local, 0))
            for _ in range(PER_IP):
                if time.monotonic() >= deadline or sent >= count:
                    break
                sent += 1
                body: dict[str, object] = {
                    "code": random.choice(serials),
                    "city": random.choice(CITIES),
                }
                if identified:
                    body |= {"openid": f"o_{random.getrandbits(40):x}", "app_id": "wxbench"}
                data = orjson.dumps(body)
                req = (
                    b"POST " + path + b" HTTP/1.1\r\nHost: bench\r\nContent-Type:"
                    b" application/json\r\nContent-Length: "
                    + str(len(data)).encode()
                    + b"\r\n\r\n"
                    + data
                )
                t0 = time.perf_counter()
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                lat.append(time.perf_counter() - t0)
                code = int(head.split(b" ", 2)[1])
                status[code] = status.get(code, 0) + 1
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    arr = np.array(lat) * 1000
    return {
        "requests": len(lat),
        "seconds": round(elapsed, 2),
        "scans_per_s": round(len(lat) / elapsed),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "status": status,
    }


def wait_snapshot(url: str, tenant: str, bound: float = 180.0) -> float:
    """Seconds until the server reports the tenant's codes in memory (its /metrics)."""
    started = time.monotonic()
    want = f'quanyu_code_snapshot_codes{{tenant="{tenant}"}}'
    while time.monotonic() - started < bound:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        if any(line.startswith(want) for line in text.splitlines()):
            return time.monotonic() - started
        time.sleep(0.2)
    raise SystemExit(f"the server did not load its code snapshot within {bound:.0f} s")


def drive(args: argparse.Namespace) -> None:
    import uvloop  # the client's own CPU is taken from the server's machine: keep it small

    serials = json.loads(Path(args.serials).read_text())
    got = uvloop.run(
        _drive(
            args.drive,
            args.tenant,
            serials,
            args.seconds,
            args.count,
            args.concurrency,
            args.identified,
        )
    )
    print(json.dumps(got))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--codes", type=int, default=10_000_000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--count", type=int, default=200_000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument(
        "--warmup",
        type=float,
        default=30.0,
        help="seconds of scans first, once the server has its code snapshot in memory",
    )
    p.add_argument(
        "--identified",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send an openid with each scan (a new person each time)",
    )
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--drive", help=argparse.SUPPRESS)
    p.add_argument("--tenant", help=argparse.SUPPRESS)
    p.add_argument("--serials", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.drive:
        drive(args)
        return
    print(f"consumer scans over HTTP; {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        tenant, sample = fill(data_dir, args.codes, 100_000)
        sfile = Path(tmp) / "serials.json"
        sfile.write_text(json.dumps(sample))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {"QUANYU_DATA_DIR": str(data_dir)}
        serve_cmd = [sys.executable, "-m", "quanyu.cli", "serve", "--port", str(port)]
        if os.environ.get("BENCH_SCANS_PROFILE"):
            serve_cmd = [sys.executable, "-m", "benchmarks.bench_scans", "--serve", str(port)]
        with process(serve_cmd, env, f"{url}/docs") as server:
            base = [
                sys.executable,
                "-m",
                "benchmarks.bench_scans",
                "--drive",
                url,
                "--tenant",
                tenant,
                "--serials",
                str(sfile),
                "--concurrency",
                str(args.concurrency),
            ]
            if not args.identified:
                base.append("--no-identified")
            loaded = wait_snapshot(url, tenant)
            print(f"code snapshot in memory {loaded:.1f} s after the server answered", flush=True)
            warm = [*base, "--seconds", str(args.warmup), "--count", str(args.count)]
            subprocess.run(warm, check=True, cwd=ROOT, capture_output=True)
            run = [*base, "--seconds", str(args.seconds), "--count", str(args.count)]
            cpu = cpu_seconds(server.pid)
            out = subprocess.run(run, check=True, cwd=ROOT, capture_output=True, text=True)
            cpu = cpu_seconds(server.pid) - cpu
            got = json.loads(out.stdout)
        print(
            f"{got['requests']:,} scans in {got['seconds']} s: {got['scans_per_s']:,} scans/s,"
            f" p50 {got['p50_ms']} ms, p99 {got['p99_ms']} ms; statuses {got['status']};"
            f" server CPU {cpu * 1000 / max(got['requests'], 1):.2f} ms per scan"
            f" ({cpu / got['seconds']:.2f} cores)"
        )


if __name__ == "__main__":
    main()
