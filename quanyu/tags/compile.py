"""Compile rules (``quanyu.tags.rules``) to SQL, as sqlglot syntax trees. Runs nothing.

One query computes a set of rules for every person of a tenant (or the persons staged
in ``tag_scope``) in one pass over each source table:

- ``ev``: one row per person from ``event_facts``, a column per distinct aggregate of
  every rule (``count(*) FILTER (WHERE ...)`` and friends), so thirty tags cost one
  scan of the events, not thirty;
- ``tr``: the traits the rules name, by the tenant's survivorship rule (latest value
  by event time, or the first one) from the traits of identify events;
- ``p``: every person (``id_nodes``), with a flag per ``identifier(...)`` test;
- ``tg``: the current values of the tags the rules refer to (``tag_history``).

Time is seconds since the epoch throughout (``first``/``last``, ``ago``, dates), taken
against the one ``now`` of the computation, so a rule has one answer per run. Every
source carries ``tenant_id = ?`` (bound once per source; :func:`Compiled.params`).
Literal values become sqlglot literals (quoted by sqlglot), never text pasted in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlglot import exp

from quanyu.tags import rules as r
from quanyu.tags.rules import RuleError

#: Value types of tags.
VALUE_TYPES = ("boolean", "enum", "number", "date")
#: Event fields (rules.EVENT_FIELDS) as ``event_facts`` columns.
_COLUMNS = {
    "event": "event",
    "type": "type",
    "name": "name",
    "brand": "brand_id",
    "channel": "channel",
    "source": "source_id",
    "amount": "amount",
    "timestamp": "ts",
}
_NUMERIC_FIELDS = ("amount", "timestamp")
_CMP = {
    "=": exp.EQ,
    "!=": exp.NEQ,
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
}
#: The staged persons an incremental computation is limited to (column profile_id).
SCOPE_TABLE = "tag_scope"

Kind = str  # "num" | "text" | "bool" | "time"


@dataclass(frozen=True)
class TagSpec:
    """A rule tag to compute: its key, value type, rule and allowed values (enum)."""

    key: str
    value_type: str
    rule: r.Node
    allowed: tuple[str, ...] = ()


@dataclass
class Compiled:
    """A compiled query and the number of ``tenant_id = ?`` placeholders it binds."""

    query: exp.Select
    tenant_binds: int

    def params(self, tenant: str) -> list[str]:
        """The bind values: the tenant, once per placeholder."""
        return [tenant] * self.tenant_binds

    def sql(self, dialect: str = "duckdb") -> str:
        """The query's text in a dialect."""
        text: str = self.query.sql(dialect)
        return text


def epoch(value: date | datetime) -> float:
    """Seconds since the epoch of a date (midnight UTC) or a naive-UTC / aware time."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _num(value: float) -> exp.Expression:
    return exp.Literal.number(repr(float(value)) if not float(value).is_integer() else int(value))


def utc(value: datetime) -> datetime:
    """A time as naive UTC, as the database stores it (an aware time is converted)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _ts(value: datetime) -> exp.Expression:
    text = utc(value).isoformat(sep=" ")
    return exp.cast(exp.Literal.string(text), exp.DataType.build("TIMESTAMP"))


def _lit(value: r.Scalar, *, text: bool = False) -> exp.Expression:
    """A literal; ``text`` writes a number as text (3, 12.5) to compare with text."""
    if text and isinstance(value, int | float) and not isinstance(value, bool):
        return exp.Literal.string(_number_text(value))
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Literal.string("true" if value else "false")
    if isinstance(value, int | float):
        return _num(value)
    return exp.Literal.string(value)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _json_path(key: str) -> exp.Expression:
    if '"' in key or "\\" in key:
        raise RuleError(f"key {key!r} has a quote or backslash: rename it in your events")
    return exp.Literal.string(f'$."{key}"')


def _json_text(column: str, key: str) -> exp.Expression:
    return exp.func("json_extract_string", exp.column(column), _json_path(key), dialect="duckdb")


def _as_double(e: exp.Expression) -> exp.Expression:
    return exp.TryCast(this=e, to=exp.DataType.build("DOUBLE"))


def _kind_of_lit(value: object) -> Kind:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, date | datetime):
        return "time"
    return "text"


