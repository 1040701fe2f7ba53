"""The events journal on a real disk and database: a request is durable once journaled,
its rows and dead letters reach the tables through the writer, and what a killed
process journaled but did not commit is committed once at the next start."""

from __future__ import annotations

import asyncio
from pathlib import Path

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.ingest.log import EventLog, decode, encode
from quanyu.ingest.writer import Writer
from quanyu.store.journal import Journal, Position, frame
from tests.ingest.test_writer import chunk, count

EVENTS = "SELECT count(*), count(DISTINCT message_id) FROM events WHERE tenant_id = 'ten_a'"
LETTERS = "SELECT count(*) FROM dead_letters WHERE tenant_id = 'ten_a'"


def test_a_record_keeps_the_whole_request() -> None:
    c = chunk(["1", "2"])
    back = decode(encode(c), Position(3, 99))
    assert (back.tenant_id, back.source_id, back.brand_id) == (c.tenant_id, c.source_id, None)
    assert back.received_at == c.received_at and back.journal_end == Position(3, 99)
    assert [tuple(r) for r in back.rows] == c.rows
    assert back.dead == c.dead and back.count == 2


def test_answered_once_journaled_and_committed_by_the_writer(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    writer = Writer(engine)
    writer.start()
    log = EventLog(engine, writer, tmp_path / "j").open()
    try:

        async def send() -> None:
            await asyncio.gather(*(log.append(chunk([f"{i}a", f"{i}b"])) for i in range(20)))

        asyncio.run(send())
        log.flush()
        assert count(engine, EVENTS.replace("count(*), ", "")) == 40
        assert count(engine, LETTERS) == 20  # each request's broken message
    finally:
        log.stop()
        writer.stop()


def test_what_a_killed_process_journaled_is_committed_once_at_the_next_start(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    folder = tmp_path / "j"
    journal = Journal(folder, name="events").start()  # a process that died before folding
    for i in range(5):
        journal.append(encode(chunk([f"k{i}", "shared"]))).result(timeout=10)
    journal.stop()
    (segment,) = journal.segments()
    with open(journal.path(segment), "ab") as f:  # and while writing a sixth, unanswered
        f.write(frame(encode(chunk(["torn"])))[:-5])
    for _ in range(2):  # a second start finds nothing left to fold
        writer = Writer(engine)
        writer.start()
        log = EventLog(engine, writer, folder).open()
        log.stop()
        writer.stop()
        assert count(engine, EVENTS.replace("count(*), ", "")) == 6  # k0..k4 and shared
        assert count(engine, "SELECT count(*) FROM events WHERE tenant_id = 'ten_a'") == 6
        assert count(engine, LETTERS) == 5
