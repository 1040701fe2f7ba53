"""The ingest journal on real files and a real database: late commits answered from it,
and what it holds committed exactly once at the next start."""

from __future__ import annotations

import time
from pathlib import Path

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.ingest.journal import IngestJournal
from quanyu.ingest.writer import Chunk, Writer, write_chunks

from .test_writer import chunk, count


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.journal"))


def journaled(journal: IngestJournal, c: Chunk, number: int) -> None:
    c.record = number
    journal.add(c)
    c.journaled.result(timeout=10)


def test_records_read_back_whole(tmp_path: Path) -> None:
    journal = IngestJournal(tmp_path / "j")
    journal.start()
    first, second = chunk(["a", "b"]), chunk(["c"], source="src_b")
    journaled(journal, first, 1)
    journaled(journal, second, 2)
    journal.journal.stop()  # as a kill would leave it: nothing committed
    got = IngestJournal(tmp_path / "j").pending()
    assert [r.number for r in got] == [1, 2]
    assert got[0].rows == first.rows and got[1].rows == second.rows
    assert got[0].dead == first.dead and got[0].dead[0].code == "invalid_json"
    assert (got[1].source_id, got[1].received_at) == ("src_b", second.received_at)


def test_a_segment_goes_once_every_record_up_to_it_is_committed(tmp_path: Path) -> None:
    journal = IngestJournal(tmp_path / "j", segment_bytes=1)  # a new segment per record
    journal.start()
    chunks = [chunk([str(n)]) for n in (1, 2, 3)]
    for n, c in enumerate(chunks, 1):
        journaled(journal, c, n)
    assert files(tmp_path / "j") == [f"ingest-{n:08d}.journal" for n in (1, 2, 3)]
    assert journal.lowest_kept() == 1
    journal.committed([chunks[1]])  # the second: the first still holds its segment
    assert len(files(tmp_path / "j")) == 3
    journal.committed([chunks[0]])
    assert files(tmp_path / "j") == ["ingest-00000003.journal"]
    assert journal.lowest_kept() == 3
    journal.committed([chunks[2]])
    journal.stop()
    assert files(tmp_path / "j") == []


def test_a_record_still_being_written_counts_as_kept(tmp_path: Path) -> None:
    """Its commit's number run must stay in the database until its segment goes."""
    journal = IngestJournal(tmp_path / "j")
    c = chunk(["in-flight"])
    c.record = 5
    journal.add(c)  # queued; the journal's thread is not running yet
    assert journal.lowest_kept() == 5 and not c.journaled.done()
    journal.start()
    c.journaled.result(timeout=10)
    assert journal.lowest_kept() == 5  # now in its segment
    journal.committed([c])
    journal.stop()
    assert files(tmp_path / "j") == []


def test_a_segment_that_journals_rarely_goes_once_committed(tmp_path: Path) -> None:
    journal = IngestJournal(tmp_path / "j")
    journal.start()
    c = chunk(["rare"])
    journaled(journal, c, 7)
    journal.committed([c])
    assert files(tmp_path / "j") == ["ingest-00000001.journal"]  # still being written
    assert journal.lowest_kept() == 7
    deadline = time.monotonic() + 10
    while files(tmp_path / "j") != ["ingest-00000002.journal"]:
        assert time.monotonic() < deadline, files(tmp_path / "j")
        journal.tidy()  # the writer's pruning does this every ten minutes
        time.sleep(0.01)
    assert journal.lowest_kept() is None
    journal.stop()


def test_a_late_commit_is_journaled_first_and_committed_once(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    writer = Writer(engine, linger_ms=3000, journal=IngestJournal(directory))  # commits late
    writer.start()
    c = chunk(["late-1", "late-2"])
    committed = writer.submit(c)
    assert writer.journal(c)
    c.journaled.result(timeout=2)
    assert not committed.done(), "the commit came first: the test proves nothing"
    assert [r.number for r in IngestJournal(directory).pending()] == [c.record]
    assert committed.result(timeout=10) == 2
    writer.stop()
    assert files(directory) == [], "a journal file outlived the commit of its records"
    assert count(engine, "SELECT count(*) FROM events") == 2
    assert count(engine, "SELECT count(*) FROM dead_letters") == 1
    # a chunk whose commit came first is not journaled at all
    writer = Writer(engine, journal=IngestJournal(directory))
    writer.start()
    quick = chunk(["quick"])
    writer.submit(quick).result(timeout=10)
    writer.journal(quick)
    writer.stop()
    assert not quick.journaled.done() and files(directory) == []


def test_the_next_start_commits_what_the_journal_holds_once(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    journal = IngestJournal(directory)
    journal.start()
    lost, kept = chunk(["j-1", "j-2"]), chunk(["j-3"])
    journaled(journal, lost, 1)
    journaled(journal, kept, 2)
    journal.journal.stop()
    # record 2 reached the database, record 1 only the journal (a kill -9 in between)
    write_chunks(engine, [kept])
    for _ in range(2):  # starting twice adds nothing the second time
        writer = Writer(engine, journal=IngestJournal(directory))
        writer.start()
        later = chunk([])
        writer.submit(later).result(timeout=10)
        assert later.record is not None and later.record > 2, "record numbers are reused"
        writer.stop()
    assert count(engine, "SELECT count(*) FROM events") == 3
    assert count(engine, "SELECT count(DISTINCT message_id) FROM events") == 3
    # each chunk's unparseable message once: record 2's is not stored again
    assert count(engine, "SELECT count(*) FROM dead_letters") == 4
    assert files(directory) == []
