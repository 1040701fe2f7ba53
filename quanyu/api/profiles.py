"""Profiles API: the 360 view of a person (OneID), its timeline, history and search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from quanyu.api.deps import DbDep, PrincipalDep, ResolverDep, tenant_access
from quanyu.identity import admin
from quanyu.ingest.models import EventPage
from quanyu.profiles import service, settings
from quanyu.profiles.models import HistoryPage, ProfileView, SearchResult
from quanyu.profiles.survivorship import TraitRules
from quanyu.tenancy.service import audit

router = APIRouter(tags=["profiles"])

ProfilesRead = Annotated[str, tenant_access("profiles", "read")]
ProfilesWrite = Annotated[str, tenant_access("profiles", "write")]
BrandQ = Annotated[
    str | None, Query(description="See the person as this brand sees it (its own traits).")
]


@router.get("/v1/tenants/{tenant_id}/profiles")
def search(
    tenant_id: ProfilesRead,
    db: DbDep,
    prefix: Annotated[str, Query(min_length=1, description="Start of an identifier or trait")],
    type: Annotated[str | None, Query(description="Only identifiers of this type")] = None,
    trait: Annotated[str | None, Query(description="Search this trait's values instead")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> SearchResult:
    """People whose identifier (non-PII: PII is only matched exactly, through
    ``by-identifier``) or trait value starts with ``prefix``."""
    return service.search(
        db, tenant=tenant_id, prefix=prefix, limit=limit, id_type=type, trait=trait
    )


@router.get("/v1/tenants/{tenant_id}/profiles/by-identifier")
def by_identifier(
    tenant_id: ProfilesRead,
    db: DbDep,
    resolver: ResolverDep,
    type: Annotated[str, Query(description="phone, unionid, openid, email, member_id …")],
    value: Annotated[str, Query(description="As it was sent (it is normalised)")],
    scope: Annotated[str, Query(description="App of an openid, brand of a member id")] = "",
    brand: BrandQ = None,
) -> ProfileView:
    """The 360 view of the person an identifier belongs to."""
    node_ref = admin.find(db, resolver, tenant=tenant_id, type=type, value=value, scope=scope)[1]
    return service.get_profile(
        db,
        tenant=tenant_id,
        profile_id=node_ref.profile,
        brand=brand,
        trait_rules=settings.trait_rules(db, tenant=tenant_id),
        reveal=resolver.reveal(tenant_id),
    )


@router.get("/v1/tenants/{tenant_id}/trait-rules")
def get_trait_rules(tenant_id: ProfilesRead, db: DbDep) -> dict[str, Any]:
    """Which value of each trait the 360 view keeps: ``latest`` (default), ``first``,
    ``most_frequent`` or ``source_priority`` (e.g. POS over the mini-program for a
    birthday); which traits are brand-scoped, and which group traits brands see."""
    return settings.trait_rules(db, tenant=tenant_id).to_dict()


@router.put("/v1/tenants/{tenant_id}/trait-rules")
def put_trait_rules(
    tenant_id: ProfilesWrite, body: dict[str, Any], db: DbDep, who: PrincipalDep
) -> dict[str, Any]:
    """Replace the tenant's trait rules (they apply at once: traits are chosen on read)."""
    rules = TraitRules.from_dict(body)
    before = settings.trait_rules(db, tenant=tenant_id)
    settings.set_trait_rules(db, tenant=tenant_id, rules=rules)
    audit(
        db,
        actor=who.actor,
        action="profiles.trait_rules.update",
        target=_Doc(rules=rules.to_dict()),
        before=_Doc(rules=before.to_dict()),
        target_type="trait_rules",
        target_id=tenant_id,
        tenant=tenant_id,
    )
    return rules.to_dict()


class _Doc(BaseModel):
    rules: dict[str, Any]


@router.get("/v1/tenants/{tenant_id}/profiles/{oneid}")
def get_profile(
    tenant_id: ProfilesRead, oneid: str, db: DbDep, resolver: ResolverDep, brand: BrandQ = None
) -> ProfileView:
    """The 360 view: identities and where each came from, surviving traits with their
    source, brands, first and last seen, activity per brand and channel, latest changes."""
    return service.get_profile(
        db,
        tenant=tenant_id,
        profile_id=oneid,
        brand=brand,
        trait_rules=settings.trait_rules(db, tenant=tenant_id),
        reveal=resolver.reveal(tenant_id),
    )


@router.get("/v1/tenants/{tenant_id}/profiles/{oneid}/events")
def timeline(
    tenant_id: ProfilesRead,
    oneid: str,
    db: DbDep,
    type: str | None = None,
    event: str | None = None,
    brand: str | None = None,
    source: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> EventPage:
    """The person's events, newest first (events follow their identifiers)."""
    return service.timeline(
        db,
        tenant=tenant_id,
        profile_id=oneid,
        type=type,
        event=event,
        brand=brand,
        source=source,
        cursor=cursor,
        limit=limit,
    )


@router.get("/v1/tenants/{tenant_id}/profiles/{oneid}/history")
def history(
    tenant_id: ProfilesRead,
    oneid: str,
    db: DbDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> HistoryPage:
    """Every merge and split of the OneID, newest first."""
    return service.history(db, tenant=tenant_id, profile_id=oneid, cursor=cursor, limit=limit)
