"""A journal and the thread that folds what it made durable into the database.

Requests are answered once their record is durable in the :class:`~quanyu.store.journal.
Journal`; a folder thread moves records into tables in bulk, in order, through ``fold``
(which stores the position it reached in the same transaction as the records). At start
the folder folds on from the stored position what an earlier process left behind; API
reads call :meth:`Folder.flush` so that a request answered is a request seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from quanyu.errors import Unavailable
from quanyu.store.journal import START, Journal, Position, Written

log = logging.getLogger("quanyu.store.folder")


class Folder:
    """Folds journal records into the database in order, and retries what fails.

    ``fold`` stores a list of durable batches (and the position after the last) in one
    go; ``folded`` reads the position stored last. A fold runs every ``interval``
    seconds, or at once when :meth:`flush` asks.
    """

    def __init__(
        self,
        directory: Path,
        *,
        name: str,
        fold: Callable[[list[Written]], None],
        folded: Callable[[], Position],
        interval: float = 0.2,
        segment_bytes: int = 64 << 20,
        keep_folded: float = 30.0,
    ) -> None:
        self.name = name
        self.interval = interval
        self.keep_folded = keep_folded
        self.folds = 0
        self._fold = fold
        self._folded = folded
        self.journal = Journal(directory, name=name, segment_bytes=segment_bytes,
                               on_durable=self._durable)  # fmt: skip
        self._pending: list[Written] = []
        self._cv = threading.Condition()
        self._durable_to = self._folded_to = Position(0, 0)
        self._wake = False
        self._stopping = False
        self._rotated_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"quanyu-fold-{name}", daemon=True)

    def open(self, *, chunk: int = 50_000) -> Folder:
        """Fold what an earlier process left in the journal, then take new records."""
        folded = self._folded()
        replayed = 0
        for written in self.journal.recover(folded, chunk=chunk):
            self._fold([written])
            replayed += len(written.records)
            folded = written.end
        if replayed:
            log.info("folded %d %s records the last process journaled but did not fold",
                     replayed, self.name)  # fmt: skip
        self._durable_to = self._folded_to = folded
        self.journal.start()
        self.journal.release(folded)
        self._thread.start()
        return self

    def waiting(self) -> bool:
        """Whether the journal on disk holds records not folded yet (before :meth:`open`)."""
        if not self.journal.directory.is_dir():
            return False
        folded = self._folded()
        for s in self.journal.segments():
            size = self.journal.path(s).stat().st_size
            if (s > folded.segment and size > 0) or (s == folded.segment and size > folded.offset):
                return True
        return False

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
                    f"recent {self.name} are not in the database yet (folding is behind by"
                    f" {self.pending} records); try again in a moment"
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
                log.exception("folding %d %s records failed (attempt %d); retrying",
                              sum(len(w.records) for w in batch), self.name, failures)  # fmt: skip
                with self._cv:
                    self._pending[:0] = batch
                if self._stopping and failures > 3:
                    log.error("stopping with %d %s records unfolded: the next start folds"
                              " them", self.pending, self.name)  # fmt: skip
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
        folded ones: records stay on disk outside the database for at most about
        ``keep_folded`` seconds after they are folded."""
        with self._cv:
            caught_up = self._folded_to >= self._durable_to
            folded = self._folded_to
        if not caught_up:
            return
        now = time.monotonic()
        current = self.journal.position.segment
        if folded.segment == current and folded.offset > 0:
            if now - self._rotated_at >= self.keep_folded:
                self._rotated_at = now
                self.journal.rotate()
        elif folded.segment < current:
            self.journal.release(folded)


def position(row: tuple[object, ...] | None) -> Position:
    """A stored position (segment, byte offset), or the journal's start."""
    if row is None:
        return START
    segment, offset = row
    assert isinstance(segment, int) and isinstance(offset, int)
    return Position(segment, offset)
