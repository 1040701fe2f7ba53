"""Audiences API: live counts, saved audiences, snapshots, overlap, exports, pushes,
and the destinations pushes go to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from quanyu.api.deps import (
    AllowPrivateDep,
    DbDep,
    MasterKeyDep,
    PrincipalDep,
    ResolverDep,
    tenant_access,
)
from quanyu.audiences import export, service
from quanyu.audiences.models import (
    Audience,
    AudienceCreate,
    AudienceDraft,
    AudienceUpdate,
    Count,
    ExportRequest,
    Overlap,
    Push,
    PushRequest,
    Snapshot,
)
from quanyu.delivery import service as delivery
from quanyu.delivery.models import Destination, DestinationCreate, DestinationCreated

router = APIRouter(tags=["audiences"])

AudRead = Annotated[str, tenant_access("audiences", "read")]
AudWrite = Annotated[str, tenant_access("audiences", "write")]
_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


@router.post("/v1/tenants/{tenant_id}/audiences/count")
def count(tenant_id: AudRead, body: AudienceDraft, db: DbDep) -> Count:
    """A live count while editing: matched, excluded for lack of consent, members, the
    breakdown by brand and channel and a sample of members."""
    return service.count(db, body, tenant=tenant_id)


@router.get("/v1/tenants/{tenant_id}/audiences")
def list_audiences(tenant_id: AudRead, db: DbDep) -> list[Audience]:
    """Every saved audience."""
    return service.list_audiences(db, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/audiences", status_code=201)
def create_audience(
    tenant_id: AudWrite, body: AudienceCreate, db: DbDep, principal: PrincipalDep
) -> Audience:
    """Save an audience (rule, brands, purpose and channel)."""
    return service.create_audience(db, body, tenant=tenant_id, actor=principal.actor)


@router.get("/v1/tenants/{tenant_id}/audiences/{audience_id}")
def get_audience(tenant_id: AudRead, audience_id: str, db: DbDep) -> Audience:
    """One audience."""
    return service.get_audience(db, tenant=tenant_id, audience_id=audience_id)


@router.patch("/v1/tenants/{tenant_id}/audiences/{audience_id}")
def update_audience(
    tenant_id: AudWrite,
    audience_id: str,
    body: AudienceUpdate,
    db: DbDep,
    principal: PrincipalDep,
) -> Audience:
    """Change an audience: only the fields given change. A new rule, brands, purpose or
    channel is materialised at the next refresh (or now, through ``.../snapshots``);
    earlier snapshots keep their definition hash."""
    return service.update_audience(db, audience_id, body, tenant=tenant_id, actor=principal.actor)


@router.delete("/v1/tenants/{tenant_id}/audiences/{audience_id}")
def delete_audience(
    tenant_id: AudWrite, audience_id: str, db: DbDep, principal: PrincipalDep
) -> Audience:
    """Delete an audience and its snapshots (the pushes made stay on record)."""
    return service.delete_audience(db, audience_id, tenant=tenant_id, actor=principal.actor)


@router.post("/v1/tenants/{tenant_id}/audiences/{audience_id}/snapshots", status_code=201)
def materialise(tenant_id: AudWrite, audience_id: str, db: DbDep) -> Snapshot:
    """Materialise the audience now (consent exclusions applied)."""
    return service.materialise(db, tenant=tenant_id, audience_id=audience_id)


@router.get("/v1/tenants/{tenant_id}/audiences/{audience_id}/snapshots")
def snapshots(
    tenant_id: AudRead,
    audience_id: str,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Snapshot]:
    """The audience's snapshots, newest first: its size over time."""
    return service.snapshots(db, tenant=tenant_id, audience_id=audience_id, limit=limit)


@router.get("/v1/tenants/{tenant_id}/audience-overlap")
def overlap(
    tenant_id: AudRead,
    db: DbDep,
    ids: Annotated[list[str], Query(description="two or three audience ids")],
) -> Overlap:
    """Venn regions of two or three audiences' latest snapshots."""
    return service.overlap(db, tenant=tenant_id, audience_ids=ids)


@router.get("/v1/tenants/{tenant_id}/audiences/{audience_id}/export")
def export_file(
    tenant_id: AudRead,
    audience_id: str,
    db: DbDep,
    resolver: ResolverDep,
    params: Annotated[ExportRequest, Query()],
) -> Response:
    """Download the latest snapshot as CSV or Parquet with the identifier a channel needs."""
    snap, _ = service.latest_members(db, tenant=tenant_id, audience_id=audience_id)
    table = export.rows(db, resolver, tenant=tenant_id, snapshot_id=snap.snapshot_id,
                        identifier=params.identifier, scope=params.scope)  # fmt: skip
    name = f"{audience_id}-{snap.snapshot_id}.{params.format}"
    return Response(
        export.to_bytes(table, params.format),
        media_type=_TYPES[params.format],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Snapshot-Id": str(snap.snapshot_id),
        },  # fmt: skip
    )


@router.post("/v1/tenants/{tenant_id}/audiences/{audience_id}/push", status_code=202)
def push(
    tenant_id: AudWrite,
    audience_id: str,
    body: PushRequest,
    db: DbDep,
    resolver: ResolverDep,
    principal: PrincipalDep,
    request: Request,
) -> Push:
    """Queue the latest snapshot for a destination as signed webhooks in batches."""
    made = export.push(db, resolver, body, tenant=tenant_id, audience_id=audience_id,
                       actor=principal.actor)  # fmt: skip
    request.app.state.deliverer.notify()
    return made


@router.get("/v1/tenants/{tenant_id}/destinations")
def list_destinations(tenant_id: AudRead, db: DbDep) -> list[Destination]:
    """Webhook destinations audiences are pushed to."""
    return delivery.list_destinations(db, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/destinations", status_code=201)
def create_destination(
    tenant_id: AudWrite,
    body: DestinationCreate,
    db: DbDep,
    master_key: MasterKeyDep,
    principal: PrincipalDep,
    allow_private: AllowPrivateDep,
) -> DestinationCreated:
    """Add a webhook destination; its signing secret is shown once. Its URL must be on a
    public address unless the server allows private networks (422 otherwise)."""
    return export.add_destination(
        db, body, tenant=tenant_id, master_key=master_key, actor=principal.actor,
        allow_private=allow_private,
    )  # fmt: skip
