"""Canaries: synthetic people seeded opted out of everything, so a send to one proves a
leak. Each is an identify event from the tenant's canary source (written through ingest
like any touchpoint, so they resolve, get tags and can land in audiences) and a
withdrawal of every purpose on every channel. :func:`check` reads the decision log: an
*allow* for a canary is a bug to report; a *block* is enforcement catching a wrong send.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel

from quanyu.consent import ledger, propagate, service
from quanyu.consent import sql as q
from quanyu.consent.ledger import NewEntry
from quanyu.engine import Session
from quanyu.identity.service import Resolver
from quanyu.ids import utcnow
from quanyu.ingest.normalize import normalize
from quanyu.ingest.writer import Chunk
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import SourceCreate, SourceKind

SOURCE_NAME = "Quanyu canaries"


class Canary(BaseModel):
    user_id: str
    source_id: str
    created_at: datetime


class Attempt(BaseModel):
    decided_at: datetime
    profile: str
    act: str
    act_id: str
    destination: str
    decision: str
    reason: str


class CanaryReport(BaseModel):
    canaries: int
    allowed: int
    blocked: int
    ok: bool
    attempts: list[Attempt]


def _source(db: Session, tenant: str, actor: str) -> str:
    for s in tenancy.list_sources(db, tenant=tenant):
        if s.name == SOURCE_NAME:
            return s.id
    made = tenancy.create_source(db, SourceCreate(name=SOURCE_NAME, kind=SourceKind.server),
                                 tenant=tenant, actor=actor)  # fmt: skip
    return made.id


def seed(
    db: Session,
    resolver: Resolver,
    *,
    tenant: str,
    count: int,
    actor: str,
    write: Callable[[Chunk], object],
) -> list[Canary]:
    """Add ``count`` canaries: their identify events go through ``write`` (the server's
    writer, or a direct write), their withdrawals into the ledger."""
    source = _source(db, tenant, actor)
    now = utcnow()
    users = [f"canary-{secrets.token_hex(6)}" for _ in range(count)]
    items = [
        json.dumps({"type": "identify", "userId": u, "traits": {"quanyu_canary": True}}).encode()
        for u in users
    ]
    norm = normalize(items, received_at=now)
    write(Chunk.normalized(norm, tenant_id=tenant, source_id=source, brand_id=None,
                           received_at=now))  # fmt: skip
    keys = [resolver.node_key(db, tenant, "user_id", u, source) for u in users]
    entries = [
        NewEntry(
            purpose_id=p.id,
            channel="*",
            status="withdrawn",
            decided_at=now,
            surface="system",
            actor="system",
            subject_key=key,
            subject_type="user_id",
            profile_id=None,
            origin="canary",
            recorded_by=actor,
        )  # fmt: skip
        for key in keys
        for p in service.list_purposes(db, tenant=tenant)
    ]
    with ledger.appending(db, tenant):
        for u, key in zip(users, keys, strict=True):
            db.execute(q.INSERT_CANARY, [tenant, u, key, now])
        db.execute(q.BUMP_CONFIG, [tenant])
        stored = ledger.append(db, tenant, entries)
        propagate.announce(db, tenant, stored)
    return [Canary(user_id=u, source_id=source, created_at=now) for u in users]


def check(db: Session, *, tenant: str, limit: int = 100) -> CanaryReport:
    """Every enforcement decision about a canary: allows are leaks, blocks are catches."""
    n = db.one(q.COUNT_CANARIES, [tenant])
    counts = dict(db.execute(q.CANARY_DECISION_COUNTS, [tenant, tenant]))
    rows = db.execute(q.CANARY_DECISIONS, [tenant, tenant, limit])
    attempts = [
        Attempt(
            decided_at=r[0],
            profile=f"P{r[1]}",
            act=r[2],
            act_id=r[3],
            destination=r[4],
            decision=r[5],
            reason=r[6],
        )  # fmt: skip
        for r in rows
    ]
    allowed = int(counts.get("allow", 0))
    return CanaryReport(canaries=int(n[0]) if n else 0, allowed=allowed,
                        blocked=int(counts.get("block", 0)), ok=allowed == 0,
                        attempts=attempts)  # fmt: skip
