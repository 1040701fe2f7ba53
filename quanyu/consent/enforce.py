"""Enforcement: who may be reached for a purpose on a channel, decided when acting.

:func:`admit` is the one function that turns people matched by a rule into people who
may be reached. It fails closed: for a consent-based purpose only a current grant
admits (a person with no word is ``unknown`` and blocked); a purpose on another legal
basis admits without a grant. On top of that, every canary is blocked, a purpose may
name the only destinations it may reach, and a marketing purpose blocks people under
the tenant's minimum marketing age (and people whose age is unknown, while the gate is
on; ages come from the ``birthday`` or ``age`` trait as the tags capability last folded
them, within its refresh interval). With an ``act`` it writes every allow and every block
to the decision log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
from pyroaring import BitMap

from quanyu.consent import sql as q
from quanyu.consent.ledger import naive
from quanyu.consent.models import Purpose
from quanyu.engine import Session
from quanyu.errors import ValidationFailed
from quanyu.ids import utcnow

#: Seconds a tenant's computed states are reused while nothing changed (grants expire
#: with time, so they are never reused for longer).
STATES_TTL = 60.0


@dataclass
class Standing:
    """Every person with a word for one purpose and channel, and what it is."""

    profile_id: np.ndarray
    rank: np.ndarray
    status: list[str]
    entry_seq: np.ndarray
    granted: BitMap

    def lookup(self) -> dict[int, int]:
        return {int(p): i for i, p in enumerate(self.profile_id.tolist())}


_cache: dict[tuple[str, str, str], tuple[tuple[int, int], float, Standing]] = {}
_cache_lock = threading.Lock()


def version(db: Session, tenant: str) -> tuple[int, int]:
    """Changes whenever any person's state may have (ledger or identity graph)."""
    row = db.one(q.VERSION, [tenant, tenant])
    return (int(row[0]), int(row[1])) if row else (0, 0)


def standing(
    db: Session, *, tenant: str, purpose_id: str, channel: str, now: datetime | None = None
) -> Standing:
    """The state of everyone with a word (the SQL form of the ledger's rule)."""
    key = (tenant, purpose_id, channel)
    v = version(db, tenant)
    if now is None:
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and hit[0] == v and time.monotonic() - hit[1] < STATES_TTL:
            return hit[2]
    at = naive(now) if now else utcnow()
    t = db.arrow(q.STATES, [at, tenant, purpose_id, channel, at, tenant, tenant])
    ids = t.column("profile_id").to_numpy().astype(np.int64)
    rank = t.column("rank").to_numpy()
    found = Standing(
        profile_id=ids,
        rank=rank,
        status=t.column("status").to_pylist(),
        entry_seq=t.column("entry_seq").to_numpy(),
        granted=BitMap(ids[rank == 0].astype(np.uint32)),
    )
    if now is None:
        with _cache_lock:
            _cache[key] = (v, time.monotonic(), found)
    return found


def granted(
    db: Session, *, tenant: str, purpose: str, channel: str, now: datetime | None = None
) -> BitMap:
    """People holding a current grant for a purpose (id or key) and channel."""
    from quanyu.consent.service import get_purpose

    p = get_purpose(db, tenant=tenant, ref=purpose)
    return standing(db, tenant=tenant, purpose_id=p.id, channel=channel, now=now).granted


@dataclass
class Admitted:
    """Who may be reached, who was blocked and why (counts per reason)."""

    members: BitMap
    matched: int
    excluded: int
    purpose_id: str
    channel: str
    blocked: dict[str, int] = field(default_factory=dict)


def canaries(db: Session, *, tenant: str) -> BitMap:
    """The people who are the tenant's canaries (never to be reached)."""
    return BitMap(int(r[0]) for r in db.execute(q.CANARY_PROFILES, [tenant, tenant]))


def _ages(db: Session, tenant: str, people: BitMap) -> dict[int, int]:
    from quanyu.consent.service import age_on
    from quanyu.tags.service import trait_values

    t = trait_values(db, tenant=tenant, keys=["birthday", "age"])
    today = utcnow().date()
    out: dict[int, int] = {}
    for pid, birthday, age in zip(*(t.column(i).to_pylist() for i in range(3)), strict=True):
        if pid in people:
            a = age_on({"birthday": birthday, "age": age}, today)
            if a is not None:
                out[int(pid)] = a
    return out


