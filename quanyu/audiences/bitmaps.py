"""An in-memory bitmap index of one tenant's profiles: audience conditions in milliseconds.

Pure: no I/O. A :class:`ProfileIndex` holds roaring bitmaps of profile ids (non-negative
integers below 2**32): the universe of every profile, one bitmap per distinct value of a
categorical column, and sorted arrays plus cumulative bitmaps for numeric columns. Every
query returns a new :class:`pyroaring.BitMap` the caller owns (and may change), to combine
with ``&``, ``|`` and ``-`` like sets.

Semantics follow the rule language (``quanyu/tags/rules.py``): a comparison with a missing
value is false. So ``compare(c, "!=", v)`` holds for profiles that *have* a value in ``c``
other than ``v`` (never for profiles without one), and a query whose literal is missing
(``None``, NaN) matches nobody. Values are typed: text, booleans and numbers are distinct
(``True`` is not ``1``; ``1`` is ``1.0``).

Column kinds:

- ``values`` (:meth:`ProfileIndex.add_values`): at most one text, boolean or number per
  profile; ``=``, ``!=``, ``in`` and ``contains`` (substring of text values).
- ``set`` (:meth:`ProfileIndex.add_set`): any number of values per profile (brands,
  channels). ``=``/``in`` test membership; ``!=`` is "has some value, and not this one".
- ``numbers`` (:meth:`ProfileIndex.add_numbers`): float64 (or datetime64 / Arrow
  timestamps, stored as epoch seconds); every comparison and ``between``, exact with ties.

How numeric ranges stay fast: the (value, profile) pairs are sorted by value once and cut
into ``coarse * fine`` equal-count buckets. For each coarse boundary the index keeps the
bitmap of every profile before it, and inside each coarse block the bitmap of the profiles
from the block's start to each fine boundary. A range of positions is then one difference
of two coarse bitmaps (the only pass over a large bitmap), two in-place steps with inner
bitmaps, and one merge with a bitmap built from the partial buckets at both ends (at most
two buckets of the sorted array); ties are never split, as bounds come from
``searchsorted``. See :class:`Layout` and
``benchmarks/bench_bitmaps.py`` for memory against speed.

An index is built once, then only read: reads from many threads are safe, building is not.
"""

from __future__ import annotations

import array
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap

from quanyu.errors import InvalidRequest, NotFound, QuanyuError

Kind = Literal["values", "numbers", "set"]
Op = Literal["=", "!=", "<", "<=", ">", ">=", "contains"]
OPS = ("=", "!=", "<", "<=", ">", ">=", "contains")
Scalar: TypeAlias = str | bool | int | float | None
#: A typed value: ("s", text), ("b", boolean) or ("n", number).
Key: TypeAlias = tuple[str, str | bool | int | float]
IdArray: TypeAlias = npt.NDArray[np.uint32]
FloatArray: TypeAlias = npt.NDArray[np.float64]
MAX_ID = 2**32 - 1


class IndexFormatError(QuanyuError):
    """Bytes given to :meth:`ProfileIndex.from_bytes` are not a readable index."""

    code = "index_format"


def bitmap_of(ids: npt.NDArray[Any]) -> BitMap:
    """A bitmap of the given profile ids (any order, duplicates allowed).

    Sorting first makes the roaring build about ten times faster than from random order;
    the ids go through ``array.array('I')``, roaring's bulk-add path.
    """
    return BitMap(_array_of(ids))


def _array_of(ids: npt.NDArray[Any]) -> array.array[int]:
    out = array.array("I")
    out.frombytes(np.sort(np.asarray(ids, dtype=np.uint32)).tobytes())
    return out


def union(bitmaps: Iterable[BitMap]) -> BitMap:
    """A new bitmap, the union of any number of bitmaps (roaring's many-way union)."""
    items = list(bitmaps)
    if len(items) < 2:
        # `BitMap() | b` copies several times faster than `b.copy()` (pyroaring 1.2)
        return BitMap() | items[0] if items else BitMap()
    return BitMap.union(*items)


