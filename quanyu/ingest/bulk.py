"""Bulk import: Arrow tables of Segment-shaped rows, or of profile records, into events.

Preparation moves whole columns, never rows: fields are found by name (Segment's
names, then snake_case aliases), cast to text or timestamps with ``pyarrow.compute``,
and one SQL statement (:data:`quanyu.ingest.bulk_sql.PREPARE_EVENTS`) validates them
with the tracking API's rules, fills in the Segment defaults, extracts identifiers and
flags repeats. Only rejected rows, which are few, are handled one by one.

A row without a ``messageId`` gets ``imp-<md5 of its content>``, so importing the same
file twice stores nothing the second time. Timestamps are kept as given (no clock-skew
correction), like Segment's ``/v1/import``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.engine import Session, Statement
from quanyu.errors import InvalidRequest
from quanyu.ingest import bulk_sql as q
from quanyu.ingest.normalize import MAX_MESSAGE_BYTES, TYPES, PlanChecker, Reject
from quanyu.ingest.schema import EVENT_COLUMNS
from quanyu.ingest.writer import EVENT_SCHEMA
from quanyu.tenancy.models import Source

Kind = Literal["events", "profiles"]
#: A column a client sets on a line it could not parse (kept as text, rejected here).
UNPARSED = "_unparsed"

_TS = pa.timestamp("us")
_TEXT = (
    "source",
    "type",
    "event",
    "name",
    "user_id",
    "anonymous_id",
    "group_id",
    "previous_id",
    "message_id",
)
_JSON = ("properties", "traits", "context", "integrations")
_TIMES = ("ts", "original", "sent")
#: Where each staged field is read from, in order of preference.
FIELDS: dict[str, tuple[str, ...]] = {
    "source": ("source", "sourceId", "source_id"),
    "type": ("type",),
    "event": ("event",),
    "name": ("name",),
    "user_id": ("userId", "user_id"),
    "anonymous_id": ("anonymousId", "anonymous_id"),
    "group_id": ("groupId", "group_id"),
    "previous_id": ("previousId", "previous_id"),
    "message_id": ("messageId", "message_id"),
    "ts": ("timestamp",),
    "original": ("originalTimestamp", "original_timestamp"),
    "sent": ("sentAt", "sent_at"),
    "properties": ("properties",),
    "traits": ("traits",),
    "context": ("context",),
    "integrations": ("integrations",),
}
#: Columns of a profile record that describe the record rather than the person.
PROFILE_FIELDS = ("source", "user_id", "anonymous_id", "message_id", "ts")
ROWS_SCHEMA = pa.schema(
    [("_row", pa.int64())]
    + [(f, pa.string()) for f in _TEXT]
    + [
        (c, t)
        for f in _TIMES
        for c, t in ((f if f == "ts" else f"{f}_ts", _TS), (f"{f}_text", pa.string()))
    ]
    + [(f, pa.string()) for f in _JSON]
    + [("pre_code", pa.string()), ("pre_value", pa.string())]
)
#: Rows per Arrow chunk handed to DuckDB, which scans a registered table one chunk per
#: thread: a batch in one chunk would be prepared (and inserted) on one core.
SCAN_ROWS = 16_384
_SOURCES_SCHEMA = pa.schema(
    [("id", pa.string()), ("tenant_id", pa.string()), ("brand_id", pa.string())]
)


@dataclass
class Rejected:
    """One row that was not imported: where it was, what it held and why."""

    index: int
    row: str
    code: str
    message: str
    message_id: str | None
    event_type: str | None
    event: str | None


@dataclass
class Prepared:
    """A batch made ready: events in the events table's layout plus the rejected rows."""

    events: pa.Table
    rows: pa.Array  # the batch position of each event
    rejected: list[Rejected]
    read: int
    valid: int  # rows that passed validation, repeats within the batch included


