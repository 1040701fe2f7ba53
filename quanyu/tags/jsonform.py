"""JSON form of the rule language, and the structural check every stored rule passes.

The JSON form is what the API takes and stores; :func:`to_json` and :func:`from_json`
convert both ways, and ``from_json(to_json(n)) == n`` for every valid tree. Each node is a
JSON object named by one key (``{"cmp": ">=", "left": ..., "right": ...}``); a literal is
a bare JSON scalar, a date ``{"date": "2024-06-01"}``. :func:`check` says whether a tree
makes sense: conditions where conditions go, values where values go, aggregate fields
right. Its errors name the place in JSON terms (``rule JSON at and/1/cmp: ...``).

The small ``*_problem`` helpers are shared with the text parser, which reports the same
mistakes with a line and a column instead of a JSON path.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable
from datetime import date, datetime, time
from typing import Any, Literal, NoReturn, cast

from quanyu.tags import rules as r

Want = Literal["condition", "value", "any"]
Path = tuple[str | int, ...]
_Fail = Callable[..., NoReturn]
#: Nodes that give a value (a TagRef is both a value and a condition).
VALUES = (r.Lit, r.Trait, r.TagRef, r.Agg, r.Ago, r.Case)
#: Aggregates that take the field they aggregate (``of``); the others take none.
NEEDS_FIELD = ("sum", "avg", "min", "max", "distinct")
FILTER_OPS = (*r.OPERATORS, "in", "not in")
_SET_OPS = ("=", "!=", "contains")
_VERB = {
    "sum": "add up", "avg": "average", "min": "take the smallest of",
    "max": "take the largest of", "distinct": "count the distinct values of",
    "count": "counts matching events", "first": "gives the time of the first matching event",
    "last": "gives the time of the last matching event",
}  # fmt: skip
#: How deep a rule may nest (and, or, not, case, parentheses); deeper is surely a mistake.
MAX_DEPTH = 100
# Each JSON object is named by one of these keys; the tuple lists the other keys it takes.
_SHAPES: dict[str, tuple[str, ...]] = {
    "date": (), "trait": (), "set": (), "tag": (), "ago": (), "now": (), "and": (), "or": (),
    "not": (), "agg": ("of", "where", "within", "since", "until"), "case": ("else",),
    "cmp": ("left", "right"), "in": ("left", "negate"), "is_null": ("negate",),
    "between": ("low", "high"), "identifier": ("scope",),
}  # fmt: skip


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean count?)"`` for the closest of ``choices``, or ``""`` when none is."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def iso_date(text: str) -> date | datetime:
    """A date (``2024-06-01``) or, when the text has a time, a datetime, from ISO text.

    Raises:
        ValueError: the text is not an ISO date or date-time.
    """
    if any(c in text for c in "Tt :"):
        return datetime.fromisoformat(text)
    return date.fromisoformat(text)


def describe(node: object) -> str:
    """A short name of a node for messages: ``traits.city``, ``count(...)``, ``the "and"``."""
    if isinstance(node, r.Lit):
        v = node.value
        if isinstance(v, date):
            return f'date("{v.isoformat()}")'
        return json.dumps(v, ensure_ascii=False, default=repr)
    if isinstance(node, r.Trait):
        return f"traits.{node.key}"
    if isinstance(node, r.TagRef):
        return f'tag("{node.key}")'
    if isinstance(node, r.ProfileSet):
        return node.name
    if isinstance(node, r.Agg):
        return f"{node.fn}(...)"
    if isinstance(node, r.Ago):
        return "now()" if node.duration is None else f"ago({node.duration})"
    if isinstance(node, r.HasIdentifier):
        return f'identifier("{node.type}")'
    words = {r.Case: "case ... end", r.Cmp: "a comparison", r.In: 'the "in" test',
             r.Not: 'the "not"', r.IsNull: 'the "is null" test', r.Between: 'the "between" test',
             r.And: 'the "and"', r.Or: 'the "or"'}  # fmt: skip
    return words.get(type(node), repr(node))


def misuse(node: object, want: Want, *, set_ok: bool = False) -> str | None:
    """Why ``node`` cannot stand where a ``want`` is needed, or None when it can.

    ``set_ok`` allows ``brand``/``channel``: the left side of a comparison, ``in`` and ``is null``.
    """
    if isinstance(node, r.ProfileSet):
        if set_ok:
            return None
        return (
            f"{node.name} is the set of {node.name}s a person has events in; test it with"
            f' {node.name} = "x" or {node.name} in ("x", "y")'
        )
    cond = isinstance(node, (*r.CONDITIONS, r.TagRef))
    value = isinstance(node, VALUES)
    if not cond and not value:
        return f"{node!r} is not a rule node"
    if want == "condition" and not cond:
        d = describe(node)
        if isinstance(node, r.Lit):
            return (
                f'{d} is a value, not a condition; write a condition such as traits.city = "上海"'
            )
        return f"{d} is a value, not a condition; compare it, as in {d} > 1 or {d} is not null"
    if want == "value" and not value:
        return (
            f"{describe(node)} is a condition (true or false) where a value is needed;"
            " to turn a condition into a value write case when ... then 1 else 0 end"
        )
    return None


def cmp_problem(op: str, left: r.Node, right: r.Node) -> str | None:
    """What is wrong with ``left op right`` beside the kinds of its sides, or None."""
    if isinstance(left, r.ProfileSet) and (op not in _SET_OPS or not isinstance(right, r.Lit)):
        s = left.name
        return f'{s} is a set: test it with {s} = "x", {s} != "x", {s} contains "x" or {s} in (...)'
    for side, other in ((left, right), (right, left)):
        if isinstance(side, r.Lit) and side.value is None:
            d = describe(other)
            return f"a comparison with null is never true; write {d} is null or {d} is not null"
    return None


EMPTY_IN = 'the list after "in" is empty; give at least one value, as in ("上海", "杭州")'


def agg_problem(fn: str, of: r.EventField | None) -> str | None:
    """Whether aggregate ``fn`` wrongly lacks or has a field to aggregate."""
    example = "properties.sku" if fn == "distinct" else "amount"
    if fn in NEEDS_FIELD and of is None:
        return (
            f"{fn} needs the event field to {_VERB[fn]} first, as in"
            f' {fn}({example}, event = "Order Completed")'
        )
    if fn not in NEEDS_FIELD and fn in _VERB and of is not None:
        return (
            f"{fn} takes no field: it {_VERB[fn]}; filter events as in"
            f' {fn}(event = "Order Completed"), or add up a field with sum(amount)'
        )
    return None


def window_problem(since: date | None, until: date | None) -> str | None:
    """Whether an aggregate's time window ``since``..``until`` is empty or incomparable."""
    if since is None or until is None:
        return None
    a, b = (d if isinstance(d, datetime) else datetime.combine(d, time()) for d in (since, until))
    if (a.utcoffset() is None) != (b.utcoffset() is None):
        return "the start and end of the time window must both have a time zone, or neither"
    if a >= b:
        return (
            f"the time window is empty: it starts at {since.isoformat()} and ends (exclusive)"
            f" at {until.isoformat()}; put the earlier date first"
        )
    return None


