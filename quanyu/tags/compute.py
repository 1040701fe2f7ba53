"""Compute tags: every person of a tenant (full) or the persons whose facts changed
(incremental), and keep each tag's history.

A computation first folds new events into facts (``facts.fold``), then computes the
tags layer by layer: a tag that refers to other tags comes in a later layer than them,
so it reads their new values. Each layer is one query (``query.tags_query``: one scan
of the events for all its tags); its values are compared with the open history rows:
changed ones are closed and new ones opened, in one transaction per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from sqlglot import exp

from quanyu.engine import Session, Statement
from quanyu.errors import Conflict
from quanyu.ids import utcnow
from quanyu.tags import expert, facts
from quanyu.tags import rules as r
from quanyu.tags import sql as q
from quanyu.tags.compile import Compiled, TagSpec
from quanyu.tags.query import tags_query


@dataclass(frozen=True)
class Definition:
    """What computation needs of a tag."""

    key: str
    value_type: str
    rule: r.Node | None
    sql: str | None
    allowed: tuple[str, ...] = ()

    def refs(self) -> set[str]:
        """Tags this one reads."""
        if self.rule is not None:
            return r.tag_refs(self.rule)
        return expert.tag_refs(self.sql or "")


def layers(defs: Sequence[Definition], known: set[str]) -> list[list[Definition]]:
    """Tags in dependency order: each layer reads only tags of earlier layers (or tags
    not being computed now).

    Raises:
        Conflict: the tags refer to each other in a cycle; the message names it.
    """
    todo = {d.key: d for d in defs}
    done: set[str] = set()
    out: list[list[Definition]] = []
    while todo:
        ready = [d for d in todo.values() if not (d.refs() & set(todo)) - {d.key}]
        if not ready or any(d.key in d.refs() for d in ready):
            raise Conflict(f"tags refer to each other in a cycle: {cycle(todo)}; break it")
        out.append(sorted(ready, key=lambda d: d.key))
        for d in ready:
            done.add(d.key)
            del todo[d.key]
    return out


def cycle(defs: dict[str, Definition]) -> str:
    """One cycle among ``defs`` as text: ``a → b → a``."""
    for start in sorted(defs):
        path, seen, node = [start], {start}, start
        while True:
            nxt = sorted(defs[node].refs() & set(defs))
            if not nxt:
                break
            node = nxt[0]
            path.append(node)
            if node in seen:
                return " → ".join(path[path.index(node) :])
            seen.add(node)
    return ", ".join(sorted(defs))


def _unpivot(compiled: Compiled, keys: list[str]) -> Statement:
    """Long rows (tag_key, profile_id, value, num) of a layer query's wide row."""
    parts = []
    for i, key in enumerate(keys):
        part = (
            exp.select(
                exp.alias_(exp.Literal.string(key), "tag_key"),
                "profile_id",
                exp.alias_(exp.column(f"v{i}"), "value"),
                exp.alias_(exp.column(f"n{i}"), "num"),
            )
            .from_("layer")
            .where(exp.not_(exp.Is(this=exp.column(f"v{i}"), expression=exp.Null())))
        )
        parts.append(part)
    union: exp.Expression = parts[0]
    for p in parts[1:]:
        union = exp.union(union, p, distinct=False)
    query = exp.select("*").from_(union.subquery("u")).with_("layer", compiled.query)
    return Statement("tags.layer", query.sql("duckdb"), frozenset(), True)