def apply_mapping(table: pa.Table, mapping: dict[str, str]) -> pa.Table:
    """Rename columns ``source -> target``.

    Raises:
        InvalidRequest: a mapped column is missing, or a target clashes with a column
            the mapping leaves in place.
    """
    if not mapping:
        return table
    names = table.column_names
    missing = [s for s in mapping if s not in names]
    if missing:
        raise InvalidRequest(
            f"Mapped column {missing[0]!r} is not in the data; its columns are"
            f" {', '.join(names)}: fix the --map source name."
        )
    kept = set(names) - set(mapping)
    clash = [t for t in mapping.values() if t in kept]
    if clash:
        raise InvalidRequest(
            f"Mapping to {clash[0]!r} clashes with the column of that name: map that one away"
            f" too (--map {clash[0]}=other) or drop the mapping."
        )
    return table.rename_columns([mapping.get(n, n) for n in names])


def _run(
    db: Session, name: str, table: pa.Table, stmt: Statement, params: list[Any] | None = None
) -> pa.Table:
    """Run ``stmt`` with ``table`` registered as ``name``; return its result."""
    db.register(name, table)
    try:
        return db.arrow(stmt, params)
    finally:
        db.unregister(name)


def _find(table: pa.Table, field: str) -> str | None:
    return next((n for n in FIELDS[field] if n in table.column_names), None)


