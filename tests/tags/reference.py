"""A slow, plain-Python evaluator of the rule language: the oracle the compiled SQL is
checked against.

Written from the semantics in the docstring of :mod:`quanyu.tags.rules`, not from
``compile.py``: a value is ``None`` (missing), text (``str``), a number (``float``; times
are epoch seconds) or a boolean. A comparison with a missing value is false; a number
against text reads the text as a number (non-numeric text is then missing); a boolean
against text is the text ``true``/``false``.

Where that docstring is silent, this evaluator decides (and the tests hold the SQL to it):
a null in a list or as a filter value matches nothing ("a comparison with null is never
true", as ``jsonform`` says); a list of numbers reads the left side as a number, any
other list compares as text; ``contains`` is substring on the text as written, a number
written without a needless fraction (``3``, ``12.5``), which is also an enum tag's text
of a number.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from quanyu.tags import rules as r
from quanyu.tags.rules import RuleError

Value = str | float | bool | None
_EPOCH = datetime(1970, 1, 1)
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*", re.ASCII)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Fact:
    """One event of a person (``ts`` naive UTC); ``traits`` only on identify events."""

    ts: datetime
    type: str
    event: str | None
    name: str | None
    brand_id: str | None
    source_id: str
    channel: str | None
    amount: float | None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None


@dataclass
class Person:
    """A person as rules see them: events, surviving traits (text), identifiers
    ``(type, scope)`` and current tags ``key -> (value text, number)``."""

    profile_id: int
    events: list[Fact]
    traits: dict[str, str]
    identifiers: set[tuple[str, str]]
    tags: dict[str, tuple[str, float | None]]


def utc(t: date | datetime) -> datetime:
    """A date (midnight) or time as a naive UTC datetime; aware times are converted."""
    if not isinstance(t, datetime):
        return datetime(t.year, t.month, t.day)
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def seconds(t: date | datetime) -> float:
    """Seconds since the epoch (naive means UTC)."""
    return (utc(t) - _EPOCH) / timedelta(seconds=1)


def json_text(v: Any) -> str | None:
    """A JSON value read as text: strings as they are, numbers and booleans as JSON."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return v
    raise TypeError(f"the reference reads no JSON {type(v).__name__} as text")


def as_number(v: Value) -> float | None:
    """A value read as a number: numbers as they are, numeric text parsed, else missing."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, float | int):
        return float(v)
    return float(v) if _NUMBER.fullmatch(v) else None


def as_text(v: Value) -> str | None:
    """A value as text: numbers without a needless fraction (3, not 3.0), true/false."""
    if _is_number(v):
        v = float(v)  # type: ignore[arg-type]
        return str(int(v)) if v.is_integer() else repr(v)
    return _text(v)  # type: ignore[return-value]


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _text(v: Value) -> Value:
    return ("true" if v else "false") if isinstance(v, bool) else v


def surviving_traits(events: list[Fact], rule: dict[str, str]) -> dict[str, str]:
    """Each trait's text from identify events: the latest by time, or the first for keys
    whose rule is ``"first"``. Keys whose value is JSON null are skipped."""
    seen: dict[str, list[tuple[datetime, str]]] = {}
    for e in events:
        for key, raw in (e.traits or {}).items() if e.type == "identify" else ():
            text = json_text(raw)
            if text is not None:
                seen.setdefault(key, []).append((e.ts, text))
    pick = {k: (min if rule.get(k) == "first" else max)(v) for k, v in seen.items()}
    return {k: text for k, (_, text) in pick.items()}


def compare(op: str, a: Value, b: Value) -> bool:
    """``a op b`` by the language's rules; false when either side is missing."""
    if a is None or b is None:
        return False
    if op == "contains":  # on text: a number as it is written (3, 12.5)
        return as_text(b) in as_text(a)  # type: ignore[operator]
    if _is_number(a) or _is_number(b):
        a, b = as_number(a), as_number(b)
        if a is None or b is None:
            return False
    elif isinstance(a, bool) or isinstance(b, bool):
        a, b = _text(a), _text(b)
    if type(a) is not type(b):
        raise ValueError(f"{a!r} {op} {b!r} mixes kinds: no defined meaning")
    return _OPS[op](a, b)


