"""API shapes of the profiles capability: the 360 view, history and search results."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from quanyu.errors import ValidationFailed

_ONEID = re.compile(r"[Pp]?(\d{1,19})")
_MAX_ID = 2**63 - 1


def parse_oneid(text: str | int) -> int:
    """The profile number of ``"P42"`` (or ``"42"``, or 42). Raises ValidationFailed."""
    if isinstance(text, int) and not isinstance(text, bool) and 0 <= text <= _MAX_ID:
        return text
    m = _ONEID.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None or int(m.group(1)) > _MAX_ID:
        raise ValidationFailed(f"OneID {text!r} is invalid: use P and the profile number, like P42")
    return int(m.group(1))


def encode_cursor(*parts: Any) -> str:
    """An opaque page cursor holding ``parts`` (a timestamp's isoformat first)."""
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode()


def decode_cursor(cursor: str, *kinds: type) -> list[Any]:
    """The parts of an ``encode_cursor`` cursor: a datetime, then values of ``kinds``.

    Raises ValidationFailed for a cursor this API did not give out.
    """
    bad = ValidationFailed(f"cursor {cursor!r} is not one this API gave out: drop it to restart")
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(parts, list) or len(parts) != len(kinds) + 1:
            raise bad
        if not all(isinstance(p, k) for p, k in zip(parts[1:], kinds, strict=True)):
            raise bad
        return [datetime.fromisoformat(parts[0]), *parts[1:]]
    except (ValueError, TypeError) as e:
        raise bad from e


def check_limit(limit: int, most: int = 1000) -> None:
    """Raise ValidationFailed unless 1 <= ``limit`` <= ``most``."""
    if not 1 <= limit <= most:
        raise ValidationFailed(f"limit={limit} is invalid: use 1 to {most}")


class Identity(BaseModel):
    """One identifier of the person and where it was first seen."""

    node_id: int
    type: str
    scope: str = Field(description="The brand, app or source id of scoped types; '' for group.")
    value: str = Field(description="Masked for PII (phone, e-mail); the stored value otherwise.")
    source_id: str | None
    first_seen: datetime


class TraitValue(BaseModel):
    """A surviving trait value, with the source and time it came from and the rule that won."""

    value: Any = Field(description="PII identifiers carried as traits are masked.")
    source_id: str
    at: datetime
    rule: str


class LastEvent(BaseModel):
    """The most recent event of a brand or channel."""

    message_id: str
    type: str
    event: str | None
    name: str | None
    source_id: str
    timestamp: datetime


class Activity(BaseModel):
    """A person's events in one brand or one channel."""

    events: int
    first_at: datetime
    last_at: datetime
    last_event: LastEvent


class Basics(BaseModel):
    """Figures computed from the person's events."""

    first_seen: datetime | None
    last_seen: datetime | None
    events: int
    by_type: dict[str, int]
    by_event: dict[str, int] = Field(description="Track events by event name.")
    brands: dict[str, Activity] = Field(
        description="Per brand id; events of sources without a brand count in channels only."
    )
    channels: dict[str, Activity] = Field(
        description="Per channel (the source's kind: mini_program, pos, tmall ...)."
    )


class Change(BaseModel):
    """One change of a OneID: a merge, a split or a rebuild."""

    change_id: int
    changed_at: datetime
    kind: str
    oneid: str = Field(description="The profile that absorbed (merge) or lost (split) a part.")
    other_oneid: str | None = Field(description="The profile absorbed, or split off.")
    edge_id: int | None
    node_id: int | None
    source_id: str | None
    message_id: str | None
    actor: str | None
    detail: str | None


class HistoryPage(BaseModel):
    """Changes of a OneID, newest first."""

    items: list[Change]
    next_cursor: str | None = Field(description="Pass as cursor for the next page.")


class ProfileView(BaseModel):
    """The 360 view of one person, as the group or as one brand sees it."""

    oneid: str = Field(description="'P' and the profile number.")
    profile_id: int
    brand: str | None = Field(description="The brand whose view this is; None: the group view.")
    identities: list[Identity]
    traits: dict[str, TraitValue] = Field(
        description="Group view: the group traits. Brand view: the group traits shared with"
        " brands plus the brand's own brand-scoped traits."
    )
    brand_traits: dict[str, dict[str, TraitValue]] = Field(
        description="Group view only: brand-scoped traits per brand id."
    )
    brands: list[str] = Field(description="Brands the person has events in.")
    basics: Basics
    history: list[Change] = Field(description="The latest changes, newest first.")


class SearchHit(BaseModel):
    """A profile found by an identifier or trait value prefix."""

    oneid: str
    profile_id: int
    matched: Literal["identifier", "trait"]
    field: str = Field(description="The identifier type or trait key that matched.")
    value: str = Field(description="The matching value (masked for PII identifiers).")


class SearchResult(BaseModel):
    """Search hits, one per (profile, field), identifiers first."""

    items: list[SearchHit]
