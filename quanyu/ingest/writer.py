"""Group commit: one thread writes every accepted message, many requests per commit.

Request handlers hand the writer a :class:`Chunk` and wait on its future; the writer
drains whatever chunks are queued, writes them in one transaction, commits, and only
then resolves every future. One commit (one WAL sync) serves many requests, which keeps
the database off the event loop. A request whose commit is late (a checkpoint) is
answered from the ingest journal instead (:mod:`quanyu.ingest.journal`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from quanyu.engine import DuplicateKey, Engine
from quanyu.ids import new_id
from quanyu.ingest import sql as q
from quanyu.ingest.journal import IngestJournal
from quanyu.ingest.normalize import ROW_FIELDS, Normalized, Reject
from quanyu.ingest.schema import EVENT_COLUMNS

log = logging.getLogger("quanyu.ingest.writer")

_TS = pa.timestamp("us")
_TS_FIELDS = frozenset({"timestamp", "original_timestamp", "sent_at", "received_at"})
EVENT_SCHEMA = pa.schema(
    [pa.field(c, _TS if c in _TS_FIELDS else pa.string()) for c in EVENT_COLUMNS]
)
_DL_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("tenant_id", pa.string()),
        ("source_id", pa.string()),
        ("received_at", _TS),
        ("message_id", pa.string()),
        ("event_type", pa.string()),
        ("event", pa.string()),
        ("code", pa.string()),
        ("reason", pa.string()),
        ("rule", pa.string()),
        ("disposition", pa.string()),
        ("status", pa.string()),
        ("payload", pa.string()),
    ]
)


@dataclass
class Chunk:
    """What one request (or one import batch) asks the writer to store: prepared Arrow
    rows (``events``, bulk imports) or normalised rows (``rows``, the tracking API), which
    the writer turns into Arrow for its whole group commit at once."""

    tenant_id: str
    source_id: str
    brand_id: str | None
    received_at: datetime
    events: pa.Table | None = None
    dead: list[Reject] = field(default_factory=list)
    future: Future[int] = field(default_factory=Future)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    #: resolves once the chunk is synced to the journal (see :meth:`Writer.journal`)
    journaled: Future[None] = field(default_factory=Future)
    #: its number in the writer's journal (given at submit when the writer has one)
    record: int | None = None
    #: set under the journal's lock: in the journal; committed
    in_journal: bool = False
    committed: bool = False

    @property
    def count(self) -> int:
        return int(self.events.num_rows) if self.events is not None else len(self.rows)

    @classmethod
    def normalized(
        cls,
        norm: Normalized,
        *,
        tenant_id: str,
        source_id: str,
        brand_id: str | None,
        received_at: datetime,
    ) -> Chunk:
        """A chunk of normalised messages (and their rejects).

        The rows stay Python tuples until the writer builds one Arrow table for every
        chunk of its commit: each conversion lets go of the GIL and may wait to get it
        back, so a request's sixteen conversions cost the event loop more than the work.
        """
        return cls(tenant_id, source_id, brand_id, received_at,
                   dead=[*norm.rejects, *norm.flagged], rows=norm.rows)  # fmt: skip


def dead_letter_table(chunks: list[Chunk]) -> pa.Table:
    """The dead letters of ``chunks`` (rejected and flagged) as one Arrow table."""
    rows: dict[str, list[Any]] = {name: [] for name in _DL_SCHEMA.names}
    for c in chunks:
        for r in c.dead:
            rows["id"].append(new_id("dl"))
            rows["tenant_id"].append(c.tenant_id)
            rows["source_id"].append(c.source_id)
            rows["received_at"].append(c.received_at)
            rows["message_id"].append(r.message_id)
            rows["event_type"].append(r.event_type)
            rows["event"].append(r.event)
            rows["code"].append(r.code)
            rows["reason"].append(r.reason)
            rows["rule"].append(r.rule)
            rows["disposition"].append(r.disposition)
            rows["status"].append("open" if r.disposition == "rejected" else "flagged")
            rows["payload"].append(r.payload.decode("utf-8", errors="replace"))
    return pa.table(rows, schema=_DL_SCHEMA)


def normalized_table(
    norm: Normalized,
    *,
    tenant_id: str,
    source_id: str,
    brand_id: str | None,
    received_at: datetime,
) -> pa.Table:
    """Normalised messages as an Arrow table in the events table's layout."""
    return rows_table([Chunk.normalized(norm, tenant_id=tenant_id, source_id=source_id,
                                        brand_id=brand_id, received_at=received_at)])  # fmt: skip