def admit(
    db: Session,
    matched: BitMap,
    *,
    tenant: str,
    purpose: Purpose,
    channel: str,
    destination: str | None = None,
    act: str | None = None,
    act_id: str | None = None,
    now: datetime | None = None,
) -> Admitted:
    """The people of ``matched`` who may be reached for ``purpose`` on ``channel`` (at
    ``destination``), decided now. With ``act`` (``export``, ``push``, ``send`` ...),
    every allow and block is written to the decision log under ``act_id``."""
    from quanyu.consent.service import get_settings

    reasons: dict[int, tuple[str, int | None]] = {}

    def block(people: Iterable[int], reason: str, seq: Any = None) -> None:
        for pid in people:
            reasons.setdefault(int(pid), (reason, seq))

    allowed_to = purpose.destinations
    if destination is not None and allowed_to is not None and destination not in allowed_to:
        block(matched, f"purpose {purpose.id} may not reach destination {destination}")
    block(matched & canaries(db, tenant=tenant), "canary: opted out of everything")
    st = standing(db, tenant=tenant, purpose_id=purpose.id, channel=channel, now=now)
    if purpose.legal_basis == "consent":
        where = st.lookup()
        for pid in matched - st.granted:
            i = where.get(pid)
            if i is None:
                block([pid], "no consent recorded (unknown)")
            else:
                block([pid], f"consent {st.status[i]}", int(st.entry_seq[i]))
    settings = get_settings(db, tenant=tenant)
    if purpose.marketing and settings.marketing_min_age is not None:
        ages = _ages(db, tenant, matched)
        young = settings.marketing_min_age
        block((p for p in matched if p not in ages), f"age unknown; marketing needs {young}+")
        block((p for p, a in ages.items() if a < young), f"under {young}: no marketing")
    members = matched - BitMap(reasons)
    counts: dict[str, int] = {}
    for reason, _ in reasons.values():
        counts[reason] = counts.get(reason, 0) + 1
    if act is not None:
        log_decisions(db, tenant=tenant, act=act, act_id=act_id or act, purpose=purpose,
                      channel=channel, destination=destination or act, members=members,
                      reasons=reasons, standing=st)  # fmt: skip
    return Admitted(members, len(matched), len(reasons), purpose.id, channel, counts)


def log_decisions(
    db: Session,
    *,
    tenant: str,
    act: str,
    act_id: str,
    purpose: Purpose,
    channel: str,
    destination: str,
    members: BitMap,
    reasons: dict[int, tuple[str, int | None]],
    standing: Standing,
) -> int:
    """Write one decision per person: allows (with the grant they rest on) and blocks."""
    where = standing.lookup()
    allowed = np.array(members.to_array(), dtype=np.int64)
    seqs = [
        int(standing.entry_seq[where[p]]) if p in where else None for p in allowed.tolist()
    ] if purpose.legal_basis == "consent" else [None] * len(allowed)  # fmt: skip
    basis = (
        "consent granted"
        if purpose.legal_basis == "consent"
        else f"legal basis {purpose.legal_basis}"
    )
    blocked = sorted(reasons)
    n = len(allowed) + len(blocked)
    if n == 0:
        return 0
    now = utcnow()
    table = pa.table(
        {
            "tenant_id": pa.array([tenant] * n),
            "decided_at": pa.array([now] * n, pa.timestamp("us")),
            "act": pa.array([act] * n),
            "act_id": pa.array([act_id] * n),
            "profile_id": pa.array(np.concatenate([allowed, np.array(blocked, dtype=np.int64)])),
            "purpose_id": pa.array([purpose.id] * n),
            "channel": pa.array([channel] * n),
            "destination": pa.array([destination] * n),
            "decision": pa.array(["allow"] * len(allowed) + ["block"] * len(blocked)),
            "reason": pa.array([basis] * len(allowed) + [reasons[p][0] for p in blocked]),
            "entry_seq": pa.array(seqs + [reasons[p][1] for p in blocked], pa.int64()),
        }
    )
    return db.with_table("staged_decisions", table, q.INSERT_DECISIONS)


def check_channel(channel: str) -> None:
    from quanyu.consent.models import CHANNELS

    if channel not in CHANNELS or channel == "*":
        named = ", ".join(c for c in CHANNELS if c != "*")
        raise ValidationFailed(f"channel {channel!r} is unknown: use one of {named}")
