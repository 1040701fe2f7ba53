"""Pydantic models of the ingest capability (API shapes; the hot path uses msgspec)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Accepted(BaseModel):
    """The answer to a tracking call: Segment's ``success`` plus what happened."""

    success: bool = True
    accepted: int = Field(description="Messages committed (duplicates count: they were kept once).")
    rejected: list[dict[str, Any]] = Field(
        default_factory=list, description="Messages sent to the dead-letter store, with reasons."
    )


class Event(BaseModel):
    message_id: str
    type: str
    event: str | None
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    group_id: str | None
    previous_id: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    source_id: str
    brand_id: str | None
    properties: dict[str, Any] | None
    traits: dict[str, Any] | None
    context: dict[str, Any] | None
    integrations: dict[str, Any] | None
    identifiers: list[dict[str, Any]] | None


class EventPage(BaseModel):
    items: list[Event]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


class DeadLetterStatus(StrEnum):
    open = "open"
    flagged = "flagged"
    replayed = "replayed"
    discarded = "discarded"


class DeadLetter(BaseModel):
    id: str
    source_id: str
    received_at: datetime
    message_id: str | None
    event_type: str | None
    event: str | None
    code: str
    reason: str
    rule: str | None
    disposition: str = Field(description="rejected: not stored; flagged: stored with a violation")
    status: DeadLetterStatus
    payload: Any = Field(description="The message as received (JSON when it parses, else text).")
    resolved_at: datetime | None


class DeadLetterPage(BaseModel):
    items: list[DeadLetter]
    next_cursor: str | None


class ReplayRequest(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=10_000)


class ReplayResult(BaseModel):
    replayed: list[str]
    still_rejected: list[dict[str, Any]]


class PayloadFix(BaseModel):
    payload: dict[str, Any] = Field(description="The corrected message to replay.")
