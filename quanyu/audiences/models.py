"""Models of the audiences capability."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

RuleInput = str | dict[str, Any]


class AudienceDraft(BaseModel):
    """An audience being edited: what a live count needs."""

    rule: RuleInput = Field(description="rule text or JSON (the tags rule language)")
    brands: list[str] | None = Field(None, description="only persons with events in these brands")
    purpose: str = Field("marketing", description="what it is for; consent is checked for it")
    channel: str = Field("sms", description="where it is sent; consent is checked for it")


class AudienceCreate(AudienceDraft):
    id: str = Field(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    refresh_seconds: int = Field(3600, ge=60, description="materialise again after this long")


class AudienceUpdate(BaseModel):
    """A change to a saved audience: only the fields given change (``brands: null`` lifts
    the brand limit). A new rule, brands, purpose or channel is a new definition: the
    next refresh materialises it, and earlier snapshots keep the hash of theirs."""

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    rule: RuleInput | None = Field(None, description="rule text or JSON (the tags rule language)")
    brands: list[str] | None = None
    purpose: str | None = None
    channel: str | None = None
    refresh_seconds: int | None = Field(None, ge=60)


class Audience(BaseModel):
    id: str
    name: str
    description: str
    rule: Any
    rule_text: str
    brands: list[str] | None
    purpose: str
    channel: str
    refresh_seconds: int
    created_at: datetime
    updated_at: datetime


class Count(BaseModel):
    """A live count: matched by the rule, excluded by consent, and the members left."""

    matched: int
    excluded: int
    size: int
    excluded_by: dict[str, int] = Field(
        default_factory=dict, description="people kept out, by reason (consent, age, canary)"
    )
    by_brand: dict[str, int]
    by_channel: dict[str, int]
    sample: list[str]
    plan: list[str] = Field(description="how each part was answered: index, events, general")
    took_ms: float
    index_built_at: datetime | None = None


class Snapshot(BaseModel):
    """A materialised audience."""

    snapshot_id: int
    audience_id: str
    definition_hash: str
    size: int
    matched: int
    excluded: int
    reason: str
    created_at: datetime


class Region(BaseModel):
    """One region of a Venn diagram: persons in exactly ``inside`` (and none of the others)."""

    inside: list[str]
    size: int


class Overlap(BaseModel):
    audiences: list[str]
    sizes: dict[str, int]
    regions: list[Region]


IdentifierKind = Literal["oneid", "openid", "unionid", "phone_sha256", "member_id", "email_sha256",
                         "user_id", "device_id"]  # fmt: skip


class ExportRequest(BaseModel):
    """Which identifier the channel needs: openid of an app (scope = app id), a hashed
    phone for ad platforms, a member id of a brand for POS, or just the OneID."""

    identifier: IdentifierKind = "oneid"
    scope: str | None = None
    format: Literal["csv", "parquet"] = "csv"


class PushRequest(BaseModel):
    destination_id: str
    identifier: IdentifierKind = "oneid"
    scope: str | None = None
    batch_size: int = Field(1000, ge=1, le=10000)


class PushRecord(BaseModel):
    """A push as recorded: which snapshot went where, with which identifier, in how many
    records and batches (the outbox has what became of each batch)."""

    push_id: str
    audience_id: str
    snapshot_id: int
    destination_id: str
    identifier: str
    records: int
    batches: int
    created_at: datetime


class Push(PushRecord):
    """A push just queued, with the outbox messages of its batches."""

    message_ids: list[str]
