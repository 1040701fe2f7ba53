"""The scan log: scans durable in a journal before they are answered, folded into the
database in bulk.

A scan's row and its "Product Scanned" event are one journal record; the answer waits
for the record's fsync (shared with every scan queued meanwhile), not for a database
commit. A folder thread moves what the journal made durable into ``code_scans`` and
ingest a few times a second: the events through the ingest writer (deduplicated by
their message id), then the rows together with the journal position they reach, in one
transaction. After a crash the server folds on from the stored position before it
takes scans, so every answered scan is stored exactly once. API reads wait for a fold
(:meth:`ScanLog.flush`) so a scan answered is a scan seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from quanyu.codes import scan_sql as q
from quanyu.engine import Engine
from quanyu.errors import Unavailable
from quanyu.ids import new_id, utcnow
from quanyu.ingest.normalize import micros, normalize
from quanyu.ingest.pii import Sealer
from quanyu.ingest.writer import Chunk
from quanyu.store.journal import Journal, Position, Written

log = logging.getLogger("quanyu.codes.scan_log")

#: The scan row's fields in a record, after the row id (``code_scans`` order).
ROW_FIELDS = q.SCAN_COLUMNS[1:]
_TYPES = {"inner_code": pa.bool_(), "lat": pa.float64(), "lon": pa.float64()}


def encode(row: Any, message: dict[str, object] | None) -> bytes:
    """One journal record: a new row id, the scan row's fields (``scanned_at`` as epoch
    microseconds) and the scan's ingest message, if any."""
    values: list[object] = [new_id("scan")]
    for name in ROW_FIELDS:
        v = getattr(row, name)
        values.append(micros(v) if name == "scanned_at" else v)
    return orjson.dumps([values, message])


def scan_rows(records: list[list[Any]]) -> pa.Table:
    """Decoded records' rows in the ``code_scans`` layout."""
    cols = list(zip(*(r[0] for r in records), strict=True))
    arrays = {}
    for i, name in enumerate(q.SCAN_COLUMNS):
        if name == "scanned_at":
            arrays[name] = pa.array(cols[i], pa.int64()).cast(pa.timestamp("us"))
        else:
            arrays[name] = pa.array(cols[i], _TYPES.get(name, pa.string()))
    return pa.table(arrays)


def journal_dir(data_dir: Path) -> Path:
    """Where a data dir keeps its scan journal."""
    return data_dir / "journal"


