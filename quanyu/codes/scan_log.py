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
from quanyu.store.folder import Folder, position
from quanyu.store.journal import Position, Written

#: The scan row's fields after its id (``code_scans`` order).
ROW_FIELDS = q.SCAN_COLUMNS[1:]
_TYPES = {"inner_code": pa.bool_(), "scanned_at": pa.timestamp("us"), "lat": pa.float64(),
          "lon": pa.float64()}  # fmt: skip
_AT = q.SCAN_COLUMNS.index("scanned_at")


def row_values(row: Any) -> list[object]:
    """A scan row's values in ``code_scans`` order, with a new row id first."""
    return [new_id("scan"), *(getattr(row, name) for name in ROW_FIELDS)]


def encode(row: Any, message: dict[str, object] | None) -> bytes:
    """One journal record: the scan row's values (``scanned_at`` as epoch microseconds)
    and the scan's ingest message, if any."""
    values = row_values(row)
    values[_AT] = micros(row.scanned_at)
    return orjson.dumps([values, message])


def scan_rows(rows: list[list[Any]]) -> pa.Table:
    """Rows of values in ``code_scans`` order (``scanned_at`` a datetime or epoch
    microseconds) as an Arrow table in its layout."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(q.SCAN_COLUMNS)
    return pa.table(
        {name: pa.array(cols[i], _TYPES.get(name, pa.string()))
         for i, name in enumerate(q.SCAN_COLUMNS)}
    )  # fmt: skip


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
        self._ingest = ingest
        self._source = source
        self._sealer = sealer
        self.folder = Folder(directory, name="scans", fold=self._fold, folded=self._folded,
                             interval=interval, segment_bytes=segment_bytes,
                             keep_folded=keep_folded)  # fmt: skip
        self.journal = self.folder.journal

    def open(self) -> ScanLog:
        """Fold what an earlier process left in the journal, then take new scans."""
        self.folder.open()
        return self

    @staticmethod
    def waiting(engine: Engine, directory: Path) -> bool:
        """Whether the journal in ``directory`` holds scans not yet folded."""
        log = ScanLog(engine, directory, ingest=None, source=str)
        return log.folder.waiting()

    def stop(self) -> None:
        """Write what is queued, fold everything, stop."""
        self.folder.stop()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every scan durable now is in the database.

        Raises:
            Unavailable: the fold did not get there within ``timeout`` seconds.
        """
        self.folder.flush(timeout)

    def _folded(self) -> Position:
        with self.engine.connect() as db:
            return position(db.one(q.JOURNAL_FOLDED))

    def _fold(self, batch: list[Written]) -> None:
        records = [orjson.loads(r) for w in batch for r in w.records]
        if not records:
            return
        if self._ingest is not None:
            self._emit(records)
        rows = scan_rows([values for values, _ in records])
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
