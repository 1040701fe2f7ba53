"""Trait survivorship: which of a person's many trait values the profile shows. Pure: no I/O.

A person's traits arrive many times, from many sources: the mini-program says one
birthday, the POS another. Each trait key has a rule (``TraitRule``):

- ``latest`` (the default): the value of the most recent observation by event time;
- ``first``: the value of the earliest observation;
- ``most_frequent``: the value observed most often; ties go to the value seen last;
- ``source_priority``: ``sources`` ranks source kinds (channels such as ``pos``) or
  source ids; the best-ranked source that has a value wins, ties go to the latest.
  Sources the list does not name rank below every named one, so they still fill a
  trait no named source has.

Ties in time are broken by source id and then the value's JSON text, so the result
does not depend on the order observations are given in. A ``null`` value says
nothing: it neither wins nor clears a trait.

Brand view: keys in ``TraitRules.brand_keys`` are brand-scoped and kept per brand,
from events of that brand's sources (an observation without a brand has no brand
to go to and is left out). A brand sees its own brand-scoped traits plus the group
traits the tenant shares with brands (``shared_with_brands``; ``None`` shares all).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, get_args

import orjson

from quanyu.errors import ValidationFailed

RuleName = Literal["latest", "first", "most_frequent", "source_priority"]
RULES: tuple[str, ...] = get_args(RuleName)


class Observation(NamedTuple):
    """One trait value one event carried."""

    key: str
    value: Any
    source_id: str
    source_kind: str | None
    brand_id: str | None
    timestamp: datetime


@dataclass(frozen=True)
class Trait:
    """A surviving trait value, the source and time it came from, and the rule that chose it."""

    value: Any
    source_id: str
    at: datetime
    rule: RuleName


@dataclass(frozen=True)
class TraitView:
    """What one viewer sees: ``traits`` plus, in the group view, brand-scoped traits per brand."""

    traits: dict[str, Trait]
    by_brand: dict[str, dict[str, Trait]]


def _invalid(where: str, value: object, fix: str) -> ValidationFailed:
    return ValidationFailed(f"trait rules: {where}={value!r} is invalid; {fix}")


def _keys(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise _invalid(where, value, "use a list of non-empty strings")
    return tuple(value)


@dataclass(frozen=True)
class TraitRule:
    """How one trait key survives; ``sources`` ranks sources for ``source_priority`` only."""

    rule: RuleName = "latest"
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.sources, list):  # a list from JSON keeps the rule hashable as a tuple
            object.__setattr__(self, "sources", tuple(self.sources))

    def check(self, where: str) -> None:
        """Raise ValidationFailed naming ``where`` (the trait key) when the rule is unusable."""
        if self.rule not in RULES:
            raise _invalid(f"{where}.rule", self.rule, f"use one of {list(RULES)}")
        sources = _keys(f"{where}.sources", self.sources)
        if self.rule == "source_priority" and not sources:
            raise _invalid(
                f"{where}.sources",
                [],
                "list source kinds or source ids, best first, such as ['pos', 'mini_program']",
            )
        if self.rule != "source_priority" and sources:
            raise _invalid(
                f"{where}.sources", list(sources), "set rule 'source_priority' or drop it"
            )

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON-able data."""
        return (
            {"rule": self.rule, "sources": list(self.sources)}
            if self.sources
            else {"rule": self.rule}
        )

    @classmethod
    def from_dict(cls, data: object, where: str) -> TraitRule:
        """A rule from ``{"rule": ..., "sources": [...]}`` or the bare rule name."""
        if isinstance(data, str):
            data = {"rule": data}
        if not isinstance(data, Mapping):
            raise _invalid(where, data, "use a rule name or {'rule': ..., 'sources': [...]}")
        unknown = sorted(set(data) - {"rule", "sources"})
        if unknown:
            raise _invalid(f"{where}.{unknown[0]}", data[unknown[0]], "remove it")
        rule = cls(data.get("rule", "latest"), _keys(f"{where}.sources", data.get("sources", [])))
        rule.check(where)
        return rule


