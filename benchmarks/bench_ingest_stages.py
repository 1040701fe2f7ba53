"""Ingest's two stages apart, and what a checkpoint costs as dedup keys accumulate.

1. Bulk preparation (validation, Segment defaults, identifiers: one SQL statement) and
   the committed insert (events, then their dedup keys), each on 250,000-row batches of
   ``bench_import``'s events, in one process with nothing else running: rows/s each.
2. DuckDB alone: a table of 128-bit keys (as ``event_keys``) grown to 1, 5 and 10 million,
   then 100,000 new keys and rows and a ``CHECKPOINT``; the same with rows only. DuckDB
   rewrites a changed index whole, so the first grows with the keys kept.

Run: python benchmarks/bench_ingest_stages.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import generate  # noqa: E402
from common import machine  # noqa: E402

from quanyu.config import Settings  # noqa: E402
from quanyu.ingest import bulk  # noqa: E402
from quanyu.ingest.writer import Chunk, write_chunks  # noqa: E402
from quanyu.store import open_store  # noqa: E402
from quanyu.tenancy.models import Source  # noqa: E402

BATCH = 250_000
RECEIVED = datetime(2026, 11, 27)


def stages(events: int, folder: Path) -> tuple[float, float, float]:
    """Rows/s over ``events`` generated rows: preparation, the committed insert, and the
    baseline: DuckDB's plain insert of the same prepared rows into an unkeyed table."""
    table = generate(events)
    engine = open_store(Settings(data_dir=folder))
    source = Source.model_construct(id="src_bench", tenant_id="ten_bench", brand_id=None)
    prepare_s = write_s = 0.0
    prepared = []
    try:
        for seq, start in enumerate(range(0, events, BATCH), 1):
            part = table.slice(start, BATCH)
            began = time.perf_counter()
            with engine.connect() as db:
                ready = bulk.prepare(
                    db,
                    part,
                    kind="events",
                    tenant="ten_bench",
                    source="src_bench",
                    sources=[source],
                    received_at=RECEIVED,
                )
            prepare_s += time.perf_counter() - began
            prepared.append(ready.events)
            chunk = Chunk("ten_bench", "src_bench", None, RECEIVED, ready.events)
            began = time.perf_counter()
            write_chunks(engine, [chunk], seq)
            write_s += time.perf_counter() - began
            if len(ready.rejected):
                raise SystemExit(f"{len(ready.rejected)} generated rows were rejected")
    finally:
        engine.close()
    con = duckdb.connect(str(folder / "quanyu.duckdb"), read_only=True)
    found = con.execute("SELECT count(*), count(DISTINCT commit_seq) FROM events").fetchone()
    con.close()
    if found is None or found[0] != events:
        raise SystemExit(f"stored {found}, sent {events}")
    return events / prepare_s, events / write_s, events / _plain_insert(prepared, folder)


def _plain_insert(tables: list[pa.Table], folder: Path) -> float:
    """Seconds DuckDB takes to insert and commit ``tables`` (one chunk each), unkeyed."""
    con = duckdb.connect(str(folder / "plain.duckdb"))
    con.execute("SET checkpoint_threshold = '256MB'")  # as the store sets it
    con.register("first", tables[0].slice(0, 0))
    con.execute("CREATE TABLE events AS SELECT * FROM first")
    elapsed = 0.0
    for table in tables:
        one = table.combine_chunks()
        began = time.perf_counter()
        con.begin()
        con.register("batch", one)
        con.execute("INSERT INTO events SELECT * FROM batch")
        con.unregister("batch")
        con.commit()
        elapsed += time.perf_counter() - began
    con.close()
    return elapsed


def checkpoints(folder: Path) -> list[tuple[int, float, float]]:
    """(keys kept, checkpoint after new keys and rows, after rows only), in seconds."""
    con = duckdb.connect(str(folder / "keys.duckdb"))
    con.execute("SET checkpoint_threshold = '100GB'")  # only the explicit checkpoints
    con.execute("CREATE TABLE k (key UHUGEINT PRIMARY KEY, seq BIGINT, seen TIMESTAMP)")
    con.execute("CREATE TABLE e (body VARCHAR, seq BIGINT)")
    rows = "INSERT INTO e SELECT repeat('x', 700), 1 FROM range(100000)"
    keys = "INSERT INTO k SELECT md5_number(uuid()::VARCHAR), {}, now()::TIMESTAMP FROM range({})"
    out, kept = [], 0
    for grow in (1_000_000, 4_000_000, 5_000_000):
        con.execute(keys.format(0, grow))
        con.execute("CHECKPOINT")
        kept += grow
        con.execute(keys.format(1, 100_000))
        con.execute(rows)
        began = time.perf_counter()
        con.execute("CHECKPOINT")
        with_keys = time.perf_counter() - began
        kept += 100_000
        con.execute(rows)
        began = time.perf_counter()
        con.execute("CHECKPOINT")
        out.append((kept, with_keys, time.perf_counter() - began))
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"# {machine()}; {args.events} events in {BATCH}-row batches")
    with tempfile.TemporaryDirectory() as tmp:
        prepare, write, plain = stages(args.events, Path(tmp) / "stages")
        print(f"ingest_stage_prepare_rows_per_s={prepare:.0f}")
        print(f"ingest_stage_insert_rows_per_s={write:.0f}")
        print(f"baseline_plain_insert_rows_per_s={plain:.0f}")
        print(f"ingest_stage_insert_ratio_to_baseline={write / plain:.2f}")
        for kept, with_keys, rows_only in checkpoints(Path(tmp)):
            print(
                f"checkpoint_keys={kept} with_new_keys_s={with_keys:.3f}"
                f" rows_only_s={rows_only:.3f}"
            )


if __name__ == "__main__":
    main()
