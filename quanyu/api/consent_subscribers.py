"""Consent propagation API: touchpoints subscribe to consent changes, and the report of
who was told of each change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from quanyu.api.deps import AllowPrivateDep, DbDep, MasterKeyDep, PrincipalDep, tenant_access
from quanyu.consent import propagate
from quanyu.consent.propagate_models import (
    PropagationReport,
    Subscriber,
    SubscriberCreate,
    SubscriberCreated,
)

router = APIRouter(tags=["consent"])

Read = Annotated[str, tenant_access("consent", "read")]
Write = Annotated[str, tenant_access("consent", "write")]


@router.post("/v1/tenants/{tenant_id}/consent/subscribers", status_code=201)
def create_subscriber(
    tenant_id: Write,
    body: SubscriberCreate,
    db: DbDep,
    master_key: MasterKeyDep,
    principal: PrincipalDep,
    allow_private: AllowPrivateDep,
) -> SubscriberCreated:
    """Register a touchpoint to hear of consent changes (for some purposes and brands, or
    all) as signed webhooks. The signing secret is in this answer only. Its URL must be
    on a public address unless the server allows private networks (422 otherwise)."""
    return propagate.create_subscriber(
        db, body, tenant=tenant_id, master_key=master_key, actor=principal.actor,
        allow_private=allow_private,
    )  # fmt: skip


@router.get("/v1/tenants/{tenant_id}/consent/subscribers")
def list_subscribers(tenant_id: Read, db: DbDep) -> list[Subscriber]:
    """Every consent subscriber, oldest first."""
    return propagate.list_subscribers(db, tenant=tenant_id)


@router.delete("/v1/tenants/{tenant_id}/consent/subscribers/{subscriber_id}")
def delete_subscriber(
    tenant_id: Write, subscriber_id: str, db: DbDep, principal: PrincipalDep, request: Request
) -> Subscriber:
    """Stop telling a touchpoint: its destination goes and its pending news is skipped."""
    gone = propagate.delete_subscriber(
        db, tenant=tenant_id, subscriber_id=subscriber_id, actor=principal.actor
    )
    request.app.state.deliverer.notify()  # the worker marks its pending messages skipped
    return gone


@router.get("/v1/tenants/{tenant_id}/consent/entries/{seq}/propagation")
def propagation(tenant_id: Read, seq: int, db: DbDep) -> PropagationReport:
    """Who was told of a ledger entry, when, and what each subscriber answered."""
    return propagate.report(db, tenant=tenant_id, seq=seq)