def rows_table(chunks: list[Chunk]) -> pa.Table:
    """The normalised rows of ``chunks`` as one Arrow table in the events table's layout."""
    rows = [r for c in chunks for r in c.rows]
    per_chunk: dict[str, list[Any]] = {"tenant_id": [], "source_id": [], "brand_id": [],
                                       "received_at": []}  # fmt: skip
    for c in chunks:
        n = len(c.rows)
        per_chunk["tenant_id"] += [c.tenant_id] * n
        per_chunk["source_id"] += [c.source_id] * n
        per_chunk["brand_id"] += [c.brand_id] * n
        per_chunk["received_at"] += [pa.scalar(c.received_at, _TS).value] * n
    arrays: dict[str, pa.Array] = {
        name: pa.array(values, _TS if name in _TS_FIELDS else pa.string())
        for name, values in per_chunk.items()
    }
    columns = zip(*rows, strict=True) if rows else ((),) * len(ROW_FIELDS)
    for name, values in zip(ROW_FIELDS, columns, strict=True):
        # JSON text arrives as UTF-8 bytes; the conversion checks the encoding
        arrays[name] = pa.array(values, _TS if name in _TS_FIELDS else pa.string())
    return pa.table([arrays[c] for c in EVENT_COLUMNS], schema=EVENT_SCHEMA)


def events_table(chunks: list[Chunk]) -> pa.Table:
    """The valid events of ``chunks`` as one Arrow table in the events table's layout.

    The table is one contiguous chunk: DuckDB inserts a table of many small chunks (a
    group commit of 100-event requests) at a third of the speed.
    """
    parts = [c.events for c in chunks if c.events is not None and c.count]
    rowed = [c for c in chunks if c.events is None and c.rows]
    if rowed:
        parts.append(rows_table(rowed))
    if not parts:
        return EVENT_SCHEMA.empty_table()
    table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    return table.combine_chunks()


def write_chunks(engine: Engine, chunks: list[Chunk], seq: int | None = None) -> dict[str, int]:
    """Store ``chunks`` in one transaction; return new (non-duplicate) events per source.

    The numbers of the chunks' journal records, if any, are stored with them.

    ``seq`` numbers the commit (``events.commit_seq``); by default, one past the last.

    Repeats are rare (a client's retry), so the group goes in with plain inserts (the
    events, then their keys), which cost DuckDB half what inserts checking every row for
    a conflict do. A key claimed before aborts the transaction, and the group goes in
    again skipping what is stored.
    """
    events = events_table(chunks)
    dead = dead_letter_table(chunks)
    if seq is None:
        seq = last_commit_seq(engine) + 1
    try:
        return _write(engine, chunks, events, dead, seq, skip_stored=False)
    except DuplicateKey:
        return _write(engine, chunks, events, dead, seq, skip_stored=True)


#: Most dedup keys one pruning deletes: deleting from the key index costs ~3.6 µs a key
#: at 10 M keys, and the writer commits nothing meanwhile.
PRUNE_SLICE = 100_000


def prune_keys(engine: Engine, before: datetime, limit: int = PRUNE_SLICE) -> int:
    """Forget up to ``limit`` dedup keys of events received before ``before``; return
    how many.

    The events stay; a retry of one of them after this would be stored again.
    """
    with engine.connect() as db, db.transaction():
        row = db.one(q.PRUNE_KEYS, [before, limit])
    return int(row[0]) if row else 0


def last_commit_seq(engine: Engine) -> int:
    """The number of the last group commit that stored events (0 before the first)."""
    with engine.connect() as db:
        row = db.one(q.LAST_COMMIT_SEQ)
    return int(row[0]) if row else 0


