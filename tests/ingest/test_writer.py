"""Group commit on a real database file: durable, deduplicated, failures reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.ingest.normalize import normalize
from quanyu.ingest.writer import Chunk, Writer, write_chunks

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def chunk(ids: list[str], source: str = "src_a", tenant: str = "ten_a") -> Chunk:
    items = [
        json.dumps({"type": "track", "event": "E", "userId": "u", "messageId": i}).encode()
        for i in ids
    ]
    items.append(b"{broken")
    norm = normalize(items, received_at=NOW)
    return Chunk.normalized(
        norm,
        tenant_id=tenant,
        source_id=source,
        brand_id=None,
        received_at=NOW.replace(tzinfo=None),
    )


def count(engine: DuckDBEngine, sql: str) -> int:
    with engine.connect() as db:
        return int(db.raw(sql)[0][0])  # type: ignore[attr-defined]


def test_duplicates_are_stored_once_per_source(engine: DuckDBEngine) -> None:
    assert write_chunks(engine, [chunk(["1", "2"]), chunk(["2", "3"])]) == {"src_a": 3}
    assert write_chunks(engine, [chunk(["1", "2", "3"])]) == {}
    # the same messageId from another source is another event
    assert write_chunks(engine, [chunk(["1"], source="src_b")]) == {"src_b": 1}
    assert count(engine, "SELECT count(*) FROM events") == 4
    assert count(engine, "SELECT count(*) FROM dead_letters") == 4
    assert count(engine, "SELECT sum(received) - sum(inserted) FROM ingest_commits") == 4


def test_writer_resolves_futures_after_commit(engine: DuckDBEngine) -> None:
    writer = Writer(engine, linger_ms=5)
    writer.start()
    futures = [writer.submit(chunk([f"{n}-{i}" for i in range(10)])) for n in range(20)]
    assert all(f.result(timeout=10) >= 0 for f in futures)
    writer.stop()
    assert not writer.alive
    assert count(engine, "SELECT count(*) FROM events") == 200
    assert writer.commits < 20  # several requests per commit
    assert writer.depth == 0


def test_writer_reports_a_failed_commit_to_every_waiter(engine: DuckDBEngine) -> None:
    writer = Writer(engine)
    writer.start()
    with engine.connect() as db:
        db.raw("DROP TABLE ingest_commits")  # type: ignore[attr-defined]
    fut = writer.submit(chunk(["x"]))
    with pytest.raises(Exception, match="ingest_commits"):
        fut.result(timeout=10)
    writer.stop()
    assert count(engine, "SELECT count(*) FROM events") == 0  # rolled back whole


def test_a_waiter_that_gave_up_does_not_stop_the_writer(engine: DuckDBEngine) -> None:
    writer = Writer(engine, linger_ms=50)
    gone = writer.submit(chunk(["a"]))
    assert gone.cancel()  # the client hung up before the commit
    writer.start()
    later = writer.submit(chunk(["b"]))
    assert later.result(timeout=10) >= 1
    assert writer.alive
    writer.stop()
    assert count(engine, "SELECT count(*) FROM events") == 2  # both committed
