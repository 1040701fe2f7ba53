"""Evaluate an audience rule into a set of persons (a roaring bitmap).

The rule language is the tags' (``quanyu.tags.rules``). What the bitmap index
(``index.py``) holds — tags, indexed traits, identifiers, brands and channels — is
answered there in milliseconds; a part of the rule that reads events (an aggregate
no tag precomputes) is answered by one DuckDB query over the events it filters for
(``quanyu.tags.query.events_query``); anything else falls back to the general
per-person query. The answer is the same either way: the property tests of the
tags compiler pin down the semantics both follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pyroaring import BitMap

from quanyu.audiences.bitmaps import Lazy, ProfileIndex, Stored
from quanyu.tags import rules as r
from quanyu.tags.compile import epoch
from quanyu.tags.query import event_only

_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
#: Index column names.
TAG, TAG_NUM, TRAIT, TRAIT_NUM, IDENT = "tag:", "tag_num:", "trait:", "trait_num:", "identifier"


def _text(value: r.Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, date | datetime):
        return epoch(value)
    return None


@dataclass
class Evaluator:
    """Answers rules from ``index``; ``events`` and ``general`` answer what it cannot.

    ``events(node)`` takes a condition over events only; ``general(node)`` any condition.
    ``plan`` records how each part was answered ("index", "events", "general").
    """

    index: ProfileIndex
    tag_types: dict[str, str]
    events: Callable[[r.Node], BitMap]
    general: Callable[[r.Node], BitMap]
    plan: list[str] = field(default_factory=list)

    def run(self, node: r.Node) -> BitMap:
        """The persons for whom ``node`` holds."""
        found = self._indexed(node)
        if found is not None:
            self.plan.append("index")
            return found
        match node:
            case r.And(items=items):
                return self._and(items)
            case r.Or(items=items):
                return BitMap.union(*(self.run(i) for i in items))
            case r.Not(item=item):
                return self.index.universe - self.run(item)
        if event_only(node):
            self.plan.append("events")
            return self.events(node) & self.index.universe
        self.plan.append("general")
        return self.general(node) & self.index.universe

    def _and(self, items: tuple[r.Node, ...]) -> BitMap:
        """A conjunction from its smallest part up, without building the parts the index
        can name (:class:`~quanyu.audiences.bitmaps.Lazy`): each is intersected with what
        is left, which at 10M profiles costs a fraction of building a tag's or a
        brand's bitmap, or a numeric range's, first."""
        parts: list[Lazy | BitMap] = []
        for item in items:
            if isinstance(item, r.Not):
                continue
            lazy = self._lazy(item)
            if lazy is not None:
                self.plan.append("index")
            parts.append(lazy if lazy is not None else self.run(item))
        parts.sort(key=lambda p: len(p) if isinstance(p, BitMap) else p.size)
        if not parts:
            return self._drop(items, self.index.universe.copy())
        first, rest = parts[0], parts[1:]
        if rest and isinstance(first, Stored) and len(first.bitmaps) == 1:
            acc = first.bitmaps[0]  # the index's own, only read: each step makes a new one
        else:
            acc = first if isinstance(first, BitMap) else first.build()
        for part in rest:
            acc = part.within(acc) if isinstance(part, Lazy) else acc & part
        return self._drop(items, acc)

    def _drop(self, items: tuple[r.Node, ...], acc: BitMap) -> BitMap:
        """``acc`` (a bitmap of the caller's) less the conjunction's negated parts."""
        for item in items:
            if isinstance(item, r.Not) and acc:
                lazy = self._lazy(item.item)
                if lazy is not None:
                    self.plan.append("index")
                acc -= lazy.within(acc) if lazy is not None else self.run(item.item)
        return acc

    def _lazy(self, node: r.Node) -> Lazy | None:
        """The part of a conjunction the index names without building it, if any."""
        ix = self.index
        match node:
            case r.TagRef():
                col = self._present(node)
                return ix.lazy_present(col) if col else None
            case r.HasIdentifier(type=t, scope=s) if ix.has(IDENT):
                return ix.lazy_isin(IDENT, [t if s is None else f"{t}@{s}"])
            case r.Cmp(op=op, left=r.Lit() as lit, right=right) if op in _FLIP:
                target = self._cmp_target(right, _FLIP[op], lit.value)
            case r.Cmp(op=op, left=left, right=r.Lit(value=v)):
                target = self._cmp_target(left, op, v)
            case r.In(left=left, values=values, negate=False):
                found = self._in_target(left, values)
                if found is None or found[1]:
                    return None  # numbers: a union of ranges, built as before
                return ix.lazy_isin(found[0], found[2])
            case r.IsNull(left=left, negate=True):
                col = self._present(left)
                return ix.lazy_present(col) if col else None
            case r.Between(left=left, low=r.Lit(value=lo), high=r.Lit(value=hi)):
                col, a, b = self._column(left, numeric=True), _number(lo), _number(hi)
                if col is None or a is None or b is None:
                    return None
                return ix.lazy_between(col, a, b)
            case _:
                return None
        if target is None or target[1] == "contains":
            return None
        return ix.lazy_compare(*target)  # type: ignore[arg-type]

    # -- what the index answers --------------------------------------------------------
    def _indexed(self, node: r.Node) -> BitMap | None:
        lazy = self._lazy(node)
        if lazy is not None:
            return lazy.build()
        ix = self.index
        match node:  # what the index answers only by building it
            case r.Cmp(op=op, left=r.Lit() as lit, right=right) if op in _FLIP:
                return self._compare(right, _FLIP[op], lit.value)
            case r.Cmp(op=op, left=left, right=r.Lit(value=v)):
                return self._compare(left, op, v)
            case r.In(left=left, values=values, negate=neg):
                return self._in(left, values, neg)
            case r.IsNull(left=left, negate=False):
                col = self._present(left)
                return None if col is None else ix.universe - ix.present(col)
        return None

    def _column(self, node: r.Node, *, numeric: bool) -> str | None:
        """The index column of a trait, tag or set, if indexed."""
        match node:
            case r.Trait(key=k):
                col = (TRAIT_NUM if numeric else TRAIT) + k
            case r.TagRef(key=k):
                num = self.tag_types.get(k) in ("number", "date")
                if numeric != num:
                    return None  # number tags are indexed as numbers only: text tests go to SQL
                col = (TAG_NUM if numeric else TAG) + k
            case r.ProfileSet(name=name):
                col = name
            case _:
                return None
        return col if self.index.has(col) else None

    def _present(self, node: r.Node) -> str | None:
        """The index column whose present set is "``node`` has a value", if indexed."""
        numeric = isinstance(node, r.TagRef) and self.tag_types.get(node.key) in ("number", "date")
        return self._column(node, numeric=numeric)

    def _cmp_target(self, left: r.Node, op: str, value: object) -> tuple[str, str, object] | None:
        """(index column, operator, value) that answer ``left op value``, if indexed."""
        number = _number(value)
        if isinstance(left, r.ProfileSet):
            if op in ("=", "contains") and isinstance(value, str) and self.index.has(left.name):
                return left.name, op, value
            return None
        if number is not None and op != "contains":
            col = self._column(left, numeric=True)
            return (col, op, number) if col else None
        if value is None or op not in ("=", "!=", "contains"):
            return None
        col = self._column(left, numeric=False)
        return (col, op, _text(value)) if col else None  # type: ignore[arg-type]

    def _compare(self, left: r.Node, op: str, value: object) -> BitMap | None:
        target = self._cmp_target(left, op, value)
        if target is None:
            return None
        col, op, v = target
        if op == "contains":
            return self.index.contains(col, v)  # type: ignore[arg-type]
        return self.index.compare(col, op, v)  # type: ignore[arg-type]

    def _in_target(
        self, left: r.Node, values: tuple[r.Scalar, ...]
    ) -> tuple[str, bool, list[Any]] | None:
        """(index column, numeric?, values) that answer ``left in values``, if indexed."""
        numbers = [_number(v) for v in values]
        if all(n is not None for n in numbers) and not isinstance(left, r.ProfileSet):
            col = self._column(left, numeric=True)
            return (col, True, numbers) if col else None
        if all(isinstance(v, str | bool) for v in values):
            col = self._column(left, numeric=False)
            return (col, False, [_text(v) for v in values]) if col else None
        return None

    def _in(self, left: r.Node, values: tuple[r.Scalar, ...], negate: bool) -> BitMap | None:
        ix = self.index
        target = self._in_target(left, values)
        if target is None:
            return None
        col, numeric, vals = target
        if numeric:
            hit = BitMap.union(*(ix.compare(col, "=", n) for n in vals))
        else:
            hit = ix.isin(col, vals)
        return ix.present(col) - hit if negate else hit
