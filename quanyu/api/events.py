"""Management API for stored events and dead letters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from quanyu.api.deps import DbDep, IngestorDep, tenant_access
from quanyu.ingest import service
from quanyu.ingest.models import (
    DeadLetter,
    DeadLetterPage,
    Event,
    EventPage,
    PayloadFix,
    ReplayRequest,
    ReplayResult,
)

router = APIRouter(tags=["events"])

IngestRead = Annotated[str, tenant_access("ingest", "read")]
IngestWrite = Annotated[str, tenant_access("ingest", "write")]


@router.get("/v1/tenants/{tenant_id}/events")
def list_events(
    tenant_id: IngestRead,
    db: DbDep,
    source: Annotated[str | None, Query(description="Source id")] = None,
    user: Annotated[str | None, Query(description="userId or anonymousId")] = None,
    type: Annotated[str | None, Query(description="track, identify, page …")] = None,
    event: Annotated[str | None, Query(description="Track event name")] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> EventPage:
    """Stored events, newest received first."""
    return service.list_events(
        db,
        tenant=tenant_id,
        source=source,
        user=user,
        type=type,
        event=event,
        cursor=cursor,
        limit=limit,
    )


@router.get("/v1/tenants/{tenant_id}/events/{message_id}")
def get_event(tenant_id: IngestRead, message_id: str, db: DbDep) -> Event:
    """One stored event by messageId."""
    return service.get_event(db, tenant=tenant_id, message_id=message_id)


@router.get("/v1/tenants/{tenant_id}/dead-letters")
def list_dead_letters(
    tenant_id: IngestRead,
    db: DbDep,
    source: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query(description="open, flagged, replayed, discarded")] = None,
    code: Annotated[str | None, Query(description="Reason code")] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> DeadLetterPage:
    """Messages that were rejected (or flagged) with the reason and the raw payload."""
    return service.list_dead_letters(
        db, tenant=tenant_id, source=source, status=status, code=code, cursor=cursor, limit=limit
    )


@router.put("/v1/tenants/{tenant_id}/dead-letters/{letter_id}")
def fix_dead_letter(
    tenant_id: IngestWrite, letter_id: str, body: PayloadFix, db: DbDep
) -> DeadLetter:
    """Replace an open dead letter's payload with a corrected message."""
    return service.fix_dead_letter(db, tenant=tenant_id, id=letter_id, payload=body.payload)


@router.post("/v1/tenants/{tenant_id}/dead-letters/{letter_id}/discard")
def discard_dead_letter(tenant_id: IngestWrite, letter_id: str, db: DbDep) -> DeadLetter:
    """Mark a dead letter as deliberately dropped."""
    return service.discard_dead_letter(db, tenant=tenant_id, id=letter_id)


@router.post("/v1/tenants/{tenant_id}/dead-letters/replay")
async def replay_dead_letters(
    tenant_id: IngestWrite, body: ReplayRequest, ingestor: IngestorDep
) -> ReplayResult:
    """Send open dead letters through ingest again (idempotent)."""
    return await service.replay_dead_letters(ingestor, tenant=tenant_id, ids=body.ids)