def _values(
    layer: list[Definition],
    *,
    tenant: str,
    now: datetime,
    tag_types: dict[str, str],
    trait_rules: dict[str, str],
    scoped: bool,
) -> tuple[Statement, list[Any]]:
    """One query for every new value of a layer: (tag_key, profile_id, value, num)."""
    parts: list[tuple[str, list[Any]]] = []
    rule_tags = [d for d in layer if d.rule is not None]
    if rule_tags:
        specs = [TagSpec(d.key, d.value_type, d.rule, d.allowed) for d in rule_tags]  # type: ignore[arg-type]
        compiled = tags_query(
            specs, now=now, tag_types=tag_types, scoped=scoped, trait_rules=trait_rules
        )
        parts.append((_unpivot(compiled, [d.key for d in rule_tags]).sql, compiled.params(tenant)))
    for d in layer:
        if d.sql is not None:
            stmt, params = expert.statement(
                d.sql, tenant=tenant, key=d.key, value_type=d.value_type, scoped=scoped, now=now
            )
            parts.append((stmt.sql, params))
    union = " UNION ALL ".join(
        f"SELECT * FROM ({sql}) AS part{i}" for i, (sql, _) in enumerate(parts)
    )
    typed = (
        "SELECT CAST(tag_key AS VARCHAR) AS tag_key, CAST(profile_id AS BIGINT) AS profile_id,"
        f" CAST(value AS VARCHAR) AS value, CAST(num AS DOUBLE) AS num FROM ({union}) AS v"
    )
    return Statement("tags.layer_values", typed, frozenset(), True), [
        p for _, params in parts for p in params
    ]


def compute(
    db: Session,
    defs: Sequence[Definition],
    *,
    tenant: str,
    tag_types: dict[str, str],
    trait_rules: dict[str, str] | None = None,
    incremental: bool = False,
    now: datetime | None = None,
) -> tuple[int, int, int, int]:
    """Compute ``defs`` for a tenant's persons and record what changed.

    Returns:
        (run id, persons computed, values added, values removed).
    """
    now = now or utcnow()
    fold = facts.fold(db, tenant=tenant)
    run_id = facts.next_run(db, tenant=tenant)
    keys = sorted(d.key for d in defs)
    mode = "incremental" if incremental else "full"
    db.execute(q.INSERT_RUN, [tenant, run_id, mode, orjson.dumps(keys).decode(), now])
    scope = fold.persons if incremental else None
    added = removed = 0
    persons = len(scope) if scope is not None else 0
    try:
        if scope is not None and not len(scope):
            plan: list[list[Definition]] = []
        else:
            plan = layers(defs, set(tag_types))
        if plan and scope is None:
            persons = int(db.execute(q.COUNT_PERSONS, [tenant])[0][0])
        for layer in plan:
            a, d = _layer(
                db,
                layer,
                tenant=tenant,
                now=now,
                tag_types=tag_types,
                trait_rules=trait_rules or {},
                scope=scope,
                run_id=run_id,
            )
            added, removed = added + a, removed + d
    except Exception as e:
        db.execute(
            q.FINISH_RUN, [utcnow(), persons, added, removed, "failed", str(e), tenant, run_id]
        )
        raise
    db.execute(q.FINISH_RUN, [utcnow(), persons, added, removed, "done", None, tenant, run_id])
    if keys:
        db.with_table("tag_keys", pa.table({"key": keys}), q.SET_COMPUTED, [now, tenant])
    return run_id, persons, added, removed


def _layer(
    db: Session,
    layer: list[Definition],
    *,
    tenant: str,
    now: datetime,
    tag_types: dict[str, str],
    trait_rules: dict[str, str],
    scope: np.ndarray | None,
    run_id: int,
) -> tuple[int, int]:
    scoped = scope is not None
    if scoped:
        db.register("tag_scope", pa.table({"profile_id": pa.array(scope, pa.int64())}))
    try:
        stmt, params = _values(
            layer,
            tenant=tenant,
            now=now,
            tag_types=tag_types,
            trait_rules=trait_rules,
            scoped=scoped,
        )
        # the new values stay in the engine: at millions of persons they are ~10^8 rows
        db.stage("tag_new", stmt, params)
        db.register("tag_keys", pa.table({"key": [d.key for d in layer]}))
        with db.transaction():
            close = q.CLOSE_CHANGED_SCOPED if scoped else q.CLOSE_CHANGED
            gone = db.execute(close, [now, run_id, tenant])
            came = db.execute(q.OPEN_NEW, [tenant, now, run_id, tenant])
        db.unstage("tag_new")
        db.unregister("tag_keys")
    finally:
        if scoped:
            db.unregister("tag_scope")
    return int(came[0][0]) if came else 0, int(gone[0][0]) if gone else 0