@dataclass(frozen=True)
class Layout:
    """How numeric columns are cut: ``coarse`` blocks of ``fine`` buckets each.

    More buckets make ranges faster and cost memory: at 7M values among 30M ids,
    8 x 8 takes about 73 MB of bitmaps beside the 84 MB of sorted arrays. A slice of at
    most ``direct_rows`` rows is built straight from the array, and a column with no more
    rows than that keeps no bucket bitmaps at all.
    """

    coarse: int = 8
    fine: int = 8
    direct_rows: int = 1 << 17

    def __post_init__(self) -> None:
        if self.coarse < 1 or self.fine < 1 or self.direct_rows < 0:
            raise InvalidRequest(
                f"layout {self} is not valid: coarse and fine must be at least 1,"
                " direct_rows at least 0"
            )


def key_of(value: object) -> Key | None:
    """The typed key of a literal, or None when it is missing (None or NaN).

    Raises:
        InvalidRequest: the value is not text, a boolean or a number.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return None
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("n", value)
    if isinstance(value, float):
        return None if value != value else ("n", value)
    if isinstance(value, str):
        return ("s", value)
    raise InvalidRequest(
        f"value {value!r} of type {type(value).__name__} cannot be indexed or compared:"
        " use text, a boolean or a number"
    )


class ValueColumn:
    """A categorical column (``values``) or a multi-valued one (``set``)."""

    def __init__(self, kind: Kind, bitmaps: dict[Key, BitMap], present: BitMap) -> None:
        self.kind = kind
        self.bitmaps = bitmaps
        self.present = present
        texts = [(k[1], b) for k, b in bitmaps.items() if k[0] == "s"]
        self._texts = pa.array([t for t, _ in texts], pa.string())
        self._text_bitmaps = [b for _, b in texts]

    def equals(self, keys: Iterable[Key]) -> BitMap:
        """Profiles with one of these values (among their values, for a set)."""
        return union(self.bitmaps[k] for k in dict.fromkeys(keys) if k in self.bitmaps)

    def other(self, key: Key) -> BitMap:
        """Profiles with a value, and (for a set: among their values) not this one."""
        found = self.bitmaps.get(key)
        return union([self.present]) if found is None else self.present - found

    def contains(self, text: str) -> BitMap:
        """Profiles with a text value that contains ``text`` (case-sensitive)."""
        hits = np.flatnonzero(pc.match_substring(self._texts, text).to_numpy(False))
        return union(self._text_bitmaps[i] for i in hits)

    def memory_bytes(self) -> int:
        """Approximate bytes held: every bitmap's serialised size."""
        return _bitmap_bytes([self.present, *self.bitmaps.values()])


