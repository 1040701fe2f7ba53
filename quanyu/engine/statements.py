"""A registry of every SQL statement the capabilities run.

Each capability's ``sql.py`` declares its fixed statements with :func:`statement`
and its builders with :func:`builder` (plus example arguments). The registry lets
one test transpile every statement to Spark SQL with sqlglot and check each
tenant-scoped statement filters on the tenant, so the door to a Spark backend
stays open from the first line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quanyu.engine.capabilities import Capability


@dataclass(frozen=True)
class Statement:
    """One SQL statement in DuckDB dialect with ``?`` placeholders.

    ``requires`` lists engine capabilities the statement relies on beyond portable
    SQL; an engine lacking one must provide its own primitive for that job.
    ``tenant_scoped`` says the statement reads or writes tenant data and must
    filter (or set) ``tenant_id`` from a bound parameter.
    """

    name: str
    sql: str
    requires: frozenset[Capability] = field(default_factory=frozenset)
    tenant_scoped: bool = True


_STATEMENTS: dict[str, Statement] = {}
_BUILDERS: list[Callable[[], Statement]] = []


def statement(
    name: str,
    sql: str,
    *,
    requires: tuple[Capability, ...] = (),
    tenant_scoped: bool = True,
) -> Statement:
    """Declare a fixed statement and register it under ``name``."""
    if name in _STATEMENTS and _STATEMENTS[name].sql != sql:
        raise ValueError(f"SQL statement {name!r} is declared twice with different text")
    stmt = Statement(name, sql.strip(), frozenset(requires), tenant_scoped)
    _STATEMENTS[name] = stmt
    return stmt


def builder(example: Callable[[], Statement]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a SQL builder with a zero-argument example call for the registry tests."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _BUILDERS.append(example)
        return fn

    return register


def all_statements() -> list[Statement]:
    """Every declared statement plus one example from each builder."""
    return [*_STATEMENTS.values(), *(example() for example in _BUILDERS)]