def _text(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Values as text, the way normalize._str gives ids: "" is null, 1.0 is "1"."""
    t = arr.type
    if pa.types.is_dictionary(t):
        return _text(arr.cast(t.value_type))
    if pa.types.is_floating(t):
        whole = pc.and_(pc.equal(pc.floor(arr), arr), pc.less(pc.abs(arr), 9.0e15))
        as_int = pc.cast(pc.if_else(whole, arr, 0), pa.int64()).cast(pa.string())
        return pc.if_else(whole, as_int, arr.cast(pa.string()))
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "True", "False")
    if pa.types.is_nested(t):
        raise InvalidRequest(f"A column of type {t} cannot hold an id or a name: send text.")
    text = arr.cast(pa.string())
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _json_text(db: Session, arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """JSON text: structs and maps go through DuckDB's to_json; text stays as sent."""
    if pa.types.is_nested(arr.type):
        return _run(db, "bulk_values", pa.table({"v": arr}), q.VALUES_TO_JSON).column(0)
    return _text(arr)


def _time(arr: pa.ChunkedArray) -> tuple[pa.ChunkedArray | None, pa.ChunkedArray | None]:
    """(timestamps as naive UTC, or text for SQL to parse)."""
    t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        utc = pa.timestamp("us", tz="UTC") if getattr(t, "tz", None) else _TS
        # nanoseconds are cut to microseconds, the precision of the events table
        return pc.cast(pc.cast(arr, utc, safe=False), _TS), None
    return None, _text(arr)


def _stage(db: Session, table: pa.Table, profiles: bool) -> pa.Table:
    """``table`` in :data:`ROWS_SCHEMA`, the layout PREPARE_EVENTS reads."""
    n = table.num_rows
    cols: dict[str, pa.ChunkedArray | pa.Array] = {"_row": pa.array(np.arange(n, dtype=np.int64))}
    used: set[str] = {UNPARSED}
    for field in FIELDS:
        name = _find(table, field)
        if name is None or (profiles and field not in PROFILE_FIELDS):
            continue
        used.add(name)
        arr = table.column(name)
        if field in _TIMES:
            ts, text = _time(arr)
            cols["ts" if field == "ts" else f"{field}_ts"] = ts
            cols[f"{field}_text"] = text
        else:
            cols[field] = _json_text(db, arr) if field in _JSON else _text(arr)
    if profiles:
        cols["type"] = pa.array(["identify"] * n, pa.string())
        rest = [c for c in table.column_names if c not in used]
        if rest:
            traits = pa.StructArray.from_arrays(
                [table.column(c).combine_chunks() for c in rest], names=rest
            )
            cols["traits"] = _json_text(db, pa.chunked_array([traits]))
    if UNPARSED in table.column_names:
        raw = table.column(UNPARSED).cast(pa.string())
        cols["pre_code"] = pc.if_else(pc.is_null(raw), pa.scalar(None, pa.string()), "invalid_json")
        cols["pre_value"] = raw
    arrays = [cols.get(f.name) for f in ROWS_SCHEMA]
    staged = pa.table(
        [
            a if a is not None else pa.nulls(n, f.type)
            for a, f in zip(arrays, ROWS_SCHEMA, strict=True)
        ],
        schema=ROWS_SCHEMA,
    )
    return rechunk(staged)


def rechunk(table: pa.Table, rows: int = SCAN_ROWS) -> pa.Table:
    """``table`` in chunks of at most ``rows`` (zero-copy slices): DuckDB scans in parallel."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows), table.schema)


def _message(code: str, field: str | None, value: str | None, tenant: str) -> str:
    kinds = ", ".join(sorted(TYPES))
    if code == "unknown_type":
        return f"Unknown message type {value!r}: use one of {kinds}."
    if code == "unknown_source":
        return (
            f"Tenant {tenant} has no source {value!r}: fix the row's 'source' column"
            " (list the sources with 'quanyu sources list')."
        )
    if code == "message_too_large":
        return (
            f"The row is {value} bytes; the limit is {MAX_MESSAGE_BYTES}:"
            " trim its properties or traits."
        )
    if code == "invalid_json":
        return "The line is not a JSON object: fix or remove it."
    if code == "no_identifier":
        return (
            "The record has no identifier: give it a userId, phone, email, unionid, openid"
            " or member_id column (or map one: --map your_column=phone)."
        )
    if code == "missing_identity":
        return f"A {value} call needs a userId or an anonymousId; it had neither."
    if code == "missing_field":
        return {
            "alias": "An alias call needs both previousId and userId.",
            "track": "A track call needs a non-empty 'event' name.",
            "group": "A group call needs a groupId.",
        }.get(value or "", "A field is missing.")
    if field in ("timestamp", "originalTimestamp", "sentAt"):
        return f"Invalid message: {field!r} is not an ISO-8601 time: {value!r}."
    return f"Invalid message: {field!r} must be a JSON object."


def prepare(
    db: Session,
    table: pa.Table,
    *,
    kind: Kind,
    tenant: str,
    source: str,
    sources: list[Source],
    received_at: datetime,
) -> Prepared:
    """Validate and normalise one batch; nothing is stored.

    Args:
        db: a session to run the preparation SQL on (reads only what it registers).
        table: the rows as sent (after any column mapping).
        kind: ``events`` (Segment-shaped rows) or ``profiles`` (one person per row).
        tenant: the tenant importing.
        source: the source rows without a ``source`` column of their own go to.
        sources: the tenant's sources; a row naming any other source is rejected.
        received_at: naive UTC time of receipt (the timestamp of rows without one).
    """
    staged = _stage(db, table, kind == "profiles")
    known = pa.table(
        [[s.id for s in sources], [tenant] * len(sources), [s.brand_id for s in sources]],
        schema=_SOURCES_SCHEMA,
    )
    db.register("bulk_sources", known)
    try:
        out = _run(
            db,
            "bulk_rows",
            staged,
            q.PREPARE_EVENTS,
            [tenant, source, received_at, kind == "profiles", tenant],
        )
    finally:
        db.unregister("bulk_sources")
    out = out.take(pc.sort_indices(out.column("_row")))  # the row order of ``staged``
    ok = pc.is_null(out.column("reason_code"))
    n = staged.num_rows
    track = pc.equal(out.column("type"), "track")
    cols = {
        "tenant_id": _repeat(tenant, n),
        "event": pc.if_else(track, staged.column("event"), pa.scalar(None, pa.string())),
        "received_at": _repeat(received_at, n),
        "context": pc.fill_null(staged.column("context"), "{}"),
    }
    everything = pa.table(
        [
            cols[c] if c in cols else out.column(c) if c in out.column_names else staged.column(c)
            for c in EVENT_COLUMNS
        ]
        + [out.column("_row")],
        names=[*EVENT_COLUMNS, "_row"],
    )
    valid = everything if pc.all(ok).as_py() else everything.filter(ok)
    first = _first_of_each(valid)
    events = first.drop_columns(["_row"]).cast(EVENT_SCHEMA)
    bad = out.filter(pc.invert(ok))
    return Prepared(
        events,
        first.column("_row").combine_chunks(),
        _rejected(db, table, staged, bad, tenant),
        n,
        valid.num_rows,
    )


def _repeat(value: str | datetime, n: int) -> pa.Array:
    """``value`` ``n`` times, without a Python list of ``n`` items."""
    kind = pa.string() if isinstance(value, str) else _TS
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int32)), pa.array([value], kind)
    ).cast(kind)


def _first_of_each(valid: pa.Table) -> pa.Table:
    """The first row of each (source_id, message_id); later repeats are duplicates."""
    keys = ["source_id", "message_id"]
    if pc.count_distinct(valid.column("source_id")).as_py() <= 1:
        keys = ["message_id"]
        if pc.count_distinct(valid.column("message_id")).as_py() == valid.num_rows:
            return valid
    first = valid.group_by(keys, use_threads=False).aggregate([("_row", "min")])
    return valid.filter(pc.is_in(valid.column("_row"), first.column("_row_min")))


def _rejected(
    db: Session, table: pa.Table, staged: pa.Table, bad: pa.Table, tenant: str
) -> list[Rejected]:
    """The rejected rows, each whole as JSON with the reason (a loop: they are few)."""
    if not bad.num_rows:
        return []
    idx = bad.column("_row")
    body = table.take(idx).drop_columns([c for c in (UNPARSED,) if c in table.column_names])
    rows = _run(db, "bulk_rejected", body, q.ROWS_TO_JSON).column(0).to_pylist()
    events = staged.column("event").take(idx).to_pylist()
    out = []
    for i, r in enumerate(
        bad.select(
            ["_row", "reason_code", "reason_field", "reason_value", "message_id", "type"]
        ).to_pylist()
    ):
        code = r["reason_code"]
        row = r["reason_value"] if code == "invalid_json" else rows[i]
        out.append(
            Rejected(
                r["_row"],
                row or "{}",
                code,
                _message(code, r["reason_field"], r["reason_value"], tenant),
                r["message_id"],
                r["type"],
                events[i],
            )
        )
    return out


def apply_plan(
    events: pa.Table, rows: pa.Array, plan: PlanChecker
) -> tuple[pa.Table, list[Reject]]:
    """Check events (at batch positions ``rows``) against a tracking plan, as the API does.

    A loop over rows, paid only by sources that have a plan. Returns the events to
    store (blocked ones left out, unplanned properties dropped in omit mode) and the
    dead letters: blocked events ``rejected``, the others that broke a rule ``flagged``.
    """
    cols = events.select(["message_id", "type", "event", "properties", "traits"]).to_pydict()
    keep = np.ones(events.num_rows, dtype=bool)
    props: list[str | None] = cols["properties"]
    notes: list[Reject] = []
    at = rows.to_pylist()
    for i, (mid, kind, event, p, t) in enumerate(zip(*cols.values(), strict=True)):
        verdict = plan.check(kind, event, p.encode() if p else None, orjson.loads(t) if t else None)
        if verdict.violations:
            body = {
                "messageId": mid,
                "type": kind,
                "event": event,
                "properties": orjson.loads(p) if p else None,
                "traits": orjson.loads(t) if t else None,
            }
            notes.append(
                Reject(
                    at[i],
                    mid,
                    kind,
                    event,
                    verdict.violations[0].code,
                    "; ".join(v.message for v in verdict.violations),
                    orjson.dumps(body),
                    rule=", ".join(v.rule for v in verdict.violations),
                    disposition="rejected" if verdict.block else "flagged",
                )
            )
            keep[i] = not verdict.block
        if verdict.properties is not None:
            props[i] = verdict.properties.decode()
    events = events.set_column(
        events.schema.get_field_index("properties"), "properties", pa.array(props, pa.string())
    )
    return events.filter(pa.array(keep)), notes
