"""The rule language of tags and audiences: its syntax tree and JSON form. Pure: no I/O.

A rule is an expression over one person (a OneID profile). Text form (``parse.py``)::

    count(event = "Order Completed", within 90d) >= 2
      and traits.city in ("上海", "杭州") and not tag("churned")

The same rule as JSON (what the API stores and takes), via :func:`to_json` / :func:`from_json`::

    {"and": [{"cmp": ">=", "left": {"agg": "count", "where": [...], "within": "90d"},
              "right": 2}, ...]}

Semantics, which the SQL compiler (``compile.py``) and the reference evaluator of the
tests both follow:

- A condition is true or false, never unknown: a comparison with a missing value
  (a trait the person lacks, ``avg`` over no events) is false, so ``not traits.city =
  "上海"`` holds for a person without a city.
- ``count`` and ``distinct`` over no events are 0, ``sum`` is 0; ``avg``, ``min``,
  ``max``, ``first`` and ``last`` over no events are missing.
- ``first``/``last`` give the time of the first/last matching event; compare them with
  ``ago(30d)``, ``date("2024-06-01")`` or ``now()``.
- ``brand`` and ``channel`` are the sets of brands and channels (source kinds) a person
  has events in; ``brand = "x"`` and ``brand in (...)`` test membership.
- ``traits.k`` is the person's surviving trait; compared with a number it is read as a
  number (a non-numeric trait is then missing), with a string as text, with
  ``true``/``false`` as a boolean.
- ``tag("k")`` alone is true when the person has tag ``k`` (any value but false);
  ``tag("k") = "gold"`` or ``tag("k") >= 3`` compares its value.
- ``identifier("openid", "wx_app")`` is true when the person has such an identifier
  (the scope is optional).
- ``case when C then V ... else V end`` gives the value of the first true ``C``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, Literal

from quanyu.errors import InvalidRequest

#: Aggregates over a person's events. ``distinct`` counts distinct values of ``of``.
AGGREGATES = ("count", "sum", "avg", "min", "max", "distinct", "first", "last")
Aggregate = Literal["count", "sum", "avg", "min", "max", "distinct", "first", "last"]
#: Comparison operators (``contains`` is substring on text).
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "contains")
Operator = Literal["=", "!=", "<", "<=", ">", ">=", "contains"]
#: Event columns an aggregate may filter on or aggregate, beside ``properties.<key>``.
#: ``amount`` is the event's money figure: ``properties.revenue``, else ``total``, else
#: ``value`` (Segment's e-commerce spec); ``channel`` is the source's kind.
EVENT_FIELDS = ("event", "type", "name", "brand", "channel", "source", "amount", "timestamp")
#: Profile-level sets.
PROFILE_SETS = ("brand", "channel")
#: Units of a duration: days and hours.
UNITS = {"d": 86400, "h": 3600}

Scalar = str | int | float | bool | None


class RuleError(InvalidRequest):
    """A rule does not parse or does not make sense; the message says where and why."""

    code = "invalid_rule"

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(where + message, details={"line": line, "column": column})
        self.line = line
        self.column = column


def duration_seconds(text: str) -> int:
    """Seconds in a duration such as ``90d`` or ``12h``.

    Raises:
        RuleError: the text is not a positive whole number followed by ``d`` or ``h``.
    """
    unit = text[-1:]
    if unit not in UNITS or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise RuleError(
            f"duration {text!r} is not valid: write a positive whole number of days or hours,"
            ' such as "90d" or "12h"'
        )
    return int(text[:-1]) * UNITS[unit]


# -- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Lit:
    """A literal: text, number, boolean, or a date/time (``date("2024-06-01")``)."""

    value: Scalar | date | datetime


@dataclass(frozen=True)
class Trait:
    """``traits.<key>``: the person's surviving trait value."""

    key: str


@dataclass(frozen=True)
class ProfileSet:
    """``brand`` or ``channel``: the set of brands or channels the person has events in."""

    name: str


