"""Models of the tags capability: the taxonomy, tags, runs and a person's tags."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ValueType = Literal["boolean", "enum", "number", "date"]
Status = Literal["draft", "live", "retired"]
Key = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="lower-case letters, digits, _")


class CategoryCreate(BaseModel):
    """A node of the taxonomy tree."""

    id: str = Key
    parent_id: str | None = None
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    position: int = 0


class Category(CategoryCreate):
    created_at: datetime


class TagCreate(BaseModel):
    """A tag: a rule (text or JSON) or expert SQL, and how it is governed.

    ``rule`` takes the text form (``count(event = "Order Completed", within 90d) >= 2``)
    or the JSON form; enum tags give their value with ``case when ... then "gold" end``.
    ``sql`` instead takes a read-only ``SELECT profile_id, value FROM ...`` over the
    tables ``events``, ``identifiers`` and ``tags`` (see docs/tags.md).
    """

    key: str = Key
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    description: str = ""
    category_id: str | None = None
    owner: str = Field("group", description="'group', or the id of the brand that owns it")
    value_type: ValueType = "boolean"
    allowed_values: list[str] | None = None
    rule: str | dict[str, Any] | None = None
    sql: str | None = None
    refresh_seconds: int = Field(86400, ge=60, description="full recomputation interval")
    status: Status = "draft"


class TagUpdate(BaseModel):
    """Fields of a tag to change; the rest stay."""

    name_zh: str | None = None
    name_en: str | None = None
    description: str | None = None
    category_id: str | None = None
    owner: str | None = None
    allowed_values: list[str] | None = None
    rule: str | dict[str, Any] | None = None
    sql: str | None = None
    refresh_seconds: int | None = Field(None, ge=60)
    status: Status | None = None


class Tag(BaseModel):
    key: str
    name_zh: str
    name_en: str
    description: str
    category_id: str | None
    owner: str
    value_type: ValueType
    allowed_values: list[str] | None
    rule: dict[str, Any] | str | int | float | bool | None
    rule_text: str | None
    sql: str | None
    template: str | None
    refresh_seconds: int
    status: Status
    created_at: datetime
    updated_at: datetime
    computed_at: datetime | None


class TagRun(BaseModel):
    """One computation: which tags, how, over how many persons, what changed."""

    run_id: int
    mode: Literal["full", "incremental"]
    tags: list[str]
    started_at: datetime
    finished_at: datetime | None
    profiles: int | None
    added: int | None
    removed: int | None
    status: str
    error: str | None = None


class ValueCount(BaseModel):
    value: str
    people: int


class HistoryPoint(BaseModel):
    """People per value of a tag at one time."""

    at: datetime
    counts: list[ValueCount]


class ProfileTag(BaseModel):
    """A value a person has (``valid_to`` None) or had of a tag."""

    key: str
    value: str
    num: float | None
    valid_from: datetime
    valid_to: datetime | None


class RuleCheck(BaseModel):
    """A rule checked: its JSON and canonical text, the tags it uses, and its count."""

    rule: dict[str, Any] | str | int | float | bool | None
    text: str
    uses_tags: list[str]
    people: int | None = None
