"""Assemble the SQL of a computation from compiled rules (``compile.py``). Runs nothing.

:func:`tags_query` gives one row per person with a (value, number) pair per tag;
:func:`persons_query` gives the persons for whom a condition holds (audiences use it
for event conditions no tag precomputes). Both read the sources ``compile.py``
describes, each filtered on the tenant, and optionally only the persons staged in
``tag_scope``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlglot import exp

from quanyu.tags import rules as r
from quanyu.tags.compile import (
    SCOPE_TABLE,
    Compiled,
    Compiler,
    TagSpec,
    _as_double,
    _json_text,
    _lit,
    _num,
    _Sources,
    _ts,
    epoch,
    event_field,
)
from quanyu.tags.rules import RuleError

_TENANT = exp.EQ(this=exp.column("tenant_id"), expression=exp.Placeholder())
#: Sums and averages with compensated (Kahan) summation: a plain float sum depends on
#: the order parallel threads add in, so its last bits change from run to run; a tag
#: value that changes every run closes and reopens history rows, and a threshold
#: (``sum(amount) >= 300``) flips for values on it.
_FLOAT_EXACT = {"sum": "fsum", "avg": "favg"}


def _scoped(select: exp.Select, scoped: bool) -> exp.Select:
    select = select.where(_TENANT.copy())
    if scoped:
        inner = exp.select("profile_id").from_(SCOPE_TABLE)
        select = select.where(exp.column("profile_id").isin(query=inner))
    return select


def _filter(src: _Sources, f: r.EventFilter) -> exp.Expression:
    values = f.value if isinstance(f.value, tuple) else (f.value,)
    given = [v for v in values if v is not None]  # null matches nothing
    numeric = f.field.name in ("amount", "timestamp") or (
        f.field.name == "properties"
        and bool(given)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in given)
    )
    col = event_field(src, f.field, numeric=numeric)
    if not given:
        present = exp.not_(exp.Is(this=col, expression=exp.Null()))
        return present if f.op == "not in" else exp.false()
    lits = [
        _time_lit(v) if f.field.name == "timestamp" else _lit(v, text=not numeric) for v in given
    ]
    if f.op in ("in", "not in"):
        test: exp.Expression = exp.In(this=col, expressions=lits)
        return exp.not_(test) if f.op == "not in" else test
    if f.op == "contains":
        return exp.func("contains", col, lits[0], dialect="duckdb")
    ops = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
    return ops[f.op](this=col, expression=lits[0])


def _time_lit(value: r.Scalar) -> exp.Expression:
    if isinstance(value, str):
        try:
            return _num(epoch(datetime.fromisoformat(value)))
        except ValueError as e:
            raise RuleError(f"timestamp {value!r} is not an ISO date such as 2024-06-01") from e
    return _lit(value)


def agg_condition(src: _Sources, node: r.Agg) -> exp.Expression | None:
    """The FILTER condition of an aggregate: its event filters and time window."""
    parts = [_filter(src, f) for f in node.where]
    if node.within:
        start = src.now - timedelta(seconds=r.duration_seconds(node.within))
        parts.append(exp.GTE(this=exp.column("ts"), expression=_ts(start)))
    if node.since is not None:
        parts.append(exp.GTE(this=exp.column("ts"), expression=_ts(_as_datetime(node.since))))
    if node.until is not None:
        parts.append(exp.LT(this=exp.column("ts"), expression=_ts(_as_datetime(node.until))))
    return exp.and_(*parts) if parts else None


def _as_datetime(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)


def agg_expression(src: _Sources, node: r.Agg) -> exp.Expression:
    """The aggregate over ``event_facts`` rows of one person."""
    fn = node.fn
    if fn == "count":
        e: exp.Expression = exp.Count(this=exp.Star())
    elif fn in ("first", "last"):
        e = (exp.Min if fn == "first" else exp.Max)(this=exp.column("ts"))
    else:
        if node.of is None:
            raise RuleError(f"{fn}(...) needs a field first, such as {fn}(amount, ...)")
        if fn == "distinct":
            e = exp.Count(this=exp.Distinct(expressions=[event_field(src, node.of)]))
        else:
            if node.of.name not in ("amount", "properties"):
                raise RuleError(f"{fn}({node.of.name}) needs a number: use amount or properties.x")
            arg = event_field(src, node.of, numeric=True)
            if fn in _FLOAT_EXACT:
                e = exp.Anonymous(this=_FLOAT_EXACT[fn], expressions=[arg])
            else:
                e = (exp.Min if fn == "min" else exp.Max)(this=arg)
    cond = agg_condition(src, node)
    if cond is not None:
        e = exp.Filter(this=e, expression=exp.Where(this=cond))
    if fn in ("first", "last"):
        e = exp.func("epoch", e, dialect="duckdb")
    return e


def _trait_expression(key: str, rule: str) -> exp.Expression:
    text = _json_text("traits", key)
    pick = exp.ArgMin if rule == "first" else exp.ArgMax
    agg = pick(this=text, expression=exp.column("ts"))
    has = exp.not_(exp.Is(this=text.copy(), expression=exp.Null()))
    return exp.Filter(this=agg, expression=exp.Where(this=has))


def _from_sources(
    compiler: Compiler, scoped: bool, trait_rules: dict[str, str]
) -> tuple[exp.Select, int]:
    """``FROM p LEFT JOIN ev, tr, tg`` for what the compiled rules used."""
    src = compiler.src
    binds = 1
    people = exp.select("profile_id").from_("id_nodes")
    for (type_, scope), alias in src.idents.items():
        test = exp.EQ(this=exp.column("id_type"), expression=exp.Literal.string(type_))
        if scope is not None:
            at = exp.EQ(this=exp.column("scope"), expression=exp.Literal.string(scope))
            test = exp.and_(test, at)
        people = people.select(exp.alias_(exp.func("bool_or", test, dialect="duckdb"), alias))
    people = _scoped(people, scoped).group_by("profile_id")
    query = exp.select().from_(people.subquery("p"))
    joins: list[tuple[str, exp.Select]] = []
    if src.aggs:
        ev = exp.select("profile_id").from_("event_facts")
        for node, alias in src.aggs.items():
            ev = ev.select(exp.alias_(agg_expression(src, node), alias))
        joins.append(("ev", _scoped(ev, scoped).group_by("profile_id")))
    if src.traits:
        tr = exp.select("profile_id").from_("event_facts")
        for key, alias in src.traits.items():
            tr = tr.select(exp.alias_(_trait_expression(key, trait_rules.get(key, "")), alias))
        tr = _scoped(tr, scoped).where(
            exp.not_(exp.Is(this=exp.column("traits"), expression=exp.Null()))
        )
        joins.append(("tr", tr.group_by("profile_id")))
    if src.tags:
        tg = exp.select("profile_id").from_("tag_history")
        for key, alias in src.tags.items():
            is_key = exp.Where(this=exp.EQ(this=exp.column("tag_key"), expression=_lit(key)))
            for part in ("value", "num"):
                agg = exp.Filter(this=exp.Max(this=exp.column(part)), expression=is_key.copy())
                tg = tg.select(exp.alias_(agg, f"{alias}_{part}"))
        tg = _scoped(tg, scoped).where(exp.Is(this=exp.column("valid_to"), expression=exp.Null()))
        tg = tg.where(exp.In(this=exp.column("tag_key"), expressions=[_lit(k) for k in src.tags]))
        joins.append(("tg", tg.group_by("profile_id")))
    for alias, sub in joins:
        on = exp.EQ(this=exp.column("profile_id", alias), expression=exp.column("profile_id", "p"))
        query = query.join(sub.subquery(alias), on=on, join_type="LEFT")
        binds += 1
    return query, binds


def tags_query(
    specs: list[TagSpec],
    *,
    now: datetime,
    tag_types: dict[str, str],
    scoped: bool = False,
    trait_rules: dict[str, str] | None = None,
) -> Compiled:
    """One row per person: ``profile_id`` and, for the i-th tag, ``v{i}`` (its value as
    text; NULL for no value) and ``n{i}`` (as a number)."""
    compiler = Compiler(now=now, tag_types=tag_types)
    outputs = []
    for i, spec in enumerate(specs):
        text, num = compiler.tag_value(spec)
        outputs += [exp.alias_(text, f"v{i}"), exp.alias_(num, f"n{i}")]
    query, binds = _from_sources(compiler, scoped, trait_rules or {})
    return Compiled(query.select(exp.column("profile_id", "p"), *outputs), binds)


def persons_query(
    rule: r.Node,
    *,
    now: datetime,
    tag_types: dict[str, str],
    scoped: bool = False,
    trait_rules: dict[str, str] | None = None,
) -> Compiled:
    """The ``profile_id`` of every person for whom the condition ``rule`` holds."""
    compiler = Compiler(now=now, tag_types=tag_types)
    cond = compiler.condition(rule)
    query, binds = _from_sources(compiler, scoped, trait_rules or {})
    return Compiled(query.select(exp.column("profile_id", "p")).where(cond), binds)


def event_only(rule: r.Node) -> bool:
    """Whether a condition reads only events (aggregates, brand and channel sets)."""
    leaves = (r.Trait, r.TagRef, r.HasIdentifier)
    return r.uses_events(rule) and not any(isinstance(n, leaves) for n in r.walk(rule))


def events_query(
    rule: r.Node, *, now: datetime, tag_types: dict[str, str]
) -> tuple[Compiled, Compiled]:
    """A condition that reads only events, over ``event_facts`` alone.

    Returns:
        ``(hits, empty)``: ``hits`` gives ``profile_id, hit`` for each person with an
        event that any of the rule's aggregates counts; ``empty`` gives one row, the
        condition's truth for a person with no such event (``count(...) < 2`` holds
        for them). Reading only the events the aggregates filter for, it answers
        without touching the persons table.
    """
    compiler = Compiler(now=now, tag_types=tag_types)
    cond = compiler.condition(rule)
    src = compiler.src
    if src.traits or src.tags or src.idents:
        raise RuleError("events_query takes a condition over events only")
    ev = exp.select("profile_id").from_("event_facts")
    filters = []
    for node, alias in src.aggs.items():
        ev = ev.select(exp.alias_(agg_expression(src, node), alias))
        filters.append(agg_condition(src, node))
    ev = _scoped(ev, False)
    if filters and all(f is not None for f in filters):
        ev = ev.where(exp.or_(*(exp.paren(f) for f in filters if f is not None)))
    hits = exp.select(exp.column("profile_id", "ev"), exp.alias_(cond, "hit"))
    hits = hits.from_(ev.group_by("profile_id").subquery("ev"))
    nulls = exp.select(*(exp.alias_(exp.Null(), a) for a in src.aggs.values()))
    empty = exp.select(exp.alias_(cond.copy(), "hit")).from_(nulls.subquery("ev"))
    return Compiled(hits, 1), Compiled(empty, 0)


def traits_query(keys: list[str], *, trait_rules: dict[str, str] | None = None) -> Compiled:
    """One row per person with identify traits: ``profile_id`` and ``t{i}``, the
    surviving text value of the i-th key (NULL when the person never had it)."""
    rules = trait_rules or {}
    query = exp.select("profile_id").from_("event_facts")
    for i, key in enumerate(keys):
        query = query.select(exp.alias_(_trait_expression(key, rules.get(key, "")), f"t{i}"))
    query = _scoped(query, False).where(
        exp.not_(exp.Is(this=exp.column("traits"), expression=exp.Null()))
    )
    return Compiled(query.group_by("profile_id"), 1)


__all__ = [
    "tags_query",
    "persons_query",
    "traits_query",
    "agg_expression",
    "agg_condition",
    "_as_double",
]
