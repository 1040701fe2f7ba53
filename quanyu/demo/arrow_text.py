"""Vectorised string building with pyarrow compute for the demo generator.

Element-wise concatenation and templating of string arrays, null-aware takes, fixed-width
ASCII tokens built straight from numpy buffers, and the renderings of phones and names.
No Python loop runs per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.demo.reference import _GIVEN, _PHONE_FORMATS, _SURNAMES, Arr

_B64 = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_STR_NULL = pa.scalar(None, pa.string())


def _cat(*parts: Any) -> Any:
    """Concatenate string arrays and literals element-wise; null where any part is null."""
    return pc.binary_join_element_wise(*parts, "")


def _tpl(template: str, *values: Any) -> Any:
    """Fill each ``%s`` of ``template`` with a string array, element-wise (null propagates)."""
    literals = template.split("%s")
    parts = [x for lit, v in zip(literals[:-1], values, strict=True) for x in (lit, v)]
    return _cat(*(x for x in [*parts, literals[-1]] if not isinstance(x, str) or x))


def _join(*parts: Any) -> Any:
    """Concatenate element-wise, leaving out null parts.

    Every call passes a part that is never null: Arrow's "skip" join drops rows whose
    inputs are all null (seen with pyarrow 26), which would misalign the column.
    """
    return pc.binary_join_element_wise(*parts, "", null_handling="skip")


def _masked(values: Any, index: Arr, mask: Arr | None = None) -> Any:
    """``values.take(index)``, null wherever ``mask`` is False."""
    idx = pa.array(index, type=pa.int64(), mask=None if mask is None else ~mask)
    return values.take(idx)


def _scatter(subset: Any, mask: Arr) -> Any:
    """Spread ``subset`` (one value per True in ``mask``) to full length, null elsewhere."""
    return _masked(subset, np.cumsum(mask) - 1, mask)


def _lookup(values: Sequence[str], index: Arr) -> Any:
    """A small list of strings taken by index."""
    return pa.array(values, type=pa.string()).take(pa.array(index, type=pa.int64()))


def _ints(values: Arr, width: int = 0) -> Any:
    out = pc.cast(pa.array(values, type=pa.int64()), pa.string())
    return pc.utf8_lpad(out, width=width, padding="0") if width else out


def _money(fen: Arr) -> Any:
    """Fen amounts as JSON numbers with two decimals: 12990 → 129.90."""
    return _cat(_ints(fen // 100), ".", _ints(fen % 100, 2))


def _fixed_strings(chars: Arr) -> Any:
    """One ASCII string per row of a uint8 matrix, built straight from its buffer."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8).tobytes()
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def _tokens(rng: np.random.Generator, n: int, length: int, prefix: bytes) -> Any:
    body = _B64[rng.integers(0, len(_B64), (n, length - len(prefix)))]
    head = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (n, len(prefix)))
    return _fixed_strings(np.hstack([head, body]))


def _uuids(rng: np.random.Generator, n: int) -> Any:
    hexes = _HEX[rng.integers(0, 16, (n, 32))]
    hexes[:, 12] = ord("4")  # version 4
    hexes[:, 16] = np.frombuffer(b"89ab", dtype=np.uint8)[rng.integers(0, 4, n)]  # RFC 4122
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    parts = (
        hexes[:, :8],
        dash,
        hexes[:, 8:12],
        dash,
        hexes[:, 12:16],
        dash,
        hexes[:, 16:20],
        dash,
        hexes[:, 20:],
    )
    return _fixed_strings(np.hstack(parts))


def _format_phones(canonical: Any, fmt: Arr) -> Any:
    """Render 11-digit phones in the format chosen per row (see ``_PHONE_FORMATS``)."""
    pre, sep1, sep2 = (_lookup([f[i] for f in _PHONE_FORMATS], fmt) for i in range(3))
    head = pc.utf8_slice_codeunits(canonical, 0, 3)
    mid = pc.utf8_slice_codeunits(canonical, 3, 7)
    return _cat(pre, head, sep1, mid, sep2, pc.utf8_slice_codeunits(canonical, 7, 11))


def _names(sur: Arr, g1: Arr, g2: Arr) -> Any:
    """Chinese names from surname and given-character indices (g2 = -1: one character)."""
    second = pc.fill_null(_masked(pa.array(_GIVEN), np.maximum(g2, 0), g2 >= 0), "")
    return _cat(_lookup([s[0] for s in _SURNAMES], sur), _lookup(_GIVEN, g1), second)
