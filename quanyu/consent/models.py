"""Models of the consent capability: legal entities, purposes, ledger entries, states."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

#: Channels a consent speaks for; ``*`` is every channel (Segment's consent categories
#: carry no channel). ``wechat`` is the WeChat subscription message.
CHANNELS = ("sms", "wechat", "email", "phone", "ads", "push", "pos", "*")
#: PIPL article 13's bases. Only ``consent`` needs a grant before data is used.
LEGAL_BASES = (
    "consent",
    "contract",
    "employment",
    "legal_duty",
    "emergency",
    "news_reporting",
    "public_information",
)
#: Where a decision was captured.
SURFACES = (
    "mini_program",
    "official_account",
    "app",
    "web",
    "pos",
    "call_centre",
    "qr_scan",
    "paper_form",
    "api",
    "system",
)
Key = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="lower-case letters, digits, _")


class Status(StrEnum):
    """A consent's state. ``unknown`` is never recorded: it is the state of a person
    with no entry, and it blocks every consent-based use (fail closed)."""

    granted = "granted"
    denied = "denied"
    withdrawn = "withdrawn"
    expired = "expired"
    unknown = "unknown"


#: How restrictive each state is: a merge takes the most restrictive of its sides.
RESTRICTIVENESS = {
    Status.granted: 0,
    Status.expired: 1,
    Status.unknown: 1,
    Status.denied: 2,
    Status.withdrawn: 3,
}


class EntityCreate(BaseModel):
    """A legal entity of the group, with its unified social credit code (统一社会信用代码)."""

    name: str = Field(min_length=1, max_length=200)
    credit_code: str | None = Field(
        default=None,
        description="18 characters: digits and upper-case letters except I, O, S, V, Z",
    )
    brands: list[str] = Field(default_factory=list, description="ids of the brands it runs")


class Entity(BaseModel):
    id: str
    name: str
    credit_code: str | None
    is_default: bool
    brands: list[str]
    created_at: datetime


class PurposeCreate(BaseModel):
    """A purpose of processing, declared by one legal entity."""

    key: str = Key
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    entity_id: str | None = Field(default=None, description="default: the tenant's default entity")
    legal_basis: Literal[
        "consent",
        "contract",
        "employment",
        "legal_duty",
        "emergency",
        "news_reporting",
        "public_information",
    ] = "consent"
    separate_consent: bool = Field(
        default=False, description="a grant counts only when given as separate consent (单独同意)"
    )
    valid_days: int | None = Field(default=None, ge=1, description="a grant expires after this")
    retention_days: int | None = Field(default=None, ge=1, description="how long its data is kept")
    destinations: list[str] | None = Field(
        default=None, description="destination ids it may reach; null: any"
    )
    on_withdrawal: Literal["exclude", "drop"] = Field(
        default="exclude",
        description="events collected after a withdrawal: kept but never used, or deleted",
    )
    collects: bool = Field(
        default=False, description="whether collecting behaviour events rests on this purpose"
    )
    marketing: bool = Field(
        default=False, description="marketing: the tenant's minimum marketing age applies"
    )
    categories: list[str] = Field(
        default_factory=list,
        description="Segment consent categories (context.consent.categoryPreferences) that"
        " speak for it, matched case-insensitively",
    )
    notice: str | None = Field(default=None, description="the notice text; becomes version '1'")


class Purpose(BaseModel):
    id: str
    entity_id: str
    key: str
    name_zh: str
    name_en: str
    legal_basis: str
    separate_consent: bool
    valid_days: int | None
    retention_days: int | None
    destinations: list[str] | None
    on_withdrawal: str
    collects: bool
    marketing: bool
    categories: list[str]
    notices: list[str] = Field(description="notice versions, oldest first")
    created_at: datetime


class NoticeCreate(BaseModel):
    version: str = Field(min_length=1, max_length=40)
    text: str = Field(min_length=1, max_length=100_000)


class Notice(NoticeCreate):
    purpose_id: str
    created_at: datetime


class Settings(BaseModel):
    """The tenant's age gates (ages in whole years; null: no gate)."""

    guardian_under: int | None = Field(
        default=None,
        ge=1,
        le=25,
        description="below this age only a guardian may consent (PIPL: 14)",
    )
    marketing_min_age: int | None = Field(
        default=None, ge=1, le=25, description="nobody younger is marketed to (liquor: 18)"
    )


class Subject(BaseModel):
    """Whom a decision is about: an identifier as a person would type it, or a OneID."""

    type: str | None = Field(
        default=None, description="identifier type: phone, unionid, user_id ..."
    )
    value: str | None = None
    scope: str = Field(default="", description="app id or brand id for scoped identifiers")
    profile: str | None = Field(
        default=None, description="a OneID (qy_...) instead of an identifier"
    )


class Decision(BaseModel):
    """One consent decision to record."""

    subject: Subject
    purpose: str = Field(description="purpose id, or key when the tenant has one entity")
    channel: str = Field(default="*", description=f"one of {', '.join(CHANNELS)}")
    status: Literal["granted", "denied", "withdrawn", "expired"]
    separate: bool = Field(default=False, description="given as separate consent (单独同意)")
    notice_version: str | None = None
    decided_at: datetime | None = Field(default=None, description="when the person decided; now")
    surface: str = Field(default="api", description=f"where it was captured: {', '.join(SURFACES)}")
    actor: Literal["self", "guardian", "agent", "system"] = "self"
    evidence: str | None = Field(
        default=None, max_length=200, description="a hash or reference of the signed form; no PII"
    )


class Entry(BaseModel):
    """A ledger entry as stored (no personal data)."""

    seq: int
    id: str
    purpose_id: str
    channel: str
    status: str
    separate: bool
    notice_version: str | None
    decided_at: datetime
    recorded_at: datetime
    surface: str
    actor: str
    evidence: str | None
    subject_type: str
    profile: str | None
    origin: str
    source_id: str | None
    message_id: str | None
    leaf_hash: str


class State(BaseModel):
    """A person's current consent for one purpose and channel."""

    purpose_id: str
    channel: str
    status: Status
    conflict: bool = Field(description="the person's merged identities disagree: re-collect")
    entry_seq: int | None = Field(description="the entry the state rests on")
    decided_at: datetime | None


class Recorded(BaseModel):
    """What recording a decision did: the entry, and who will be told."""

    entry: Entry
    subscribers: list[str]
