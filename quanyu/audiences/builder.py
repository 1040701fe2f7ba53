"""Audience rules as groups of condition rows: what a rule builder edits. Pure: no I/O.

A :class:`Group` joins its items with ``and`` or ``or`` and may be negated; an item is a
nested group or a :class:`Row`, one condition of a kind a marketer picks from a list (has
a tag, a trait compared with a value, buys in a brand, an event count in a window …) or,
for anything else, a condition written in the rule language. :func:`to_text` writes a
group as the rule's text form (which :func:`quanyu.tags.parse.parse` reads);
:func:`from_node` turns any parsed rule back into groups and rows, so the text and the
builder can be switched both ways without losing a rule: what has no row of its own
becomes a ``text`` row.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from quanyu.errors import ValidationFailed
from quanyu.tags import parse
from quanyu.tags import rules as r

Kind = Literal["tag", "trait", "brand", "channel", "event", "identifier", "text"]
KINDS: tuple[Kind, ...] = ("tag", "trait", "brand", "channel", "event", "identifier", "text")
#: The operators each kind of row offers.
OPS: dict[str, tuple[str, ...]] = {
    "tag": ("has", "lacks", "=", "!=", ">=", "<=", "in"),
    "trait": ("=", "!=", ">", ">=", "<", "<=", "contains", "in", "not in", "is set", "not set"),
    "brand": ("=", "!="),
    "channel": ("=", "!="),
    "event": (">=", ">", "=", "<", "<="),
    "identifier": ("has", "lacks"),
    "text": ("",),
}
AGGS = ("count", "sum")  # an event row counts events, or adds up their amount
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_KEY = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
_ITEM = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|[^,]+')


@dataclass
class Row:
    """One condition. ``key`` is the tag, trait, event name or identifier type; ``value``
    the value (values separated by commas for ``in``); ``within`` days for events."""

    kind: Kind = "tag"
    key: str = ""
    op: str = ""
    value: str = ""
    within: str = ""
    agg: str = "count"


@dataclass
class Group:
    op: Literal["and", "or"] = "and"
    negate: bool = False
    items: list[Group | Row] = field(default_factory=list)


class RowError(ValidationFailed):
    """A row of the builder is incomplete or wrong; ``path`` says which one."""

    code = "invalid_rule_row"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message, details={"path": path})
        self.path = path


# -- builder → text -------------------------------------------------------------------------
def to_text(group: Group, path: str = "g") -> str:
    """The group as rule text; an empty group is refused (it would match nobody or all).

    Raises:
        RowError: a row lacks what it needs (the path names it, ``g.1.0``).
    """
    if not group.items:
        raise RowError(path, "this group has no conditions: add one, or remove the group")
    alone = len(group.items) == 1  # its parent (or "not") puts the group in parentheses
    parts = [_item_text(item, f"{path}.{i}", alone) for i, item in enumerate(group.items)]
    text = f" {group.op} ".join(parts)
    return f"not ({text})" if group.negate else text


def _item_text(item: Group | Row, path: str, alone: bool) -> str:
    """An item of a group; parenthesised unless it is the group's only item (the canonical
    text the parser gives back drops the parentheses it does not need)."""
    if isinstance(item, Group):
        inner = to_text(item, path)
        return inner if item.negate else f"({inner})"
    text = row_text(item, path)
    return text if alone or item.kind != "text" else f"({text})"


def quote(text: str) -> str:
    """A string literal of the rule language."""
    return json.dumps(text, ensure_ascii=False)


def literal(value: str) -> str:
    """A value as typed: a number, true/false, or else text (quotes force text: "007")."""
    v = value.strip()
    if len(v) >= 2 and v[0] == v[-1] == '"':
        try:
            return quote(str(json.loads(v)))
        except ValueError:
            return quote(v[1:-1])
    if len(v) >= 2 and v[0] == v[-1] == "'":
        return quote(v[1:-1])
    if _NUMBER.fullmatch(v) or v in ("true", "false"):
        return v
    return quote(v)


def _values(row: Row, path: str, several: bool = False) -> list[str]:
    """The row's value, or for ``in`` its values (commas inside quotes do not split)."""
    found = _ITEM.findall(row.value) if several else [row.value]
    values = [literal(v) for v in found if v.strip()]
    if not values:
        raise RowError(path, "give a value (several are separated by commas)")
    return values


def _trait(key: str) -> str:
    return f"traits.{key}" if _KEY.fullmatch(key) else f"traits.{quote(key)}"