@dataclass
class _Sources:
    """What the rules of one query need from each source table, by alias."""

    now: datetime
    tag_types: dict[str, str]
    aggs: dict[r.Agg, str] = field(default_factory=dict)
    traits: dict[str, str] = field(default_factory=dict)
    idents: dict[tuple[str, str | None], str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def agg(self, node: r.Agg) -> exp.Expression:
        alias = self.aggs.setdefault(node, f"a{len(self.aggs)}")
        col = exp.column(alias, "ev")
        if node.fn in ("count", "distinct", "sum"):
            return exp.Coalesce(this=col, expressions=[exp.Literal.number(0)])
        return col

    def trait(self, key: str) -> exp.Expression:
        return exp.column(self.traits.setdefault(key, f"t{len(self.traits)}"), "tr")

    def ident(self, type_: str, scope: str | None) -> exp.Expression:
        alias = self.idents.setdefault((type_, scope), f"i{len(self.idents)}")
        return exp.Coalesce(this=exp.column(alias, "p"), expressions=[exp.false()])

    def tag(self, key: str, part: str) -> exp.Expression:
        if key not in self.tag_types:
            raise RuleError(f'tag("{key}") does not exist: create it first, or fix the key')
        alias = self.tags.setdefault(key, f"g{len(self.tags)}")
        return exp.column(f"{alias}_{part}", "tg")


class Compiler:
    """Compiles rules against one ``now`` and the value types of the tenant's tags."""

    def __init__(self, *, now: datetime, tag_types: dict[str, str]) -> None:
        self.src = _Sources(now=utc(now), tag_types=tag_types)

    # -- values ----------------------------------------------------------------------
    def value(self, node: r.Node) -> tuple[exp.Expression, Kind]:
        """A value expression and its kind (num, text, bool, time as epoch seconds)."""
        match node:
            case r.Lit(value=v):
                if isinstance(v, date | datetime):
                    return _num(epoch(v)), "time"
                return _lit(v), _kind_of_lit(v)
            case r.Trait(key=k):
                return self.src.trait(k), "text"
            case r.TagRef(key=k):
                vt = self.src.tag_types.get(k)
                if vt in ("number", "date"):
                    return self.src.tag(k, "num"), "num" if vt == "number" else "time"
                return self.src.tag(k, "value"), "bool" if vt == "boolean" else "text"
            case r.Agg():
                return self.src.agg(node), "time" if node.fn in ("first", "last") else "num"
            case r.Ago(duration=d):
                seconds = r.duration_seconds(d) if d else 0
                return _num(epoch(self.src.now - timedelta(seconds=seconds))), "time"
            case r.Case(whens=whens, default=default):
                case = exp.Case()
                kind: Kind | None = None
                for cond, then in whens:
                    v, k = self.value(then)
                    kind = kind or k
                    case = case.when(self.condition(cond), v)
                if default is not None:
                    v, k = self.value(default)
                    kind = kind or k
                    case = case.else_(v)
                return case, kind or "text"
            case _ if isinstance(node, r.CONDITIONS):
                return self.condition(node), "bool"
        raise RuleError(f"{type(node).__name__} cannot be used as a value here")

    # -- conditions ------------------------------------------------------------------
    def condition(self, node: r.Node) -> exp.Expression:
        """A boolean expression that is never NULL (a missing value makes it false)."""
        match node:
            case r.And(items=items):
                return exp.and_(*(self.condition(i) for i in items))
            case r.Or(items=items):
                return exp.or_(*(self.condition(i) for i in items))
            case r.Not(item=item):
                return exp.not_(exp.paren(self.condition(item)))
            case r.TagRef(key=k):
                return exp.not_(exp.Is(this=self.src.tag(k, "value"), expression=exp.Null()))
            case r.HasIdentifier(type=t, scope=s):
                return self.src.ident(t, s)
            case r.Cmp(left=r.ProfileSet() as ps, op=op, right=r.Lit(value=v)):
                return self._set_test(ps.name, op, (v,))  # type: ignore[arg-type]
            case r.In(left=r.ProfileSet() as ps, values=vs, negate=neg):
                return self._set_test(ps.name, "not in" if neg else "in", vs)
            case r.IsNull(left=r.ProfileSet() as ps, negate=neg):
                return self._set_test(ps.name, "present" if neg else "absent", ())
            case r.Cmp(op=op, left=left, right=right):
                return _false_if_null(self._compare(op, left, right))
            case r.In(left=left, values=values, negate=neg):
                lhs, kind = self.value(left)
                want = _common_kind(values)
                given = [v for v in values if v is not None]  # null matches nothing
                if not given:
                    present = exp.not_(exp.Is(this=lhs, expression=exp.Null()))
                    return present if neg else exp.false()
                lhs = _coerce(lhs, kind, want)
                lits = [_lit(v, text=want == "text") for v in given]
                isin = exp.In(this=lhs, expressions=lits)
                return _false_if_null(exp.not_(isin) if neg else isin)
            case r.IsNull(left=left, negate=neg):
                v, _ = self.value(left)
                null = exp.Is(this=v, expression=exp.Null())
                return exp.not_(null) if neg else null
            case r.Between(left=left, low=low, high=high):
                lo = self._compare(">=", left, low)
                hi = self._compare("<=", left, high)
                return _false_if_null(exp.and_(lo, hi))
        raise RuleError(f"{type(node).__name__} is a value, not a condition: compare it")

    def _compare(self, op: str, left: r.Node, right: r.Node) -> exp.Expression:
        (lv, lk), (rv, rk) = self.value(left), self.value(right)
        if op == "contains":  # substring on text: numbers as written, never re-read
            return exp.func("contains", _as_text(lv, lk), _as_text(rv, rk), dialect="duckdb")
        kind = lk if rk == "text" else rk
        lv, rv = _coerce(lv, lk, kind), _coerce(rv, rk, kind)
        return _CMP[op](this=lv, expression=rv)

    def _set_test(self, name: str, op: str, values: tuple[r.Scalar, ...]) -> exp.Expression:
        field_ = r.EventField(name)
        present = self.src.agg(r.Agg("count", where=(r.EventFilter(field_, "!=", ""),)))
        has_any = exp.GT(this=present, expression=exp.Literal.number(0))
        if op == "present":
            return has_any
        if op == "absent":
            return exp.not_(has_any)
        if op in ("=", "in", "contains"):
            filt = r.EventFilter(field_, "contains" if op == "contains" else "in", values)
            hit = self.src.agg(r.Agg("count", where=(filt,)))
            return exp.GT(this=hit, expression=exp.Literal.number(0))
        if op in ("!=", "not in"):
            hit = self.src.agg(r.Agg("count", where=(r.EventFilter(field_, "in", values),)))
            return exp.and_(has_any, exp.EQ(this=hit, expression=exp.Literal.number(0)))
        raise RuleError(f'{name} is a set of values: use =, !=, in, not in or "is null" on it')

    # -- tags ------------------------------------------------------------------------
    def tag_value(self, spec: TagSpec) -> tuple[exp.Expression, exp.Expression]:
        """(value text, value number) of a tag; a NULL text means the person has no value."""
        if spec.value_type == "boolean":
            cond = self.condition(spec.rule)
            return exp.Case().when(cond, exp.Literal.string("true")), exp.Null()
        v, kind = self.value(spec.rule)
        if spec.value_type in ("number", "date"):
            num = _coerce(v, kind, "num")
            return _num_text(num), num
        text = _as_text(v, kind)
        if spec.allowed:
            allowed = exp.In(this=text, expressions=[exp.Literal.string(a) for a in spec.allowed])
            text = exp.Case().when(allowed, text)
        return text, _as_double(text)


def _false_if_null(e: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=exp.paren(e), expressions=[exp.false()])


def _common_kind(values: tuple[r.Scalar, ...]) -> Kind:
    kinds = {_kind_of_lit(v) for v in values if v is not None}
    return kinds.pop() if len(kinds) == 1 else "text"


def _coerce(e: exp.Expression, kind: Kind, want: Kind) -> exp.Expression:
    """Read a value of ``kind`` as ``want`` for a comparison (traits are text)."""
    if kind == want or want == "text" and kind in ("text", "bool"):
        return e
    if want in ("num", "time") and kind in ("text", "bool"):
        return _as_double(e)
    if want == "bool" and kind == "text":
        return e  # text 'true'/'false' against the literal 'true'/'false'
    if want == "text":
        return _as_text(e, kind)
    return e


def _as_text(e: exp.Expression, kind: Kind) -> exp.Expression:
    """A value as text: numbers as written (3, not 3.0), booleans true/false; NULL stays."""
    return _num_text(e) if kind in ("num", "time") else exp.cast(e, "VARCHAR")


def _num_text(num: exp.Expression) -> exp.Expression:
    """A number's text: whole numbers without a fraction (3, not 3.0)."""
    whole = exp.EQ(this=num, expression=exp.Floor(this=num))
    as_int = exp.cast(exp.cast(num, "BIGINT"), "VARCHAR")
    return exp.Case().when(whole, as_int).else_(exp.cast(num, "VARCHAR"))


def event_field(src: _Sources, f: r.EventField, numeric: bool = False) -> exp.Expression:
    """An event field as an ``event_facts`` expression (properties from the JSON)."""
    if f.name == "properties":
        text = _json_text("properties", f.property or "")
        return _as_double(text) if numeric else text
    if f.name not in _COLUMNS:
        raise RuleError(f"unknown event field {f.name!r}: use one of {', '.join(_COLUMNS)}")
    if f.name == "timestamp":
        return exp.func("epoch", exp.column("ts"), dialect="duckdb")
    return exp.column(_COLUMNS[f.name])
