"""Management API for tracking plans and the data-quality report."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from quanyu.api.deps import DbDep, IngestorDep, PrincipalDep, tenant_access
from quanyu.ingest import plans, quality
from quanyu.ingest.plan_models import QualityReport, TrackingPlan, TrackingPlanSpec
from quanyu.observability import request_id

router = APIRouter(tags=["data quality"])

IngestRead = Annotated[str, tenant_access("ingest", "read")]
IngestWrite = Annotated[str, tenant_access("ingest", "write")]

_PLAN = "/v1/tenants/{tenant_id}/sources/{source_id}/tracking-plan"


@router.get(_PLAN)
def get_tracking_plan(tenant_id: IngestRead, source_id: str, db: DbDep) -> TrackingPlan:
    """The source's tracking plan (404 when it has none)."""
    return plans.get_plan(db, tenant=tenant_id, source=source_id)


@router.put(_PLAN)
def put_tracking_plan(
    tenant_id: IngestWrite,
    source_id: str,
    body: TrackingPlanSpec,
    db: DbDep,
    p: PrincipalDep,
    ingestor: IngestorDep,
) -> TrackingPlan:
    """Create or replace the source's tracking plan; it applies to the next message.

    Every schema is compiled first: a bad one is refused with a 400 naming the entry.
    """
    plan = plans.set_plan(
        db, body, tenant=tenant_id, source=source_id, actor=p.actor, request_id=request_id.get()
    )
    ingestor.forget_keys()
    return plan


@router.delete(_PLAN)
def delete_tracking_plan(
    tenant_id: IngestWrite, source_id: str, db: DbDep, p: PrincipalDep, ingestor: IngestorDep
) -> TrackingPlan:
    """Remove the source's tracking plan (events are then accepted as sent); returns it."""
    plan = plans.delete_plan(
        db, tenant=tenant_id, source=source_id, actor=p.actor, request_id=request_id.get()
    )
    ingestor.forget_keys()
    return plan


@router.get("/v1/tenants/{tenant_id}/quality")
def quality_report(
    tenant_id: IngestRead,
    db: DbDep,
    source: Annotated[str | None, Query(description="Source id (default: every source)")] = None,
    since: Annotated[date | None, Query(description="First UTC day (default: 6 days ago)")] = None,
    until: Annotated[date | None, Query(description="Last UTC day (default: today)")] = None,
) -> QualityReport:
    """Data quality per source and day: volume, rejects, flags, duplicates, late and
    future-dated events, violations by rule and identifier fill rates."""
    return quality.report(db, tenant=tenant_id, source=source, since=since, until=until)
