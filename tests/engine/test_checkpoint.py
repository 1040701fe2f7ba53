"""A checkpoint asked for while another thread's write transaction is open."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest

from quanyu.engine.duckdb import DuckDBEngine, DuckDBSession
from quanyu.errors import Unavailable


def _open_update(engine: DuckDBEngine) -> DuckDBSession:
    """A session inside a transaction that updated a row (DuckDB refuses a checkpoint
    while one is open)."""
    writer = engine.session()
    writer.raw("CREATE TABLE IF NOT EXISTS t_busy (a INTEGER)")
    writer.raw("INSERT INTO t_busy VALUES (1)")
    writer.begin()
    writer.raw("UPDATE t_busy SET a = a + 1")
    return writer


def test_a_checkpoint_waits_for_the_open_write_to_end(engine: DuckDBEngine) -> None:
    writer = _open_update(engine)
    with engine.connect() as db:
        assert isinstance(db, DuckDBSession)
        with pytest.raises(duckdb.TransactionException, match="other write transactions"):
            db.raw("CHECKPOINT")  # what the wait is for
        done = threading.Timer(0.3, writer.commit)
        started = time.monotonic()
        done.start()
        db.checkpoint()
        waited = time.monotonic() - started
        done.join()
        assert waited >= 0.25
        assert db.raw("SELECT a FROM t_busy") == [(2,)]  # the write was not aborted
    writer.close()


def test_a_checkpoint_that_never_gets_a_gap_says_so(engine: DuckDBEngine) -> None:
    writer = _open_update(engine)
    with engine.connect() as db:
        assert isinstance(db, DuckDBSession)
        with pytest.raises(Unavailable, match="busy with other writes for 0 s.*retry"):
            db.checkpoint(wait=0.2)
    writer.rollback()
    writer.close()