def field_problem(field: object) -> str | None:
    """Whether ``field`` is not a valid event field (one of EVENT_FIELDS or ``properties.k``)."""
    if not isinstance(field, r.EventField):
        return f"expected an event field, found {field!r}"
    if field.name == "properties":
        ok = isinstance(field.property, str) and field.property
        return None if ok else "properties needs a key, as in properties.sku"
    if field.property is not None:
        return f"only properties takes a key; {field.name} has none"
    if field.name not in r.EVENT_FIELDS:
        return (
            f'unknown event field "{field.name}"{did_you_mean(field.name, r.EVENT_FIELDS)};'
            f" event fields are {', '.join(r.EVENT_FIELDS)} and properties.<key>"
        )
    return None


def to_json(node: r.Node) -> dict[str, Any] | r.Scalar:
    """The JSON form of a rule tree (see the module docstring); ``json.dumps`` takes it."""
    if isinstance(node, r.Lit):
        v = node.value
        return {"date": v.isoformat()} if isinstance(v, date) else v
    if isinstance(node, r.Trait):
        return {"trait": node.key}
    if isinstance(node, r.ProfileSet):
        return {"set": node.name}
    if isinstance(node, r.TagRef):
        return {"tag": node.key}
    if isinstance(node, r.Ago):
        return {"now": True} if node.duration is None else {"ago": node.duration}
    if isinstance(node, r.HasIdentifier):
        return _drop({"identifier": node.type, "scope": node.scope})
    if isinstance(node, (r.And, r.Or)):
        return {"and" if isinstance(node, r.And) else "or": [to_json(i) for i in node.items]}
    if isinstance(node, r.Not):
        return {"not": to_json(node.item)}
    if isinstance(node, r.Cmp):
        return {"cmp": node.op, "left": to_json(node.left), "right": to_json(node.right)}
    if isinstance(node, r.In):
        out = {"in": list(node.values), "left": to_json(node.left)}
        return out | ({"negate": True} if node.negate else {})
    if isinstance(node, r.IsNull):
        return {"is_null": to_json(node.left)} | ({"negate": True} if node.negate else {})
    if isinstance(node, r.Between):
        return {"between": to_json(node.left), "low": to_json(node.low), "high": to_json(node.high)}
    if isinstance(node, r.Case):
        whens = [{"when": to_json(c), "then": to_json(v)} for c, v in node.whens]
        rest = {} if node.default is None else {"else": to_json(node.default)}
        return {"case": whens} | rest
    if isinstance(node, r.Agg):
        where = [
            {"field": _field_json(f.field), "op": f.op,
             "value": list(f.value) if isinstance(f.value, tuple) else f.value}
            for f in node.where
        ]  # fmt: skip
        return _drop({
            "agg": node.fn, "of": node.of and _field_json(node.of), "where": where or None,
            "within": node.within, "since": node.since and node.since.isoformat(),
            "until": node.until and node.until.isoformat(),
        })  # fmt: skip
    raise r.RuleError(f"{node!r} is not a rule node")


