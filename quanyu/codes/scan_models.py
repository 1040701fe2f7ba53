"""Models of scans, rewards and anomaly alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Verdict = Literal["genuine", "not_released", "recalled", "voided", "unknown", "forged"]
Role = Literal["consumer", "dealer", "store"]

_Id = Field(default=None, min_length=1, max_length=200)


class ScanRequest(BaseModel):
    """A consumer's scan: the serial or its GS1 Digital Link URI, where, and who.

    ``lat``/``lon`` are kept only when ``precise_consent`` is true; otherwise only the
    city is stored. The identifiers join the scan to the person in the identity graph.
    """

    code: str = Field(min_length=1, max_length=300)
    city: str | None = Field(default=None, max_length=60)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    precise_consent: bool = False
    device_id: str | None = _Id
    user_id: str | None = _Id
    openid: str | None = _Id
    app_id: str | None = _Id
    unionid: str | None = _Id
    phone: str | None = Field(default=None, min_length=5, max_length=30)


class PartyScanRequest(BaseModel):
    """A dealer's or store's scans (receiving, selling), in bulk."""

    codes: list[str] = Field(min_length=1, max_length=1000)
    role: Literal["dealer", "store"]
    party_id: str = Field(min_length=1, max_length=200)
    city: str | None = Field(default=None, max_length=60)


class ScanResult(BaseModel):
    """What a scan answers. ``scans_before`` counts earlier scans of the same code."""

    verdict: Verdict
    first_scan: bool
    message: str
    code: str | None = None
    gtin: str | None = None
    state: str | None = None
    scans_before: int = 0
    first_scanned_at: datetime | None = None
    first_city: str | None = None
    scanned_at: datetime


class CampaignCreate(BaseModel):
    """A reward pool: odds of a win, the prize, a budget in prizes and/or money, and the
    wins one person may take. A campaign with a GTIN covers only that product's caps."""

    name: str = Field(min_length=1, max_length=200)
    gtin: str | None = Field(default=None, min_length=8, max_length=14)
    odds: float = Field(ge=0, le=1)
    prize_cents: int = Field(ge=0)
    budget_count: int | None = Field(default=None, ge=0)
    budget_cents: int | None = Field(default=None, ge=0)
    per_person_cap: int | None = Field(default=None, ge=1)


class Campaign(CampaignCreate):
    id: str
    issued_count: int
    issued_cents: int
    active: bool
    created_at: datetime


class RedeemRequest(BaseModel):
    """An inner (under-the-cap) code and the identifier of the person redeeming it."""

    code: str = Field(min_length=1, max_length=300)
    campaign_id: str = Field(min_length=1, max_length=100)
    person: str = Field(min_length=1, max_length=200)


Outcome = Literal[
    "won", "no_win", "already_redeemed", "pool_exhausted", "cap_reached", "recalled",
    "not_released", "forged", "unknown",
]  # fmt: skip


class Redemption(BaseModel):
    outcome: Outcome
    message: str
    prize_cents: int = 0
    redeemed_at: datetime | None = None
    ledger_index: int | None = None


AlertKind = Literal[
    "forged_burst", "distant_cities", "voided_scan", "unprinted_scan", "unknown_code",
    "recycled_cap", "diversion",
]  # fmt: skip


class Alert(BaseModel):
    id: str
    kind: AlertKind
    subject: str
    dealer_id: str | None
    gtin: str | None
    severity: Literal["low", "medium", "high"]
    summary: str
    evidence: dict[str, Any]
    first_at: datetime | None
    last_at: datetime | None
    detected_at: datetime


class DetectResult(BaseModel):
    new_alerts: int
    by_kind: dict[str, int]


class DealerProductRow(BaseModel):
    """One dealer and product: party scans in and outside the authorised region."""

    dealer_id: str
    gtin: str | None
    region: str | None
    scans: int
    outside: int
    outside_share: float
    outside_cities: dict[str, int]
    flagged: bool


class DealerReport(BaseModel):
    dealer_id: str
    rows: list[DealerProductRow]
    alerts: list[Alert]
