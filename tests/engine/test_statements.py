"""Every SQL statement the capabilities run must stay portable to Spark SQL."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

import quanyu
from quanyu.engine import Capability, all_statements
from quanyu.engine.duckdb import DuckDBEngine


def _import_all() -> None:
    for mod in pkgutil.walk_packages(quanyu.__path__, "quanyu."):
        if mod.name.endswith(("sql", "_sql")):
            importlib.import_module(mod.name)


_import_all()
STATEMENTS = all_statements()


def test_registry_is_populated() -> None:
    names = {s.name for s in STATEMENTS}
    assert "ingest.insert_events" in names
    assert "tenancy.insert_tenant" in names


@pytest.mark.parametrize("stmt", STATEMENTS, ids=lambda s: s.name)
def test_transpiles_to_spark(stmt) -> None:  # type: ignore[no-untyped-def]
    """Parse as DuckDB, write as Spark, and read the Spark text back."""
    if Capability.INSERT_IGNORE in stmt.requires:
        # ON CONFLICT has no Spark spelling: a Spark engine runs MERGE INTO instead.
        # The rest of the statement (its SELECT) must still transpile.
        body = re.split(r"\bON CONFLICT\b", stmt.sql, flags=re.IGNORECASE)[0]
    else:
        body = stmt.sql
    if Capability.MATERIALIZED_CTE in stmt.requires:
        # a hint Spark has no spelling for: a Spark engine drops it (or caches the CTE)
        assert re.search(r"\bAS MATERIALIZED\b", body), f"{stmt.name} declares no such CTE"
        body = re.sub(r"\bAS MATERIALIZED\b", "AS", body)
    spark = sqlglot.transpile(
        body, read="duckdb", write="spark", unsupported_level=ErrorLevel.RAISE
    )
    assert spark and all(spark)
    for text in spark:
        sqlglot.parse_one(text, read="spark")


@pytest.mark.parametrize("stmt", [s for s in STATEMENTS if s.tenant_scoped], ids=lambda s: s.name)
def test_tenant_scoped_statements_bind_the_tenant(stmt) -> None:  # type: ignore[no-untyped-def]
    """A tenant-scoped statement filters (or writes) tenant_id from a bound parameter."""
    sql = stmt.sql.lower()
    assert "tenant_id" in sql, f"{stmt.name} never mentions tenant_id"
    if sql.startswith("select") or " where " in sql:
        assert re.search(r"tenant_id\s*=\s*\?", sql) or "tenant_id, " in sql.split("select")[0], (
            f"{stmt.name} does not filter on tenant_id = ?"
        )


def test_duckdb_engine_has_what_the_statements_require() -> None:
    needed = set().union(*(s.requires for s in STATEMENTS))
    assert needed <= DuckDBEngine.capabilities
