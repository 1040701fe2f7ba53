"""The default engine: an embedded DuckDB database file."""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from quanyu.engine.base import DuplicateKey, Engine, Params, Session, WriteConflict
from quanyu.engine.capabilities import Capability
from quanyu.engine.statements import Statement
from quanyu.errors import Unavailable

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _name(name: str) -> str:
    """A staged table's name, checked: it is pasted into SQL."""
    if not _NAME.match(name):
        raise ValueError(f"staged table name {name!r} is not a lower-case SQL identifier")
    return name


def _translated(e: duckdb.Error) -> Exception:
    """The engine's error for a DuckDB one: a duplicate key or a write conflict, found
    by a statement or only at commit (two transactions that inserted the same key)."""
    text = str(e).lower()
    constraint = isinstance(e, duckdb.ConstraintException | duckdb.TransactionException)
    if constraint and "duplicate key" in text:
        return DuplicateKey(str(e))
    if isinstance(e, duckdb.TransactionException) and "conflict" in text:
        return WriteConflict(str(e))
    return e


class DuckDBSession(Session):
    """A DuckDB cursor: its own connection to the shared database instance."""

    def __init__(self, engine: DuckDBEngine, con: duckdb.DuckDBPyConnection) -> None:
        self._engine = engine
        self._con = con

    def execute(self, stmt: Statement, params: Params = None) -> list[tuple[Any, ...]]:
        self._engine.check(stmt)
        return self._run(stmt.sql, params)

    def _run(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Run SQL, raising a duplicate key or write conflict as the engine's error."""
        try:
            return self._con.execute(sql, params).fetchall()
        except (duckdb.ConstraintException, duckdb.TransactionException) as e:
            found = _translated(e)
            if found is e:
                raise
            raise found from e

    def arrow(self, stmt: Statement, params: Params = None) -> pa.Table:
        self._engine.check(stmt)
        relation = self._con.sql(stmt.sql, params=params)
        return relation.to_arrow_table() if relation is not None else pa.table({})

    def register(self, name: str, table: pa.Table) -> None:
        self._con.register(name, table)

    def unregister(self, name: str) -> None:
        self._con.unregister(name)

    def stage(self, name: str, stmt: Statement, params: Params = None) -> None:
        self._engine.check(stmt)
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE {_name(name)} AS {stmt.sql}", params)

    def unstage(self, name: str) -> None:
        self._con.execute(f"DROP TABLE IF EXISTS temp.{_name(name)}")

    def raw_ping(self) -> None:
        self._con.execute("SELECT 1").fetchall()

    def begin(self) -> None:
        self._con.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        self._run("COMMIT")  # a failed commit ends the transaction too

    def rollback(self) -> None:
        self._con.execute("ROLLBACK")

    def close(self) -> None:
        self._con.close()

    def raw(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Run SQL text that is not a registered statement (migrations only)."""
        return self._con.execute(sql, params).fetchall()

    def checkpoint(self, *, wait: float = 60.0) -> None:
        """Fold the write-ahead log into the file now, waiting up to ``wait`` seconds for
        the other threads' write transactions to end: DuckDB refuses a checkpoint while
        one that updated or created something is open. ``FORCE CHECKPOINT`` waits since
        DuckDB 1.4 but aborts them before, and holds every new transaction back while it
        waits. The background threads' transactions are short, so a gap comes soon;
        raises :class:`Unavailable` when none did."""
        deadline, pause = time.monotonic() + wait, 0.01
        while True:
            try:
                self._con.execute("CHECKPOINT")
                return
            except duckdb.TransactionException as e:
                if "other write transactions" not in str(e):
                    raise
                if time.monotonic() >= deadline:
                    raise Unavailable(
                        f"the database stayed busy with other writes for {wait:.0f} s, so it"
                        " could not be checkpointed; retry the request when the load is lower"
                    ) from e
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


class DuckDBEngine(Engine):
    """One DuckDB database; sessions are cursors, safe to use one per thread."""

    name: ClassVar[str] = "duckdb"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.INSERT_IGNORE,
            Capability.TRANSACTIONS,
            Capability.ROW_UPDATES,
            Capability.HASH_KEYS,
            Capability.MATERIALIZED_CTE,
        }
    )

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def session(self) -> DuckDBSession:
        return DuckDBSession(self, self._con.cursor())

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file."""
        self._con.execute("CHECKPOINT")

    def close(self) -> None:
        self._con.close()