@dataclass(frozen=True)
class TagRef:
    """``tag("key")``: the person's value of another tag."""

    key: str


@dataclass(frozen=True)
class EventField:
    """A column of an event inside an aggregate: one of EVENT_FIELDS or ``properties.k``."""

    name: str
    property: str | None = None  # set when name == "properties"


@dataclass(frozen=True)
class EventFilter:
    """One condition on events inside an aggregate: ``event = "X"``, ``brand in (...)``."""

    field: EventField
    op: Operator | Literal["in", "not in"]
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True)
class Agg:
    """An aggregate over the person's events that pass ``where`` and the time window.

    ``within`` is a duration back from now (``"90d"``); ``since``/``until`` bound event
    time (``until`` exclusive). ``of`` is the aggregated field (not for ``count``,
    ``first``, ``last``).
    """

    fn: Aggregate
    of: EventField | None = None
    where: tuple[EventFilter, ...] = ()
    within: str | None = None
    since: date | datetime | None = None
    until: date | datetime | None = None


@dataclass(frozen=True)
class Ago:
    """``ago(30d)``: now minus a duration; ``now()`` is ``Ago(None)``."""

    duration: str | None


@dataclass(frozen=True)
class Case:
    """``case when C then V ... else V end``: the value of the first true condition."""

    whens: tuple[tuple[Node, Node], ...]
    default: Node | None = None


# -- conditions -----------------------------------------------------------------------


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class Cmp:
    """``left op right``."""

    op: Operator
    left: Node
    right: Node


@dataclass(frozen=True)
class In:
    """``left in (v, ...)``; ``negate`` for ``not in``. False when ``left`` is missing."""

    left: Node
    values: tuple[Scalar, ...]
    negate: bool = False


@dataclass(frozen=True)
class IsNull:
    """``left is null`` / ``left is not null``."""

    left: Node
    negate: bool = False


@dataclass(frozen=True)
class Between:
    """``left between low and high`` (both inclusive)."""

    left: Node
    low: Node
    high: Node


@dataclass(frozen=True)
class HasIdentifier:
    """``identifier("type")`` or ``identifier("type", "scope")``."""

    type: str
    scope: str | None = None


Node = (
    Lit
    | Trait
    | ProfileSet
    | TagRef
    | Agg
    | Ago
    | Case
    | And
    | Or
    | Not
    | Cmp
    | In
    | IsNull
    | Between
    | HasIdentifier
)
CONDITIONS = (And, Or, Not, Cmp, In, IsNull, Between, HasIdentifier)


def walk(node: Node | EventField | EventFilter) -> Iterator[Node | EventField | EventFilter]:
    """Every node of a tree, depth first, the node itself first."""
    yield node
    for f in fields(node):
        value = getattr(node, f.name)
        for child in _children(value):
            yield from walk(child)


def _children(value: Any) -> Iterator[Node | EventField | EventFilter]:
    if isinstance(value, tuple):
        for v in value:
            yield from _children(v)
    elif isinstance(value, _NODE_TYPES):
        yield value


def tag_refs(node: Node) -> set[str]:
    """Keys of the tags a rule refers to."""
    return {n.key for n in walk(node) if isinstance(n, TagRef)}


def uses_events(node: Node) -> bool:
    """Whether a rule reads events (an aggregate or a brand/channel set)."""
    return any(isinstance(n, (Agg, ProfileSet)) for n in walk(node))


def uses_time(node: Node) -> bool:
    """Whether a rule's answer depends on the clock (``within``, ``ago``, ``now``)."""
    return any(
        isinstance(n, Ago) or (isinstance(n, Agg) and n.within is not None) for n in walk(node)
    )


_NODE_TYPES = (
    Lit, Trait, ProfileSet, TagRef, Agg, Ago, Case, And, Or, Not, Cmp, In, IsNull, Between,
    HasIdentifier, EventField, EventFilter,
)  # fmt: skip
