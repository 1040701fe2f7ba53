"""Identity API: resolve, rules, lookups, conflicts, splits and evaluation (OneID)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request

from quanyu.api.deps import DbDep, PrincipalDep, ResolverDep, tenant_access
from quanyu.api.imports import ARROW_STREAM, read_table
from quanyu.identity import admin
from quanyu.identity.models import (
    ConflictPage,
    ConflictReview,
    Evaluation,
    IdentifierRef,
    ResolveResult,
    ResolveStatus,
    Rules,
    SplitResult,
    format_oneid,
)
from quanyu.identity.types import IdentityRules
from quanyu.tenancy.service import audit

router = APIRouter(tags=["identity"])

IdentityRead = Annotated[str, tenant_access("identity", "read")]
IdentityWrite = Annotated[str, tenant_access("identity", "write")]
TypeQ = Annotated[str, Query(description="Identifier type: phone, unionid, openid, email …")]
ValueQ = Annotated[str, Query(description="The value as it was sent (it is normalised).")]
ScopeQ = Annotated[
    str, Query(description="App id of an openid, brand id of a member id, source of a user id")
]


@router.post("/v1/tenants/{tenant_id}/identity/resolve")
async def resolve(
    tenant_id: IdentityWrite,
    resolver: ResolverDep,
    full: Annotated[bool, Query(description="Recompute every person from all links")] = False,
) -> ResolveResult:
    """Resolve events not resolved yet (the server does this within a second of each
    commit); ``full=true`` rebuilds every person from the stored links."""
    run = resolver.rebuild if full else resolver.catch_up
    report = await asyncio.to_thread(run, tenant_id)
    return ResolveResult(**vars(report))


@router.get("/v1/tenants/{tenant_id}/identity/status")
def status(tenant_id: IdentityRead, db: DbDep) -> ResolveStatus:
    """How far resolution trails ingest: the events committed and not resolved yet, and
    how long ago the oldest of them arrived."""
    return admin.status(db, tenant=tenant_id)


@router.get("/v1/tenants/{tenant_id}/identity/rules")
def get_rules(tenant_id: IdentityRead, db: DbDep, resolver: ResolverDep) -> Rules:
    """The tenant's identifier types, limits, blocked values and PII storage."""
    return Rules(rules=resolver.rules(db, tenant_id).to_dict())


@router.put("/v1/tenants/{tenant_id}/identity/rules")
def put_rules(
    tenant_id: IdentityWrite, body: Rules, db: DbDep, resolver: ResolverDep, who: PrincipalDep
) -> Rules:
    """Replace the rules. They apply to events resolved from now on; run a full rebuild
    to apply them to what is resolved already."""
    rules = IdentityRules.from_dict(body.rules)
    before = Rules(rules=resolver.rules(db, tenant_id).to_dict())
    resolver.set_rules(db, tenant_id, rules)
    after = Rules(rules=rules.to_dict())
    audit(
        db,
        actor=who.actor,
        action="identity.rules.update",
        target=after,
        before=before,
        target_type="identity_rules",
        target_id=tenant_id,
        tenant=tenant_id,
    )
    return after


@router.get("/v1/tenants/{tenant_id}/identity/lookup")
def lookup(
    tenant_id: IdentityRead,
    db: DbDep,
    resolver: ResolverDep,
    type: TypeQ,
    value: ValueQ,
    scope: ScopeQ = "",
) -> IdentifierRef:
    """The person (OneID) an identifier belongs to."""
    return admin.find(db, resolver, tenant=tenant_id, type=type, value=value, scope=scope)[1]


@router.delete("/v1/tenants/{tenant_id}/identity/links")
async def unlink(
    tenant_id: IdentityWrite,
    db: DbDep,
    resolver: ResolverDep,
    who: PrincipalDep,
    type: TypeQ,
    value: ValueQ,
    scope: ScopeQ = "",
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> SplitResult:
    """Remove every link of one identifier (a mistyped phone, a shared tablet): its person
    splits and the pieces are resolved again. The piece with the oldest identifier keeps
    the OneID; events follow their identifiers."""
    node, ref = admin.find(db, resolver, tenant=tenant_id, type=type, value=value, scope=scope)
    pieces = await asyncio.to_thread(
        resolver.unlink, tenant_id, node, actor=who.actor, reason=reason
    )
    result = SplitResult(unlinked=ref, profiles=[format_oneid(p) for p in pieces])
    audit(
        db,
        actor=who.actor,
        action="identity.unlink",
        target=result,
        target_type="identifier",
        target_id=f"{ref.type}:{ref.value}",
        tenant=tenant_id,
    )
    return result


@router.get("/v1/tenants/{tenant_id}/identity/conflicts")
def conflicts(
    tenant_id: IdentityRead,
    db: DbDep,
    reviewed: bool = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ConflictPage:
    """Links a limit refused (two people sharing an identifier they should not), newest
    first."""
    return admin.list_conflicts(db, tenant=tenant_id, reviewed=reviewed, cursor=cursor, limit=limit)


@router.post("/v1/tenants/{tenant_id}/identity/conflicts/{edge_id}/review")
def review(
    tenant_id: IdentityWrite, edge_id: int, body: ConflictReview, db: DbDep, who: PrincipalDep
) -> ConflictReview:
    """Record the review of a conflict; the two people stay apart."""
    admin.review_conflict(db, tenant=tenant_id, edge_id=edge_id, review=body.review)
    audit(
        db,
        actor=who.actor,
        action="identity.conflict.review",
        target=body,
        target_type="conflict",
        target_id=str(edge_id),
        tenant=tenant_id,
    )
    return body


@router.post(
    "/v1/tenants/{tenant_id}/identity/evaluate",
    openapi_extra={"requestBody": {"content": {ARROW_STREAM: {"schema": {"type": "string"}}}}},
)
async def evaluate(tenant_id: IdentityRead, request: Request, db: DbDep) -> Evaluation:
    """Score the partition against a ground truth posted as an Arrow IPC stream with
    ``record_id`` (messageId) and ``person_id`` columns: pairwise precision, recall, F1."""
    truth = await read_table(request)
    return admin.evaluate(db, tenant=tenant_id, truth=truth)
