"""Trait survivorship rules, ties, brand views and the rules' JSON form. Pure: no database."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyu.errors import ValidationFailed
from quanyu.profiles.survivorship import Observation, TraitRule, TraitRules, survive, view

T0 = datetime(2026, 1, 1)
KINDS = {"s_pos": "pos", "s_mp": "mini_program", "s_tm": "tmall", "s_pos2": "pos"}
BRANDS = {"s_pos": "b1", "s_mp": "b1", "s_tm": "b2", "s_pos2": None}


def obs(key: str, value: Any, source: str, hour: int) -> Observation:
    return Observation(
        key, value, source, KINDS[source], BRANDS[source], T0 + timedelta(hours=hour)
    )


def one(rule: TraitRule, *rows: Observation) -> tuple[Any, str]:
    t = survive(rows, TraitRules(keys={"k": rule}))["k"]
    assert t.rule == rule.rule
    return t.value, t.source_id


def test_latest_and_first() -> None:
    rows = [obs("k", "a", "s_mp", 1), obs("k", "b", "s_pos", 3), obs("k", "c", "s_tm", 2)]
    assert one(TraitRule("latest"), *rows) == ("b", "s_pos")
    assert one(TraitRule("first"), *rows) == ("a", "s_mp")
    assert survive(rows, TraitRules())["k"].at == T0 + timedelta(hours=3)  # latest by default


def test_ties_in_time_do_not_depend_on_input_order() -> None:
    rows = [obs("k", "x", "s_mp", 5), obs("k", "y", "s_pos", 5), obs("k", "z", "s_pos", 5)]
    for rule in ("latest", "first", "most_frequent"):
        results = {one(TraitRule(rule), *random.sample(rows, 3)) for _ in range(10)}  # type: ignore[arg-type]
        assert len(results) == 1, rule


def test_most_frequent_with_ties_going_to_the_latest() -> None:
    rows = [obs("k", "a", "s_mp", 1), obs("k", "a", "s_tm", 2), obs("k", "b", "s_pos", 3)]
    assert one(TraitRule("most_frequent"), *rows) == ("a", "s_tm")  # its latest observation
    tie = [*rows, obs("k", "b", "s_mp", 0)]  # 2 - 2: b was seen last (hour 3)
    assert one(TraitRule("most_frequent"), *tie) == ("b", "s_pos")
    objects = [obs("k", {"x": 1, "y": 2}, "s_mp", 1), obs("k", {"y": 2, "x": 1}, "s_tm", 2)]
    assert one(TraitRule("most_frequent"), *objects, obs("k", "c", "s_pos", 3))[0] == {
        "x": 1,
        "y": 2,
    }


def test_source_priority_by_kind_by_id_ties_and_fallback() -> None:
    rows = [obs("k", "pos-old", "s_pos", 1), obs("k", "mp", "s_mp", 9), obs("k", "tm", "s_tm", 8)]
    by_kind = TraitRule("source_priority", ("pos", "mini_program"))
    assert one(by_kind, *rows) == ("pos-old", "s_pos")  # best source, though oldest
    assert one(by_kind, *rows, obs("k", "pos-new", "s_pos2", 2)) == ("pos-new", "s_pos2")  # tie
    assert one(TraitRule("source_priority", ("s_tm", "pos")), *rows) == ("tm", "s_tm")  # by id
    assert one(by_kind, rows[2]) == ("tm", "s_tm")  # unnamed sources still fill the trait
    assert one(by_kind, rows[1], rows[2]) == ("mp", "s_mp")


def test_nulls_say_nothing() -> None:
    traits = survive([obs("k", "a", "s_mp", 1), obs("k", None, "s_pos", 2)], TraitRules())
    assert traits["k"].value == "a"
    assert survive([obs("gone", None, "s_mp", 1)], TraitRules()) == {}


def test_brand_view() -> None:
    rows = [
        obs("level", "gold", "s_mp", 1), obs("level", "silver", "s_tm", 2),
        obs("level", "orphan", "s_pos2", 3), obs("name", "Li", "s_mp", 1),
        obs("city", "SH", "s_tm", 1),
    ]  # fmt: skip
    rules = TraitRules(brand_keys=("level",), shared_with_brands=("name",))
    group = view(rows, rules)
    assert set(group.traits) == {"name", "city"}
    assert {b: t["level"].value for b, t in group.by_brand.items()} == {
        "b1": "gold",
        "b2": "silver",
    }
    b2 = view(rows, rules, "b2")
    assert {k: t.value for k, t in b2.traits.items()} == {"name": "Li", "level": "silver"}
    assert b2.by_brand == {}
    everything = view(rows, TraitRules(brand_keys=("level",)), "b1")  # all group traits shared
    assert {k: t.value for k, t in everything.traits.items()} == {
        "name": "Li", "city": "SH", "level": "gold",
    }  # fmt: skip
    assert set(view(rows, rules, "b9").traits) == {"name"}  # a brand with no events of its own


def test_rules_json_round_trip() -> None:
    rules = TraitRules(
        default=TraitRule("first"),
        keys={"birthday": TraitRule("source_priority", ("pos", "src_1")), "tier": TraitRule()},
        brand_keys=("tier",),
        shared_with_brands=("birthday",),
    )
    assert TraitRules.from_json(rules.to_json()) == rules
    assert TraitRules.from_dict({"keys": {"x": "most_frequent"}}).rule_for("x").rule == (
        "most_frequent"
    )
    assert TraitRules.from_dict({}).rule_for("anything") == TraitRule("latest")


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"keys": {"birthday": "oldest"}}, ["birthday", "use one of"]),
        ({"keys": {"birthday": "source_priority"}}, ["birthday", "sources", "pos"]),
        ({"keys": {"city": {"rule": "latest", "sources": ["pos"]}}}, ["city", "source_priority"]),
        ({"keys": {"city": {"rule": "latest", "weight": 2}}}, ["city", "weight", "remove"]),
        ({"brand_keys": ["tier"], "shared_with_brands": ["tier"]}, ["tier", "brand_keys"]),
        ({"brand_keys": "tier"}, ["brand_keys", "list"]),
        ({"colour": 1}, ["colour", "remove"]),
    ],
)
def test_rules_validation_names_key_and_fix(data: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(ValidationFailed) as e:
        TraitRules.from_dict(data)
    for name in names:
        assert name in e.value.message
    with pytest.raises(ValidationFailed, match="json"):
        TraitRules.from_json("{nope")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.sampled_from(["x", "y", None]),
            st.sampled_from(sorted(KINDS)),
            st.integers(0, 4),
        ),
        max_size=12,
    ),
    st.randoms(),
)
def test_any_order_gives_the_same_traits(rows: list[Any], rnd: random.Random) -> None:
    observations = [obs(*r) for r in rows]
    rules = TraitRules(
        keys={"a": TraitRule("most_frequent"), "b": TraitRule("source_priority", ("pos",))}
    )
    shuffled = rnd.sample(observations, len(observations))
    assert survive(observations, rules) == survive(shuffled, rules)
    for key, trait in survive(observations, rules).items():
        assert any(o.key == key and o.value == trait.value for o in observations)
