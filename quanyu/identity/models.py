"""Pydantic models of the identity capability (API shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


def format_oneid(number: int) -> str:
    """The public form of profile number ``number``: ``"P42"``."""
    return f"P{number}"


class ResolveResult(BaseModel):
    """What a resolve run did."""

    events: int = Field(description="Events resolved in this run.")
    identifiers: int = Field(description="New identifiers (graph nodes).")
    links: int = Field(description="New links between identifiers.")
    merges: int = Field(description="Stored people merged into others.")
    conflicts: int = Field(description="Links a limit refused (conflicts for review).")
    dropped: int = Field(description="Identifier values refused: junk, blocked or malformed.")
    moved: int = Field(0, description="Identifiers a full rebuild moved to another person.")
    profiles: int = Field(0, description="People after a full rebuild.")


class ResolveStatus(BaseModel):
    """How far resolution has come with a tenant's committed events."""

    resolved_seq: int = Field(description="Group commits up to this number are resolved.")
    pending_events: int = Field(description="Committed events not resolved yet.")
    pending_upto: int | None = Field(description="The newest commit holding such an event.")
    oldest_pending_at: datetime | None = Field(
        description="When the oldest of them arrived (UTC); null when none is pending."
    )
    lag_seconds: float = Field(
        description="Seconds since that arrival: how far resolution trails ingest (0 when"
        " nothing is pending). Under steady ingest it stays under a second."
    )


class IdentifierRef(BaseModel):
    type: str
    value: str = Field(description="Masked for PII types.")
    profile: str = Field(description="The person's OneID.")


class Conflict(BaseModel):
    """A link a limit refused: two people who share an identifier they should not."""

    edge_id: int
    limit: str | None = Field(description="The limit bucket the merge would have broken.")
    source_id: str | None
    message_id: str | None
    seen_at: datetime
    review: str | None
    reviewed_at: datetime | None
    a: IdentifierRef
    b: IdentifierRef


class ConflictPage(BaseModel):
    data: list[Conflict]
    next_cursor: str | None


class ConflictReview(BaseModel):
    review: str = Field(min_length=1, max_length=500, description="What the reviewer decided.")


class SplitResult(BaseModel):
    """The people a person became after one of its identifiers was unlinked."""

    unlinked: IdentifierRef
    profiles: list[str]


class Evaluation(BaseModel):
    """Pairwise agreement of the OneID partition with a ground truth."""

    records: int = Field(description="Truth records matched to a resolved event.")
    profiles: int
    persons: int
    precision: float
    recall: float
    f1: float


class Rules(BaseModel):
    """A tenant's identity rules (see quanyu.identity.types.IdentityRules)."""

    rules: dict[str, Any]
