"""Engine capabilities: what a statement may rely on beyond portable SQL."""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    """A feature some engines have and others must emulate.

    Domain code declares the capabilities a statement needs (see
    :mod:`quanyu.engine.statements`); it never asks which engine it runs on.
    """

    #: ``INSERT ... ON CONFLICT DO NOTHING`` against a primary key (DuckDB, PostgreSQL).
    #: Spark emulates it with ``MERGE INTO ... WHEN NOT MATCHED THEN INSERT``.
    INSERT_IGNORE = "insert_ignore"
    #: ACID transactions around several statements.
    TRANSACTIONS = "transactions"
    #: Row-level ``UPDATE`` (Delta/Iceberg tables on Spark, native elsewhere).
    ROW_UPDATES = "row_updates"
    #: 128-bit hash keys: ``md5_number(text)`` as a ``UHUGEINT`` primary key (DuckDB).
    #: Spark keys on the two 64-bit halves of ``md5(text)`` instead.
    HASH_KEYS = "hash_keys"
    #: ``WITH name AS MATERIALIZED (...)``: a CTE computed once for all its readers.
    #: Spark caches the subquery (or recomputes it) instead.
    MATERIALIZED_CTE = "materialized_cte"
