"""The identifiers a batch of events carries, as columns: Arrow and numpy, no per-row Python.

One row per (event, identifier): ``userId`` and ``anonymousId`` (scoped to the source),
then the ``identifiers`` column the ingest layer extracted (traits, context.traits,
context.externalIds, the device id). Python runs once per distinct type name, raw value
or identifier, never per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from quanyu.errors import ValidationFailed
from quanyu.identity.types import IdentifierType, Scope

_ITEM = pa.struct([("type", pa.string()), ("value", pa.string()), ("scope", pa.string())])
_LINES = pa.schema([("i", pa.list_(_ITEM))])
UNKNOWN_SCOPE = "-"


@dataclass(frozen=True)
class Occurrences:
    """Identifier occurrences in event order (and within an event, in the order found)."""

    event: np.ndarray  # int64: row of the event in the batch
    types: list[IdentifierType | None]  # per distinct type: the rules' type, or None
    type_index: np.ndarray  # int64 index into ``types``
    scope: pa.Array  # string: brand, app or source id; "" for group-scoped types
    stored: pa.Array  # string: the value as stored (PII sealed in tokens)


def _parsed(identifiers: pa.Array) -> pa.Array:
    """The JSON ``identifiers`` texts (no nulls) parsed into list<struct> in C++."""
    lines = pc.binary_join_element_wise('{"i":', identifiers, "}", "")
    whole = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
    text = pc.binary_join(whole, "\n")[0].as_buffer()
    table = pj.read_json(
        pa.BufferReader(text), parse_options=pj.ParseOptions(explicit_schema=_LINES)
    )
    return table.column("i").combine_chunks()


def collect(events: pa.Table, type_of: Callable[[str], IdentifierType]) -> Occurrences:
    """Every identifier occurrence of ``events`` (EVENTS_TO_RESOLVE's columns), values as
    stored (PII still sealed: see :func:`opened`)."""
    n = events.num_rows
    rows = pa.array(np.arange(n, dtype=np.int64))
    ev_parts: list[pa.Array] = []
    type_parts: list[pa.Array] = []
    scope_parts: list[pa.Array] = []
    raw_parts: list[pa.Array] = []
    for column in ("user_id", "anonymous_id"):
        values = events.column(column).combine_chunks()
        keep = pc.fill_null(pc.not_equal(values, ""), False)
        ev_parts.append(rows.filter(keep))
        count = len(ev_parts[-1])
        type_parts.append(pa.array([column] * count, pa.string()))
        scope_parts.append(pa.nulls(count, pa.string()))
        raw_parts.append(values.filter(keep))
    found = events.column("identifiers").combine_chunks()
    has = pc.is_valid(found)
    if pc.any(has).as_py():
        lists = _parsed(found.filter(has))
        items = pc.list_flatten(lists)
        parent = pc.list_parent_indices(lists).to_numpy()
        ev_parts.append(pa.array(rows.filter(has).to_numpy()[parent]))
        type_parts.append(items.field("type"))
        scope_parts.append(items.field("scope"))
        raw_parts.append(items.field("value"))
    event = pa.concat_arrays(ev_parts).to_numpy()
    order = np.argsort(event, kind="stable")  # event order, found order within an event
    event = event[order]
    take = pa.array(order)
    type_name = pa.concat_arrays(type_parts).take(take)
    given = pa.concat_arrays(scope_parts).take(take)
    raw = pa.concat_arrays(raw_parts).take(take)

    names = pc.dictionary_encode(type_name)
    types: list[IdentifierType | None] = []
    for name in names.dictionary.to_pylist():
        try:
            types.append(type_of(name))
        except ValidationFailed:
            types.append(None)  # a type name with nothing usable in it: not an identifier
    type_index = names.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    scope = _scopes(events, event, types, type_index, given)
    return Occurrences(event, types, type_index, scope, pc.fill_null(raw, ""))


def opened(stored: pa.Array, open_value: Callable[[str], str]) -> pa.Array:
    """``stored`` values with PII tokens opened (each distinct value once)."""
    values = pc.dictionary_encode(stored)
    plain = pa.array([open_value(v) for v in values.dictionary.to_pylist()], pa.string())
    return plain.take(values.indices)


def _scopes(
    events: pa.Table,
    event: np.ndarray,
    types: list[IdentifierType | None],
    type_index: np.ndarray,
    given: pa.Array,
) -> pa.Array:
    """Each occurrence's scope value: "" (group), the source, or the brand or app given
    (the event's brand for a brand-scoped identifier that names none)."""
    at = pa.array(event)
    source = events.column("source_id").take(at).combine_chunks()
    brand = events.column("brand_id").take(at).combine_chunks()
    scope_of = np.array([t.scope.value if t else "" for t in types] or [""], dtype=object)
    kind = pa.array(scope_of[type_index].tolist() if len(type_index) else [], pa.string())
    named = pc.replace_substring(given, ":", "_")
    brand_scope = pc.coalesce(named, pc.replace_substring(brand, ":", "_"), UNKNOWN_SCOPE)
    app_scope = pc.coalesce(named, UNKNOWN_SCOPE)
    out = pc.if_else(
        pc.equal(kind, Scope.SOURCE.value),
        source,
        pc.if_else(
            pc.equal(kind, Scope.BRAND.value),
            brand_scope,
            pc.if_else(pc.equal(kind, Scope.APP.value), app_scope, ""),
        ),
    )
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