def _write(
    engine: Engine,
    chunks: list[Chunk],
    events: pa.Table,
    dead: pa.Table,
    seq: int,
    *,
    skip_stored: bool,
) -> dict[str, int]:
    with engine.connect() as db, db.transaction():
        inserted: Counter[str] = Counter()
        if events.num_rows and not skip_stored:
            db.with_table("staged_events", events, q.INSERT_NEW_EVENTS, [seq])
            db.execute(q.INSERT_NEW_KEYS, [seq])
            for c in chunks:
                inserted[c.source_id] += c.count
        elif events.num_rows:
            db.register("staged_events", events)
            db.execute(q.CLAIM_KEYS, [seq])
            result = db.arrow(q.INSERT_EVENTS, [seq, seq])
            db.unregister("staged_events")
            inserted.update(result.column(0).to_pylist())
        if dead.num_rows:
            db.with_table("staged_dead_letters", dead, q.INSERT_DEAD_LETTERS)
        received: Counter[tuple[str, str]] = Counter()
        for c in chunks:
            received[(c.tenant_id, c.source_id)] += c.count
        now = chunks[0].received_at if chunks else None
        for (tenant_id, source_id), n in received.items():
            db.execute(q.INSERT_COMMIT_STATS, [tenant_id, source_id, now, n, inserted[source_id]])
        for first, last in _runs(sorted(c.record for c in chunks if c.record is not None)):
            db.execute(q.INSERT_JOURNAL_RANGE, [first, last, seq])
    return dict(+inserted)  # sources with new events only


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as (first, last) runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def replay_journal(engine: Engine, journal: IngestJournal, *, max_events: int = 20_000) -> int:
    """Commit the journal records earlier runs left that the database does not hold, then
    open the journal for appending; return the highest record number in use.

    A record whose events were committed before (its commit died after the database's
    but before the journal heard) adds nothing: the dedup keys see to that.
    """
    pending = journal.pending()
    done: list[tuple[int, int]] = []
    if pending:
        with engine.connect() as db:
            low = min(r.number for r in pending)
            done = [(int(a), int(b)) for a, b in db.execute(q.JOURNAL_RANGES, [low])]
    todo = [r for r in pending if not any(a <= r.number <= b for a, b in done)]
    seq = last_commit_seq(engine)
    group: list[Chunk] = []
    size = 0
    for i, r in enumerate(todo):
        group.append(Chunk(r.tenant_id, r.source_id, r.brand_id, r.received_at, dead=r.dead,
                           rows=r.rows, record=r.number))  # fmt: skip
        size += len(r.rows)
        if size >= max_events or i == len(todo) - 1:
            seq += 1
            write_chunks(engine, group, seq)
            group, size = [], 0
    if todo:
        log.warning(
            "journal replayed",
            extra={"fields": {"records": len(todo), "events": sum(len(r.rows) for r in todo)}},
        )
    with engine.connect() as db:
        row = db.one(q.LAST_JOURNAL_RECORD)
    journal.start()
    return max([int(row[0]) if row else 0, *(r.number for r in pending)])


