"""PIPL requests API: log a data subject's access, correction or deletion request, carry it
out, follow it against its deadline, download an access export.

A request is carried out as soon as it is logged (the log still shows when it came in,
when it was due and how it ended); ``POST .../run`` retries one that failed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from quanyu.api.deps import DbDep, IngestorDep, PrincipalDep, ResolverDep, tenant_access
from quanyu.consent import privacy
from quanyu.consent.privacy import PrivacyRequest, PrivacyRequestCreate
from quanyu.ingest.service import Ingestor
from quanyu.ingest.writer import Chunk

router = APIRouter(tags=["privacy"])

Read = Annotated[str, tenant_access("consent", "read")]
Write = Annotated[str, tenant_access("consent", "write")]


class RunRequest(BaseModel):
    traits: dict[str, Any] | None = Field(default=None, description="correct: the values to set")


def _commit(ingestor: Ingestor) -> privacy.Commit:
    """Commit a correction through the server's writer, like any tracked event."""

    def commit(chunk: Chunk) -> object:
        return ingestor.writer.submit(chunk).result(ingestor.commit_timeout)

    return commit


@router.post("/v1/tenants/{tenant_id}/privacy/requests", status_code=201)
def create_request(
    tenant_id: Write,
    body: PrivacyRequestCreate,
    db: DbDep,
    resolver: ResolverDep,
    ingestor: IngestorDep,
    principal: PrincipalDep,
) -> PrivacyRequest:
    """Log a request and carry it out: access (then download the export), correct (give
    ``traits``) or delete (erases the person everywhere and scrubs the database file)."""
    return privacy.submit(db, resolver, body, tenant=tenant_id, actor=principal.actor,
                          commit=_commit(ingestor))  # fmt: skip


@router.get("/v1/tenants/{tenant_id}/privacy/requests")
def list_requests(
    tenant_id: Read, db: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[PrivacyRequest]:
    """Requests, newest first; ``overdue`` marks those past their deadline and not done."""
    return privacy.list_requests(db, tenant=tenant_id, limit=limit)


@router.get("/v1/tenants/{tenant_id}/privacy/requests/{request_id}")
def get_request(tenant_id: Read, request_id: str, db: DbDep) -> PrivacyRequest:
    """One request with its deadline, status and outcome."""
    return privacy.get_request(db, tenant=tenant_id, request_id=request_id)


@router.post("/v1/tenants/{tenant_id}/privacy/requests/{request_id}/run")
def run_request(
    tenant_id: Write,
    request_id: str,
    body: RunRequest,
    db: DbDep,
    resolver: ResolverDep,
    ingestor: IngestorDep,
    principal: PrincipalDep,
) -> PrivacyRequest:
    """Carry out a request again after it failed (a completed one is returned as it is)."""
    return privacy.run(db, resolver, tenant=tenant_id, request_id=request_id,
                       actor=principal.actor, traits=body.traits,
                       commit=_commit(ingestor))  # fmt: skip


@router.get("/v1/tenants/{tenant_id}/privacy/requests/{request_id}/export")
def export(tenant_id: Read, request_id: str, db: DbDep, resolver: ResolverDep) -> Response:
    """Download an access request's export: a zip of ``export.json`` and a CSV per table,
    made from what is held now."""
    blob = privacy.export(db, resolver, tenant=tenant_id, request_id=request_id)
    return Response(
        blob,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="privacy-{request_id}.zip"'},
    )
