"""The bitmap index against plain Python sets: every query, every column kind, round trips."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from quanyu.audiences.bitmaps import IndexFormatError, Layout, ProfileIndex, Scalar, bitmap_of
from quanyu.errors import InvalidRequest, NotFound

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
NUMBERS = [-math.inf, -1.5, -0.0, 0.0, 1.0, 2.0, 2.5, 7.0, 1e12, math.inf, math.nan]
POOLS: dict[str, list[object]] = {
    "str": ["gold", "silver", "bronze", "上海", "", "Gold"],
    "bool": [True, False],
    "int": [0, 1, 2, 3, -5],
    "float": [0.0, 1.0, 2.5, -0.0, math.nan],
}
QUERY_VALUES: list[Scalar] = [
    "gold", "ol", "上海", "", True, False, 0, 1, 1.0, 2.5, -5, None, math.nan,
]  # fmt: skip
TEXTS = ["", "ol", "o", "上", "G", "zz"]
BRANDS = ["A", "B", "C", "D"]

# ids: sparse, including the extremes of uint32
ids_strategy = st.lists(
    st.one_of(st.integers(0, 200), st.integers(2**32 - 50, 2**32 - 1)), unique=True, max_size=60
)
layouts = st.builds(Layout, st.integers(1, 4), st.integers(1, 4), st.integers(0, 5))


def same(a: object, b: object) -> bool:
    """Equality as the rule language sees it: text, booleans and numbers never meet."""
    if a is None or b is None or isinstance(b, float) and math.isnan(b):
        return False
    if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, str) != isinstance(b, str):
        return False
    return a == b


def as_set(bitmap: BitMap) -> set[int]:
    assert isinstance(bitmap, BitMap)
    return set(bitmap)


@st.composite
def numbers_data(draw: st.DrawFn) -> tuple[list[int], dict[int, float | None], Layout]:
    universe = draw(ids_strategy)
    subset = draw(st.lists(st.sampled_from(universe), unique=True)) if universe else []
    values = {p: draw(st.one_of(st.none(), st.sampled_from(NUMBERS))) for p in subset}
    return universe, values, draw(layouts)


@given(numbers_data(), st.sampled_from(NUMBERS), st.sampled_from(NUMBERS))
@settings(max_examples=400, deadline=None)
def test_numbers_match_python(data: tuple[list[int], dict[int, float | None], Layout],
                              c: float, d: float) -> None:  # fmt: skip
    universe, values, layout = data
    ix = ProfileIndex(np.array(universe, np.int64), layout=layout)
    ix.add_numbers("spend", np.array(list(values), np.int64),
                   np.array([np.nan if v is None else v for v in values.values()]))  # fmt: skip
    known = {p: v for p, v in values.items() if v is not None and not math.isnan(v)}
    assert as_set(ix.universe) == set(universe)
    assert as_set(ix.present("spend")) == set(known)
    for op, fn in OPS.items():
        expected = set() if math.isnan(c) else {p for p, v in known.items() if fn(v, c)}
        assert as_set(ix.compare("spend", op, c)) == expected
    lo, hi = min(c, d), max(c, d)
    expected = {p for p, v in known.items() if lo <= v <= hi}
    assert as_set(ix.between("spend", lo, hi)) == expected
    assert as_set(ix.between("spend", hi, lo)) == (expected if lo == hi else set())
    hits = {p for p, v in known.items() if v in (c, d)}
    assert as_set(ix.isin("spend", [c, d])) == hits
    # unbuilt, intersected with a set already built, they answer the same
    within = BitMap(universe[::2])
    for op in ("=", "<", "<=", ">", ">="):
        lazy = ix.lazy_compare("spend", op, c)
        assert lazy is not None and lazy.size >= len(ix.compare("spend", op, c))
        assert lazy.within(within) == ix.compare("spend", op, c) & within
        assert lazy.build() == ix.compare("spend", op, c)
    lazy = ix.lazy_between("spend", lo, hi)
    assert lazy is not None and lazy.within(within) == ix.between("spend", lo, hi) & within
    assert ix.lazy_compare("spend", "!=", c) is None
    assert ix.lazy_isin("spend", [c]) is None


@st.composite
def value_data(draw: st.DrawFn) -> tuple[list[int], dict[int, object], Layout]:
    universe = draw(ids_strategy)
    pool = POOLS[draw(st.sampled_from(sorted(POOLS)))]
    subset = draw(st.lists(st.sampled_from(universe), unique=True)) if universe else []
    values = {p: draw(st.one_of(st.none(), st.sampled_from(pool))) for p in subset}
    return universe, values, draw(layouts)


@given(value_data(), st.sampled_from(QUERY_VALUES), st.lists(st.sampled_from(QUERY_VALUES)),
       st.sampled_from(TEXTS))  # fmt: skip
@settings(max_examples=400, deadline=None)
def test_values_match_python(data: tuple[list[int], dict[int, object], Layout],
                             v: Scalar, vs: list[Scalar], text: str) -> None:  # fmt: skip
    universe, values, layout = data
    ix = ProfileIndex(np.array(universe, np.int64), layout=layout)
    ix.add_values("tier", np.array(list(values), np.int64), np.array(list(values.values()), object))
    known = {p: x for p, x in values.items() if same(x, x)}  # drops None and NaN
    assert as_set(ix.present("tier")) == set(known)
    hits = {p for p, x in known.items() if same(x, v)}
    assert as_set(ix.equals("tier", v)) == hits
    missing = v is None or isinstance(v, float) and math.isnan(v)
    expected = set() if missing else {p for p, x in known.items() if not same(x, v)}
    assert as_set(ix.compare("tier", "!=", v)) == expected
    hits = {p for p, x in known.items() if any(same(x, y) for y in vs)}
    assert as_set(ix.isin("tier", vs)) == hits
    within = BitMap(universe[1::2])
    lazy = ix.lazy_isin("tier", vs)
    assert lazy is not None and lazy.size >= len(hits) and lazy.build() == ix.isin("tier", vs)
    assert lazy.within(within) == ix.isin("tier", vs) & within
    lazy = ix.lazy_compare("tier", "=", v)
    assert lazy is not None and lazy.within(within) == ix.equals("tier", v) & within
    assert ix.lazy_present("tier").within(within) == ix.present("tier") & within
    assert ix.lazy_compare("tier", "!=", v) is None
    matched = {p for p, x in known.items() if isinstance(x, str) and text in x}
    assert as_set(ix.contains("tier", text)) == matched
    assert as_set(ix.compare("tier", "contains", text)) == matched
    distinct = ix.distinct("tier")
    assert len(distinct) == len({(type(x) is bool, x) for x in known.values()})


@st.composite
def set_data(draw: st.DrawFn) -> tuple[list[int], list[tuple[int, str | None]]]:
    universe = draw(ids_strategy)
    if not universe:
        return universe, []
    pairs = st.tuples(st.sampled_from(universe), st.one_of(st.none(), st.sampled_from(BRANDS)))
    return universe, draw(st.lists(pairs, max_size=120))


@given(set_data(), st.sampled_from([*BRANDS, "Z"]), st.lists(st.sampled_from([*BRANDS, "Z"])))
@settings(max_examples=300, deadline=None)
def test_sets_match_python(data: tuple[list[int], list[tuple[int, str | None]]],
                           v: str, vs: list[str]) -> None:  # fmt: skip
    universe, pairs = data
    ix = ProfileIndex(np.array(universe, np.int64))
    ix.add_set("brand", np.array([p for p, _ in pairs], np.int64),
               np.array([b for _, b in pairs], object))  # fmt: skip
    held: dict[int, set[str]] = {}
    for p, b in pairs:
        if b is not None:
            held.setdefault(p, set()).add(b)
    assert as_set(ix.present("brand")) == set(held)
    assert as_set(ix.equals("brand", v)) == {p for p, s in held.items() if v in s}
    others = {p for p, s in held.items() if v not in s}
    assert as_set(ix.compare("brand", "!=", v)) == others
    hits = {p for p, s in held.items() if s & set(vs)}
    assert as_set(ix.isin("brand", vs)) == hits
    assert ix.kind("brand") == "set"


def _full_index(layout: Layout) -> ProfileIndex:
    rng = np.random.default_rng(7)
    ids = rng.choice(3000, 1000, replace=False)
    ix = ProfileIndex(ids, layout=layout)
    spend = np.round(rng.lognormal(3, 1, 1000), 0)
    spend[rng.random(1000) < 0.3] = np.nan
    ix.add_numbers("spend", ids, spend)
    tiers = np.array(["gold", "silver", None, "上海"], object)[rng.integers(0, 4, 1000)]
    ix.add_values("tier", ids, tiers)
    ix.add_values("vip", ids[:500], rng.random(500) < 0.3)
    ix.add_values("level", ids[:200], rng.integers(0, 5, 200))
    ix.add_set("brand", np.concatenate([ids, ids[:400]]), rng.choice(BRANDS, 1400))
    return ix


def _answers(ix: ProfileIndex) -> list[BitMap]:
    out = [ix.universe, ix.present("spend"), ix.equals("vip", True), ix.equals("level", 3)]
    out += [ix.compare("spend", op, 20.0) for op in OPS]
    out += [ix.between("spend", 5, 50), ix.contains("tier", "ol"), ix.isin("brand", ["A", "B"])]
    out += [ix.compare("tier", "!=", "gold"), ix.compare("brand", "!=", "C")]
    return out


@pytest.mark.parametrize("layout", [Layout(), Layout(3, 2, 10), Layout(1, 1, 0)])
def test_bytes_round_trip(layout: Layout) -> None:
    ix = _full_index(layout)
    back = ProfileIndex.from_bytes(ix.to_bytes())
    assert back.columns == ix.columns
    assert back.stats() == ix.stats()
    assert _answers(back) == _answers(ix)
    assert back.to_bytes() == ix.to_bytes()


def test_damaged_bytes_are_refused() -> None:
    data = _full_index(Layout(2, 2, 10)).to_bytes()
    with pytest.raises(IndexFormatError, match="not a profile index"):
        ProfileIndex.from_bytes(b"hello" + data)
    with pytest.raises(IndexFormatError, match="damaged"):
        ProfileIndex.from_bytes(data[: len(data) // 2])
    newer = data[:8] + (2).to_bytes(4, "little") + data[12:]
    with pytest.raises(IndexFormatError, match="format 2"):
        ProfileIndex.from_bytes(newer)


def test_numbers_at_scale_match_numpy() -> None:
    """Bucketed paths with many rows per bucket, against numpy masks."""
    rng = np.random.default_rng(3)
    ids = rng.choice(900_000, 300_000, replace=False)
    values = np.round(rng.lognormal(4, 1.2, len(ids)), 1)
    values[rng.random(len(ids)) < 0.2] = np.nan
    ix = ProfileIndex(ids, layout=Layout(4, 4, 5000))
    ix.add_numbers("spend", ids, values)
    known = ~np.isnan(values)
    within = bitmap_of(rng.choice(900_000, 20_000, replace=False))  # what an AND has left
    for c in [*np.quantile(values[known], [0, 0.01, 0.3, 0.5, 0.77, 0.99, 1]), 55.0, -1.0]:
        for op, fn in OPS.items():
            expected = bitmap_of(ids[known & fn(values, c)])
            assert ix.compare("spend", op, c) == expected, (op, c)
            lazy = ix.lazy_compare("spend", op, c)
            if op != "!=":
                assert lazy is not None and lazy.within(within) == expected & within, (op, c)
        hi = c * 1.7
        expected = bitmap_of(ids[known & (values >= c) & (values <= hi)])
        assert ix.between("spend", c, hi) == expected
        lazy = ix.lazy_between("spend", c, hi)
        assert lazy is not None and lazy.within(within) == expected & within


def test_results_belong_to_the_caller() -> None:
    ix = _full_index(Layout(2, 2, 10))
    before = _answers(ix)
    for bitmap in _answers(ix):
        bitmap.clear()
    ix.compare("spend", ">=", -1.0).clear()  # the whole present set
    assert _answers(ix) == before


def test_columns_grow_the_universe() -> None:
    ix = ProfileIndex()
    ix.add_values("tier", np.array([5, 9]), ["gold", "silver"])
    ix.add_numbers("spend", np.array([9, 12]), np.array([1.0, np.nan]))
    assert as_set(ix.universe) == {5, 9}  # 12 has no value
    assert ix.has("tier") and not ix.has("city")
    assert ix.stats()["columns"]["spend"]["profiles"] == 1


def test_inputs_from_arrow_and_times() -> None:
    ix = ProfileIndex()
    chunked = pa.chunked_array([["a", None], ["b", "a"]])
    ix.add_values("city", np.arange(4), chunked)
    assert as_set(ix.equals("city", "a")) == {0, 3}
    ix.add_values("tier", np.arange(3), pa.array(["x", "y", "x"]).dictionary_encode())
    assert as_set(ix.equals("tier", "x")) == {0, 2}
    ix.add_numbers("n", np.arange(3), pa.array([1, None, 3]))
    assert as_set(ix.compare("n", ">", 0)) == {0, 2}
    times = np.array(["2024-06-01T00:00:00", "NaT", "2024-06-02T00:00:00"], "datetime64[s]")
    ix.add_numbers("seen", np.arange(3), times)
    assert as_set(ix.compare("seen", ">=", 1717200000)) == {0, 2}  # 2024-06-01 UTC
    stamps = pa.array([1717200000_000, None], pa.timestamp("ms", tz="UTC"))
    ix.add_numbers("at", np.arange(2), stamps)
    assert as_set(ix.compare("at", "=", 1717200000)) == {0}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda ix: ix.add_values("t", np.array([1, 1]), ["a", "b"]), "add_set"),
        (lambda ix: ix.add_numbers("n", np.array([1, 1]), np.array([1.0, 2.0])), "one number"),
        (lambda ix: ix.add_values("t", np.array([1, 2]), [1, "a"]), "one type per column"),
        (lambda ix: ix.add_values("t", np.array([1]), ["a", "b"]), "1 profile ids but 2"),
        (lambda ix: ix.add_values("t", np.array([-1]), ["a"]), r"\[0, 4294967295\]"),
        (lambda ix: ix.add_values("t", np.array([2**32]), ["a"]), r"\[0, 4294967295\]"),
        (lambda ix: ix.add_values("t", np.array([1.5]), ["a"]), "integers"),
        (lambda ix: ix.add_numbers("n", np.array([1]), ["a"]), "not numbers"),
        (lambda ix: ix.add_numbers("n", np.array([1]), np.array([True])), "not numbers"),
        (lambda ix: ix.compare("tier", "<", "gold"), "=, != or contains only"),
        (lambda ix: ix.compare("spend", ">", "10"), "compare it with a number"),
        (lambda ix: ix.compare("spend", "=", True), "compare it with a number"),
        (lambda ix: ix.compare("spend", "~", 1), "not one of"),
        (lambda ix: ix.contains("spend", "1"), "text column"),
        (lambda ix: ix.between("tier", 1, 2), "numbers column"),
        (lambda ix: ix.equals("tier", b"gold"), "cannot be indexed"),
    ],
)
def test_bad_input_is_refused(build: Callable[[ProfileIndex], object], message: str) -> None:
    ix = _full_index(Layout(2, 2, 10))
    with pytest.raises(InvalidRequest, match=message):
        build(ix)


def test_unknown_column_is_not_found() -> None:
    with pytest.raises(NotFound, match="'city' is not in the profile index"):
        _full_index(Layout()).equals("city", "上海")


def test_bitmap_of_takes_any_order_and_duplicates() -> None:
    ids = np.array([2**32 - 1, 5, 3, 5, 0], np.int64)
    assert as_set(bitmap_of(ids)) == {0, 3, 5, 2**32 - 1}
    assert len(bitmap_of(np.array([], np.int64))) == 0