def row_text(row: Row, path: str = "g.0") -> str:
    """One row as a condition of the rule language.

    Raises:
        RowError: the row lacks its key, operator or value.
    """
    if row.kind == "text":
        if not row.value.strip():
            raise RowError(path, 'write a condition, such as traits.city = "上海"')
        return row.value.strip()
    if row.kind not in OPS:
        raise RowError(path, f"no kind of condition is called {row.kind!r}")
    key = row.key.strip()
    if not key:
        what = {"brand": "a brand", "channel": "a channel", "event": "an event name"}
        raise RowError(path, f"choose {what.get(row.kind, 'a ' + row.kind)} for this condition")
    op = row.op or OPS[row.kind][0]
    if op not in OPS[row.kind]:
        raise RowError(path, f"{row.kind} conditions take {', '.join(OPS[row.kind])}, not {op!r}")
    if row.kind in ("brand", "channel"):
        return f"{row.kind} {op} {quote(key)}"
    if row.kind == "identifier":
        found = f"identifier({quote(key)})"
        return found if op == "has" else f"not {found}"
    if row.kind == "tag":
        ref = f"tag({quote(key)})"
        if op in ("has", "lacks"):
            return ref if op == "has" else f"not {ref}"
        if op == "in":
            return f"{ref} in ({', '.join(_values(row, path, several=True))})"
        return f"{ref} {op} {_values(row, path)[0]}"
    if row.kind == "trait":
        if op in ("is set", "not set"):
            return f"{_trait(key)} is {'not ' if op == 'is set' else ''}null"
        if op in ("in", "not in"):
            return f"{_trait(key)} {op} ({', '.join(_values(row, path, several=True))})"
        return f"{_trait(key)} {op} {_values(row, path)[0]}"
    return _event_text(row, key, op, path)


def _event_text(row: Row, key: str, op: str, path: str) -> str:
    within = row.within.strip().removesuffix("d")
    if within and not (within.isdigit() and int(within) > 0):
        raise RowError(path, f"the window {row.within!r} is not a whole number of days")
    window = f", within {within}d" if within else ""
    number = row.value.strip() or "1"
    if not _NUMBER.fullmatch(number):
        raise RowError(path, f"compare the {row.agg} with a number, not {number!r}")
    head = "sum(amount, " if row.agg == "sum" else "count("
    return f"{head}event = {quote(key)}{window}) {op} {number}"


# -- rule → builder -------------------------------------------------------------------------
def from_node(node: r.Node) -> Group:
    """Groups and rows that say what ``node`` says (a ``text`` row where no kind fits)."""
    if isinstance(node, r.And | r.Or):
        return Group("and" if isinstance(node, r.And) else "or", False, _items(node.items))
    if isinstance(node, r.Not) and isinstance(node.item, r.And | r.Or):
        inner = from_node(node.item)
        return Group(inner.op, True, inner.items)
    return Group("and", False, _items((node,)))


def _items(nodes: tuple[r.Node, ...]) -> list[Group | Row]:
    out: list[Group | Row] = []
    for n in nodes:
        if isinstance(n, r.And | r.Or) or (
            isinstance(n, r.Not) and isinstance(n.item, r.And | r.Or)
        ):
            out.append(from_node(n))
        else:
            out.append(row_of(n))
    return out


