"""The events log: tracking requests durable in a journal before they are answered.

A request's normalised rows and dead letters are one journal record; the tracking API
answers once that record is fsynced (one fsync for every request queued meanwhile),
not once the database commits. A folder thread hands the records to the group-commit
writer as soon as they are durable, in order; the commit that stores a request's rows
stores the journal position after it too, so after a kill -9 the next start folds on
from there and every answered event is stored exactly once (dedup by messageId still
applies to retries). A database checkpoint stalls the writer, no longer the answers.

API reads wait for the fold (:meth:`EventLog.flush`): an event answered is an event seen.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from quanyu.engine import Engine
from quanyu.errors import Unavailable
from quanyu.ingest import sql as q
from quanyu.ingest.normalize import Reject, micros
from quanyu.ingest.writer import Chunk, Writer
from quanyu.store.folder import Folder, position
from quanyu.store.journal import JournalError, Position, Written

_EPOCH = datetime(1970, 1, 1)
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


def encode(chunk: Chunk) -> bytes:
    """One journal record: the chunk's request, rows and dead letters (msgpack)."""
    dead = [(r.index, r.message_id, r.event_type, r.event, r.code, r.reason, r.payload,
             r.rule, r.disposition) for r in chunk.dead]  # fmt: skip
    return _encoder.encode([chunk.tenant_id, chunk.source_id, chunk.brand_id,
                            micros(chunk.received_at), chunk.rows, dead])  # fmt: skip


def decode(record: bytes, end: Position) -> Chunk:
    """The chunk of a journal record, to be stored with the journal position ``end``."""
    tenant, source, brand, received, rows, dead = _decoder.decode(record)
    return Chunk(
        tenant, source, brand, _EPOCH + timedelta(microseconds=received),
        dead=[Reject(*d) for d in dead], rows=rows, journal_end=end,
    )  # fmt: skip


class EventLog:
    """The events journal in front of the ``writer``; ``directory`` is the data dir's
    journal folder."""

    def __init__(self, engine: Engine, writer: Writer, directory: Path) -> None:
        self.engine = engine
        self.writer = writer
        self.queued = 0  # events answered and not yet handed to the writer
        self.folder = Folder(directory, name="events", fold=self._fold, folded=self._folded,
                             interval=0)  # fmt: skip

    def open(self) -> EventLog:
        """Fold what an earlier process left in the journal, then take requests."""
        self.folder.open(chunk=500)
        return self

    def stop(self) -> None:
        """Write what is queued and fold everything (the writer must still run)."""
        self.folder.stop()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every request answered so far is committed to the database.

        Raises:
            Unavailable: that took longer than ``timeout`` seconds.
        """
        self.folder.flush(timeout)

    async def append(self, chunk: Chunk) -> None:
        """Make the chunk durable in the journal (the request may then be answered).

        Raises:
            Unavailable: the journal could not be written.
        """
        record = encode(chunk)
        self.queued += chunk.count
        try:
            await self.folder.journal.append_async(record)
        except JournalError as e:
            self.queued -= chunk.count
            raise Unavailable(f"The events could not be stored ({e}); retry the request.") from e

    def _folded(self) -> Position:
        with self.engine.connect() as db:
            return position(db.one(q.JOURNAL_FOLDED))

    def _fold(self, batch: list[Written]) -> None:
        chunks = [decode(r, end) for w in batch for r, end in zip(w.records, w.ends, strict=True)]
        futures: list[Any] = [self.writer.submit(c) for c in chunks]
        for f in futures:
            f.result(timeout=600)
        self.queued = max(0, self.queued - sum(c.count for c in chunks))
