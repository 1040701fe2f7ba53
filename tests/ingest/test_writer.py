"""Group commit on a real database file: durable, deduplicated, failures reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from quanyu.config import Settings
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.ingest.normalize import normalize
from quanyu.ingest.writer import Chunk, Writer, events_table, prune_keys, write_chunks
from quanyu.store import apply_migrations
from quanyu.store.migrations import collect

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def chunk(
    ids: list[str], source: str = "src_a", tenant: str = "ten_a", received: datetime = NOW
) -> Chunk:
    items = [
        json.dumps({"type": "track", "event": "E", "userId": "u", "messageId": i}).encode()
        for i in ids
    ]
    items.append(b"{broken")
    norm = normalize(items, received_at=received)
    return Chunk.normalized(
        norm,
        tenant_id=tenant,
        source_id=source,
        brand_id=None,
        received_at=received.replace(tzinfo=None),
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


def test_a_group_mixing_sources_with_a_repeat_counts_each_source(engine: DuckDBEngine) -> None:
    write_chunks(engine, [chunk(["1"])])
    got = write_chunks(engine, [chunk(["1", "2", "2"]), chunk(["1", "9"], source="src_b")])
    assert got == {"src_a": 1, "src_b": 2}
    assert count(engine, "SELECT count(*) FROM events") == 4
    assert count(engine, "SELECT count(*) FROM event_keys") == 4


def test_pruned_keys_no_longer_deduplicate(engine: DuckDBEngine) -> None:
    write_chunks(engine, [chunk(["old"])])
    received = NOW.replace(tzinfo=None)
    assert prune_keys(engine, received) == 0  # received at the cut-off: kept
    assert write_chunks(engine, [chunk(["old"])]) == {}
    assert prune_keys(engine, received + timedelta(seconds=1)) == 1
    assert count(engine, "SELECT count(*) FROM events") == 1  # the event stays
    # past the window a retry is a new event: the window is how long retries are caught
    assert write_chunks(engine, [chunk(["old"])]) == {"src_a": 1}


def test_pruning_deletes_a_slice_at_a_time(engine: DuckDBEngine) -> None:
    write_chunks(engine, [chunk(["a", "b", "c"])])
    later = NOW.replace(tzinfo=None) + timedelta(seconds=1)
    assert prune_keys(engine, later, limit=2) == 2
    assert prune_keys(engine, later, limit=2) == 1
    assert prune_keys(engine, later, limit=2) == 0
    assert count(engine, "SELECT count(*) FROM event_keys") == 0


def test_the_writer_prunes_keys_past_the_dedup_window(
    engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    write_chunks(engine, [chunk(["long-ago"], received=now - timedelta(hours=25))])
    monkeypatch.setattr(Writer, "PRUNE_EVERY", 0.0)
    writer = Writer(engine, dedup_window=timedelta(hours=24))
    writer.start()
    writer.submit(chunk(["now"], received=now)).result(timeout=10)
    writer.submit(chunk(["later"], received=now)).result(timeout=10)
    writer.stop()
    with engine.connect() as db:
        keys = db.raw("SELECT count(*) FROM event_keys")  # type: ignore[attr-defined]
    assert keys == [(2,)]  # the key received 25 hours ago is gone
    assert count(engine, "SELECT count(*) FROM events") == 3


def test_a_database_keyed_on_events_moves_its_keys_to_event_keys(settings: Settings) -> None:
    """Data written before the dedup keys had their own table keeps deduplicating."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    before = [m for m in collect() if not (m.capability == "ingest" and m.version >= 3)]
    engine = DuckDBEngine(duckdb.connect(str(settings.database_path)))
    apply_migrations(engine, before)
    with engine.connect() as db:
        db.register("old", events_table([chunk(["1", "2"])]))
        db.raw("INSERT INTO events SELECT *, 1 FROM old")  # type: ignore[attr-defined]
    applied = apply_migrations(engine, collect())
    assert [(m.capability, m.version) for m in applied] == [("ingest", v) for v in (3, 4, 5)]
    assert count(engine, "SELECT count(*) FROM events WHERE commit_seq = 1") == 2
    assert write_chunks(engine, [chunk(["1", "2", "3"])]) == {"src_a": 1}
    assert count(engine, "SELECT count(*) FROM events") == 3
    engine.close()


def test_json_columns_are_stored_zstd_compressed(engine: DuckDBEngine) -> None:
    """The events' JSON columns keep ZSTD (cheaper to write than DuckDB's own pick)."""
    write_chunks(engine, [chunk([str(i) for i in range(3_000)])])
    with engine.connect() as db:
        db.raw("CHECKPOINT")  # type: ignore[attr-defined]
        rows = db.raw(  # type: ignore[attr-defined]
            "SELECT DISTINCT column_name, compression FROM pragma_storage_info('events')"
            " WHERE column_name IN ('context', 'message_id') AND segment_type = 'VARCHAR'"
        )
    kinds = dict(rows)
    assert kinds["context"] == "ZSTD"
    assert kinds["message_id"] != "ZSTD"  # ids keep DuckDB's pick (dictionary, FSST)
