"""Bulk import API: a batch of rows as an Arrow IPC stream in, a summary out.

``quanyu import`` posts ~250,000-row batches here. Each batch is validated and
normalised as columns (:mod:`quanyu.ingest.bulk`), checked against the tracking plan of
a source that has one, and handed to the group-commit writer; the answer comes once
the events and the dead letters are committed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from quanyu.api.deps import IngestorDep, tenant_access
from quanyu.errors import InvalidRequest, PayloadTooLarge, Unavailable
from quanyu.ingest import bulk
from quanyu.ingest.normalize import Reject
from quanyu.ingest.service import Ingestor
from quanyu.ingest.writer import Chunk
from quanyu.observability import EVENTS_ACCEPTED, EVENTS_FLAGGED, EVENTS_REJECTED
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import Source, WriteKeyAuth

router = APIRouter(tags=["import"])

IngestWrite = Annotated[str, tenant_access("ingest", "write")]
MAX_BODY_BYTES = 1 << 30
ARROW_STREAM = "application/vnd.apache.arrow.stream"


class ImportKind(StrEnum):
    events = "events"
    profiles = "profiles"


class RejectedRow(BaseModel):
    index: int = Field(description="Position of the row in the posted batch (from 0).")
    row: Any = Field(description="The row as received (a JSON object, or the unparsed line).")
    code: str
    message: str


class ImportResult(BaseModel):
    read: int = Field(description="Rows in the batch.")
    loaded: int = Field(description="New events stored.")
    duplicates: int = Field(description="Valid rows already stored (or repeated in the batch).")
    rejected: dict[str, int] = Field(description="Rejected rows by reason code.")
    rejected_rows: list[RejectedRow]


async def read_table(request: Request) -> pa.Table:
    """The request body as an Arrow table (an Arrow IPC stream, within the size limit)."""
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"The batch is over {MAX_BODY_BYTES >> 20} MB: post fewer rows at a time."
            )
        parts.append(part)
    try:
        return pa.ipc.open_stream(b"".join(parts)).read_all()
    except (pa.ArrowInvalid, OSError) as e:
        raise InvalidRequest(f"The body is not an Arrow IPC stream ({ARROW_STREAM}): {e}.") from e


def _prepare(
    ingestor: Ingestor,
    table: pa.Table,
    *,
    kind: ImportKind,
    tenant: str,
    source: Source,
    received_at: datetime,
) -> tuple[bulk.Prepared, list[tuple[Source, pa.Table, list[Reject]]]]:
    """Prepare the batch and split its events by source, plan checks applied."""
    with ingestor.engine.connect() as db:
        sources = tenancy.list_sources(db, tenant=tenant)
        prepared = bulk.prepare(
            db,
            table,
            kind=kind.value,
            tenant=tenant,
            source=source.id,
            sources=sources,
            received_at=received_at,
        )
    by_id = {s.id: s for s in sources}
    sealer = ingestor.sealer_for(tenant)
    events = sealer.table(prepared.events) if sealer is not None else prepared.events
    ids = pc.unique(events.column("source_id")).to_pylist() if events.num_rows else []
    parts = []
    for sid in sorted(set(ids) | {source.id}):
        mask = pc.equal(events["source_id"], sid).combine_chunks()
        part, rows = (
            (events, prepared.rows)
            if ids == [sid]
            else (events.filter(mask), prepared.rows.filter(mask))
        )
        auth = WriteKeyAuth(
            key_id="import",
            tenant_id=tenant,
            source_id=sid,
            brand_id=by_id[sid].brand_id,
            rate_limit=None,
        )
        plan = ingestor.plan_for(auth) if part.num_rows else None
        notes: list[Reject] = []
        if plan is not None:
            part, notes = bulk.apply_plan(part, rows, plan)
        parts.append((by_id[sid], part, notes))
    return prepared, parts


async def _store(
    ingestor: Ingestor,
    parts: list[tuple[Source, pa.Table, list[Reject]]],
    rejects: list[Reject],
    *,
    tenant: str,
    source: Source,
    received_at: datetime,
) -> int:
    ingestor.scrub(tenant, [*rejects, *(r for _, _, notes in parts for r in notes)])
    chunks = [
        Chunk(
            tenant_id=tenant,
            source_id=src.id,
            brand_id=src.brand_id,
            received_at=received_at,
            events=events,
            dead=[*notes, *(rejects if src.id == source.id else [])],
        )
        for src, events, notes in parts
    ]
    chunks = [c for c in chunks if c.count or c.dead]
    try:
        stored = await asyncio.gather(
            *(asyncio.wrap_future(ingestor.writer.submit(c)) for c in chunks)
        )
    except Exception as e:  # noqa: BLE001 - the writer logged it; the client retries
        raise Unavailable(
            "The batch could not be committed (the server logged why); nothing of it was"
            " stored: post it again."
        ) from e
    for c in chunks:
        EVENTS_ACCEPTED.labels(c.source_id).inc(c.count)
        for r in c.dead:
            (EVENTS_REJECTED if r.disposition == "rejected" else EVENTS_FLAGGED).labels(
                c.source_id, r.code
            ).inc()
    # a commit shared with other chunks of the same source reports their rows too
    return sum(min(n, c.count) for n, c in zip(stored, chunks, strict=True))


@router.post(
    "/v1/tenants/{tenant_id}/sources/{source_id}/imports/{kind}",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_batch(
    tenant_id: IngestWrite,
    source_id: str,
    kind: ImportKind,
    request: Request,
    ingestor: IngestorDep,
    map_: Annotated[
        list[str] | None,
        Query(alias="map", description="Rename a column: sourceColumn=targetField (repeat)."),
    ] = None,
) -> ImportResult:
    """Import a batch of events (Segment-shaped rows) or profiles (one person per row).

    The body is an Arrow IPC stream. Rows are validated like tracking calls; a row
    without a messageId gets one from its content, so posting a batch twice stores it
    once. Rejected rows are answered and kept in the dead-letter store. 200 means
    committed.
    """
    received_at = datetime.now(UTC).replace(tzinfo=None)
    with ingestor.engine.connect() as db:
        source = tenancy.get_source(db, tenant=tenant_id, source=source_id)
    mapping: dict[str, str] = {}
    for item in map_ or []:
        src, sep, dst = item.partition("=")
        if not sep or not src or not dst:
            raise InvalidRequest(f"map={item!r} is not 'sourceColumn=targetField'.")
        mapping[src] = dst
    table = bulk.apply_mapping(await read_table(request), mapping)
    prepared, parts = await asyncio.to_thread(
        _prepare,
        ingestor,
        table,
        kind=kind,
        tenant=tenant_id,
        source=source,
        received_at=received_at,
    )
    rejects = [
        Reject(r.index, r.message_id, r.event_type, r.event, r.code, r.message, r.row.encode())
        for r in prepared.rejected
    ]
    loaded = await _store(
        ingestor, parts, rejects, tenant=tenant_id, source=source, received_at=received_at
    )
    blocked = [n for _, _, notes in parts for n in notes if n.disposition == "rejected"]
    counts = Counter(r.code for r in prepared.rejected) + Counter(n.code for n in blocked)
    rows = [
        RejectedRow(index=r.index, row=_row(r.row), code=r.code, message=r.message)
        for r in prepared.rejected
    ]
    rows += [
        RejectedRow(index=n.index, row=orjson.loads(n.payload), code=n.code, message=n.reason)
        for n in blocked
    ]
    rows.sort(key=lambda r: r.index)
    return ImportResult(
        read=prepared.read,
        loaded=loaded,
        duplicates=prepared.valid - len(blocked) - loaded,
        rejected=dict(counts),
        rejected_rows=rows,
    )


def _row(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