def from_json(obj: Any, *, want: Want = "any") -> r.Node:
    """A rule tree from its JSON form (as ``json.loads`` gives it), checked with :func:`check`.

    Raises:
        r.RuleError: the JSON is not a valid rule; the message names the JSON path.
    """
    node = _node(obj, ())
    _check(node, want, (), "rule JSON")
    return node


def check(node: r.Node, *, want: Want = "any") -> None:
    """Check that a tree makes sense; ``want`` is what its top must be.

    ``"condition"``: true or false (one of rules.CONDITIONS, or a TagRef); ``"value"``: a
    r.Lit, r.Trait, r.TagRef, r.Agg, r.Ago or r.Case; ``"any"``: either. Inside, and/or/not and case
    take conditions, comparisons take values, aggregates have their field when needed.

    Raises:
        r.RuleError: the first problem found, with its place as a JSON path.
    """
    _check(node, want, (), "rule")


def _drop(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _field_json(f: r.EventField) -> str:
    return f"properties.{f.property}" if f.name == "properties" else f.name


def _fail(where: str, path: Path, message: str) -> NoReturn:
    at = f" at {'/'.join(str(p) for p in path)}" if path else ""
    raise r.RuleError(f"{where}{at}: {message}")


def _jfail(path: Path, message: str) -> NoReturn:
    _fail("rule JSON", path, message)


def _str(v: Any, path: Path) -> str:
    if not isinstance(v, str):
        _jfail(path, f"expected a string, found {json.dumps(v, default=repr)}")
    return v


def _list(v: Any, path: Path) -> list[Any]:
    if not isinstance(v, list):
        _jfail(path, f"expected a list, found {json.dumps(v, default=repr)}")
    return v


def _need(obj: dict[str, Any], key: str, path: Path) -> Any:
    if key not in obj:
        _jfail(path, f'missing "{key}"')
    return obj[key]


def _date(v: Any, path: Path) -> date:
    text = _str(v, path)
    try:
        return iso_date(text)
    except ValueError:
        _jfail(path, f'"{text}" is not an ISO date; write "2024-06-01" or "2024-06-01T12:00:00"')


def _scalar(v: Any, path: Path) -> r.Scalar:
    if v is None or isinstance(v, (str, int, float)):
        return v
    _jfail(path, "expected a single value: text, a number, true, false or null")


def _field(v: Any, path: Path) -> r.EventField:
    text = _str(v, path)
    name, dot, key = text.partition(".")
    return r.EventField(name, key) if dot and name == "properties" else r.EventField(text)


def _node(obj: Any, path: Path) -> r.Node:
    if len(path) > 2 * MAX_DEPTH:
        _jfail(path[:3], f"the rule nests more than {MAX_DEPTH} levels deep")
    if obj is None or isinstance(obj, (str, int, float)):
        return r.Lit(obj)
    if not isinstance(obj, dict):
        found = "a list" if isinstance(obj, list) else type(obj).__name__
        _jfail(path, f"expected a rule object or a single value, found {found}")
    kinds = [k for k in obj if k in _SHAPES]
    if len(kinds) != 1:
        keys = ", ".join(f'"{k}"' for k in obj) or "none"
        _jfail(path, f"a rule object has exactly one of {', '.join(_SHAPES)}; its keys: {keys}")
    kind = kinds[0]
    for k in obj:
        if k != kind and k not in _SHAPES[kind]:
            takes = ", ".join((kind, *_SHAPES[kind]))
            _jfail((*path, k), f'unknown key "{k}" in a "{kind}" object; it takes {takes}')
    v, at = obj[kind], (*path, kind)
    if kind in ("date", "trait", "set", "tag", "ago"):
        s = _str(v, at)
        if kind == "date":
            return r.Lit(_date(s, at))
        return (
            r.Trait(s)
            if kind == "trait"
            else r.ProfileSet(s)
            if kind == "set"
            else (r.TagRef(s) if kind == "tag" else r.Ago(s))
        )
    if kind == "now":
        if v is not True:
            _jfail(at, 'write "now": true')
        return r.Ago(None)
    if kind in ("and", "or"):
        items = tuple(_node(x, (*at, i)) for i, x in enumerate(_list(v, at)))
        return r.And(items) if kind == "and" else r.Or(items)
    if kind == "not":
        return r.Not(_node(v, at))
    if kind in ("in", "is_null"):
        negate = obj.get("negate") or False
        if not isinstance(negate, bool):
            _jfail((*path, "negate"), "expected true or false")
        if kind == "is_null":
            return r.IsNull(_node(v, at), negate)
        values = tuple(_scalar(x, (*at, i)) for i, x in enumerate(_list(v, at)))
        return r.In(_node(_need(obj, "left", path), (*path, "left")), values, negate)
    if kind == "cmp":
        sides = [_node(_need(obj, k, path), (*path, k)) for k in ("left", "right")]
        return r.Cmp(cast(r.Operator, _str(v, at)), sides[0], sides[1])
    if kind == "between":
        low, high = (_node(_need(obj, k, path), (*path, k)) for k in ("low", "high"))
        return r.Between(_node(v, at), low, high)
    if kind == "identifier":
        scope = obj.get("scope")
        scope = None if scope is None else _str(scope, (*path, "scope"))
        return r.HasIdentifier(_str(v, at), scope)
    if kind == "case":
        whens = []
        for i, w in enumerate(_list(v, at)):
            if not isinstance(w, dict) or set(w) != {"when", "then"}:
                _jfail((*at, i), 'each case item is {"when": condition, "then": value}')
            whens.append((_node(w["when"], (*at, i, "when")), _node(w["then"], (*at, i, "then"))))
        default = _node(obj["else"], (*path, "else")) if "else" in obj else None
        return r.Case(tuple(whens), default)
    return _agg(obj, path)


def _agg(obj: dict[str, Any], path: Path) -> r.Agg:
    fn = _str(obj["agg"], (*path, "agg"))
    got = {k: obj.get(k) for k in ("of", "within", "since", "until")}
    of = None if got["of"] is None else _field(got["of"], (*path, "of"))
    where = []
    raw_where = obj.get("where")
    for i, f in enumerate([] if raw_where is None else _list(raw_where, (*path, "where"))):
        at = (*path, "where", i)
        if not isinstance(f, dict) or set(f) != {"field", "op", "value"}:
            _jfail(at, 'each filter is {"field": "event", "op": "=", "value": "Order Completed"}')
        raw = f["value"]
        value: r.Scalar | tuple[r.Scalar, ...] = (
            tuple(_scalar(x, (*at, "value", j)) for j, x in enumerate(raw))
            if isinstance(raw, list)
            else _scalar(raw, (*at, "value"))
        )
        op = _str(f["op"], (*at, "op"))
        where.append(r.EventFilter(_field(f["field"], (*at, "field")), cast(r.Operator, op), value))
    within = None if got["within"] is None else _str(got["within"], (*path, "within"))
    since, until = (
        None if got[k] is None else _date(got[k], (*path, k)) for k in ("since", "until")
    )
    return r.Agg(cast(r.Aggregate, fn), of, tuple(where), within, since, until)


def _value_problem(v: object, *, dates: bool) -> str | None:
    if v is None or isinstance(v, (str, int)):
        return None
    if isinstance(v, float):
        return None if math.isfinite(v) else f"{v} is not a finite number"
    if dates and isinstance(v, date):
        return None
    return f"{v!r} is not a value; use text, a number, true, false or null"


def _check(n: object, want: Want, path: Path, where: str, *, set_ok: bool = False) -> None:
    def fail(message: str, *more: str | int) -> NoReturn:
        _fail(where, (*path, *more), message)

    if problem := misuse(n, want, set_ok=set_ok):
        fail(problem)
    if isinstance(n, r.Lit) and (problem := _value_problem(n.value, dates=True)):
        fail(problem)
    if isinstance(n, (r.Trait, r.TagRef)) and not (isinstance(n.key, str) and n.key):
        fail("the key is empty", "trait" if isinstance(n, r.Trait) else "tag")
    if isinstance(n, r.ProfileSet) and n.name not in r.PROFILE_SETS:
        fail(f'unknown set "{n.name}"; use one of {", ".join(r.PROFILE_SETS)}', "set")
    if isinstance(n, r.Ago) and n.duration is not None:
        _check_duration(n.duration, fail, "ago")
    if isinstance(n, r.HasIdentifier):
        if not (isinstance(n.type, str) and n.type):
            fail("the identifier type is empty", "identifier")
        if n.scope is not None and not (isinstance(n.scope, str) and n.scope):
            fail("the scope is empty; leave it out for any scope", "scope")
    if isinstance(n, r.Agg):
        _check_agg(n, fail)
    if isinstance(n, r.Case):
        if not (isinstance(n.whens, tuple) and n.whens):
            fail("case needs at least one when ... then ...", "case")
        for i, pair in enumerate(n.whens):
            _check(pair[0], "condition", (*path, "case", i, "when"), where)
            _check(pair[1], "value", (*path, "case", i, "then"), where)
        if n.default is not None:
            _check(n.default, "value", (*path, "else"), where)
    if isinstance(n, (r.And, r.Or)):
        key = "and" if isinstance(n, r.And) else "or"
        if not isinstance(n.items, tuple) or len(n.items) < 2:
            fail(f"{key} needs at least two conditions", key)
        for i, item in enumerate(n.items):
            _check(item, "condition", (*path, key, i), where)
    if isinstance(n, r.Not):
        _check(n.item, "condition", (*path, "not"), where)
    if isinstance(n, r.Cmp):
        if n.op not in r.OPERATORS:
            fail(f'unknown operator "{n.op}"; use one of {" ".join(r.OPERATORS)}', "cmp")
        _check(n.left, "value", (*path, "left"), where, set_ok=True)
        _check(n.right, "value", (*path, "right"), where)
        if problem := cmp_problem(n.op, n.left, n.right):
            fail(problem, "cmp")
    if isinstance(n, r.In):
        _check(n.left, "value", (*path, "left"), where, set_ok=True)
        if not isinstance(n.values, tuple):
            fail("expected a tuple of values", "in")
        for i, v in enumerate(n.values):
            if problem := _value_problem(v, dates=False):
                fail(problem, "in", i)
        if not n.values:
            fail(EMPTY_IN, "in")
    if isinstance(n, (r.In, r.IsNull)) and not isinstance(n.negate, bool):
        fail("negate is true or false", "negate")
    if isinstance(n, r.IsNull):
        _check(n.left, "value", (*path, "is_null"), where, set_ok=True)
    if isinstance(n, r.Between):
        for key, part in (("between", n.left), ("low", n.low), ("high", n.high)):
            _check(part, "value", (*path, key), where)


def _check_duration(text: object, fail: _Fail, *at: str) -> None:
    try:
        r.duration_seconds(text if isinstance(text, str) else repr(text))
    except r.RuleError as e:
        fail(e.message, *at)


def _check_agg(n: r.Agg, fail: _Fail) -> None:
    if n.fn not in r.AGGREGATES:
        fail(f'unknown aggregate "{n.fn}"{did_you_mean(n.fn, r.AGGREGATES)}', "agg")
    if problem := agg_problem(n.fn, n.of):
        fail(problem, "agg")
    if n.of is not None and (problem := field_problem(n.of)):
        fail(problem, "of")
    for i, f in enumerate(n.where if isinstance(n.where, tuple) else (None,)):
        if not isinstance(f, r.EventFilter):
            fail("expected an event filter", "where", i)
        if problem := field_problem(f.field):
            fail(problem, "where", i, "field")
        if f.op not in FILTER_OPS:
            fail(
                f'unknown operator "{f.op}"; use one of {" ".join(r.OPERATORS)}, in, not in',
                "where",
                i,
                "op",
            )
        many = f.op in ("in", "not in")
        if many != isinstance(f.value, tuple) or (many and not f.value):
            want = "a non-empty list of values" if many else "a single value"
            fail(f'"{f.op}" takes {want}', "where", i, "value")
        for v in f.value if isinstance(f.value, tuple) else (f.value,):
            if problem := _value_problem(v, dates=False):
                fail(problem, "where", i, "value")
    if n.within is not None:
        _check_duration(n.within, fail, "within")
    for key, d in (("since", n.since), ("until", n.until)):
        if d is not None and not isinstance(d, date):
            fail(f"expected a date, found {d!r}", key)
    if problem := window_problem(n.since, n.until):
        fail(problem, "until")
