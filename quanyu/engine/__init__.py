"""SQL engines: DuckDB by default, behind an interface a Spark backend can implement."""

from quanyu.engine.base import DuplicateKey, Engine, Session, WriteConflict
from quanyu.engine.capabilities import Capability
from quanyu.engine.statements import Statement, all_statements, builder, statement

__all__ = [
    "Capability",
    "DuplicateKey",
    "Engine",
    "Session",
    "Statement",
    "all_statements",
    "builder",
    "statement",
    "WriteConflict",
]
