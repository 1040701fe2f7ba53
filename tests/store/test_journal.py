"""The journal on a real disk: durable appends shared by one fsync, segments, recovery
from a torn tail, waiters in threads and in an event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from quanyu.store.journal import START, Journal, JournalError, Position, Written, frame


def _all(journal: Journal, after: Position = START) -> list[bytes]:
    return [r for w in journal.recover(after) for r in w.records]


def test_appends_are_durable_in_order_and_recovered(tmp_path: Path) -> None:
    seen: list[Written] = []
    journal = Journal(tmp_path, name="t", on_durable=seen.append).start()
    futs = [journal.append(b"record %d" % i) for i in range(200)]
    ends = [f.result(timeout=10) for f in futs]
    journal.stop()
    assert ends == sorted(ends) and ends[-1] == journal.position
    assert journal.syncs < 200  # records queued together share one fsync
    assert [r for w in seen for r in w.records] == [b"record %d" % i for i in range(200)]
    assert _all(Journal(tmp_path, name="t")) == [b"record %d" % i for i in range(200)]
    # from a position: only what follows it
    first = len(seen[0].records)
    rest = [b"record %d" % i for i in range(first, 200)]
    assert _all(Journal(tmp_path, name="t"), seen[0].end) == rest


def test_segments_rotate_and_release_deletes_only_folded_ones(tmp_path: Path) -> None:
    journal = Journal(tmp_path, name="t", segment_bytes=100).start()
    ends = [journal.append(b"x" * 60).result(timeout=10) for _ in range(5)]
    assert [e.segment for e in ends] == [1, 1, 2, 2, 3]
    journal.release(ends[2])  # everything up to the third record is folded
    assert journal.segments() == [2, 3]
    assert _all(journal, ends[2]) == [b"x" * 60] * 2
    journal.stop()


def test_a_torn_last_record_is_cut_and_appends_follow_the_last_good_one(tmp_path: Path) -> None:
    journal = Journal(tmp_path, name="t").start()
    journal.append(b"kept").result(timeout=10)
    journal.stop()
    with open(journal.path(1), "ab") as f:
        f.write(frame(b"torn by a crash")[:-3])
    again = Journal(tmp_path, name="t")
    assert _all(again) == [b"kept"]
    again.start()
    again.append(b"after").result(timeout=10)
    again.stop()
    assert _all(Journal(tmp_path, name="t")) == [b"kept", b"after"]


def test_damage_inside_a_record_ends_what_recovery_reads(tmp_path: Path) -> None:
    journal = Journal(tmp_path, name="t").start()
    for r in (b"one", b"two", b"three"):
        journal.append(r).result(timeout=10)
    journal.stop()
    data = bytearray(journal.path(1).read_bytes())
    at = data.index(b"two")
    data[at] ^= 0xFF  # the checksum no longer matches
    journal.path(1).write_bytes(bytes(data))
    assert _all(Journal(tmp_path, name="t")) == [b"one"]


def test_event_loop_waiters_wake_once_durable(tmp_path: Path) -> None:
    journal = Journal(tmp_path, name="t").start()

    async def many() -> list[Position]:
        return await asyncio.gather(*(journal.append_async(b"%d" % i) for i in range(100)))

    try:
        ends = asyncio.run(many())
    finally:
        journal.stop()
    assert len(set(ends)) <= 100 and max(ends) == journal.position
    with pytest.raises(JournalError, match="stopped"):
        journal.append(b"late")