def _membership(left: Value, values: tuple[r.Scalar, ...]) -> bool | None:
    """Whether ``left`` is one of ``values`` (None: left missing after reading). A list of
    numbers reads ``left`` as a number; any other list is compared as text."""
    vals = [v for v in values if v is not None]
    if vals and all(_is_number(v) for v in vals):
        x = as_number(left)
        return None if x is None else x in [float(v) for v in vals]  # type: ignore[arg-type]
    return None if left is None else as_text(left) in [as_text(v) for v in vals]


def evaluate(node: r.Node, person: Person, now: datetime, tag_types: dict[str, str]) -> bool:
    """Whether the condition ``node`` holds for ``person`` at ``now``."""

    def val(n: r.Node) -> Value:
        return value(n, person, now, tag_types)

    def ev(n: r.Node) -> bool:
        return evaluate(n, person, now, tag_types)

    match node:
        case r.And(items=items):
            return all(ev(i) for i in items)
        case r.Or(items=items):
            return any(ev(i) for i in items)
        case r.Not(item=item):
            return not ev(item)
        case r.TagRef(key=k):
            _tag_type(k, tag_types)
            return k in person.tags
        case r.HasIdentifier(type=t, scope=s):
            return any(it == t and (s is None or sc == s) for it, sc in person.identifiers)
        case r.Cmp(left=r.ProfileSet(name=name), op=op, right=r.Lit(value=v)):
            return _set_test(_profile_set(person, name), op, (v,))
        case r.In(left=r.ProfileSet(name=name), values=vs, negate=neg):
            return _set_test(_profile_set(person, name), "not in" if neg else "in", vs)
        case r.IsNull(left=r.ProfileSet(name=name), negate=neg):
            return bool(_profile_set(person, name)) == neg
        case r.Cmp(op=op, left=left, right=right):
            return compare(op, val(left), val(right))
        case r.In(left=left, values=values, negate=neg):
            hit = _membership(val(left), values)
            return False if hit is None else hit != neg
        case r.IsNull(left=left, negate=neg):
            return (val(left) is None) != neg
        case r.Between(left=left, low=low, high=high):
            x = val(left)
            return compare(">=", x, val(low)) and compare("<=", x, val(high))
    raise RuleError(f"{type(node).__name__} is not a condition")


def value(node: r.Node, person: Person, now: datetime, tag_types: dict[str, str]) -> Value:
    """The value of ``node`` for ``person`` at ``now`` (None: missing)."""
    match node:
        case r.Lit(value=v):
            if isinstance(v, date):
                return seconds(v)
            return float(v) if _is_number(v) else v  # type: ignore[arg-type]
        case r.Trait(key=k):
            return person.traits.get(k)
        case r.TagRef(key=k):
            row = person.tags.get(k)
            if _tag_type(k, tag_types) in ("number", "date"):
                return None if row is None else row[1]
            return None if row is None else row[0]
        case r.Agg():
            return aggregate(node, person, now)
        case r.Ago(duration=d):
            return seconds(now) - (r.duration_seconds(d) if d else 0)
        case r.Case(whens=whens, default=default):
            for cond, then in whens:
                if evaluate(cond, person, now, tag_types):
                    return value(then, person, now, tag_types)
            return None if default is None else value(default, person, now, tag_types)
        case _ if isinstance(node, r.CONDITIONS):
            return evaluate(node, person, now, tag_types)
    raise RuleError(f"{type(node).__name__} is not a value")


def _tag_type(key: str, tag_types: dict[str, str]) -> str:
    if key not in tag_types:
        raise RuleError(f"tag {key!r} does not exist")
    return tag_types[key]


def _profile_set(person: Person, name: str) -> set[str]:
    column = {"brand": "brand_id", "channel": "channel"}[name]
    return {v for e in person.events if (v := getattr(e, column)) not in (None, "")}


