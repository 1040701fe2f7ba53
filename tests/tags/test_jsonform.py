"""JSON form of rules: exact shapes, round trips of random trees, errors with JSON paths."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanyu.tags import rules as r
from quanyu.tags.jsonform import check, from_json, to_json
from quanyu.tags.parse import parse
from tests.tags.test_parse import DOCSTRING_RULE, EXAMPLES, RULES, same


def test_docstring_rule_has_the_documented_json() -> None:
    assert to_json(parse(DOCSTRING_RULE)) == {
        "and": [
            {
                "cmp": ">=",
                "left": {
                    "agg": "count",
                    "where": [{"field": "event", "op": "=", "value": "Order Completed"}],
                    "within": "90d",
                },
                "right": 2,
            },
            {"in": ["上海", "杭州"], "left": {"trait": "city"}},
            {"not": {"tag": "churned"}},
        ]
    }


@pytest.mark.parametrize(
    ("node", "obj"),
    [
        (r.Lit(date(2024, 6, 1)), {"date": "2024-06-01"}),
        (r.Lit(datetime(2024, 6, 1, 12)), {"date": "2024-06-01T12:00:00"}),
        (r.Lit(None), None),
        (
            r.Cmp("=", r.ProfileSet("brand"), r.Lit("x")),
            {"cmp": "=", "left": {"set": "brand"}, "right": "x"},
        ),
        (r.Ago(None), {"now": True}),
        (r.Ago("30d"), {"ago": "30d"}),
        (r.HasIdentifier("openid"), {"identifier": "openid"}),
        (r.HasIdentifier("openid", "wx"), {"identifier": "openid", "scope": "wx"}),
        (r.IsNull(r.Trait("a"), negate=True), {"is_null": {"trait": "a"}, "negate": True}),
        (
            r.In(r.Trait("a"), (1, "x"), negate=True),
            {"in": [1, "x"], "left": {"trait": "a"}, "negate": True},
        ),
        (
            r.Between(r.Trait("a"), r.Lit(1), r.Lit(2)),
            {"between": {"trait": "a"}, "low": 1, "high": 2},
        ),
        (r.Case(((r.TagRef("v"), r.Lit("g")),)), {"case": [{"when": {"tag": "v"}, "then": "g"}]}),
        (
            r.Case(((r.TagRef("v"), r.Lit(1)),), r.Lit(None)),
            {"case": [{"when": {"tag": "v"}, "then": 1}], "else": None},
        ),
        (
            r.Agg(
                "sum",
                r.EventField("properties", "price"),
                (r.EventFilter(r.EventField("brand"), "in", ("a",)),),
                since=date(2024, 1, 1),
                until=datetime(2024, 2, 1, 8),
            ),
            {
                "agg": "sum",
                "of": "properties.price",
                "where": [{"field": "brand", "op": "in", "value": ["a"]}],
                "since": "2024-01-01",
                "until": "2024-02-01T08:00:00",
            },
        ),
    ],
)
def test_shapes(node: r.Node, obj: Any) -> None:
    assert to_json(node) == obj
    same(from_json(obj), node)


@pytest.mark.parametrize("text", EXAMPLES)
def test_hand_examples_round_trip(text: str) -> None:
    node = parse(text)
    same(from_json(json.loads(json.dumps(to_json(node), ensure_ascii=False))), node)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RULES)
def test_random_trees_round_trip(node: r.Node) -> None:
    obj = to_json(node)
    same(from_json(obj), node)
    same(from_json(json.loads(json.dumps(obj, allow_nan=False))), node)


CMP = {"cmp": "=", "left": {"trait": "a"}, "right": 1}
JSON_ERRORS = [
    (
        {"and": [CMP, {"cmp": "=>", "left": {"trait": "a"}, "right": 1}]},
        'rule JSON at and/1/cmp: unknown operator "=>"; use one of = != < <= > >= contains',
    ),
    ({"cmp": "=", "left": {"trait": "a"}}, 'rule JSON: missing "right"'),
    ({"in": [1], "left": {"trait": "a"}, "negte": True}, 'rule JSON at negte: unknown key "negte"'),
    (
        {"or": [CMP, [1, 2]]},
        "rule JSON at or/1: expected a rule object or a single value, found a list",
    ),
    ({"trait": "a", "tag": "b"}, "rule JSON: a rule object has exactly one of"),
    ({"foo": 1}, 'its keys: "foo"'),
    ({"not": {"trait": "a"}}, "rule JSON at not: traits.a is a value, not a condition"),
    ({"and": [CMP]}, "rule JSON at and: and needs at least two conditions"),
    (
        {"cmp": "=", "left": {"agg": "sum"}, "right": 1},
        "rule JSON at left/agg: sum needs the event field",
    ),
    (
        {"cmp": "=", "left": {"agg": "cnt"}, "right": 1},
        'unknown aggregate "cnt" (did you mean count?)',
    ),
    (
        {
            "cmp": ">",
            "left": {"agg": "count", "where": [{"field": "evnt", "op": "=", "value": 1}]},
            "right": 1,
        },
        'rule JSON at left/where/0/field: unknown event field "evnt" (did you mean event?)',
    ),
    (
        {
            "cmp": ">",
            "left": {"agg": "count", "where": [{"field": "event", "op": "in", "value": "x"}]},
            "right": 1,
        },
        'rule JSON at left/where/0/value: "in" takes a non-empty list',
    ),
    (
        {"cmp": ">", "left": {"agg": "count", "within": "90"}, "right": 1},
        "rule JSON at left/within: duration '90' is not valid",
    ),
    (
        {"cmp": ">", "left": {"agg": "count", "since": "2024-13-01"}, "right": 1},
        'rule JSON at left/since: "2024-13-01" is not an ISO date',
    ),
    (
        {"cmp": ">", "left": {"trait": "a"}, "right": {"date": 20240601}},
        "rule JSON at right/date: expected a string, found 20240601",
    ),
    (
        {"cmp": "<", "left": {"trait": "a"}, "right": float("nan")},
        "rule JSON at right: nan is not a finite",
    ),
    ({"in": [], "left": {"trait": "a"}}, 'rule JSON at in: the list after "in" is empty'),
    ({"in": [[1]], "left": {"trait": "a"}}, "rule JSON at in/0: expected a single value"),
    (
        {"case": [{"when": {"trait": "a"}, "then": 1}]},
        "rule JSON at case/0/when: traits.a is a value",
    ),
    ({"case": [{"if": CMP, "then": 1}]}, 'rule JSON at case/0: each case item is {"when"'),
    ({"now": False}, 'rule JSON at now: write "now": true'),
    ({"set": "brand"}, "rule JSON: brand is the set of brands"),
    ({"cmp": "<", "left": {"set": "brand"}, "right": "x"}, "rule JSON at cmp: brand is a set"),
    ({"is_null": {"trait": "a"}, "negate": "yes"}, "rule JSON at negate: expected true or false"),
    ([CMP], "rule JSON: expected a rule object or a single value, found a list"),
]


@pytest.mark.parametrize(("obj", "message"), JSON_ERRORS)
def test_json_errors_name_the_path(obj: Any, message: str) -> None:
    with pytest.raises(r.RuleError) as e:
        from_json(obj)
    assert message in str(e.value)
    assert e.value.line is None


def test_from_json_want() -> None:
    from_json(CMP, want="condition")
    with pytest.raises(r.RuleError, match="rule JSON: 1 is a value, not a condition"):
        from_json(1, want="condition")
    with pytest.raises(r.RuleError, match="where a value is needed"):
        from_json(CMP, want="value")


@pytest.mark.parametrize(
    ("node", "want", "message"),
    [
        (r.Trait("a"), "condition", "rule: traits.a is a value, not a condition"),
        (r.HasIdentifier("openid"), "value", 'rule: identifier("openid") is a condition'),
        (r.Or((r.TagRef("a"),)), "any", "rule at or: or needs at least two conditions"),
        (r.Not(r.Agg("count")), "any", "rule at not: count(...) is a value"),
        (
            r.Cmp("=", r.Agg("first", r.EventField("amount")), r.Lit(1)),
            "any",
            "rule at left/agg: first takes no field",
        ),
        (
            r.Cmp(
                "=",
                r.Agg("count", where=(r.EventFilter(r.EventField("properties"), "=", 1),)),
                r.Lit(1),
            ),
            "any",
            "rule at left/where/0/field: properties needs a key",
        ),
        (r.Cmp("~", r.Trait("a"), r.Lit(1)), "any", 'rule at cmp: unknown operator "~"'),  # type: ignore[arg-type]
        (r.Case(()), "value", "rule at case: case needs at least one when"),
        (
            r.Case(((r.TagRef("a"), r.Cmp("=", r.Trait("a"), r.Lit(1))),)),
            "value",
            "rule at case/0/then: a comparison is a condition",
        ),
        (r.Cmp("=", r.Trait(""), r.Lit(1)), "any", "rule at left/trait: the key is empty"),
        (r.Cmp("=", r.Ago("3w"), r.Lit(1)), "any", "rule at left/ago: duration '3w' is not valid"),
        (
            r.Cmp("=", r.Agg("count", since=date(2024, 2, 1), until=date(2024, 1, 1)), r.Lit(1)),
            "any",
            "rule at left/until: the time window is empty",
        ),
        (r.Between(r.Trait("a"), r.Lit(1), r.TagRef("x")), "condition", None),
    ],
)
def test_check(node: r.Node, want: Any, message: str | None) -> None:
    if message is None:
        check(node, want=want)
        return
    with pytest.raises(r.RuleError) as e:
        check(node, want=want)
    assert str(e.value).startswith(message), str(e.value)


KEY_WORDS = [
    "and",
    "or",
    "not",
    "cmp",
    "left",
    "right",
    "in",
    "negate",
    "agg",
    "of",
    "where",
    "within",
    "since",
    "until",
    "trait",
    "tag",
    "set",
    "case",
    "when",
    "then",
    "else",
    "date",
    "now",
    "ago",
    "is_null",
    "between",
    "low",
    "high",
    "identifier",
    "scope",
    "field",
    "op",
    "value",
]
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats()
    | st.sampled_from(
        ["=", ">=", "in", "count", "sum", "event", "amount", "brand", "90d", "2024-01-01", "a", ""]
    )
)
JSON = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEY_WORDS), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_any_json_gives_a_rule_or_a_rule_error(obj: Any) -> None:
    try:
        node = from_json(obj)
    except r.RuleError as e:
        assert str(e).startswith("rule JSON")
        return
    same(from_json(to_json(node)), node)


def test_deep_nesting_is_a_rule_error_not_a_crash() -> None:
    obj: Any = {"tag": "a"}
    for _ in range(99):
        obj = {"not": obj}
    from_json(obj)
    for _ in range(5000):
        obj = {"not": obj}
    with pytest.raises(r.RuleError, match="rule JSON at not/not/not: the rule nests more than 100"):
        from_json(obj)