class NumberColumn:
    """A numeric column: values sorted with their profile ids, and prefix bitmaps.

    ``coarse[c]`` holds the profiles at positions ``[0, c*fine*step)`` and
    ``inner[c*fine + j]`` those at ``[c*fine*step, (c*fine + j)*step)``; slot 0 of each
    is empty. Both lists are empty when the column is small enough to build directly.
    """

    kind: Kind = "numbers"

    def __init__(
        self,
        values: FloatArray,
        ids: IdArray,
        present: BitMap,
        layout: Layout,
        coarse: list[BitMap] | None = None,
        inner: list[BitMap] | None = None,
    ) -> None:
        self.values, self.ids, self.present, self.layout = values, ids, present, layout
        n, buckets = len(ids), layout.coarse * layout.fine
        self.step = max(1, -(-n // buckets))
        if coarse is None or inner is None:
            coarse, inner = self._build() if n > layout.direct_rows else ([], [])
        self.coarse, self.inner = coarse, inner

    def _build(self) -> tuple[list[BitMap], list[BitMap]]:
        fine, s, n = self.layout.fine, self.step, len(self.ids)
        coarse, inner = [BitMap()], []
        for c in range(self.layout.coarse):
            inner.append(BitMap())
            for j in range(1, fine):
                start = (c * fine + j - 1) * s
                inner.append(inner[-1] | bitmap_of(self.ids[start : min(start + s, n)]))
            if c + 1 < self.layout.coarse:
                last = (c * fine + fine - 1) * s
                tail = bitmap_of(self.ids[last : min(last + s, n)])
                coarse.append(BitMap.union(coarse[-1], inner[-1], tail))
        return coarse, inner

    def rows(self, lo: int, hi: int) -> BitMap:
        """Profiles at sorted positions ``[lo, hi)``: a new bitmap."""
        n, step = len(self.ids), self.step
        # whole buckets in [lo, hi); the last one may be short
        first, last = -(-lo // step), (hi // step if hi < n else -(-n // step))
        if hi - lo <= self.layout.direct_rows or not self.coarse or first >= last:
            return bitmap_of(self.ids[lo:hi])
        found = self._buckets(first, last)
        rest = np.concatenate([self.ids[lo : first * step], self.ids[last * step : hi]])
        # a merge: `found.update(ids)` inserts into array containers one by one, with
        # tails of 20+ ms at 10M profiles
        found |= bitmap_of(rest)
        return found

    def rows_within(self, lo: int, hi: int, acc: BitMap) -> BitMap:
        """``acc`` and the profiles at sorted positions ``[lo, hi)``: a new bitmap.

        The buckets between are the profiles before ``last`` less those before
        ``first`` (prefixes are nested), each intersected with ``acc`` first: every step
        costs what ``acc`` holds, not what the prefixes hold.
        """
        n, step = len(self.ids), self.step
        first, last = -(-lo // step), (hi // step if hi < n else -(-n // step))
        if hi - lo <= self.layout.direct_rows or not self.coarse or first >= last:
            return acc & bitmap_of(self.ids[lo:hi])
        base_hi, more = self._prefix(last)
        base_lo, less = self._prefix(first)
        # new bitmaps at each step: pyroaring's in-place forms cost two to three times more
        found = (acc - base_lo) & base_hi
        if more:
            found = found | (acc & more)  # positions after base_hi's: none in base_lo
        if less:
            found = found - less
        rest = np.concatenate([self.ids[lo : first * step], self.ids[last * step : hi]])
        if len(rest):
            found = found | (acc & bitmap_of(rest))
        return found

    def positions(self, op: str, value: float) -> tuple[int, int] | None:
        """The sorted positions ``[lo, hi)`` where ``op value`` holds (None for ``!=``)."""
        left = int(np.searchsorted(self.values, value, "left"))
        right = int(np.searchsorted(self.values, value, "right"))
        ranges = {
            "=": (left, right),
            "<": (0, left),
            "<=": (0, right),
            ">": (right, len(self.ids)),
            ">=": (left, len(self.ids)),
        }
        return ranges.get(op)

    def _buckets(self, first: int, last: int) -> BitMap:
        """Profiles of buckets ``[first, last)``: a new bitmap.

        One pass over a large bitmap (``base_hi - base_lo``), then in-place steps with the
        smaller inner bitmaps. Each position holds another profile, so ``less`` lies in
        ``base_hi - base_lo``, or (same coarse block) inside ``more``.
        """
        base_hi, more = self._prefix(last)
        base_lo, less = self._prefix(first)
        found = BitMap() if base_hi is base_lo else base_hi - base_lo
        if more:
            found |= more
        if less:
            found -= less
        return found

    def _prefix(self, bucket: int) -> tuple[BitMap, BitMap | None]:
        """The profiles before a bucket: a coarse bitmap and an inner one to add (or None)."""
        if bucket * self.step >= len(self.ids):
            return self.present, None
        inner = self.inner[bucket] if bucket % self.layout.fine else None
        return self.coarse[bucket // self.layout.fine], inner

    def compare(self, op: str, value: float) -> BitMap:
        """Profiles whose value compares true with ``value`` (not NaN)."""
        if op == "!=":
            return self.present - self.rows(*(self.positions("=", value) or (0, 0)))
        found = self.positions(op, value)
        return self.rows(*found) if found else BitMap()

    def between(self, low: float, high: float) -> BitMap:
        """Profiles with ``low <= value <= high``."""
        lo = int(np.searchsorted(self.values, low, "left"))
        return self.rows(lo, int(np.searchsorted(self.values, high, "right")))

    def memory_bytes(self) -> int:
        """Approximate bytes held: the arrays plus every bitmap's serialised size."""
        bitmaps = _bitmap_bytes([self.present, *self.coarse, *self.inner])
        return int(self.values.nbytes + self.ids.nbytes) + bitmaps


Column: TypeAlias = ValueColumn | NumberColumn


class Lazy:
    """A set the index can name without building it, for intersections (``AND``).

    ``size`` bounds how many profiles it holds, so a conjunction can start from its
    smallest part; :meth:`within` intersects it with a set already built, touching only
    the containers that set has, where building it first would copy or merge megabytes
    at 10M profiles.
    """

    size: int

    def build(self) -> BitMap:
        """The set itself: a new bitmap."""
        raise NotImplementedError

    def within(self, acc: BitMap) -> BitMap:
        """``acc`` and this set: a new bitmap."""
        raise NotImplementedError


class Stored(Lazy):
    """The union of bitmaps the index stores (a value, a tag's presence, brands)."""

    def __init__(self, bitmaps: list[BitMap]) -> None:
        self.bitmaps = bitmaps
        self.size = sum(len(b) for b in bitmaps)

    def build(self) -> BitMap:
        return union(self.bitmaps)

    def within(self, acc: BitMap) -> BitMap:
        if len(self.bitmaps) == 1:
            return acc & self.bitmaps[0]
        return union([acc & b for b in self.bitmaps])


class Positions(Lazy):
    """The profiles at sorted positions ``[lo, hi)`` of a numbers column (a range)."""

    def __init__(self, column: NumberColumn, lo: int, hi: int) -> None:
        self.column, self.lo, self.hi = column, lo, max(lo, hi)
        self.size = self.hi - self.lo

    def build(self) -> BitMap:
        return self.column.rows(self.lo, self.hi)

    def within(self, acc: BitMap) -> BitMap:
        return self.column.rows_within(self.lo, self.hi, acc)


def _bitmap_bytes(bitmaps: Iterable[BitMap]) -> int:
    unique = {id(b): b for b in bitmaps}
    return sum(b.__sizeof__() for b in unique.values())


# -- building columns -------------------------------------------------------------------


def profile_ids_of(name: str, profile_ids: object) -> IdArray:
    """Profile ids as uint32, checked to be whole numbers in ``[0, 2**32)``.

    Raises:
        InvalidRequest: the ids are not a 1-D array of integers in range.
    """
    ids = np.asarray(profile_ids)
    if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
        raise InvalidRequest(
            f"profile ids for {name!r} must be a 1-D array of integers, not {ids.dtype}"
            f" with shape {ids.shape}"
        )
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) > MAX_ID):
        raise InvalidRequest(
            f"profile ids for {name!r} run from {ids.min()} to {ids.max()}: they must lie in"
            f" [0, {MAX_ID}]"
        )
    return ids.astype(np.uint32)


def _arrow(column: str, values: object) -> Any:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InvalidRequest(
            f"values of column {column!r} are not all text, all booleans or all numbers ({e}):"
            " pass one type per column"
        ) from e


def _check_length(column: str, ids: IdArray, n_values: int) -> None:
    if len(ids) != n_values:
        raise InvalidRequest(
            f"column {column!r} has {len(ids)} profile ids but {n_values} values:"
            " pass one value per profile id"
        )


def build_values(column: str, kind: Kind, ids: IdArray, values: object) -> ValueColumn:
    """A ``values`` or ``set`` column from parallel arrays; nulls and NaN are skipped.

    Raises:
        InvalidRequest: lengths differ, the values are not text/boolean/number, or (for
            ``values``) a profile has two different values.
    """
    arr = _arrow(column, values)
    _check_length(column, ids, len(arr))
    if pa.types.is_null(arr.type):
        return ValueColumn(kind, {}, BitMap())
    enc = arr if pa.types.is_dictionary(arr.type) else arr.dictionary_encode()
    value_type = enc.type.value_type
    if not (
        pa.types.is_string(value_type)
        or pa.types.is_large_string(value_type)
        or pa.types.is_boolean(value_type)
        or pa.types.is_integer(value_type)
        or pa.types.is_floating(value_type)
    ):
        raise InvalidRequest(
            f"column {column!r} holds {value_type} values: index text, booleans or numbers,"
            " or use add_numbers for times converted to epoch seconds"
        )
    # NaN becomes missing and equal keys (0.0 and -0.0) share a group
    groups: dict[Key, int] = {}
    table = np.full(len(enc.dictionary) + 1, -1, np.int64)
    for code, value in enumerate(enc.dictionary.to_pylist()):
        key = key_of(value)
        if key is not None:
            table[code] = groups.setdefault(key, len(groups))
    codes = table[enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)]
    keep = codes >= 0
    packed = (codes[keep].astype(np.uint64) << np.uint64(32)) | ids[keep].astype(np.uint64)
    packed.sort()
    starts = np.searchsorted(packed >> np.uint64(32), np.arange(len(groups) + 1, dtype=np.uint64))
    sorted_ids = (packed & np.uint64(MAX_ID)).astype(np.uint32)
    bitmaps = {
        key: bitmap_of(sorted_ids[starts[g] : starts[g + 1]])
        for key, g in groups.items()
        if starts[g + 1] > starts[g]
    }
    present = union(bitmaps.values())
    held = sum(len(b) for b in bitmaps.values())
    if kind == "values" and held != len(present):
        raise InvalidRequest(
            f"column {column!r}: {held - len(present)} profile values belong to profiles that"
            " already have another value; use add_set for a column with several values each"
        )
    return ValueColumn(kind, bitmaps, present)


def _floats(column: str, values: object) -> FloatArray:
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        seconds = values.astype("datetime64[us]").astype(np.int64) / 1e6
        seconds[np.isnat(values)] = np.nan
        return seconds
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return values.astype(np.float64)
    arr = _arrow(column, values)
    if pa.types.is_timestamp(arr.type):
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[arr.type.unit]
        arr = pc.divide(pc.cast(pc.cast(arr, pa.int64()), pa.float64()), scale)
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_null)
    if not any(is_type(arr.type) for is_type in numeric):
        raise InvalidRequest(
            f"column {column!r} holds {arr.type} values, not numbers: use add_values for text"
            " and booleans, or convert times to epoch seconds"
        )
    floats: FloatArray = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
    return floats


def build_numbers(column: str, ids: IdArray, values: object, layout: Layout) -> NumberColumn:
    """A ``numbers`` column from parallel arrays; NaN, NaT and nulls are missing.

    Raises:
        InvalidRequest: lengths differ, values are not numeric, or a profile has two values.
    """
    floats = _floats(column, values)
    _check_length(column, ids, len(floats))
    keep = ~np.isnan(floats)
    kept = floats[keep]
    order = np.argsort(kept)  # ties may come in any order: ranges never split them
    sorted_values, sorted_ids = kept[order], ids[keep][order]
    present = bitmap_of(sorted_ids)
    if len(present) != len(sorted_ids):
        raise InvalidRequest(
            f"column {column!r}: {len(sorted_ids) - len(present)} values belong to profiles"
            " that already have one; pass one number per profile"
        )
    return NumberColumn(sorted_values, sorted_ids, present, layout)


# -- the index --------------------------------------------------------------------------


class ProfileIndex:
    """Bitmaps for one tenant: every profile, each tag/trait value, each brand/channel,
    numeric columns. Every query returns a new bitmap of profile ids.

    Build it once (``add_*`` replaces a column of the same name), then share it read-only.
    ``universe`` is every profile: those given here and every profile with a value in a
    column (pass profiles without values, or null ones only, to the constructor).
    Read it, never change it in place (``index.universe - x`` is a new bitmap).
    """

    def __init__(
        self, profile_ids: npt.NDArray[Any] | None = None, *, layout: Layout | None = None
    ) -> None:
        """Start an index.

        Args:
            profile_ids: profiles of the tenant (any order), also those without any value.
            layout: how numeric columns are bucketed (see :class:`Layout`).
        """
        ids = profile_ids_of("universe", [] if profile_ids is None else profile_ids)
        self.universe: BitMap = bitmap_of(ids)
        self.layout = layout or Layout()
        self._columns: dict[str, Column] = {}

    # building

    def add_values(self, column: str, profile_ids: npt.NDArray[Any], values: object) -> None:
        """Index a column with at most one text, boolean or number per profile.

        ``values`` is a numpy array, a list or an Arrow array parallel to ``profile_ids``;
        None, NaN and nulls are skipped. Raises InvalidRequest on bad input (see
        :func:`build_values`).
        """
        ids = profile_ids_of(column, profile_ids)
        self._add(column, build_values(column, "values", ids, values))

    def add_set(self, column: str, profile_ids: npt.NDArray[Any], values: object) -> None:
        """Index a multi-valued column (brand, channel): a profile may come with several
        values, one (profile id, value) pair per row. Raises as :meth:`add_values`."""
        ids = profile_ids_of(column, profile_ids)
        self._add(column, build_values(column, "set", ids, values))

    def add_numbers(self, column: str, profile_ids: npt.NDArray[Any], values: object) -> None:
        """Index a numeric column for range queries.

        ``values``: numbers (NaN and nulls are missing), numpy datetime64 or Arrow timestamps
        (both stored as epoch seconds: compare them with epoch seconds). Raises
        InvalidRequest on bad input (see :func:`build_numbers`).
        """
        ids = profile_ids_of(column, profile_ids)
        self._add(column, build_numbers(column, ids, values, self.layout))

    def _add(self, column: str, built: Column) -> None:
        self.universe |= built.present
        self._columns[column] = built

    # describing

    @property
    def columns(self) -> list[str]:
        """Names of the indexed columns, in the order they were added."""
        return list(self._columns)

    def has(self, column: str) -> bool:
        """Whether the column is indexed."""
        return column in self._columns

    def kind(self, column: str) -> Kind:
        """``values``, ``numbers`` or ``set``. Raises NotFound for an unknown column."""
        return self._column(column).kind

    def memory_bytes(self) -> int:
        """Approximate bytes held: arrays plus each bitmap's serialised size."""
        return self.universe.__sizeof__() + sum(c.memory_bytes() for c in self._columns.values())

    def stats(self) -> dict[str, Any]:
        """Profiles, memory and per-column figures (kind, profiles, distinct values or rows)."""
        columns: dict[str, dict[str, Any]] = {}
        for name, col in self._columns.items():
            figures: dict[str, Any] = {"kind": col.kind, "profiles": len(col.present)}
            if isinstance(col, NumberColumn):
                figures["buckets"] = len(col.inner)
            else:
                figures["distinct"] = len(col.bitmaps)
            columns[name] = figures | {"memory_bytes": col.memory_bytes()}
        return {
            "profiles": len(self.universe),
            "memory_bytes": self.memory_bytes(),
            "layout": {"coarse": self.layout.coarse, "fine": self.layout.fine},
            "columns": columns,
        }

    # querying

    def _column(self, column: str) -> Column:
        try:
            return self._columns[column]
        except KeyError:
            raise NotFound(
                f"column {column!r} is not in the profile index ({len(self._columns)} columns"
                " are): add it with add_values, add_numbers or add_set, or check has() first"
            ) from None

    def _number(self, column: str, value: object) -> float | None:
        if isinstance(value, np.generic):
            value = value.item()
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return None if value != value else float(value)
        raise InvalidRequest(
            f"column {column!r} holds numbers: compare it with a number, not {value!r}"
        )

    def distinct(self, column: str) -> list[Scalar]:
        """The distinct values of a ``values`` or ``set`` column, in first-seen order.

        Raises NotFound for an unknown column, InvalidRequest for a numbers column.
        """
        col = self._column(column)
        if isinstance(col, NumberColumn):
            raise InvalidRequest(f"column {column!r} holds numbers: ask for a range instead")
        return [value for _, value in col.bitmaps]

    def counts(self, column: str, members: BitMap) -> dict[Scalar, int]:
        """How many of ``members`` have each value of a ``values`` or ``set`` column.

        Reads the stored bitmaps in place: ``equals`` would copy each (at 10M profiles
        a brand's bitmap is megabytes) only to count an intersection.
        Raises NotFound for an unknown column, InvalidRequest for a numbers column.
        """
        col = self._column(column)
        if isinstance(col, NumberColumn):
            raise InvalidRequest(f"column {column!r} holds numbers: ask for a range instead")
        return {value: members.intersection_cardinality(b) for (_, value), b in col.bitmaps.items()}

    def present(self, column: str) -> BitMap:
        """Profiles with any value in the column."""
        return union([self._column(column).present])

    def equals(self, column: str, value: Scalar) -> BitMap:
        """Profiles whose value is ``value`` (for a set: who have it among their values).

        A missing literal (None, NaN) matches nobody. Raises NotFound for an unknown
        column and InvalidRequest for a non-number on a numbers column.
        """
        return self.compare(column, "=", value)

    def isin(self, column: str, values: Iterable[Scalar]) -> BitMap:
        """Profiles whose value is one of ``values`` (for a set: who have any of them).

        Raises as :meth:`equals`.
        """
        col = self._column(column)
        if isinstance(col, NumberColumn):
            return union(self.equals(column, v) for v in values)
        return col.equals(k for k in map(key_of, values) if k is not None)

    def compare(self, column: str, op: Op | str, value: Scalar) -> BitMap:
        """Profiles for whom ``<column> <op> <value>`` is true; ``op`` is one of :data:`OPS`.

        Numbers take every operator; ``values`` and ``set`` columns take ``=``, ``!=`` and
        ``contains``. ``!=`` holds for profiles that have a value and not this one (for a
        set: have some value, and not this one); a missing value never compares true.

        Raises:
            NotFound: the column is not indexed.
            InvalidRequest: an unknown operator, or one the column's kind does not take,
                or a literal of the wrong type.
        """
        if op not in OPS:
            raise InvalidRequest(f"operator {op!r} is not one of {', '.join(OPS)}")
        if op == "contains":
            if not isinstance(value, str):
                raise InvalidRequest(f"contains on {column!r} takes text, not {value!r}")
            return self.contains(column, value)
        col = self._column(column)
        if isinstance(col, NumberColumn):
            number = self._number(column, value)
            return BitMap() if number is None else col.compare(op, number)
        if op not in ("=", "!="):
            raise InvalidRequest(
                f"column {column!r} holds {col.kind}, compared with =, != or contains only,"
                f" not {op}: index it with add_numbers to compare by order"
            )
        key = key_of(value)
        if key is None:
            return BitMap()
        return col.equals([key]) if op == "=" else col.other(key)

    # naming sets without building them (for intersections)

    def lazy_present(self, column: str) -> Lazy:
        """:meth:`present`, unbuilt. Raises NotFound for an unknown column."""
        return Stored([self._column(column).present])

    def lazy_isin(self, column: str, values: Iterable[Scalar]) -> Lazy | None:
        """:meth:`isin` unbuilt, for ``values`` and ``set`` columns (None for numbers).
        Raises NotFound for an unknown column."""
        col = self._column(column)
        if isinstance(col, NumberColumn):
            return None
        keys = dict.fromkeys(k for k in map(key_of, values) if k is not None)
        return Stored([col.bitmaps[k] for k in keys if k in col.bitmaps])

    def lazy_compare(self, column: str, op: str, value: Scalar) -> Lazy | None:
        """:meth:`compare` unbuilt where that is cheap: ``=`` on any column, ``<``,
        ``<=``, ``>``, ``>=`` on numbers; None otherwise (ask :meth:`compare`).
        Raises as :meth:`compare`."""
        col = self._column(column)
        if isinstance(col, NumberColumn):
            if op not in ("=", "<", "<=", ">", ">="):
                return None
            number = self._number(column, value)
            found = None if number is None else col.positions(op, number)
            return Positions(col, *found) if found else Stored([])
        return self.lazy_isin(column, [value]) if op == "=" else None

    def lazy_between(self, column: str, low: float, high: float) -> Lazy | None:
        """:meth:`between` unbuilt (None for a column that is not numbers)."""
        col = self._column(column)
        if not isinstance(col, NumberColumn):
            return None
        lo, hi = self._number(column, low), self._number(column, high)
        if lo is None or hi is None or lo > hi:
            return Stored([])
        start = int(np.searchsorted(col.values, lo, "left"))
        return Positions(col, start, int(np.searchsorted(col.values, hi, "right")))

    def between(self, column: str, low: float, high: float) -> BitMap:
        """Profiles with ``low <= value <= high`` on a numbers column (empty if low > high).

        Raises NotFound for an unknown column, InvalidRequest for a non-numbers column.
        """
        col = self._column(column)
        if not isinstance(col, NumberColumn):
            raise InvalidRequest(
                f"between needs a numbers column; {column!r} holds {col.kind}:"
                " index it with add_numbers"
            )
        lo, hi = self._number(column, low), self._number(column, high)
        if lo is None or hi is None or lo > hi:
            return BitMap()
        return col.between(lo, hi)

    def contains(self, column: str, text: str) -> BitMap:
        """Profiles with a text value containing ``text`` (case-sensitive substring).

        Raises NotFound for an unknown column, InvalidRequest for a numbers column.
        """
        col = self._column(column)
        if isinstance(col, NumberColumn):
            raise InvalidRequest(
                f"contains needs a text column; {column!r} holds numbers: use =, <, > or between"
            )
        return col.contains(text)

    # serialising

    def to_bytes(self) -> bytes:
        """The whole index as bytes (portable roaring bitmaps, little-endian arrays)."""
        return _dump(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> ProfileIndex:
        """An index from :meth:`to_bytes` output.

        Raises:
            IndexFormatError: the bytes are not an index this version wrote, or are damaged.
        """
        return _load(cls, data)


# -- bytes: MAGIC, version and manifest length, the JSON manifest, then the blobs ---------

MAGIC = b"QYBITMAP"
VERSION = 1
_HEAD = struct.Struct("<IQ")


class _Blobs:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, blob: bytes) -> list[int]:
        self.parts.append(blob)
        self.size += len(blob)
        return [self.size - len(blob), len(blob)]

    def bitmaps(self, bitmaps: Iterable[BitMap]) -> list[list[int]]:
        return [self.add(b.serialize()) for b in bitmaps]


def _dump(index: ProfileIndex) -> bytes:
    blobs = _Blobs()
    columns: list[dict[str, Any]] = []
    for name, col in index._columns.items():
        entry: dict[str, Any] = {"name": name, "kind": col.kind}
        entry["present"] = blobs.add(col.present.serialize())
        if isinstance(col, NumberColumn):
            entry["values"] = blobs.add(col.values.astype("<f8").tobytes())
            entry["ids"] = blobs.add(col.ids.astype("<u4").tobytes())
            entry["bucketed"] = bool(col.coarse)
            entry["coarse"] = blobs.bitmaps(col.coarse[1:])
            fine = col.layout.fine
            entry["inner"] = blobs.bitmaps(b for i, b in enumerate(col.inner) if i % fine)
        else:
            entry["keys"] = [list(k) for k in col.bitmaps]
            entry["bitmaps"] = blobs.bitmaps(col.bitmaps.values())
        columns.append(entry)
    layout = index.layout
    manifest = {
        "layout": [layout.coarse, layout.fine, layout.direct_rows],
        "universe": blobs.add(index.universe.serialize()),
        "columns": columns,
    }
    text = json.dumps(manifest).encode()
    return b"".join([MAGIC, _HEAD.pack(VERSION, len(text)), text, *blobs.parts])


def _load(cls: type[ProfileIndex], data: bytes) -> ProfileIndex:
    if not data.startswith(MAGIC):
        raise IndexFormatError("the bytes are not a profile index (no QYBITMAP header)")
    try:
        version, length = _HEAD.unpack_from(data, len(MAGIC))
        if version != VERSION:
            raise IndexFormatError(
                f"profile index format {version} is not readable here (this version reads"
                f" {VERSION}): rebuild the index"
            )
        start = len(MAGIC) + _HEAD.size
        manifest = json.loads(data[start : start + length])
        return _restore(cls, manifest, memoryview(data)[start + length :])
    except (ValueError, KeyError, TypeError, IndexError, struct.error, InvalidRequest) as e:
        raise IndexFormatError(f"the profile index bytes are damaged ({e}): rebuild it") from e


def _restore(cls: type[ProfileIndex], manifest: Any, blob: memoryview) -> ProfileIndex:
    def part(ref: list[int]) -> memoryview:
        offset, size = ref
        if offset < 0 or size < 0 or offset + size > len(blob):
            raise ValueError(f"blob {ref} lies outside the data")
        return blob[offset : offset + size]

    def bitmap(ref: list[int]) -> BitMap:
        return BitMap.deserialize(bytes(part(ref)))

    index = cls(layout=Layout(*manifest["layout"]))
    index.universe = bitmap(manifest["universe"])
    for entry in manifest["columns"]:
        present = bitmap(entry["present"])
        col: Column
        if entry["kind"] == "numbers":
            values = np.frombuffer(part(entry["values"]), "<f8").astype(np.float64)
            ids = np.frombuffer(part(entry["ids"]), "<u4").astype(np.uint32)
            if len(values) != len(ids) or len(ids) != len(present):
                raise ValueError(f"column {entry['name']!r} has arrays of different lengths")
            coarse, inner = [BitMap(), *map(bitmap, entry["coarse"])], []
            loaded, fine = [bitmap(r) for r in entry["inner"]], index.layout.fine
            for c in range(index.layout.coarse if entry["bucketed"] else 0):
                inner += [BitMap(), *loaded[c * (fine - 1) : (c + 1) * (fine - 1)]]
            bucketed = (coarse, inner) if entry["bucketed"] else ([], [])
            col = NumberColumn(values, ids, present, index.layout, *bucketed)
        elif entry["kind"] in ("values", "set"):
            keys = [(str(k[0]), k[1]) for k in entry["keys"]]
            bitmaps = dict(zip(keys, map(bitmap, entry["bitmaps"]), strict=True))
            col = ValueColumn(entry["kind"], bitmaps, present)
        else:
            raise ValueError(f"column {entry['name']!r} has unknown kind {entry['kind']!r}")
        index._columns[entry["name"]] = col
    return index
