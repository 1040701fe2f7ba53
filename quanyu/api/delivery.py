"""Delivery API: the webhook destinations' state and their outbox — enable, disable or
delete a destination, list its messages, see what was sent under a key, retry one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from quanyu.api.deps import DbDep, PrincipalDep, tenant_access
from quanyu.delivery import service as delivery
from quanyu.delivery.models import DeliveryReport, Destination, MessageStatus, OutboxMessage
from quanyu.tenancy.service import audit

router = APIRouter(tags=["delivery"])

Read = Annotated[str, tenant_access("audiences", "read")]
Write = Annotated[str, tenant_access("audiences", "write")]


class DestinationPatch(BaseModel):
    enabled: bool


@router.patch("/v1/tenants/{tenant_id}/destinations/{destination_id}")
def set_enabled(
    tenant_id: Write,
    destination_id: str,
    body: DestinationPatch,
    db: DbDep,
    principal: PrincipalDep,
    request: Request,
) -> Destination:
    """Enable or disable a destination. While disabled its pending messages are skipped;
    retry them once it is enabled again."""
    before = delivery.get_destination(db, tenant=tenant_id, destination_id=destination_id)
    with db.transaction():
        made = delivery.set_destination_enabled(
            db, tenant=tenant_id, destination_id=destination_id, enabled=body.enabled
        )
        audit(db, actor=principal.actor, action="destination.update", target=made,
              target_type="destination", target_id=destination_id, tenant=tenant_id,
              before=before)  # fmt: skip
    request.app.state.deliverer.notify()
    return made


@router.delete("/v1/tenants/{tenant_id}/destinations/{destination_id}")
def delete_destination(
    tenant_id: Write, destination_id: str, db: DbDep, principal: PrincipalDep, request: Request
) -> Destination:
    """Delete a destination and its secret; its messages stay on record, pending ones
    are skipped."""
    with db.transaction():
        gone = delivery.delete_destination(db, tenant=tenant_id, destination_id=destination_id)
        audit(db, actor=principal.actor, action="destination.delete", target=None,
              target_type="destination", target_id=destination_id, tenant=tenant_id,
              before=gone)  # fmt: skip
    request.app.state.deliverer.notify()
    return gone


@router.get("/v1/tenants/{tenant_id}/outbox")
def list_messages(
    tenant_id: Read,
    db: DbDep,
    destination_id: str | None = None,
    status: MessageStatus | None = None,
    key: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[OutboxMessage]:
    """Outbox messages, newest first: of one destination, status or ordering key."""
    return delivery.list_messages(db, tenant=tenant_id, destination_id=destination_id,
                                  status=status, key=key, limit=limit)  # fmt: skip


@router.get("/v1/tenants/{tenant_id}/outbox/{message_id}")
def get_message(tenant_id: Read, message_id: str, db: DbDep) -> OutboxMessage:
    """One message with the body it carries and the receiver's last answer."""
    return delivery.get_message(db, tenant=tenant_id, message_id=message_id)


@router.post("/v1/tenants/{tenant_id}/outbox/{message_id}/retry")
def retry(
    tenant_id: Write, message_id: str, db: DbDep, principal: PrincipalDep, request: Request
) -> OutboxMessage:
    """Put a failed or skipped message back in line."""
    with db.transaction():
        made = delivery.retry(db, tenant=tenant_id, message_id=message_id)
        audit(db, actor=principal.actor, action="outbox.retry", target=None,
              target_type="outbox_message", target_id=message_id, tenant=tenant_id)  # fmt: skip
    request.app.state.deliverer.notify()
    return made


@router.get("/v1/tenants/{tenant_id}/delivery-report")
def report(tenant_id: Read, key: str, db: DbDep) -> DeliveryReport:
    """Every message sent under an ordering key (e.g. ``audience:vip``), with counts."""
    return delivery.delivery_report(db, tenant=tenant_id, key=key)
