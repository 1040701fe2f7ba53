"""The rule builder's groups and rows: text both ways, flat form fields, edits, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quanyu.audiences import builder as b
from quanyu.audiences.builder import Group, Row, RowError
from quanyu.tags import parse

RULES = [
    'count(event = "Order Completed", within 90d) >= 2 and traits.city in ("上海", "杭州")'
    ' and not tag("churned")',
    'tag("a") or brand = "b1" and not (channel = "pos" or traits.tier = "007")'
    ' or sum(amount, event = "Order Completed", within 30d) >= 300',
    'traits."城市" = "上海" and identifier("phone") and not identifier("openid")'
    " and traits.age >= 18 and traits.x is null and traits.y is not null",
    'tag("lifecycle") in ("active", "new") and tag("rfm_r") >= 3'
    ' and first(event = "X") >= ago(30d)',
    'traits.v = "12" and traits.w = true and traits.z != 3.5 and traits.q contains "a,b"'
    ' and traits.k in ("x, y", "z", 3, "4") and tag("t") = "say \\"hi\\""',
    'not (tag("a") and tag("b"))',
    "traits.n not in (1, 2)",
]


@pytest.mark.parametrize("text", RULES)
def test_a_rule_survives_the_builder(text: str) -> None:
    node = parse.parse(text)
    group = b.from_node(node)
    assert parse.parse(b.to_text(group)) == node
    again = b.from_fields(b.fields_of(group))
    assert again == group  # and survives a round trip through the form


def test_rows_hold_what_they_can_and_text_rows_the_rest() -> None:
    group = b.from_node(parse.parse(RULES[3]))
    kinds = [item.kind for item in group.items if isinstance(item, Row)]
    assert kinds == ["tag", "tag", "text"]
    assert group.items[2] == Row("text", value='first(event = "X") >= ago(30d)')
    event = b.from_node(parse.parse(RULES[1])).items[2]
    assert event == Row("event", "Order Completed", ">=", "300", "30", "sum")


def test_rows_write_the_rule_language() -> None:
    group = Group(
        items=[
            Row("trait", "city", "in", "上海, 杭州"),
            Row("text", value='tag("a") or tag("b")'),
            Group("or", True, [Row("brand", "brd_1", "="), Row("event", "Order Completed",
                                                              ">=", "2", "90")]),
            Row("trait", "code", "=", '"007"'),
            Row("trait", "城市", "is set"),
        ]
    )  # fmt: skip
    assert b.to_text(group) == (
        'traits.city in ("上海", "杭州") and (tag("a") or tag("b")) and not (brand = "brd_1"'
        ' or count(event = "Order Completed", within 90d) >= 2) and traits.code = "007"'
        ' and traits."城市" is not null'
    )


@pytest.mark.parametrize(
    ("group", "path", "words"),
    [
        (Group(items=[]), "g", "no conditions"),
        (Group(items=[Row("tag", "", "has")]), "g.0", "choose a tag"),
        (Group(items=[Row("tag", "vip"), Group(items=[Row("event")])]), "g.1.0", "event name"),
        (Group(items=[Row("trait", "age", ">=", "")]), "g.0", "give a value"),
        (Group(items=[Row("event", "X", ">=", "2", "ninety")]), "g.0", "whole number of days"),
        (Group(items=[Row("event", "X", ">=", "lots")]), "g.0", "with a number"),
        (Group(items=[Row("brand", "b", ">")]), "g.0", "take =, !="),
        (Group(items=[Row("text", value=" ")]), "g.0", "write a condition"),
    ],
)
def test_an_incomplete_row_is_named_by_its_path(group: Group, path: str, words: str) -> None:
    with pytest.raises(RowError) as e:
        b.to_text(group)
    assert e.value.path == path and words in e.value.message


def test_edits_add_and_remove_rows_and_groups() -> None:
    group = Group(items=[Row("tag", "a")])
    b.apply(group, "add-group:g")
    b.apply(group, "add-row:g.1")
    assert [type(i).__name__ for i in group.items] == ["Row", "Group"]
    inner = group.items[1]
    assert isinstance(inner, Group) and inner.op == "or" and len(inner.items) == 2
    b.apply(group, "remove:g.1.0")
    assert len(inner.items) == 1
    b.apply(group, "remove:g")  # the root stays
    b.apply(group, "remove:g.9")  # gone meanwhile: nothing changes
    b.apply(group, "add-row:g.0")  # a row takes no rows
    assert len(group.items) == 2 and isinstance(group.items[0], Row)


def test_form_fields_in_any_order_and_with_gaps() -> None:
    fields = {
        "g.type": "group", "g.op": "or", "g.5.type": "row", "g.5.kind": "tag",
        "g.5.key": "b", "g.5.op": "has", "g.2.type": "group", "g.2.not": "1",
        "g.2.0.type": "row", "g.2.0.kind": "nonsense", "g.2.0.value": 'tag("c")',
    }  # fmt: skip
    group = b.from_fields(fields)
    assert b.to_text(group) == 'not (tag("c")) or tag("b")'


_values = st.sampled_from(["gold", "上海", "12", '"12"', "3.5", "true", "a b"])
_rows = st.one_of(
    st.builds(Row, kind=st.just("tag"), key=st.sampled_from(["vip", "rfm_r"]),
              op=st.sampled_from(b.OPS["tag"]), value=_values),
    st.builds(Row, kind=st.just("trait"), key=st.sampled_from(["city", "tier", "城市"]),
              op=st.sampled_from(b.OPS["trait"]), value=_values),
    st.builds(Row, kind=st.sampled_from(["brand", "channel"]), key=st.sampled_from(["b1", "pos"]),
              op=st.sampled_from(["=", "!="])),
    st.builds(Row, kind=st.just("event"), key=st.sampled_from(["Order Completed", "View"]),
              op=st.sampled_from(b.OPS["event"]), value=st.sampled_from(["1", "300", "2.5"]),
              within=st.sampled_from(["", "30", "90"]), agg=st.sampled_from(b.AGGS)),
    st.builds(Row, kind=st.just("identifier"), key=st.sampled_from(["phone", "openid"]),
              op=st.sampled_from(["has", "lacks"])),
)  # fmt: skip
_groups = st.recursive(
    st.builds(Group, op=st.sampled_from(["and", "or"]), negate=st.booleans(),
              items=st.lists(_rows, min_size=1, max_size=3)),
    lambda inner: st.builds(Group, op=st.sampled_from(["and", "or"]), negate=st.booleans(),
                            items=st.lists(st.one_of(_rows, inner), min_size=1, max_size=3)),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(_groups)
def test_any_builder_writes_a_rule_that_reads_back_the_same(group: Group) -> None:
    text = b.to_text(group)
    node = parse.parse(text)
    again = b.from_node(node)
    assert parse.parse(b.to_text(again)) == node
