"""Identifiers and clocks shared by every capability."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

#: Bytes a thread draws from the OS at a time (see :func:`random_bytes`).
_CHUNK = 4096


class _Pool(threading.local):
    def __init__(self) -> None:
        self.buf = b""
        self.at = 0
        self.generation = -1


_pool = _Pool()
_generation = 0


def _forked() -> None:
    global _generation
    _generation += 1  # a child never hands out its parent's bytes again


os.register_at_fork(after_in_child=_forked)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS's cryptographic generator, as ``os.urandom(n)`` gives.

    Drawn 4 KiB at a time per thread and never handed out twice (nor by a forked
    child): ``os.urandom`` (and ``secrets``, ``uuid.uuid4``) gives up the interpreter
    lock on every call, and getting it back beside a busy thread costs up to a switch
    interval (5 ms) each time, which made every id, nonce and message id a stall
    under load.
    """
    pool = _pool
    if pool.generation != _generation or pool.at + n > len(pool.buf):
        if n > _CHUNK:
            return os.urandom(n)
        pool.buf, pool.at, pool.generation = os.urandom(_CHUNK), 0, _generation
    out = pool.buf[pool.at : pool.at + n]
    pool.at += n
    return out


def new_id(prefix: str) -> str:
    """A time-ordered random id such as ``ten_0190f3a2c41b9e77d2a1``."""
    return f"{prefix}_{time.time_ns() // 1_000_000:011x}{random_bytes(5).hex()}"


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (the database stores UTC without zone)."""
    return datetime.now(UTC).replace(tzinfo=None)
