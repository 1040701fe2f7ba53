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

from pyroaring import BitMap

from quanyu.audiences.bitmaps import ProfileIndex
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
                keep: list[r.Node] = [i for i in items if not isinstance(i, r.Not)]
                drop: list[r.Node] = [i.item for i in items if isinstance(i, r.Not)]
                # smallest first: with a part that holds nearly everyone (a brand) this
                # costs a third of intersecting in the rule's order
                parts = sorted((self.run(k) for k in keep), key=len)
                acc = parts[0] if parts else self.index.universe.copy()
                for part in parts[1:]:
                    acc &= part
                for d in drop:
                    acc -= self.run(d)
                return acc
            case r.Or(items=items):
                return BitMap.union(*(self.run(i) for i in items))
            case r.Not(item=item):
                return self.index.universe - self.run(item)
        if event_only(node):
            self.plan.append("events")
            return self.events(node) & self.index.universe
        self.plan.append("general")
        return self.general(node) & self.index.universe

    # -- what the index answers --------------------------------------------------------
    def _indexed(self, node: r.Node) -> BitMap | None:
        ix = self.index
        match node:
            case r.TagRef():
                col = self._present(node)
                return ix.present(col) if col else None
            case r.HasIdentifier(type=t, scope=s) if ix.has(IDENT):
                return ix.equals(IDENT, t if s is None else f"{t}@{s}")
            case r.Cmp(op=op, left=r.Lit() as lit, right=right) if op in _FLIP:
                return self._compare(right, _FLIP[op], lit.value)
            case r.Cmp(op=op, left=left, right=r.Lit(value=v)):
                return self._compare(left, op, v)
            case r.In(left=left, values=values, negate=neg):
                return self._in(left, values, neg)
            case r.IsNull(left=left, negate=neg):
                col = self._present(left)
                if col is None:
                    return None
                present = ix.present(col)
                return present if neg else ix.universe - present
            case r.Between(left=left, low=r.Lit(value=lo), high=r.Lit(value=hi)):
                col, a, b = self._column(left, numeric=True), _number(lo), _number(hi)
                if col is None or a is None or b is None:
                    return None
                return ix.between(col, a, b)
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

    def _compare(self, left: r.Node, op: str, value: object) -> BitMap | None:
        ix = self.index
        number = _number(value)
        if isinstance(left, r.ProfileSet):
            if op in ("=", "contains") and isinstance(value, str) and self.index.has(left.name):
                if op == "=":
                    return ix.equals(left.name, value)
                return ix.contains(left.name, value)
            return None
        if number is not None and op != "contains":
            col = self._column(left, numeric=True)
            return ix.compare(col, op, number) if col else None
        if value is None or op not in ("=", "!=", "contains"):
            return None
        col = self._column(left, numeric=False)
        if col is None:
            return None
        if op == "contains":
            return ix.contains(col, _text(value))  # type: ignore[arg-type]
        return ix.compare(col, op, _text(value))  # type: ignore[arg-type]

    def _in(self, left: r.Node, values: tuple[r.Scalar, ...], negate: bool) -> BitMap | None:
        ix = self.index
        numbers = [_number(v) for v in values]
        if all(n is not None for n in numbers) and not isinstance(left, r.ProfileSet):
            col = self._column(left, numeric=True)
            if col is None:
                return None
            hit = BitMap.union(*(ix.compare(col, "=", n) for n in numbers))
        elif all(isinstance(v, str | bool) for v in values):
            col = self._column(left, numeric=False)
            if col is None:
                return None
            hit = ix.isin(col, [_text(v) for v in values])
        else:
            return None
        return ix.present(col) - hit if negate else hit
