"""Pydantic models of tracking plans and the data-quality report (API shapes)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: A JSON Schema document (draft 4, 6 or 7, as fastjsonschema reads them).
JsonSchema = dict[str, Any]


class PlanMode(StrEnum):
    """What a plan does with a track event it does not list."""

    allow_all = "allow_all"
    flag_unplanned = "flag_unplanned"
    block_unplanned = "block_unplanned"
    omit_unplanned_properties = "omit_unplanned_properties"


class PlannedEvent(BaseModel):
    """One call the source may send, with the JSON Schema its payload must meet.

    A ``track`` entry names its event and describes ``properties``. A ``page`` or
    ``screen`` entry (no name) describes the properties of every such call; a
    ``group`` entry (no name) describes the group's ``traits``. Calls of a type the
    plan does not list (page, screen, group, alias) are planned and unchecked.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["track", "page", "screen", "group"] = "track"
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The track event name, matched exactly (case counts); none for other types.",
    )
    description: str | None = Field(default=None, max_length=2000)
    properties: JsonSchema | None = Field(
        default=None,
        description="JSON Schema of `properties` (track, page, screen). Omitted: any object.",
        examples=[
            {
                "type": "object",
                "required": ["revenue"],
                "properties": {"revenue": {"type": "number"}},
            }
        ],
    )
    traits: JsonSchema | None = Field(
        default=None, description="JSON Schema of the group's `traits` (group entries only)."
    )


class TrackingPlanSpec(BaseModel):
    """What a caller sends to create or replace a source's tracking plan."""

    model_config = ConfigDict(extra="forbid")

    mode: PlanMode = Field(
        default=PlanMode.flag_unplanned,
        description="allow_all: unplanned events pass unrecorded; flag_unplanned: stored and"
        " flagged; block_unplanned: rejected to the dead-letter store;"
        " omit_unplanned_properties: planned events lose the properties their schema does not"
        " declare (flagged), unplanned events are stored and flagged.",
    )
    block_invalid: bool = Field(
        default=False,
        description="A planned call whose properties (or traits) break its schema is rejected"
        " (true) or stored and flagged (false).",
    )
    events: list[PlannedEvent] = Field(default_factory=list, max_length=5000)
    identify_traits: JsonSchema | None = Field(
        default=None, description="JSON Schema of identify `traits`. Omitted: unchecked."
    )


class TrackingPlan(TrackingPlanSpec):
    """A source's tracking plan as stored."""

    tenant_id: str
    source_id: str
    updated_at: datetime


class RuleCount(BaseModel):
    """How often one rule failed on one day."""

    rule: str = Field(description="The rule (or, when none, the reason code) that failed.")
    count: int
    rate: float = Field(description="count / volume")


class QualityRow(BaseModel):
    """Data-quality figures of one source on one day (the UTC date messages were received)."""

    source_id: str
    day: date
    volume: int = Field(description="Messages received: valid ones plus rejected ones.")
    received: int = Field(description="Valid messages received, duplicates included.")
    accepted: int = Field(description="Events stored that day.")
    rejected: int = Field(description="Messages sent to the dead-letter store, not stored.")
    flagged: int = Field(description="Events stored with a tracking-plan violation.")
    duplicates: int = Field(description="Valid messages whose messageId was stored before.")
    duplicate_rate: float = Field(description="duplicates / received")
    violation_rate: float = Field(description="(rejected + flagged) / volume")
    late: int = Field(description="Events received more than a day after their timestamp.")
    future: int = Field(description="Events timestamped over 5 minutes after their receipt.")
    fill_rates: dict[str, float] = Field(
        description="Share of stored events carrying user_id, anonymous_id and each identifier"
        " type (phone, email, unionid, openid, member_id, device_id)."
    )
    violations: list[RuleCount] = Field(default_factory=list)


class QualityReport(BaseModel):
    """Data quality per source and day over a date range (both ends included)."""

    tenant_id: str
    source_id: str | None
    since: date
    until: date
    rows: list[QualityRow]
