"""The engine interface: run SQL, move Arrow tables in and out.

Backends implement a few primitives (:meth:`Session._execute`, :meth:`Session._register`);
orchestration shared by every backend (transactions, Arrow inserts) lives here once.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import pyarrow as pa

from quanyu.engine.capabilities import Capability
from quanyu.engine.statements import Statement

Params = Sequence[Any] | None


class DuplicateKey(Exception):
    """A write would repeat a key the table declares unique; the transaction is aborted."""


class WriteConflict(Exception):
    """Another transaction changed the same row first; this statement's change is void."""


class Session(abc.ABC):
    """One thread's handle on the engine. Not shared between threads."""

    @abc.abstractmethod
    def execute(self, stmt: Statement, params: Params = None) -> list[tuple[Any, ...]]:
        """Run ``stmt`` and return its rows (empty for statements that return none)."""

    @abc.abstractmethod
    def arrow(self, stmt: Statement, params: Params = None) -> pa.Table:
        """Run ``stmt`` and return its result as an Arrow table."""

    @abc.abstractmethod
    def register(self, name: str, table: pa.Table) -> None:
        """Expose an Arrow table to SQL under ``name`` until :meth:`unregister`."""

    @abc.abstractmethod
    def unregister(self, name: str) -> None:
        """Drop a name made by :meth:`register`."""

    @abc.abstractmethod
    def stage(self, name: str, stmt: Statement, params: Params = None) -> None:
        """Keep the rows of the query ``stmt`` under ``name``, a table of this session
        that later statements read, until :meth:`unstage` (a name staged again is
        replaced). Large intermediate results stay in the engine, never in Python."""

    @abc.abstractmethod
    def unstage(self, name: str) -> None:
        """Drop a table made by :meth:`stage`."""

    @abc.abstractmethod
    def raw_ping(self) -> None:
        """Run a trivial query: the engine answers."""

    @abc.abstractmethod
    def begin(self) -> None:
        """Start a transaction."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Commit the open transaction durably."""

    @abc.abstractmethod
    def rollback(self) -> None:
        """Abandon the open transaction."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the session."""

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Run the block in one transaction: commit on success, roll back on error."""
        self.begin()
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def one(self, stmt: Statement, params: Params = None) -> tuple[Any, ...] | None:
        """Run ``stmt`` and return its first row, or None."""
        rows = self.execute(stmt, params)
        return rows[0] if rows else None

    def with_table(self, name: str, table: pa.Table, stmt: Statement, params: Params = None) -> int:
        """Run ``stmt`` with ``table`` visible as ``name``; return the affected row count."""
        self.register(name, table)
        # On failure the name stays registered: unregistering inside an aborted
        # transaction would fail and hide the real error; closing the session drops it.
        rows = self.execute(stmt, params)
        self.unregister(name)
        return int(rows[0][0]) if rows and rows[0] else 0


class Engine(abc.ABC):
    """A backend that owns the data and hands out sessions."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]

    @abc.abstractmethod
    def session(self) -> Session:
        """A new session for the calling thread."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every resource the engine holds."""

    def supports(self, capability: Capability) -> bool:
        """Whether this engine has ``capability`` natively."""
        return capability in self.capabilities

    def check(self, stmt: Statement) -> None:
        """Refuse a statement this engine cannot run as written."""
        missing = stmt.requires - self.capabilities
        if missing:
            names = ", ".join(sorted(c.value for c in missing))
            raise NotImplementedError(
                f"The {self.name} engine lacks {names} needed by SQL statement {stmt.name!r}"
            )

    @contextmanager
    def connect(self) -> Iterator[Session]:
        """A session closed when the block ends."""
        session = self.session()
        try:
            yield session
        finally:
            session.close()
