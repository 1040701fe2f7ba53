"""Bulk import: events/s for ~1M Segment-shaped events from Parquet and from JSON Lines.

The path is the CLI's when no server runs: ``quanyu.ingest.importer.run_import`` reads
the file in 250,000-row batches and posts them as Arrow IPC to the import API of an
in-process app, which prepares them and commits them through the group-commit writer
into a DuckDB file. Each figure is for a fresh data dir; every event is checked to be
in the database afterwards. The baseline, measured in the same run: DuckDB alone reading
the same file (``read_parquet``/``read_json``) into a table of the same columns in a
fresh database file, with no validation, identifiers or deduplication.
Run: python benchmarks/bench_import.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from quanyu.api import imports  # noqa: E402
from quanyu.api.app import create_app  # noqa: E402
from quanyu.client import Client  # noqa: E402
from quanyu.config import Settings  # noqa: E402
from quanyu.ingest import importer  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _text(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def generate(n: int) -> pa.Table:
    """``n`` track calls shaped like analytics.js sends them (about 700 bytes each)."""
    rng = np.random.default_rng(7)
    i = pa.array(np.arange(n))
    member = pa.array(rng.integers(0, 50_000, n)).cast(pa.string())
    sku = pa.array(rng.integers(0, 997, n)).cast(pa.string())
    price = pa.array(rng.integers(1_000, 99_900, n) / 100).cast(pa.string())
    seconds = rng.integers(0, 180 * 86_400, n).astype("timedelta64[s]")
    stamps = (np.datetime64("2026-05-01T00:00:00") + seconds).astype("datetime64[ms]")
    events = np.array(["Product Viewed", "Product Added", "Order Completed", "Coupon Used"])
    return pa.table(
        {
            "type": pa.array(np.full(n, "track")),
            "event": pa.array(events[rng.integers(0, len(events), n)]),
            "messageId": _text("bench-", i.cast(pa.string())),
            "userId": _text("member-", member),
            "anonymousId": _text("anon-", i.cast(pa.string()), "-3f6c-4d2b-9e1a-7c5d"),
            "timestamp": pa.array(stamps, pa.timestamp("ms", tz="UTC")),
            "properties": _text(
                '{"product_id":"SKU-',
                sku,
                '","sku":"LUMI-',
                sku,
                '-50ML","name":"Lumi UV Aqua',
                ' Rich Watery Essence","price":',
                price,
                ',"currency":"CNY","category":',
                '"skincare/sunscreen","brand":"lumi","quantity":1}',
            ),
            "context": _text(
                '{"library":{"name":"analytics.js","version":"next-1.70.0"},"page":{"path":',
                '"/products/lumi-uv-aqua","title":"Lumi UV Aqua Rich","url":"https://shop.example',
                '.cn/products/lumi"},"userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac',
                ' OS X) MicroMessenger/8.0.40","locale":"zh-CN","timezone":"Asia/Shanghai",',
                '"campaign":{"name":"double11","source":"wechat","medium":"miniprogram"},',
                '"traits":{"unionid":"oUnion',
                member,
                '"}}',
            ),
        }
    )


def write_files(table: pa.Table, folder: Path) -> tuple[Path, Path]:
    """The events as Parquet, and as JSON Lines (objects nested, as exported)."""
    parquet, jsonl = folder / "events.parquet", folder / "events.jsonl"
    pq.write_table(table, parquet)
    con = duckdb.connect()
    con.register("t", table)
    con.execute(
        "COPY (SELECT type, event, messageId, userId, anonymousId,"
        " strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%gZ') AS timestamp,"
        f" json(properties) AS properties, json(context) AS context FROM t) TO '{jsonl}'"
        " (FORMAT json)"
    )
    con.close()
    return parquet, jsonl


@contextlib.contextmanager
def cli_client(settings: Settings) -> Iterator[Client]:
    """What ``quanyu.client.connect`` gives the CLI when no server runs."""
    token = secrets.token_urlsafe(16)
    app = create_app(settings, local_token=token)
    if not any(getattr(r, "path", "").endswith("/imports/{kind}") for r in app.routes):
        app.include_router(imports.router)
    with TestClient(app, base_url="http://quanyu.local") as http:
        http.headers["Authorization"] = f"Bearer {token}"
        yield Client(http)


def run(path: Path, data_dir: Path, expected: int) -> float:
    """Import ``path`` into a fresh data dir; return events/s (all checked stored)."""
    settings = Settings(data_dir=data_dir)
    with cli_client(settings) as c:
        tenant = c.post("/v1/tenants", {"name": "Bench"})["id"]
        source = c.post(f"/v1/tenants/{tenant}/sources", {"name": "Import"})["id"]
        start = time.perf_counter()
        done = importer.run_import(c, path, tenant=tenant, source=source, kind="events")
        elapsed = time.perf_counter() - start
    con = duckdb.connect(str(settings.database_path), read_only=True)
    stored = con.execute("SELECT count(*) FROM events").fetchone()
    con.close()
    if done.loaded != expected or not stored or stored[0] != expected:
        raise SystemExit(f"{path.name}: loaded {done.loaded}, stored {stored}, sent {expected}")
    return expected / elapsed


def baseline(path: Path, db_file: Path) -> float:
    """Events/s of DuckDB alone loading ``path`` into a file (see the module docstring)."""
    reader = "read_parquet" if path.suffix == ".parquet" else "read_json"
    con = duckdb.connect(str(db_file))
    con.execute("SET checkpoint_threshold = '256MB'")  # as the store sets it
    start = time.perf_counter()
    con.execute(f"CREATE TABLE events AS SELECT * FROM {reader}('{path}')")
    elapsed = time.perf_counter() - start
    row = con.execute("SELECT count(*) FROM events").fetchone()
    con.close()
    return (row[0] if row else 0) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"# {machine()}; {args.events} events per import")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        parquet, jsonl = write_files(generate(args.events), root)
        for name, path in (("parquet", parquet), ("jsonl", jsonl)):
            bare = baseline(path, root / f"bare-{name}.duckdb")
            rate = run(path, root / f"data-{name}", args.events)
            print(f"import_{name}_events_per_s={rate:.0f} baseline_events_per_s={bare:.0f}"
                  f" ratio_to_baseline={rate / bare:.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
