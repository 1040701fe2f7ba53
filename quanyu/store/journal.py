"""An append-only journal on disk: records made durable by group-committed fsyncs.

What must be durable before a request is answered but is cheaper to put into the
database in bulk goes here first (consumer scans): a writer thread appends the records
queued since its last round to a segment file and fsyncs it once for all of them, then
tells every waiter. The reader of the journal (a folder that moves records into tables)
keeps the position it has folded up to in the database, in the same transaction as the
records, and after a crash reads on from there: see :meth:`Journal.recover`.

A record on disk is ``len (u32 LE) | crc32 (u32 LE) | payload``; a crash can leave the
last record of the last segment torn, and recovery cuts it off (its writer was never
told it was durable). Segments are ``<name>-<n:08d>.journal``; the writer starts the
next when one passes ``segment_bytes``; :meth:`Journal.release` deletes those folded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger("quanyu.store.journal")

_HEAD = struct.Struct("<II")


class Position(NamedTuple):
    """A place in the journal: a segment number and a byte offset in it."""

    segment: int
    offset: int


START = Position(1, 0)


@dataclass(frozen=True)
class Written:
    """Records made durable by one fsync, and the position just after the last one."""

    records: list[bytes]
    end: Position


AsyncWaiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Position]"]
Waiter = Future[Position] | AsyncWaiter


class JournalError(Exception):
    """The journal could not be written; nothing queued with it was made durable."""


def journal_dir(data_dir: Path) -> Path:
    """Where a data dir keeps its journals."""
    return data_dir / "journal"


def frame(payload: bytes) -> bytes:
    """One record as it is stored."""
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


class Journal:
    """Durable appends with one fsync per round of the writer thread.

    ``on_durable`` is called in the writer thread after each fsync, before any waiter
    is told, with what that fsync made durable (a folder queues it for the database).
    """

    def __init__(
        self,
        directory: Path,
        *,
        name: str = "records",
        segment_bytes: int = 64 << 20,
        on_durable: Callable[[Written], None] | None = None,
    ) -> None:
        self.directory = directory
        self.name = name
        self.segment_bytes = segment_bytes
        self.on_durable = on_durable
        self.syncs = 0
        self._queue: list[bytes] = []
        self._waiters: list[Waiter] = []
        self._cv = threading.Condition()
        self._stopping = False
        self._rotate = False
        self._fd = -1
        self._segment = 0
        self._size = 0
        self._thread = threading.Thread(target=self._run, name=f"quanyu-journal-{name}",
                                        daemon=True)  # fmt: skip

    # -- segments ---------------------------------------------------------------------

    def path(self, segment: int) -> Path:
        return self.directory / f"{self.name}-{segment:08d}.journal"

    def segments(self) -> list[int]:
        """Numbers of the segment files on disk, in order."""
        prefix, found = f"{self.name}-", []
        for p in self.directory.glob(f"{self.name}-*.journal"):
            digits = p.name[len(prefix) : -len(".journal")]
            if digits.isdigit():
                found.append(int(digits))
        return sorted(found)

    def recover(self, after: Position, *, chunk: int = 50_000) -> Iterator[Written]:
        """The records stored after ``after``, in order, ``chunk`` at a time.

        A torn or corrupt record ends its segment: at the end of the last segment that
        is a crash during an append (cut off here, so new records follow the last good
        one); anywhere else it is damage, logged, and the rest of that segment is lost.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        segments = [s for s in self.segments() if s >= after.segment]
        for i, seg in enumerate(segments):
            try:
                data = self.path(seg).read_bytes()
            except FileNotFoundError:  # released meanwhile: folded already
                continue
            pos = after.offset if seg == after.segment else 0
            batch: list[bytes] = []
            while pos < len(data):
                if pos + _HEAD.size > len(data):
                    break
                size, crc = _HEAD.unpack_from(data, pos)
                body = data[pos + _HEAD.size : pos + _HEAD.size + size]
                if len(body) < size or zlib.crc32(body) != crc:
                    break
                pos += _HEAD.size + size
                batch.append(body)
                if len(batch) >= chunk:
                    yield Written(batch, Position(seg, pos))
                    batch = []
            if batch:
                yield Written(batch, Position(seg, pos))
            if pos < len(data):
                if i == len(segments) - 1:
                    log.warning("journal %s: cutting a torn record at the end of segment"
                                " %d (%d bytes)", self.name, seg, len(data) - pos)  # fmt: skip
                    with open(self.path(seg), "r+b") as f:
                        f.truncate(pos)
                        os.fsync(f.fileno())
                else:
                    log.error("journal %s: segment %d is damaged at byte %d; %d bytes after"
                              " it are skipped", self.name, seg, pos, len(data) - pos)  # fmt: skip

    def release(self, upto: Position) -> None:
        """Delete the segments whose records are all at or before ``upto`` (folded),
        except the one being written."""
        for seg in self.segments():
            if seg == self._segment:
                continue
            path = self.path(seg)
            if seg < upto.segment or (seg == upto.segment and path.stat().st_size <= upto.offset):
                path.unlink(missing_ok=True)

    def rotate(self) -> None:
        """Start a new segment (unless the current one is empty), so that the current one
        can be released once folded: folded records do not linger on disk."""
        with self._cv:
            self._rotate = True
            self._cv.notify()

    # -- writing ------------------------------------------------------------------------

    def start(self) -> Journal:
        """Open the last segment (or the first) for appending and start the writer."""
        self.directory.mkdir(parents=True, exist_ok=True)
        have = self.segments()
        self._open(have[-1] if have else START.segment)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Write what is queued, then stop the writer and close the segment."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout=30)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def position(self) -> Position:
        """Where the next record will be written (after everything durable)."""
        return Position(self._segment, self._size)

    def append(self, payload: bytes) -> Future[Position]:
        """Queue one record; the future resolves once it is durable, with the position
        after the last record its fsync made durable."""
        fut: Future[Position] = Future()
        self._put(payload, fut)
        return fut

    def append_async(self, payload: bytes) -> asyncio.Future[Position]:
        """:meth:`append` for a coroutine: one wake-up of its loop per fsync."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Position] = loop.create_future()
        self._put(payload, (loop, fut))
        return fut

    def _put(self, payload: bytes, waiter: Waiter) -> None:
        with self._cv:
            if self._stopping:
                raise JournalError(f"the {self.name} journal is stopped")
            self._queue.append(payload)
            self._waiters.append(waiter)
            if len(self._queue) == 1:
                self._cv.notify()

    def _open(self, segment: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segment = segment
        self._size = os.fstat(self._fd).st_size
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:  # the new file's name is durable too
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stopping and not self._rotate:
                    self._cv.wait()
                rotate, self._rotate = self._rotate, False
                if not self._queue and self._stopping:
                    return
                records, self._queue = self._queue, []
                waiters, self._waiters = self._waiters, []
            if rotate and self._size > 0:
                try:
                    self._open(self._segment + 1)
                except OSError:
                    log.exception("journal %s: starting a new segment failed", self.name)
            if not records:
                continue
            try:
                end = self._write(records)
            except OSError as e:
                log.exception("journal %s: writing %d records failed", self.name, len(records))
                self._settle(waiters, None, JournalError(f"the journal could not be written: {e}"))
                continue
            if self.on_durable is not None:
                self.on_durable(Written(records, end))
            self._settle(waiters, end, None)

    def _write(self, records: list[bytes]) -> Position:
        if self._size >= self.segment_bytes:
            self._open(self._segment + 1)
        data = b"".join(frame(r) for r in records)
        written = os.write(self._fd, data)
        while written < len(data):  # a short write: append the rest
            written += os.write(self._fd, data[written:])
        os.fdatasync(self._fd)
        self._size += len(data)
        self.syncs += 1
        return Position(self._segment, self._size)

    @staticmethod
    def _settle(waiters: list[Waiter], end: Position | None, error: BaseException | None) -> None:
        loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[Position]]] = {}
        for w in waiters:
            if isinstance(w, tuple):
                loops.setdefault(w[0], []).append(w[1])
            elif error is not None:
                w.set_exception(error)
            else:
                assert end is not None
                w.set_result(end)
        for loop, futs in loops.items():
            try:
                loop.call_soon_threadsafe(_resolve, futs, end, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                log.warning("journal: %d waiters' event loop is closed", len(futs))


def _resolve(
    futs: list[asyncio.Future[Position]], end: Position | None, error: BaseException | None
) -> None:
    for f in futs:
        if f.done():  # the request was cancelled (client gone); the record is durable
            continue
        if error is not None:
            f.set_exception(error)
        else:
            assert end is not None
            f.set_result(end)
