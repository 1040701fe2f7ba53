"""Consent API: legal entities, purposes and notices, age gates, recording decisions, a
person's consent and its history, the decision log, canaries."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from quanyu.api.deps import DbDep, EngineDep, PrincipalDep, ResolverDep, tenant_access
from quanyu.consent import canary, decisions, service
from quanyu.consent.models import (
    Decision,
    Entity,
    EntityCreate,
    Entry,
    Notice,
    NoticeCreate,
    Purpose,
    PurposeCreate,
    Recorded,
    Settings,
    State,
)
from quanyu.errors import NotFound
from quanyu.profiles.models import parse_oneid
from quanyu.tenancy import service as tenancy

router = APIRouter(tags=["consent"])

Read = Annotated[str, tenant_access("consent", "read")]
Write = Annotated[str, tenant_access("consent", "write")]


class Decisions(BaseModel):
    decisions: list[Decision] = Field(min_length=1, max_length=1000)


class PersonConsent(BaseModel):
    profile: str
    states: list[State]
    history: list[Entry]


@router.get("/v1/tenants/{tenant_id}/consent/entities")
def list_entities(tenant_id: Read, db: DbDep) -> list[Entity]:
    """The tenant's legal entities and the brands each runs."""
    return service.list_entities(db, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/consent/entities", status_code=201)
def create_entity(
    tenant_id: Write, body: EntityCreate, db: DbDep, principal: PrincipalDep
) -> Entity:
    """Add a legal entity (with its unified social credit code) and the brands it runs."""
    brands = {b.id for b in tenancy.list_brands(db, tenant=tenant_id)}
    return service.create_entity(
        db, body, tenant=tenant_id, brand_ids=brands, actor=principal.actor
    )


@router.get("/v1/tenants/{tenant_id}/consent/purposes")
def list_purposes(tenant_id: Read, db: DbDep) -> list[Purpose]:
    """Every purpose of every legal entity."""
    return service.list_purposes(db, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/consent/purposes", status_code=201)
def create_purpose(
    tenant_id: Write, body: PurposeCreate, db: DbDep, principal: PrincipalDep
) -> Purpose:
    """Declare a purpose: legal basis, separate consent, validity, retention, destinations."""
    return service.create_purpose(db, body, tenant=tenant_id, actor=principal.actor)


@router.get("/v1/tenants/{tenant_id}/consent/purposes/{purpose}/notices")
def list_notices(tenant_id: Read, purpose: str, db: DbDep) -> list[Notice]:
    """Every version of a purpose's notice text."""
    return service.notices(db, tenant=tenant_id, purpose=purpose)


@router.post("/v1/tenants/{tenant_id}/consent/purposes/{purpose}/notices", status_code=201)
def add_notice(
    tenant_id: Write, purpose: str, body: NoticeCreate, db: DbDep, principal: PrincipalDep
) -> Notice:
    """Add a new version of a purpose's notice text."""
    return service.add_notice(db, body, tenant=tenant_id, purpose=purpose, actor=principal.actor)


@router.get("/v1/tenants/{tenant_id}/consent/settings")
def get_settings(tenant_id: Read, db: DbDep) -> Settings:
    """The age gates: guardian consent under an age, no marketing under an age."""
    return service.get_settings(db, tenant=tenant_id)


@router.put("/v1/tenants/{tenant_id}/consent/settings")
def put_settings(tenant_id: Write, body: Settings, db: DbDep, principal: PrincipalDep) -> Settings:
    """Set the age gates."""
    return service.set_settings(db, body, tenant=tenant_id, actor=principal.actor)


@router.post("/v1/tenants/{tenant_id}/consent/decisions", status_code=201)
def record(
    tenant_id: Write,
    body: Decisions,
    db: DbDep,
    resolver: ResolverDep,
    principal: PrincipalDep,
    request: Request,
) -> list[Recorded]:
    """Record consent decisions (all or none). Every subscriber that cares is told: the
    messages commit with the entries and the delivery worker is woken at once."""
    made = service.record(db, resolver, body.decisions, tenant=tenant_id, actor=principal.actor)
    request.app.state.deliverer.notify()
    return made


class CaptureResult(BaseModel):
    entries: int = Field(description="entries this pass appended")
    invalid: int
    dropped: int
    total: int = Field(description="entries in the tenant's consent ledger")


@router.post("/v1/tenants/{tenant_id}/consent/capture")
async def capture(tenant_id: Write, engine: EngineDep, request: Request) -> CaptureResult:
    """Read consent from events resolved since the last pass now (the server does this
    after each resolution on its own)."""
    from quanyu.consent.capture import capture_tenant

    def run() -> CaptureResult:
        with engine.connect() as db:
            done = capture_tenant(db, tenant=tenant_id)
            total = service.ledger_size(db, tenant=tenant_id)
        return CaptureResult(entries=done.entries, invalid=done.invalid, dropped=done.dropped,
                             total=total)  # fmt: skip

    made = await asyncio.to_thread(run)
    request.app.state.deliverer.notify()
    return made


@router.get("/v1/tenants/{tenant_id}/consent/entries/{seq}")
def get_entry(tenant_id: Read, seq: int, db: DbDep) -> Entry:
    """One ledger entry."""
    from quanyu.consent import ledger

    found = ledger.get_entry(db, tenant_id, seq)
    if found is None:
        raise NotFound(f"Tenant {tenant_id} has no consent ledger entry {seq}.")
    return found


@router.get("/v1/tenants/{tenant_id}/profiles/{profile_id}/consent")
def person(
    tenant_id: Read,
    profile_id: str,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> PersonConsent:
    """A person's consent now (every purpose; channels they spoke for, and '*') and the
    ledger entries behind it, newest first."""
    number = parse_oneid(profile_id)
    return PersonConsent(
        profile=f"P{number}",
        states=service.states(db, tenant=tenant_id, profile_id=number),
        history=service.history(db, tenant=tenant_id, profile_id=number, limit=limit),
    )


@router.get("/v1/tenants/{tenant_id}/consent/decision-log")
def decision_log(
    tenant_id: Read,
    db: DbDep,
    profile: str | None = None,
    decision: Literal["allow", "block"] | None = None,
    act_id: str | None = None,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[decisions.Logged]:
    """Every allow and block enforcement made, newest first: who, for what, where to, why,
    and the ledger entry it rested on."""
    number = parse_oneid(profile) if profile else None
    return decisions.list_decisions(db, tenant=tenant_id, profile_id=number, decision=decision,
                                    act_id=act_id, purpose=purpose, limit=limit)  # fmt: skip


@router.post("/v1/tenants/{tenant_id}/consent/canaries", status_code=201)
def seed_canaries(
    tenant_id: Write,
    db: DbDep,
    resolver: ResolverDep,
    principal: PrincipalDep,
    request: Request,
    count: Annotated[int, Query(ge=1, le=100)] = 3,
) -> list[canary.Canary]:
    """Seed synthetic people opted out of everything; any send to one is reported."""
    writer = request.app.state.ingestor.writer
    return canary.seed(db, resolver, tenant=tenant_id, count=count, actor=principal.actor,
                       write=lambda chunk: writer.submit(chunk).result())  # fmt: skip


@router.get("/v1/tenants/{tenant_id}/consent/canaries/check")
def check_canaries(tenant_id: Read, db: DbDep) -> canary.CanaryReport:
    """Every attempt to reach a canary: allowed sends (a bug) and blocked ones."""
    return canary.check(db, tenant=tenant_id)
