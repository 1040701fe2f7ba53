"""Expert SQL tags: a SELECT returning (profile_id, value), checked and scoped first.

An expert writes plain SQL over three tables, each one tenant's rows only:

- ``events``: ``profile_id, ts, type, event, name, brand_id, source_id, channel,
  amount, properties, traits`` (the facts tag rules read);
- ``identifiers``: ``profile_id, id_type, scope, masked, source_id, first_seen``;
- ``tags``: current tag values, ``tag_key, profile_id, value, num, valid_from``.

The query is parsed with sqlglot and refused unless it is one read-only SELECT over
those tables (and its own CTEs), calling no function that reads files or settings.
Each table is then replaced by a subquery filtered on the bound tenant, so the query
cannot see another tenant whatever it says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from quanyu.engine import Statement
from quanyu.tags.compile import _num_text
from quanyu.tags.rules import RuleError

_VIEWS = {
    "events": (
        "SELECT profile_id, ts, type, event, name, brand_id, source_id, channel, amount,"
        " properties, traits FROM event_facts WHERE tenant_id = ?"
    ),
    "identifiers": (
        "SELECT profile_id, id_type, scope, masked, source_id, first_seen FROM id_nodes"
        " WHERE tenant_id = ?"
    ),
    "tags": (
        "SELECT tag_key, profile_id, value, num, valid_from FROM tag_history"
        " WHERE tenant_id = ? AND valid_to IS NULL"
    ),
}
_DENIED_PREFIXES = ("read_", "duckdb_", "pragma_", "sniff", "parquet_", "json_execute")
_DENIED = {"glob", "getenv", "current_setting", "query", "query_table", "load", "install",
           "attach", "system", "export_database", "import_database", "copy"}  # fmt: skip
_WRITES = (
    exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Command,
    exp.Merge, exp.Copy, exp.Pragma, exp.Set, exp.Use, exp.Transaction,
)  # fmt: skip


def _parse(sql: str) -> exp.Expression:
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except ParseError as e:
        err = e.errors[0] if e.errors else {}
        raise RuleError(
            f"expert SQL does not parse: {err.get('description', e)}",
            line=err.get("line"),
            column=err.get("col"),
        ) from e
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise RuleError(f"expert SQL must be one SELECT; found {len(trees)} statements")
    tree = trees[0]
    if not isinstance(tree, exp.Select | exp.Union | exp.Intersect | exp.Except):
        raise RuleError(
            f"expert SQL must be one SELECT statement; it reads as {tree.key.upper()}:"
            " start it with SELECT profile_id, value FROM ..."
        )
    return tree


def check(sql: str) -> exp.Expression:
    """Parse and check an expert query; return its tree.

    Raises:
        RuleError: it is not one read-only SELECT over events, identifiers and tags, or
            it calls a function that reaches outside the database.
    """
    tree = _parse(sql)
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise RuleError(f"expert SQL must only read: {node.key.upper()} is not allowed")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in _DENIED or name.startswith(_DENIED_PREFIXES):
                raise RuleError(f"expert SQL may not call {name}(): it reaches outside the data")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise RuleError("expert SQL may only read the tables events, identifiers and tags")
        name = table.name.lower()
        if table.args.get("db") or table.args.get("catalog"):
            raise RuleError(f"table {table.sql()} is not allowed: use events, identifiers, tags")
        if name not in _VIEWS and name not in ctes:
            raise RuleError(
                f"table {table.name!r} does not exist for tags: use events, identifiers or tags"
            )
    selects = tree.selects if isinstance(tree, exp.Select) else tree.left.selects
    if len(selects) != 2:
        raise RuleError(
            f"expert SQL must return two columns, profile_id and value; it returns {len(selects)}"
        )
    return tree


def tag_refs(sql: str) -> set[str]:
    """Tags an expert query reads: literals compared with ``tag_key``."""
    try:
        tree = _parse(sql)
    except RuleError:
        return set()
    refs: set[str] = set()
    for node in tree.find_all(exp.EQ, exp.In):
        col = node.this
        if isinstance(col, exp.Column) and col.name.lower() == "tag_key":
            others = node.expressions if isinstance(node, exp.In) else [node.expression]
            refs |= {o.this for o in others if isinstance(o, exp.Literal) and o.is_string}
    return refs


_NOW = ("now", "get_current_timestamp", "transaction_timestamp")


def _at(tree: exp.Expression, now: datetime) -> None:
    """Read the computation's clock wherever the query asks for the current time, so an
    expert tag agrees with rule tags computed in the same run."""
    stamp = exp.cast(exp.Literal.string(now.strftime("%Y-%m-%d %H:%M:%S.%f")), "TIMESTAMP")
    for node in list(tree.find_all(exp.CurrentTimestamp, exp.CurrentDate, exp.Anonymous)):
        if isinstance(node, exp.CurrentTimestamp):
            node.replace(stamp.copy())
        elif isinstance(node, exp.CurrentDate):
            node.replace(exp.cast(stamp.copy(), "DATE"))
        elif node.name.lower() in _NOW:
            node.replace(stamp.copy())


def statement(
    sql: str,
    *,
    tenant: str,
    key: str,
    value_type: str,
    scoped: bool = False,
    now: datetime | None = None,
) -> tuple[Statement, list[Any]]:
    """The checked query, scoped to the tenant, as rows (tag_key, profile_id, value, num).

    A boolean tag keeps the rows whose value is true; other types keep non-null values.
    With ``now``, the query's current time (``now()``, ``current_timestamp`` …) is it.
    """
    tree = check(sql)
    if now is not None:
        _at(tree, now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now)
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    binds = 0
    for table in list(tree.find_all(exp.Table)):
        name = table.name.lower()
        if name in ctes:
            continue
        view = sqlglot.parse_one(_VIEWS[name], read="duckdb")
        table.replace(view.subquery(table.alias_or_name))
        binds += _VIEWS[name].count("?")
    inner = tree.subquery(
        exp.TableAlias(
            this=exp.to_identifier("x"),
            columns=[exp.to_identifier("profile_id"), exp.to_identifier("value")],
        )
    )
    value = exp.column("value", "x")
    if value_type == "boolean":
        text: exp.Expression = exp.Literal.string("true")
        num: exp.Expression = exp.Null()
        keep: exp.Expression = exp.EQ(this=exp.cast(value, "BOOLEAN"), expression=exp.true())
    elif value_type in ("number", "date"):
        num = exp.cast(value, "DOUBLE")
        text, keep = _num_text(num), exp.not_(exp.Is(this=value, expression=exp.Null()))
    else:
        text = exp.cast(value, "VARCHAR")
        num = exp.TryCast(this=value.copy(), to=exp.DataType.build("DOUBLE"))
        keep = exp.not_(exp.Is(this=value, expression=exp.Null()))
    query = (
        exp.select(
            exp.alias_(exp.Literal.string(key), "tag_key"),
            exp.alias_(exp.cast(exp.column("profile_id", "x"), "BIGINT"), "profile_id"),
            exp.alias_(text, "value"),
            exp.alias_(num, "num"),
        )
        .from_(inner)
        .where(keep)
    )
    if scoped:
        pick = exp.select("profile_id").from_("tag_scope")
        query = query.where(exp.column("profile_id", "x").isin(query=pick))
    return Statement(f"tags.expert.{key}", query.sql("duckdb"), frozenset(), True), [tenant] * binds