@dataclass(frozen=True)
class TraitRules:
    """A tenant's survivorship: a default rule, per-key overrides, and what brands see."""

    default: TraitRule = TraitRule()
    keys: Mapping[str, TraitRule] = field(default_factory=dict)
    brand_keys: tuple[str, ...] = ()
    shared_with_brands: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.default.check("default")
        if not isinstance(self.keys, Mapping):
            raise _invalid("keys", self.keys, "map trait keys to rules")
        for key, rule in self.keys.items():
            if not isinstance(key, str) or not key or not isinstance(rule, TraitRule):
                raise _invalid(f"keys[{key!r}]", rule, "map a non-empty trait key to a TraitRule")
            rule.check(f"keys[{key!r}]")
        object.__setattr__(self, "keys", dict(self.keys))
        object.__setattr__(self, "brand_keys", _keys("brand_keys", self.brand_keys))
        if self.shared_with_brands is not None:
            shared = _keys("shared_with_brands", self.shared_with_brands)
            both = sorted(set(shared) & set(self.brand_keys))
            if both:
                raise _invalid(
                    "shared_with_brands",
                    both[0],
                    "it is brand-scoped (in brand_keys); a brand sees its own value already,"
                    " so remove it from one of the lists",
                )
            object.__setattr__(self, "shared_with_brands", shared)

    def rule_for(self, key: str) -> TraitRule:
        """The rule of trait ``key``: its override, else the default."""
        return self.keys.get(key, self.default)

    def to_dict(self) -> dict[str, Any]:
        """The rules as JSON-able data; ``from_dict`` reads it back."""
        shared = self.shared_with_brands
        return {
            "default": self.default.to_dict(),
            "keys": {k: r.to_dict() for k, r in self.keys.items()},
            "brand_keys": list(self.brand_keys),
            "shared_with_brands": None if shared is None else list(shared),
        }

    @classmethod
    def from_dict(cls, data: object) -> TraitRules:
        """Build and validate rules from ``to_dict`` output; raises ValidationFailed."""
        if not isinstance(data, Mapping):
            raise _invalid("(rules)", data, "use a JSON object")
        unknown = sorted(set(data) - {"default", "keys", "brand_keys", "shared_with_brands"})
        if unknown:
            raise _invalid(unknown[0], data[unknown[0]], "remove it")
        keys = data.get("keys", {})
        if not isinstance(keys, Mapping):
            raise _invalid("keys", keys, "map trait keys to rules")
        shared = data.get("shared_with_brands")
        return cls(
            TraitRule.from_dict(data.get("default", "latest"), "default"),
            {k: TraitRule.from_dict(v, f"keys[{k!r}]") for k, v in keys.items()},
            _keys("brand_keys", data.get("brand_keys", [])),
            None if shared is None else _keys("shared_with_brands", shared),
        )

    def to_json(self) -> str:
        """The rules as JSON text."""
        return orjson.dumps(self.to_dict()).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> TraitRules:
        """Rules from ``to_json`` text; raises ValidationFailed on bad JSON or bad rules."""
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise _invalid("(json)", text, f"send valid JSON ({e})") from e
        return cls.from_dict(data)


def _text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _order(o: Observation) -> tuple[datetime, str, str]:
    return (o.timestamp, o.source_id, _text(o.value))


def _winner(obs: list[Observation], rule: TraitRule) -> Observation:
    if rule.rule == "first":
        return min(obs, key=_order)
    if rule.rule == "most_frequent":
        count: dict[str, int] = {}
        last: dict[str, Observation] = {}
        for o in obs:
            t = _text(o.value)
            count[t] = count.get(t, 0) + 1
            if t not in last or _order(o) > _order(last[t]):
                last[t] = o
        return max(last.values(), key=lambda o: (count[_text(o.value)], _order(o)))
    if rule.rule == "source_priority":
        rank = {s: i for i, s in reversed(list(enumerate(rule.sources)))}
        unnamed = len(rule.sources)

        def best(o: Observation) -> int:
            by_kind = rank.get(o.source_kind, unnamed) if o.source_kind else unnamed
            return min(rank.get(o.source_id, unnamed), by_kind)

        top = min(best(o) for o in obs)
        return max((o for o in obs if best(o) == top), key=_order)
    return max(obs, key=_order)


def survive(observations: Iterable[Observation], rules: TraitRules) -> dict[str, Trait]:
    """The surviving value of every trait key among ``observations``.

    Args:
        observations: trait values as events carried them, in any order.
        rules: the rule per key (``rules.rule_for``).

    Returns:
        ``{key: Trait(value, source_id, at, rule)}`` for every key with a non-null value.
    """
    groups: dict[str, list[Observation]] = {}
    for o in observations:
        if o.value is not None:
            groups.setdefault(o.key, []).append(o)
    out: dict[str, Trait] = {}
    for key in sorted(groups):
        rule = rules.rule_for(key)
        w = _winner(groups[key], rule)
        out[key] = Trait(w.value, w.source_id, w.timestamp, rule.rule)
    return out


def view(
    observations: Iterable[Observation], rules: TraitRules, brand: str | None = None
) -> TraitView:
    """The traits the group (``brand=None``) or one brand sees.

    Group view: ``traits`` holds every group trait and ``by_brand`` each brand's
    brand-scoped traits. Brand view: ``traits`` holds the shared group traits and the
    brand's own brand-scoped traits; ``by_brand`` is empty.
    """
    scoped = set(rules.brand_keys)
    group: list[Observation] = []
    per_brand: dict[str, list[Observation]] = {}
    for o in observations:
        if o.key not in scoped:
            group.append(o)
        elif o.brand_id is not None:
            per_brand.setdefault(o.brand_id, []).append(o)
    group_traits = survive(group, rules)
    if brand is None:
        by_brand = {b: survive(obs, rules) for b, obs in sorted(per_brand.items())}
        return TraitView(group_traits, by_brand)
    shared = rules.shared_with_brands
    visible = {k: t for k, t in group_traits.items() if shared is None or k in shared}
    return TraitView({**visible, **survive(per_brand.get(brand, []), rules)}, {})
