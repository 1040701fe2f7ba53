"""Text form of rules: hand examples, round trips of random trees, and precise errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanyu.tags import rules as r
from quanyu.tags.jsonform import NEEDS_FIELD, check
from quanyu.tags.parse import parse, to_text

# -- strategies for random valid trees (also used by test_jsonform) ---------------------

KEYS = st.from_regex(r"[A-Za-z0-9_]{1,5}(\.[A-Za-z0-9_]{1,3})?", fullmatch=True) | st.text(
    min_size=1, max_size=6
)
TEXT = st.text(max_size=8)
NUMBERS = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
NON_NULL = st.booleans() | NUMBERS | TEXT
SCALARS = st.none() | NON_NULL
ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5, minutes=30))]
)
# fold has no ISO text; it never matters for naive or fixed-offset times
DATES = st.dates() | st.datetimes(timezones=ZONES).map(lambda d: d.replace(fold=0))
DURATIONS = st.builds("{}{}".format, st.integers(1, 9999), st.sampled_from("dh"))
FIELDS = st.sampled_from(r.EVENT_FIELDS).map(r.EventField) | KEYS.map(
    lambda k: r.EventField("properties", k)
)
FILTERS = st.builds(r.EventFilter, FIELDS, st.sampled_from(r.OPERATORS), SCALARS) | st.builds(
    r.EventFilter,
    FIELDS,
    st.sampled_from(["in", "not in"]),
    st.lists(SCALARS, min_size=1, max_size=3).map(tuple),
)
SETS = st.sampled_from(r.PROFILE_SETS).map(r.ProfileSet)


@st.composite
def windows(draw: st.DrawFn) -> tuple[date | None, date | None]:
    """(since, until) of an aggregate: none, one end, or a non-empty window."""
    start = draw(
        st.dates(max_value=date(9000, 1, 1))
        | st.datetimes(max_value=datetime(9000, 1, 1)).map(lambda d: d.replace(fold=0))
    )
    end = start + timedelta(days=draw(st.integers(1, 5000)))
    return draw(st.sampled_from([(None, None), (start, None), (None, end), (start, end)]))


@st.composite
def aggs(draw: st.DrawFn) -> r.Agg:
    """A valid aggregate."""
    fn = draw(st.sampled_from(r.AGGREGATES))
    since, until = draw(windows())
    return r.Agg(
        fn,
        draw(FIELDS) if fn in NEEDS_FIELD else None,
        tuple(draw(st.lists(FILTERS, max_size=3))),
        draw(st.none() | DURATIONS),
        since,
        until,
    )


def _tuple_of(s: st.SearchStrategy[r.Node], n: int = 3) -> st.SearchStrategy[tuple[r.Node, ...]]:
    return st.lists(s, min_size=2, max_size=n).map(tuple)


LEAF_VALUES = st.one_of(
    NON_NULL.map(r.Lit),
    DATES.map(r.Lit),
    KEYS.map(r.Trait),
    KEYS.map(r.TagRef),
    aggs(),
    st.builds(r.Ago, st.none() | DURATIONS),
)
VALUES: st.SearchStrategy[r.Node] = st.deferred(
    lambda: (
        LEAF_VALUES
        | st.builds(
            r.Case,
            st.lists(
                st.tuples(CONDITIONS, VALUES | st.just(r.Lit(None))), min_size=1, max_size=2
            ).map(tuple),
            st.none() | st.just(r.Lit(None)) | VALUES,
        )
    )
)
CONDITIONS: st.SearchStrategy[r.Node] = st.deferred(
    lambda: st.one_of(
        KEYS.map(r.TagRef),
        st.builds(r.HasIdentifier, KEYS, st.none() | KEYS),
        st.builds(r.Cmp, st.sampled_from(r.OPERATORS), VALUES, VALUES),
        st.builds(r.Cmp, st.sampled_from(["=", "!=", "contains"]), SETS, NON_NULL.map(r.Lit)),
        st.builds(
            r.In, VALUES | SETS, st.lists(SCALARS, min_size=1, max_size=3).map(tuple), st.booleans()
        ),
        st.builds(r.IsNull, VALUES | SETS, st.booleans()),
        st.builds(r.Between, VALUES, VALUES, VALUES),
        _tuple_of(CONDITIONS).map(r.And),
        _tuple_of(CONDITIONS).map(r.Or),
        st.builds(r.Not, CONDITIONS),
    )
)
RULES = CONDITIONS | VALUES


def same(a: r.Node, b: r.Node) -> None:
    """Equal, and equal in type too (``Lit(1) == Lit(True)`` for dataclasses)."""
    assert a == b
    assert repr(a) == repr(b)


# -- hand examples ----------------------------------------------------------------------

DOCSTRING_RULE = """count(event = "Order Completed", within 90d) >= 2
  and traits.city in ("上海", "杭州") and not tag("churned")"""

EXAMPLES = [
    DOCSTRING_RULE,
    'traits.city = "上海" or traits."会员 等级" = "金卡"',
    'traits.note contains "双十一\\n\\"特价\\""',
    "traits.age >= 18 and traits.age < 60.5 and traits.score != -3",
    "traits.vip = true and traits.blocked = false",
    "traits.a.b is null or traits.c is not null",
    "traits.x between 1 and 10 and not traits.y between -2.5 and 2.5",
    "not (traits.a = 1 or traits.b = 2) and (traits.c = 1 or traits.d = 2)",
    "(traits.a = 1 and traits.b = 2) and traits.c = 3",
    "(traits.a = 1 or traits.b = 2) or traits.c = 3",
    'not not tag("x")',
    'tag("vip") and tag("level") >= 3 and tag("tier") = "gold"',
    'identifier("openid", "wx_app") or identifier("phone")',
    'brand = "花王" and channel in ("pos", "wechat") and brand != "x" and channel not in ("web")',
    'case when tag("vip") then "gold" when traits.spend > 1000 then "silver" else "bronze" end',
    "case when traits.a = 1 then 1 end",
    'case when traits.a = 1 then null else traits.b end = "x"',
    'sum(amount, event = "Order Completed", within 30d) > 1000',
    'avg(properties.price, properties.sku in ("A1", "B2"), between "2024-01-01" and "2024-07-01")'
    " >= 99.9",
    'count(event = "Order Completed", brand = "x", between "2024-01-01" and date("2024-02-01"))'
    " = 0",
    'distinct(properties."商品 编号", type = "track") > 3',
    'min(timestamp, since "2024-01-01T08:00:00") < now() and max(amount, until "2024-06-01") > 5',
    'last(event = "Login") > ago(30d) and first() < date("2024-06-01T12:00:00+08:00")',
    "count() > 0 and count(within 12h) = 0",
    'count(properties.channel_name not in ("a", "b"), source contains "pos") >= 1',
    'traits.x = ago(7d) or date("2024-06-01") <= traits.birthday',
]


@pytest.mark.parametrize("text", EXAMPLES)
def test_hand_examples_round_trip(text: str) -> None:
    node = parse(text)
    canonical = to_text(node)
    same(parse(canonical), node)
    assert to_text(parse(canonical)) == canonical


def test_docstring_rule_parses_to_the_documented_tree() -> None:
    node = parse(DOCSTRING_RULE, want="condition")
    orders = r.Agg(
        "count",
        where=(r.EventFilter(r.EventField("event"), "=", "Order Completed"),),
        within="90d",
    )
    same(
        node,
        r.And(
            (
                r.Cmp(">=", orders, r.Lit(2)),
                r.In(r.Trait("city"), ("上海", "杭州")),
                r.Not(r.TagRef("churned")),
            )
        ),
    )
    assert to_text(node) == " ".join(DOCSTRING_RULE.split())


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("NOT Traits.A == TRUE OR Count() <> 1", "not traits.A = true or count() != 1"),
        (
            "traits.a=1 AND (traits.b=2 AND traits.c=3)",
            "traits.a = 1 and (traits.b = 2 and traits.c = 3)",
        ),
        ("((traits.a = 1))", "traits.a = 1"),
        ("traits.a = 'it\\'s'", 'traits.a = "it\'s"'),
        ("traits.a = 1.0 or traits.a = 1e3", "traits.a = 1.0 or traits.a = 1000.0"),
        ("count(within 90D,event='x')", 'count(event = "x", within 90d)'),
        (
            "sum(amount, between date(\"2024-01-01\") and '2024-02-01')",
            'sum(amount, between "2024-01-01" and "2024-02-01")',
        ),
        ('traits."plain" = 1', "traits.plain = 1"),
        ("traits.x　=　1", "traits.x = 1"),  # ideographic spaces
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    assert to_text(parse(text)) == canonical


def test_precedence() -> None:
    a, b, c = (r.Cmp("=", r.Trait(k), r.Lit(1)) for k in "abc")
    same(parse("traits.a = 1 or traits.b = 1 and traits.c = 1"), r.Or((a, r.And((b, c)))))
    same(parse("not traits.a = 1 and traits.b = 1"), r.And((r.Not(a), b)))
    same(parse("not (traits.a = 1 and traits.b = 1)"), r.Not(r.And((a, b))))
    assert to_text(r.And((r.Or((a, b)), c))) == "(traits.a = 1 or traits.b = 1) and traits.c = 1"
    assert to_text(r.Or((r.And((a, b)), c))) == "traits.a = 1 and traits.b = 1 or traits.c = 1"


def test_literal_types_survive() -> None:
    rule = 'traits.a in (1, 1.0, true, null, "1") and traits.b = date("2024-06-01")'
    node = parse(rule)
    assert isinstance(node, r.And) and isinstance(node.items[0], r.In)
    assert [type(v) for v in node.items[0].values] == [int, float, bool, type(None), str]
    assert node.items[1] == r.Cmp("=", r.Trait("b"), r.Lit(date(2024, 6, 1)))
    when = parse('count(since date("2024-06-01T08:30:00")) > 0')
    assert isinstance(when, r.Cmp) and isinstance(when.left, r.Agg)
    assert when.left.since == datetime(2024, 6, 1, 8, 30)


def test_want() -> None:
    assert parse('count(event = "x")', want="value") == r.Agg(
        "count", where=(r.EventFilter(r.EventField("event"), "=", "x"),)
    )
    with pytest.raises(r.RuleError, match="is a value, not a condition") as e:
        parse("  count()", want="condition")
    assert (e.value.line, e.value.column) == (1, 3)
    with pytest.raises(r.RuleError, match="where a value is needed"):
        parse("traits.a = 1", want="value")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RULES)
def test_random_trees_round_trip(node: r.Node) -> None:
    check(node)
    text = to_text(node)
    same(parse(text), node)
    assert to_text(parse(text)) == text


# -- errors -----------------------------------------------------------------------------

ERRORS = [
    ("traits.age >= and", 1, 15, ['expected a value after ">="', 'found "and"', "traits.city"]),
    ('cnt(event = "x") > 1', 1, 1, ['unknown function "cnt"', "did you mean count?"]),
    (
        'count(evnt = "x") > 1',
        1,
        7,
        ['unknown event field "evnt"', "did you mean event?", "properties.<key>", "timestamp"],
    ),
    ('traits.city = "上海 and\ntraits.a = 1', 1, 15, ["string", "line 1, column 15", "not closed"]),
    (
        "(traits.a = 1 and (traits.b = 2)",
        1,
        33,
        ['expected ")"', '"(" at line 1, column 1', "end of the rule"],
    ),
    ("traits.a = 1 traits.b = 2", 1, 14, ['unexpected "traits.b" after a complete rule']),
    ("traits.a = 1)", 1, 13, ['unexpected ")" after a complete rule', 'no "("']),
    ("count(within 0d) > 1", 1, 14, ["duration '0d' is not valid", "90d"]),
    ("count(within 9) > 1", 1, 14, ["within needs a duration such as 90d"]),
    ("sum() > 1", 1, 5, ["sum needs the event field", "sum(amount"]),
    ('avg(event = "x") > 1', 1, 11, ["avg takes its field first", "avg(event, "]),
    ("count(amount) > 1", 1, 7, ["count takes no field", "sum(amount)"]),
    ("traits.a in ()", 1, 14, ['the list after "in" is empty']),
    ("traits.a = 1 and\n  traits.b = 2 and\n    traits.c => 3", 3, 14, ['"=>"', "write >="]),
    (
        "traits.a = 1 and\n  traits.b = 2 and\n    bogus = 3",
        3,
        5,
        ['unknown name "bogus"', "traits.bogus"],
    ),
    ("", 1, 1, ["the rule is empty"]),
    ("traits.a = 1 and ", 1, 18, ['expected a condition after "and"', "end of the rule"]),
    ("not traits.a", 1, 5, ["traits.a is a value, not a condition"]),
    ("traits.a = null", 1, 10, ["never true", "traits.a is null"]),
    ('brand > "x"', 1, 7, ["brand is a set", 'brand = "x"']),
    ('count(between "2024-02-01" and "2024-01-01") > 1', 1, 1, ["time window is empty"]),
    ('date("2024-13-01") < now()', 1, 6, ["not an ISO date", "2024-06-01"]),
    ("traits.a （= 1", 1, 10, ['unexpected "（"', "ASCII ("]),
    ("traits.城市 = 1", 1, 8, ['expected a key after "traits."', 'traits."城市"']),
    ('case when tag("a") then 1', 1, 26, ['expected "end" to close the "case" at line 1']),
    ("traits.a = 90d", 1, 12, ['found "90d"', "ago(90d)"]),
    ("traits.a = 1 = 2", 1, 14, ["comparisons do not chain"]),
    ('traits.a = "x\\q"', 1, 14, ['unknown escape "\\q"']),
    ("properties.sku = 1", 1, 1, ["field of events", "count(properties.sku"]),
    ('count(event = "x", within 1d, within 2d)', 1, 31, ["within is given twice"]),
]


@pytest.mark.parametrize(("text", "line", "column", "words"), ERRORS)
def test_errors_say_where_and_how(text: str, line: int, column: int, words: list[str]) -> None:
    with pytest.raises(r.RuleError) as e:
        parse(text)
    message = str(e.value)
    assert (e.value.line, e.value.column) == (line, column), message
    assert message.startswith(f"line {line}, column {column}: "), message
    for word in words:
        assert word in message, (word, message)


def test_every_error_is_a_rule_error() -> None:
    """Every prefix of a valid rule either parses or raises RuleError with a position."""
    text = to_text(parse(EXAMPLES[19])) + ' and case when tag("x") then 1 else 2 end = 1'
    for i in range(len(text)):
        try:
            parse(text[:i])
        except r.RuleError as e:
            assert e.line == 1 and e.column is not None and 1 <= e.column <= i + 1


def test_to_text_refuses_nan() -> None:
    with pytest.raises(r.RuleError, match="finite"):
        to_text(r.Cmp("=", r.Trait("a"), r.Lit(float("nan"))))


TOKENS = [
    "traits.a",
    'traits."城 市"',
    "tag(",
    '"x"',
    "'y'",
    "1",
    "-2.5",
    "90d",
    "(",
    ")",
    ",",
    "=",
    "!=",
    ">=",
    "<",
    "contains",
    "and",
    "or",
    "not",
    "in",
    "is",
    "null",
    "between",
    "case",
    "when",
    "then",
    "else",
    "end",
    "true",
    "count(",
    "sum(",
    "amount",
    "event",
    "properties.sku",
    "within",
    "since",
    "date(",
    '"2024-01-01"',
    "ago(",
    "now(",
    "brand",
    "identifier(",
    "\n",
    "=>",
    "（",
    '"open',
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join) | st.text(max_size=20))
def test_any_text_gives_a_rule_or_a_positioned_error(text: str) -> None:
    try:
        node = parse(text)
    except r.RuleError as e:
        assert e.line is not None and e.column is not None, str(e)
        assert 1 <= e.line <= text.count("\n") + 1
        return
    same(parse(to_text(node)), node)


def test_deep_nesting_is_a_rule_error_not_a_crash() -> None:
    parse("not " * 99 + 'tag("a")')
    parse("(" * 99 + 'tag("a")' + ")" * 99)
    with pytest.raises(r.RuleError, match="nests more than 100 levels") as e:
        parse("(" * 5000 + 'tag("a")' + ")" * 5000)
    assert (e.value.line, e.value.column) == (1, 101)
