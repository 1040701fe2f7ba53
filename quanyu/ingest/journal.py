"""The ingest journal: tracking calls made durable before the database commits them.

A DuckDB commit usually takes milliseconds, but while the database folds its
write-ahead log into the file (a checkpoint, every 256 MB of log) every commit waits,
for a second or more. So that a client is not held for it, a request whose
commit has not come within ``QUANYU_JOURNAL_ACK_MS`` is written to this journal, synced,
and answered. Its events are then durable but reach the database (and its reads) a moment
later.

Each group commit stores the numbers of the records it holds (``ingest_journal``), in
the same transaction as their events. When the server starts, it commits again every
record the database does not name: the dedup keys make that exactly once. A journal file
is deleted once every record in it, and in those before it, is committed.

The files are ``journal/ingest-<n>.journal`` (``quanyu.store.journal``, as the scan
journal), each record a MessagePack body.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from quanyu.ingest.normalize import Reject
from quanyu.store.journal import START, Journal, Position

if TYPE_CHECKING:
    from quanyu.ingest.writer import Chunk

_EPOCH = datetime(1970, 1, 1)
#: A journal file is closed (and a new one begun) past this size.
SEGMENT_BYTES = 64 * 2**20


@dataclass
class Record:
    """One request's messages as the journal keeps them."""

    number: int
    tenant_id: str
    source_id: str
    brand_id: str | None
    received_at: datetime
    rows: list[tuple[Any, ...]]
    dead: list[Reject]

    def encode(self) -> bytes:
        micros = (self.received_at - _EPOCH) // timedelta(microseconds=1)
        dead = [
            (r.index, r.message_id, r.event_type, r.event, r.code, r.reason, r.payload, r.rule,
             r.disposition)
            for r in self.dead
        ]  # fmt: skip
        body = (self.number, self.tenant_id, self.source_id, self.brand_id, micros, self.rows,
                dead)  # fmt: skip
        return msgspec.msgpack.encode(body)

    @classmethod
    def decode(cls, data: bytes) -> Record:
        number, tenant, source, brand, micros, rows, dead = msgspec.msgpack.decode(data)
        return cls(
            number,
            tenant,
            source,
            brand,
            _EPOCH + timedelta(microseconds=micros),
            [tuple(r) for r in rows],
            [Reject(*d) for d in dead],
        )


class IngestJournal:
    """The tracking API's journal: a :class:`~quanyu.store.journal.Journal` named
    ``ingest``, plus which of its records the database holds. Records are numbered by
    the writer (``Chunk.record``); a segment file is deleted once every record in it,
    and in those before it, is committed."""

    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES):
        self.journal = Journal(directory, name="ingest", segment_bytes=segment_bytes)
        self._lock = threading.Lock()
        #: per segment: records written to it and not committed; its lowest record
        self._open: dict[int, set[int]] = {}
        self._lowest: dict[int, int] = {}
        #: records handed to the journal and not durable yet (their segment unknown)
        self._writing: set[int] = set()

    def pending(self) -> list[Record]:
        """Every whole record earlier runs left (before :meth:`start`)."""
        return [Record.decode(p) for w in self.journal.recover(START) for p in w.records]

    def start(self) -> None:
        """Delete what earlier runs left (call it once :meth:`pending` is committed) and
        start appending."""
        have = self.journal.segments()
        if have:
            self.journal.release(Position(have[-1] + 1, 0))
        self.journal.start()

    def stop(self) -> None:
        """Write what is queued; delete the last segment if the database holds it all."""
        self.journal.stop()
        with self._lock:
            done = not any(self._open.values())
        if done:
            self.journal.path(self.journal.position.segment).unlink(missing_ok=True)

    def add(self, chunk: Chunk) -> None:
        """Append a chunk not yet committed; its ``journaled`` future resolves once the
        record is durable (never if writing it failed: the commit answers then)."""
        with self._lock:
            if chunk.committed or chunk.record is None:
                return
            chunk.in_journal = True
            self._writing.add(chunk.record)
        record = Record(chunk.record, chunk.tenant_id, chunk.source_id, chunk.brand_id,
                        chunk.received_at, chunk.rows, chunk.dead)  # fmt: skip
        self.journal.append(record.encode()).add_done_callback(partial(self._durable, chunk))

    def _durable(self, chunk: Chunk, written: Future[Position]) -> None:
        number = chunk.record or 0
        if written.exception() is not None:
            with self._lock:
                self._writing.discard(number)
            return  # the journal logged it
        segment = written.result().segment
        with self._lock:
            self._writing.discard(number)
            self._lowest[segment] = min(self._lowest.get(segment, number), number)
            if not chunk.committed:
                self._open.setdefault(segment, set()).add(number)
        with contextlib.suppress(InvalidStateError):  # cancelled by its waiter
            chunk.journaled.set_result(None)

    def committed(self, chunks: list[Chunk]) -> None:
        """Note chunks committed (from the writer thread, after the commit)."""
        freed = False
        with self._lock:
            for c in chunks:
                c.committed = True
                if c.in_journal:
                    for numbers in self._open.values():
                        if c.record in numbers:
                            numbers.discard(c.record)
                            freed = True
        if freed:
            self._release()

    def _release(self) -> None:
        current = self.journal.position.segment
        with self._lock:
            for segment in [s for s, numbers in self._open.items() if not numbers]:
                del self._open[segment]
            upto = min(self._open, default=current)
            for segment in [s for s in self._lowest if s < upto]:
                del self._lowest[segment]
        self.journal.release(Position(upto, 0))

    def tidy(self) -> None:
        """Let the segment being written go too once all it holds is committed: start a
        new one (the journal thread does it), and release what is done (now or at the
        next call). Without it, a segment that journals rarely would keep its records,
        and their commits' numbers in the database, until it filled."""
        with self._lock:
            idle = not any(self._open.values())
            written = self.journal.position.segment in self._lowest
        if idle and written:
            self.journal.rotate()
        self._release()

    def lowest_kept(self) -> int | None:
        """The lowest record number in a segment still kept, or on its way to one (None:
        none is)."""
        with self._lock:
            return min([*self._lowest.values(), *self._writing], default=None)
