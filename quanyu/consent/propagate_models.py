"""Models of consent propagation: subscribers (touchpoints told of consent changes) and
the report of who was told of one change, and what came of it."""

from __future__ import annotations

from datetime import datetime

from pydantic import AnyHttpUrl, BaseModel, Field

from quanyu.delivery.models import MessageStatus


class SubscriberCreate(BaseModel):
    """A touchpoint that wants to hear of consent changes."""

    name: str = Field(min_length=1, max_length=200)
    url: AnyHttpUrl = Field(description="Where signed consent.changed webhooks are POSTed.")
    purposes: list[str] | None = Field(
        default=None,
        description="purpose ids (or keys, when one legal entity declares the key) it cares"
        " about; null: every purpose",
    )
    brands: list[str] | None = Field(
        default=None,
        description="brand ids it serves: it hears of purposes of the legal entities running"
        " them (and of the default entity); null: every brand",
    )


class Subscriber(BaseModel):
    id: str
    name: str
    destination_id: str = Field(description="the delivery destination its webhooks go to")
    url: str | None = Field(description="null once the destination is gone")
    purposes: list[str] | None
    brands: list[str] | None
    created_at: datetime


class SubscriberCreated(Subscriber):
    secret: str = Field(
        description="The Standard Webhooks signing secret (whsec_...). Shown once: store it now."
    )


class Told(BaseModel):
    """One subscriber told of one change: its message and the subscriber's answer."""

    subscriber_id: str
    subscriber: str | None = Field(description="its name; null once it was deleted")
    message_id: str = Field(description="the webhook-id the subscriber dedupes on")
    status: MessageStatus
    attempts: int
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    status_code: int | None = Field(description="the HTTP status of the last reply")
    acknowledgement: str | None = Field(description="the subscriber's reply body, first 2 KB")
    last_error: str | None


class PropagationReport(BaseModel):
    """Who was told of a ledger entry, and when. Subscribers that did not care about the
    entry's purpose or brands are not listed."""

    seq: int
    entry_id: str
    purpose_id: str
    recorded_at: datetime
    counts: dict[MessageStatus, int]
    complete: bool = Field(description="every subscriber told has acknowledged it")
    told: list[Told]
