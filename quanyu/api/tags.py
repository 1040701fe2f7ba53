"""Tags API: the taxonomy, tag definitions and templates, computation, history."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from quanyu.api.deps import DbDep, PrincipalDep, tenant_access
from quanyu.ids import utcnow
from quanyu.profiles.models import parse_oneid
from quanyu.tags import service, templates
from quanyu.tags.models import (
    Category,
    CategoryCreate,
    HistoryPoint,
    ProfileTag,
    RuleCheck,
    Tag,
    TagCreate,
    TagRun,
    TagUpdate,
    ValueCount,
)

router = APIRouter(tags=["tags"])

TagsRead = Annotated[str, tenant_access("tags", "read")]
TagsWrite = Annotated[str, tenant_access("tags", "write")]


class RuleBody(BaseModel):
    rule: str | dict[str, Any]


class ComputeBody(BaseModel):
    keys: list[str] | None = None
    incremental: bool = False


class TemplateBody(BaseModel):
    params: dict[str, Any] = {}
    status: str = "live"


class TemplateInfo(BaseModel):
    key: str
    name_zh: str
    name_en: str
    description: str
    params: dict[str, Any]


@router.get("/v1/tenants/{tenant_id}/tag-categories")
def list_categories(tenant_id: TagsRead, db: DbDep) -> list[Category]:
    """The taxonomy tree (each category names its parent)."""
    return service.list_categories(db, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/tag-categories", status_code=201)
def create_category(
    tenant_id: TagsWrite, body: CategoryCreate, db: DbDep, principal: PrincipalDep
) -> Category:
    """Add a category to the taxonomy."""
    return service.create_category(db, body, tenant=tenant_id, actor=principal.actor)


@router.get("/v1/tenants/{tenant_id}/tags")
def list_tags(tenant_id: TagsRead, db: DbDep) -> list[Tag]:
    """Every tag, with its rule as JSON and as text."""
    return service.list_tags(db, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/tags", status_code=201)
def create_tag(tenant_id: TagsWrite, body: TagCreate, db: DbDep, principal: PrincipalDep) -> Tag:
    """Define a tag by a rule (text or JSON) or expert SQL; checked before it is saved."""
    return service.create_tag(db, body, tenant=tenant_id, actor=principal.actor)


@router.get("/v1/tenants/{tenant_id}/tags/{key}")
def get_tag(tenant_id: TagsRead, key: str, db: DbDep) -> Tag:
    """One tag."""
    return service.get_tag(db, tenant=tenant_id, key=key)


@router.patch("/v1/tenants/{tenant_id}/tags/{key}")
def update_tag(
    tenant_id: TagsWrite, key: str, body: TagUpdate, db: DbDep, principal: PrincipalDep
) -> Tag:
    """Change a tag (its rule, status, schedule …)."""
    return service.update_tag(db, key, body, tenant=tenant_id, actor=principal.actor)


@router.post("/v1/tenants/{tenant_id}/tags/check")
def check_rule(tenant_id: TagsRead, body: RuleBody, db: DbDep) -> RuleCheck:
    """Parse and check a rule: its JSON, canonical text and the tags it uses; a syntax
    error answers 400 with the line and column."""
    return service.check_rule(db, body.rule, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/tags/compute")
def compute(tenant_id: TagsWrite, body: ComputeBody, db: DbDep) -> TagRun:
    """Compute the live tags (or the named ones) now: in full, or incrementally for the
    persons whose events or identity changed."""
    return service.compute_tags(db, tenant=tenant_id, keys=body.keys, incremental=body.incremental)


@router.get("/v1/tenants/{tenant_id}/tag-runs")
def list_runs(
    tenant_id: TagsRead, db: DbDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[TagRun]:
    """The latest computations, newest first."""
    return service.list_runs(db, tenant=tenant_id, limit=limit)


@router.get("/v1/tenants/{tenant_id}/tags/{key}/history")
def history(
    tenant_id: TagsRead,
    key: str,
    db: DbDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> list[HistoryPoint]:
    """People per value of a tag at the end of each of the last ``days`` days (and now)."""
    now = utcnow()
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    times = [end - timedelta(days=d) for d in range(days - 1, -1, -1)] + [now]
    return service.history(db, tenant=tenant_id, key=key, times=times)


@router.get("/v1/tenants/{tenant_id}/tag-counts")
def value_counts(tenant_id: TagsRead, db: DbDep) -> dict[str, list[ValueCount]]:
    """People per current value of every tag."""
    return service.value_counts(db, tenant=tenant_id)


@router.get("/v1/tenants/{tenant_id}/profiles/{profile_id}/tags")
def profile_tags(tenant_id: TagsRead, profile_id: str, db: DbDep) -> list[ProfileTag]:
    """A person's tags now and before, with when each value started and ended."""
    return service.profile_tags(db, tenant=tenant_id, profile_id=parse_oneid(profile_id))


@router.get("/v1/tag-templates")
def list_templates() -> list[TemplateInfo]:
    """The shipped templates and their parameters."""
    return [
        TemplateInfo(
            key=t.key,
            name_zh=t.name_zh,
            name_en=t.name_en,
            description=t.description,
            params=t.params,
        )  # fmt: skip
        for t in templates.TEMPLATES.values()
    ]


@router.post("/v1/tenants/{tenant_id}/tag-templates/{key}", status_code=201)
def add_template(
    tenant_id: TagsWrite, key: str, body: TemplateBody, db: DbDep, principal: PrincipalDep
) -> list[Tag]:
    """Create a template's tags in the tenant (with the default taxonomy)."""
    return service.add_template(db, key, tenant=tenant_id, actor=principal.actor,
                                params=body.params, status=body.status)  # fmt: skip