class ScanLog:
    """The journal of scans and the thread that folds it into the database.

    ``ingest`` hands a chunk of events to the ingest writer (None: scans make no
    events); ``source`` and ``sealer`` give a tenant's scan source and PII sealer.
    """

    def __init__(
        self,
        engine: Engine,
        directory: Path,
        *,
        ingest: Callable[[Chunk], Future[int]] | None,
        source: Callable[[str], str],
        sealer: Callable[[str], Sealer | None] | None = None,
        interval: float = 0.2,
        segment_bytes: int = 64 << 20,
        keep_folded: float = 30.0,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.keep_folded = keep_folded
        self.folds = 0
        self._ingest = ingest
        self._source = source
        self._sealer = sealer
        self.journal = Journal(directory, name="scans", segment_bytes=segment_bytes,
                               on_durable=self._durable)  # fmt: skip
        self._pending: list[Written] = []
        self._cv = threading.Condition()
        self._durable_to = self._folded_to = Position(0, 0)
        self._wake = False
        self._stopping = False
        self._rotated_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="quanyu-scan-folder", daemon=True)

    def open(self) -> ScanLog:
        """Fold what an earlier process left in the journal, then take new records."""
        with self.engine.connect() as db:
            row = db.one(q.JOURNAL_FOLDED)
        folded = Position(int(row[0]), int(row[1])) if row else Position(1, 0)
        replayed = 0
        for written in self.journal.recover(folded):
            self._fold([written])
            replayed += len(written.records)
            folded = written.end
        if replayed:
            log.info("folded %d scans the last process journaled but did not fold", replayed)
        self._durable_to = self._folded_to = folded
        self.journal.start()
        self.journal.release(folded)
        self._thread.start()
        return self

    @staticmethod
    def waiting(engine: Engine, directory: Path) -> bool:
        """Whether the journal in ``directory`` holds records not yet folded."""
        segments = Journal(directory, name="scans").segments() if directory.is_dir() else []
        if not segments:
            return False
        with engine.connect() as db:
            row = db.one(q.JOURNAL_FOLDED)
        folded = Position(int(row[0]), int(row[1])) if row else Position(1, 0)
        journal = Journal(directory, name="scans")
        return any(
            (s > folded.segment and journal.path(s).stat().st_size > 0)
            or (s == folded.segment and journal.path(s).stat().st_size > folded.offset)
            for s in segments
        )

    def stop(self) -> None:
        """Write what is queued, fold everything, stop."""
        self.journal.stop()
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout=60)

    @property
    def pending(self) -> int:
        """Records durable in the journal but not folded yet."""
        with self._cv:
            return sum(len(w.records) for w in self._pending)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record durable now is folded into the database.

        Raises:
            Unavailable: the fold did not get there within ``timeout`` seconds.
        """
        with self._cv:
            target = self._durable_to
            if self._folded_to >= target:
                return
            self._wake = True
            self._cv.notify_all()
            if not self._cv.wait_for(lambda: self._folded_to >= target, timeout):
                raise Unavailable(
                    f"scans are not in the database yet (folding is behind by {self.pending}"
                    " scans); try again in a moment"
                )

    def _durable(self, written: Written) -> None:
        with self._cv:
            self._pending.append(written)
            self._durable_to = written.end
            if self._wake:
                self._cv.notify_all()

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cv:
                if not self._stopping and not self._wake:
                    self._cv.wait(self.interval * (1 + min(failures, 25)))
                batch, self._pending = self._pending, []
                self._wake = False
                if not batch and self._stopping:
                    return
            if not batch:
                self._tidy()
                continue
            try:
                self._fold(batch)
            except Exception:  # the records are durable: keep them and try again later
                failures += 1
                log.exception("folding %d scans failed (attempt %d); retrying",
                              sum(len(w.records) for w in batch), failures)  # fmt: skip
                with self._cv:
                    self._pending[:0] = batch
                if self._stopping and failures > 3:
                    log.error("stopping with %d scans unfolded: the next start folds them",
                              self.pending)  # fmt: skip
                    return
                continue
            failures = 0
            with self._cv:
                self._folded_to = batch[-1].end
                self._cv.notify_all()
            self.folds += 1
            self.journal.release(batch[-1].end)
            self._tidy()

    def _tidy(self) -> None:
        """Once everything is folded, start a new segment now and then and delete the
        folded ones: scans (with the scanners' identifiers) stay on disk outside the
        database for at most about ``keep_folded`` seconds after they are folded."""
        with self._cv:
            caught_up = self._folded_to >= self._durable_to
            folded = self._folded_to
        if not caught_up:
            return
        now = time.monotonic()
        if folded.segment == self.journal.position.segment and folded.offset > 0:
            if now - self._rotated_at >= self.keep_folded:
                self._rotated_at = now
                self.journal.rotate()
        elif folded.segment < self.journal.position.segment:
            self.journal.release(folded)

    def _fold(self, batch: list[Written]) -> None:
        records = [orjson.loads(r) for w in batch for r in w.records]
        if not records:
            return
        if self._ingest is not None:
            self._emit(records)
        rows = scan_rows(records)
        end = batch[-1].end
        with self.engine.connect() as db, db.transaction():
            db.with_table("staged_scans", rows, q.INSERT_SCANS)
            db.execute(q.SET_JOURNAL_FOLDED, [end.segment, end.offset])

    def _emit(self, records: list[list[Any]]) -> None:
        by_tenant: dict[str, list[bytes]] = {}
        tenant_at = 1 + ROW_FIELDS.index("tenant_id")
        for values, message in records:
            if message is not None:
                by_tenant.setdefault(values[tenant_at], []).append(orjson.dumps(message))
        assert self._ingest is not None
        now = utcnow()
        futures = []
        for tenant, items in by_tenant.items():
            sealer = self._sealer(tenant) if self._sealer else None
            norm = normalize(items, received_at=now, sealer=sealer)
            chunk = Chunk.normalized(norm, tenant_id=tenant, source_id=self._source(tenant),
                                     brand_id=None, received_at=now)  # fmt: skip
            futures.append(self._ingest(chunk))
        for fut in futures:
            fut.result(timeout=120)


def wait_all(futures: list[Future[Any]], timeout: float = 30.0) -> None:
    """Wait for journal appends (a thread's scans).

    Raises:
        Unavailable: an append failed or took longer than ``timeout``.
    """
    deadline = time.monotonic() + timeout
    try:
        for f in futures:
            f.result(timeout=max(0.0, deadline - time.monotonic()))
    except Exception as e:
        raise Unavailable(f"the scan could not be stored ({e}); scan again") from e