def _settle(future: Future[int], *, result: int = 0, error: BaseException | None = None) -> None:
    """Resolve a waiter's future, unless the waiter gave up (timed out or disconnected)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass  # cancelled by its waiter: the rows are committed all the same


class Writer:
    """The single writer thread of a server process."""

    #: Seconds between two prunings of the dedup keys.
    PRUNE_EVERY = 600.0

    def __init__(
        self,
        engine: Engine,
        *,
        max_events: int = 20_000,
        linger_ms: float = 2.0,
        dedup_window: timedelta | None = None,
        journal: IngestJournal | None = None,
    ):
        """With ``dedup_window``, keys older than it are let go: checked every 10 minutes,
        deleted :data:`PRUNE_SLICE` at a time, a second apart while more are due.

        With ``journal``, :meth:`journal` has a chunk whose commit is late synced to the
        journal; :meth:`start` first commits what an earlier run left there.
        """
        self._engine = engine
        self._journal = journal
        self._next_record = 1
        self._window = dedup_window
        self._prune_at = time.monotonic() + self.PRUNE_EVERY
        self._max_events = max_events
        self._linger = linger_ms / 1000
        self._queue: queue.SimpleQueue[Chunk | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="quanyu-writer", daemon=True)
        self._pending = 0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[int], None]] = []
        self._seq = 0
        self.commits = 0

    def start(self) -> None:
        if self._journal is not None:
            last = replay_journal(self._engine, self._journal, max_events=self._max_events)
            self._next_record = last + 1
        self._seq = last_commit_seq(self._engine)
        self._thread.start()

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(commit_seq)`` from the writer thread after each commit."""
        self._listeners.append(listener)

    @property
    def alive(self) -> bool:
        """Whether the writer thread runs."""
        return self._thread.is_alive()

    @property
    def depth(self) -> int:
        """Events queued and not yet committed."""
        return self._pending

    def submit(self, chunk: Chunk) -> Future[int]:
        """Queue a chunk; its future resolves with the count stored once committed."""
        with self._lock:
            self._pending += chunk.count
            if self._journal is not None:
                # numbered in queue order: a group commit holds a run of numbers
                chunk.record = self._next_record
                self._next_record += 1
            self._queue.put(chunk)
        return chunk.future

    def journal(self, chunk: Chunk) -> bool:
        """Have a submitted chunk of normalised rows synced to the journal, unless its
        commit comes first; its ``journaled`` future resolves when it is durable there.
        False (and nothing done) without a journal, or for a chunk of Arrow rows."""
        if self._journal is None or chunk.events is not None or chunk.record is None:
            return False
        self._journal.add(chunk)
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then end the threads."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._journal is not None and not self._thread.is_alive():
            self._journal.stop()

    def _gather(self, first: Chunk) -> tuple[list[Chunk], bool]:
        chunks, total, stopping = [first], first.count, False
        deadline = time.monotonic() + self._linger
        while total < self._max_events:
            try:
                wait = deadline - time.monotonic()
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stopping = True
                break
            chunks.append(item)
            total += item.count
        return chunks, stopping

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            chunks, stopping = self._gather(first)
            started = time.perf_counter()
            try:
                inserted = write_chunks(self._engine, chunks, self._seq + 1)
            except Exception as e:  # noqa: BLE001 - every waiter must hear of the failure
                log.exception(
                    "group commit of %d chunks failed (those in the journal are committed"
                    " again at the next start)",
                    len(chunks),
                )
                for c in chunks:
                    _settle(c.future, error=e)
            else:
                self._seq += 1
                self.commits += 1
                if self._journal is not None:
                    self._journal.committed(chunks)
                for listener in self._listeners:
                    listener(self._seq)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "group commit",
                        extra={
                            "fields": {
                                "chunks": len(chunks),
                                "events": sum(c.count for c in chunks),
                                "ms": round((time.perf_counter() - started) * 1000, 2),
                            }
                        },
                    )
                for c in chunks:
                    _settle(c.future, result=inserted.get(c.source_id, 0))
            finally:
                with self._lock:
                    self._pending -= sum(c.count for c in chunks)
            if stopping:
                return
            if self._window is not None and time.monotonic() >= self._prune_at:
                self._prune(self._window)

    def _prune(self, window: timedelta) -> None:
        if self._journal is not None:
            self._tidy_journal(self._journal)
        n = 0
        try:
            n = prune_keys(self._engine, datetime.now(UTC).replace(tzinfo=None) - window)
        except Exception:  # noqa: BLE001 - the keys stay; the next pruning tries again
            log.exception("pruning the dedup keys failed")
        else:
            log.info("dedup keys pruned", extra={"fields": {"keys": n}})
        # a full slice means more are due: the next one after a second of commits
        self._prune_at = time.monotonic() + (1.0 if n >= PRUNE_SLICE else self.PRUNE_EVERY)

    def _tidy_journal(self, journal: IngestJournal) -> None:
        """Let committed journal segments go, and the commits' record runs no segment
        still holds."""
        try:
            journal.tidy()
            with self._engine.connect() as db, db.transaction():
                db.execute(q.PRUNE_JOURNAL_RANGES, [journal.lowest_kept() or self._next_record])
        except Exception:  # noqa: BLE001 - what is kept is kept; the next pruning tries again
            log.exception("tidying the ingest journal failed")