def _shown(value: object) -> str:
    """A literal as typed in a value box (text that would read as a number is quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if literal(value) == quote(value) and "," not in value else quote(value)
    return str(value)


def row_of(node: r.Node) -> Row:
    """One condition as a row, or a ``text`` row when it is not one a row can hold."""
    found = _row_of(node)
    return found if found is not None else Row("text", value=parse.to_text(node))


def _row_of(node: r.Node) -> Row | None:
    if isinstance(node, r.TagRef):
        return Row("tag", node.key, "has")
    if isinstance(node, r.HasIdentifier) and node.scope is None:
        return Row("identifier", node.type, "has")
    if isinstance(node, r.Not) and isinstance(node.item, r.TagRef | r.HasIdentifier):
        inner = _row_of(node.item)
        return Row(inner.kind, inner.key, "lacks") if inner else None
    if isinstance(node, r.IsNull) and isinstance(node.left, r.Trait):
        return Row("trait", node.left.key, "not set" if not node.negate else "is set")
    if isinstance(node, r.In) and isinstance(node.left, r.Trait | r.TagRef):
        kind: Kind = "trait" if isinstance(node.left, r.Trait) else "tag"
        if kind == "tag" and node.negate:
            return None
        shown = ", ".join(_shown(v) for v in node.values)
        return Row(kind, node.left.key, "not in" if node.negate else "in", shown)
    if not isinstance(node, r.Cmp) or not isinstance(node.right, r.Lit):
        return None
    left, value = node.left, node.right.value
    if isinstance(value, str | bool | int | float) and isinstance(left, r.Trait | r.TagRef):
        kind = "trait" if isinstance(left, r.Trait) else "tag"
        if node.op in OPS[kind]:
            return Row(kind, left.key, node.op, _shown(value))
    if isinstance(left, r.ProfileSet) and node.op in ("=", "!=") and isinstance(value, str):
        return Row("brand" if left.name == "brand" else "channel", value, node.op)
    if isinstance(left, r.Agg) and isinstance(value, int | float) and node.op in OPS["event"]:
        return _event_row(left, node.op, value)
    return None


def _event_row(agg: r.Agg, op: str, value: int | float) -> Row | None:
    plain_sum = agg.fn == "sum" and agg.of == r.EventField("amount")
    if not (agg.fn == "count" or plain_sum) or agg.since or agg.until or len(agg.where) != 1:
        return None
    (f,) = agg.where
    if f.field != r.EventField("event") or f.op != "=" or not isinstance(f.value, str):
        return None
    if agg.within is not None and not agg.within.endswith("d"):
        return None
    within = agg.within.removesuffix("d") if agg.within else ""
    return Row("event", f.value, op, str(value), within, agg.fn)


# -- a builder as flat fields (an HTML form) ------------------------------------------------
#: Each item has a path: the root group is ``g``, its items ``g.0``, ``g.1``, theirs
#: ``g.1.0`` …; a field is ``<path>.<name>``: ``type`` (group or row), a group's ``op``
#: and ``not``, a row's ``kind``, ``key``, ``op``, ``value``, ``within`` and ``agg``.
ROW_FIELDS = ("kind", "key", "op", "value", "within", "agg")


def from_fields(fields: dict[str, str], path: str = "g") -> Group:
    """The group a form posted (items in the order of their numbers; gaps are fine)."""
    children: dict[int, str] = {}
    prefix = path + "."
    for name in fields:
        if name.startswith(prefix) and name.endswith(".type"):
            rest = name[len(prefix) : -len(".type")]
            if rest.isdigit():
                children[int(rest)] = prefix + rest
    items: list[Group | Row] = []
    for _, child in sorted(children.items()):
        if fields[child + ".type"] == "group":
            items.append(from_fields(fields, child))
        else:
            row = Row(**{f: fields.get(f"{child}.{f}", "") for f in ROW_FIELDS})  # type: ignore[arg-type]
            row.kind = row.kind if row.kind in KINDS else "text"
            row.agg = row.agg if row.agg in AGGS else "count"
            items.append(row)
    op: Literal["and", "or"] = "or" if fields.get(path + ".op") == "or" else "and"
    return Group(op, fields.get(path + ".not") == "1", items)


def fields_of(group: Group, path: str = "g") -> dict[str, str]:
    """The flat fields of a group (the inverse of :func:`from_fields`)."""
    out = {f"{path}.type": "group", f"{path}.op": group.op}
    if group.negate:
        out[f"{path}.not"] = "1"
    for i, item in enumerate(group.items):
        child = f"{path}.{i}"
        if isinstance(item, Group):
            out |= fields_of(item, child)
        else:
            out[f"{child}.type"] = "row"
            out |= {f"{child}.{f}": str(getattr(item, f)) for f in ROW_FIELDS}
    return out


def find(group: Group, path: str) -> Group | Row:
    """The item at ``path`` (``g`` is the group itself). Raises KeyError."""
    parts = path.split(".")
    if parts[0] != "g":
        raise KeyError(path)
    at: Group | Row = group
    for p in parts[1:]:
        if not isinstance(at, Group) or not p.isdigit() or int(p) >= len(at.items):
            raise KeyError(path)
        at = at.items[int(p)]
    return at


def apply(group: Group, action: str) -> Group:
    """Edit the builder: ``add-row:<group path>``, ``add-group:<group path>`` or
    ``remove:<item path>``. An action on a path that is not there changes nothing (the
    form was edited meanwhile); the root group is never removed."""
    verb, _, path = action.partition(":")
    try:
        target = find(group, path)
    except KeyError:
        return group
    if verb in ("add-row", "add-group") and isinstance(target, Group):
        target.items.append(Row() if verb == "add-row" else Group("or", False, [Row()]))
    elif verb == "remove" and path != "g":
        parent = find(group, path.rsplit(".", 1)[0])
        assert isinstance(parent, Group)
        del parent.items[int(path.rsplit(".", 1)[1])]
    return group
