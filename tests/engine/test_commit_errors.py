"""Errors DuckDB finds only at commit reach callers as the engine's own errors."""

from __future__ import annotations

import pytest

from quanyu.engine import Statement
from quanyu.engine.base import DuplicateKey, WriteConflict
from quanyu.engine.duckdb import DuckDBEngine


def test_a_key_two_transactions_inserted_is_a_duplicate_at_the_second_commit(
    engine: DuckDBEngine,
) -> None:
    setup, first, second = engine.session(), engine.session(), engine.session()
    setup.raw("CREATE TABLE t_keys (tenant VARCHAR, n INTEGER, PRIMARY KEY (tenant, n))")
    first.begin()
    second.begin()
    first.raw("INSERT INTO t_keys VALUES ('t1', 1)")
    second.raw("INSERT INTO t_keys VALUES ('t1', 1)")  # neither sees the other's row yet
    first.commit()
    with pytest.raises(DuplicateKey, match="duplicate key"):
        second.commit()  # what a caller retries on (an audience snapshot numbers again)
    second.begin()  # the failed transaction is over: the session goes on
    second.raw("INSERT INTO t_keys VALUES ('t1', 2)")
    second.commit()
    assert setup.raw("SELECT n FROM t_keys ORDER BY n") == [(1,), (2,)]
    for s in (setup, first, second):
        s.close()


def test_two_updates_of_one_row_conflict(engine: DuckDBEngine) -> None:
    setup, first, second = engine.session(), engine.session(), engine.session()
    setup.raw("CREATE TABLE t_row (id INTEGER PRIMARY KEY, v INTEGER)")
    setup.raw("INSERT INTO t_row VALUES (1, 0)")
    first.begin()
    second.begin()
    first.raw("UPDATE t_row SET v = 1 WHERE id = 1")
    with pytest.raises(WriteConflict):
        second.execute(Statement("t.update", "UPDATE t_row SET v = 2 WHERE id = 1"))
    second.rollback()
    first.commit()
    assert setup.raw("SELECT v FROM t_row") == [(1,)]
    for s in (setup, first, second):
        s.close()