def _set_test(members: set[str], op: str, values: tuple[r.Scalar, ...]) -> bool:
    wanted = {v for v in values if v is not None}
    if op in ("=", "in"):
        return bool(members & wanted)
    if op == "contains":
        return any(str(as_text(w)) in m for m in members for w in wanted)
    if op in ("!=", "not in"):  # has some value, and none of these
        return bool(members) and not members & wanted
    raise RuleError(f"{op} does not apply to a set")


def aggregate(node: r.Agg, person: Person, now: datetime) -> float | None:
    """An aggregate over the person's events that pass its filters and time window."""
    lo = [utc(now) - timedelta(seconds=r.duration_seconds(node.within))] if node.within else []
    lo += [utc(node.since)] if node.since is not None else []
    hi = utc(node.until) if node.until is not None else None
    chosen = [
        e
        for e in person.events
        if all(e.ts >= t for t in lo)
        and (hi is None or e.ts < hi)
        and all(_passes(f, e) for f in node.where)
    ]
    if node.fn == "count":
        return float(len(chosen))
    if node.fn in ("first", "last"):
        times = [seconds(e.ts) for e in chosen]
        return (min if node.fn == "first" else max)(times) if times else None
    assert node.of is not None
    if node.fn == "distinct":
        return float(len({x for e in chosen if (x := _read(e, node.of)) is not None}))
    nums = [x for e in chosen if (x := _read_number(e, node.of)) is not None]
    if node.fn == "sum":
        return float(sum(nums))
    if not nums:
        return None
    return {"avg": sum(nums) / len(nums), "min": min(nums), "max": max(nums)}[node.fn]


def _read(e: Fact, f: r.EventField) -> str | float | None:
    """An event field as the rules read it: properties as text, amount and time as numbers."""
    if f.name == "properties":
        return json_text((e.properties or {}).get(f.property or ""))
    if f.name == "timestamp":
        return seconds(e.ts)
    column = {"brand": "brand_id", "source": "source_id"}.get(f.name, f.name)
    v: str | float | None = getattr(e, column)
    return v


def _read_number(e: Fact, f: r.EventField) -> float | None:
    if f.name not in ("amount", "timestamp", "properties"):
        raise RuleError(f"{f.name} is not a number")
    return as_number(_read(e, f))


def _passes(f: r.EventFilter, e: Fact) -> bool:
    """Whether event ``e`` passes one filter; a missing field passes no test."""
    values = f.value if isinstance(f.value, tuple) else (f.value,)
    given = [v for v in values if v is not None]
    if f.field.name == "timestamp":
        x: Value = seconds(e.ts)
        vals: list[Value] = [
            seconds(datetime.fromisoformat(v)) if isinstance(v, str) else float(v) for v in given
        ]
    elif f.field.name == "amount" or (
        f.field.name == "properties" and given and all(_is_number(v) for v in given)
    ):
        x, vals = _read_number(e, f.field), [float(v) for v in given]  # type: ignore[arg-type]
    else:  # as text, numbers as written
        x, vals = _read(e, f.field), [as_text(v) for v in given]
    if x is None:
        return False
    if f.op in ("in", "not in"):
        return (x in vals) == (f.op == "in")
    if not vals:
        return False
    if f.op == "contains":
        return compare("contains", x, vals[0])
    return bool(_OPS[f.op](x, vals[0]))


def tag_value(
    value_type: str,
    rule: r.Node,
    allowed: tuple[str, ...],
    person: Person,
    now: datetime,
    tag_types: dict[str, str],
) -> tuple[str | None, float | None]:
    """A rule tag's (value text, number) for a person; (None, None) when it has none."""
    if value_type == "boolean":
        return ("true", None) if evaluate(rule, person, now, tag_types) else (None, None)
    v = value(rule, person, now, tag_types)
    if value_type in ("number", "date"):
        num = as_number(v)
        if num is None:
            return None, None
        return as_text(num), num
    text = as_text(v)
    if text is None or (allowed and text not in allowed):
        return None, None
    assert isinstance(text, str)
    return text, as_number(text)
