"""Pydantic models of the delivery capability."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, Field


class MessageStatus(StrEnum):
    """Where an outbox message stands.

    ``pending`` until the receiver acknowledges it (``delivered``), refuses it or runs
    out of attempts (``failed``), or its destination is disabled or deleted
    (``skipped``). Only ``pending`` ever changes by itself; ``failed`` and ``skipped``
    go back to ``pending`` on an explicit retry.
    """

    pending = "pending"
    delivered = "delivered"
    failed = "failed"
    skipped = "skipped"


class DestinationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    url: AnyHttpUrl = Field(description="Where messages are POSTed (http or https).")
    kind: Literal["webhook"] = "webhook"
    batch_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Most records a producer puts in one message (one request).",
    )
    enabled: bool = True


class Destination(BaseModel):
    id: str
    tenant_id: str
    name: str
    kind: Literal["webhook"]
    url: str
    batch_size: int
    enabled: bool
    created_at: datetime


class DestinationCreated(Destination):
    secret: str = Field(
        description="The Standard Webhooks signing secret (whsec_...). Shown once: store it now."
    )


class OutboxMessage(BaseModel):
    """One message to a destination and what became of it.

    ``id`` is the ``webhook-id`` header: delivery is at least once, so receivers
    must ignore an id they have processed before.
    """

    id: str
    tenant_id: str
    destination_id: str
    topic: str
    key: str = Field(description="Messages sharing a key (and destination) arrive in order.")
    status: MessageStatus
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_error: str | None
    last_status_code: int | None
    response: str | None = Field(description="The receiver's reply body, first 2 KB.")
    created_at: datetime
    delivered_at: datetime | None
    payload: Any = Field(
        default=None, description="The body sent (only when one message is fetched)."
    )


class DeliveryReport(BaseModel):
    """Who was told what under one key, and when."""

    key: str
    counts: dict[MessageStatus, int]
    messages: list[OutboxMessage]
