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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
from pyroaring import BitMap

from quanyu.consent import sql as q
from quanyu.consent.ledger import naive
from quanyu.consent.models import Purpose, Settings
from quanyu.engine import Session
from quanyu.errors import ValidationFailed
from quanyu.ids import utcnow

#: Seconds a tenant's computed states are reused while nothing changed, for purposes
#: whose grants expire with time (others are reused until the ledger or graph changes).
STATES_TTL = 60.0
#: Status codes of :class:`Standing` (index: the status).
STATUSES = ("granted", "expired", "unknown", "denied", "withdrawn")


@dataclass
class Standing:
    """Every person with a word for one purpose and channel, sorted by person: the status
    (a code into :data:`STATUSES`) and the entry it rests on."""

    profile_id: np.ndarray
    code: np.ndarray
    entry_seq: np.ndarray
    granted: BitMap
    #: Every 32-bit id that holds no grant: ``matched & ungranted`` finds the people to
    #: block far faster than ``matched - granted`` on a big tenant.
    ungranted: BitMap = field(default_factory=BitMap)

    @property
    def status(self) -> list[str]:
        return [STATUSES[c] for c in self.code.tolist()]

    def lookup(self) -> dict[int, int]:
        return {int(p): i for i, p in enumerate(self.profile_id.tolist())}

    def find(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each person in ``ids``: whether they have a word, and its position."""
        pos = np.searchsorted(self.profile_id, ids)
        inside = pos < len(self.profile_id)
        hit = np.zeros(len(ids), dtype=bool)
        hit[inside] = self.profile_id[pos[inside]] == ids[inside]
        return hit, np.where(hit, pos, 0)


_cache: dict[tuple[str, str, str], tuple[tuple[int, int], float, Standing]] = {}
_cache_lock = threading.Lock()


def version(db: Session, tenant: str) -> tuple[int, int]:
    """Changes whenever any person's state may have (ledger or identity graph)."""
    row = db.one(q.VERSION, [tenant, tenant])
    return (int(row[0]), int(row[1])) if row else (0, 0)


def standing(
    db: Session, *, tenant: str, purpose_id: str, channel: str, now: datetime | None = None,
    ttl: float = STATES_TTL, known: tuple[int, int] | None = None,
) -> Standing:  # fmt: skip
    """The state of everyone with a word (the SQL form of the ledger's rule); reused
    while the ledger and the graph stand still (``known``: their versions, when the
    caller just read them), for at most ``ttl`` seconds."""
    key = (tenant, purpose_id, channel)
    v = known or version(db, tenant)
    if now is None:
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and hit[0] == v and time.monotonic() - hit[1] < ttl:
            return hit[2]
    at = naive(now) if now else utcnow()
    t = db.arrow(q.STATES, [at, tenant, purpose_id, channel, at, tenant, tenant])
    ids = t.column("profile_id").to_numpy().astype(np.int64)
    order = np.argsort(ids, kind="stable")
    codes = {s: i for i, s in enumerate(STATUSES)}
    code = np.array([codes[x] for x in t.column("status").to_pylist()], dtype=np.int8)[order]
    granted_ids = BitMap(ids[order][code == 0].astype(np.uint32))
    ungranted = BitMap.flip(granted_ids, 0, 2**32)
    ungranted.run_optimize()
    found = Standing(
        profile_id=ids[order],
        code=code,
        entry_seq=t.column("entry_seq").to_numpy().astype(np.int64)[order],
        granted=granted_ids,
        ungranted=ungranted,
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


@dataclass(frozen=True)
class Context:
    """What enforcement reads of a tenant besides the ledger, as of one version."""

    version: tuple[Any, ...]
    purposes: list[Purpose]
    brand_entity: dict[str, str]
    settings: Settings
    canaries: BitMap

    def purpose(self, tenant: str, ref: str, brands: list[str] | None) -> Purpose:
        """The purpose ``ref`` of the entity that runs ``brands``."""
        from quanyu.consent.service import entity_for, find_purpose

        entity = entity_for(self.brand_entity, brands)
        return find_purpose(self.purposes, tenant=tenant, ref=ref, entity=entity)


_contexts: dict[str, Context] = {}


def context(db: Session, *, tenant: str) -> Context:
    """The tenant's purposes, brand map, settings and canaries; read again only when one
    of them (or the ledger, or the graph) changed."""
    from quanyu.consent import service

    v = tuple(db.one(q.CONFIG_VERSION, [tenant, tenant]) or ())
    with _cache_lock:
        found = _contexts.get(tenant)
    if found is not None and v and found.version[1:] == v[1:]:
        if found.version == v:
            return found
        # the ledger moved on (v[0]) but nothing a context holds did: only the version
        return Context(v, found.purposes, found.brand_entity, found.settings, found.canaries)
    service.ensure_defaults(db, tenant=tenant)
    made = Context(
        version=tuple(db.one(q.CONFIG_VERSION, [tenant, tenant]) or ()),
        purposes=service.list_purposes(db, tenant=tenant),
        brand_entity={b: e for e, b in db.execute(q.ENTITY_BRANDS, [tenant])},
        settings=service.get_settings(db, tenant=tenant),
        canaries=canaries(db, tenant=tenant),
    )
    with _cache_lock:
        _contexts[tenant] = made
    return made


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


class _Blocks:
    """Who is blocked and why: the first reason found for a person stands."""

    def __init__(self) -> None:
        self.taken = BitMap()
        self.groups: list[tuple[str, np.ndarray, np.ndarray | None]] = []

    def add(self, people: BitMap, reason: str, seqs: np.ndarray | None = None,
            ids: np.ndarray | None = None) -> None:  # fmt: skip
        fresh = people - self.taken
        if not fresh:
            return
        if ids is None or len(fresh) != len(people):
            keep = np.array(fresh.to_array(), dtype=np.int64)
            if ids is not None and seqs is not None:
                seqs = seqs[np.isin(ids, keep)]
            ids = keep
        self.taken |= fresh
        self.groups.append((reason, ids, seqs))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for reason, ids, _ in self.groups:
            out[reason] = out.get(reason, 0) + len(ids)
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
    ctx: Context | None = None,
) -> Admitted:
    """The people of ``matched`` who may be reached for ``purpose`` on ``channel`` (at
    ``destination``), decided now. With ``act`` (``export``, ``push``, ``send`` ...),
    every allow and block is written to the decision log under ``act_id``. ``ctx`` is
    the tenant's :func:`context` when the caller has just read it."""
    ctx = ctx or context(db, tenant=tenant)
    blocks = _Blocks()
    allowed_to = purpose.destinations
    if destination is not None and allowed_to is not None and destination not in allowed_to:
        blocks.add(matched, f"purpose {purpose.id} may not reach destination {destination}")
    blocks.add(matched & ctx.canaries, "canary: opted out of everything")
    ttl = STATES_TTL if purpose.valid_days is not None else float("inf")
    st = standing(db, tenant=tenant, purpose_id=purpose.id, channel=channel, now=now, ttl=ttl,
                  known=(int(ctx.version[0]), int(ctx.version[2])))  # fmt: skip
    if purpose.legal_basis == "consent":
        ids = np.array(((matched & st.ungranted) - blocks.taken).to_array(), dtype=np.int64)
        hit, pos = st.find(ids)
        blocks.add(BitMap(ids[~hit].astype(np.uint32)), "no consent recorded (unknown)")
        for code in np.unique(st.code[pos[hit]]).tolist():
            sel = hit.copy()
            sel[hit] = st.code[pos[hit]] == code
            blocks.add(BitMap(ids[sel].astype(np.uint32)), f"consent {STATUSES[code]}",
                       st.entry_seq[pos[sel]], ids[sel])  # fmt: skip
    if purpose.marketing and ctx.settings.marketing_min_age is not None:
        young = ctx.settings.marketing_min_age
        ages = _ages(db, tenant, matched)
        blocks.add(matched - BitMap(ages), f"age unknown; marketing needs {young}+")
        blocks.add(BitMap(p for p, a in ages.items() if a < young), f"under {young}: no marketing")
    members = matched - blocks.taken
    if act is not None:
        log_decisions(db, tenant=tenant, act=act, act_id=act_id or act, purpose=purpose,
                      channel=channel, destination=destination or act, members=members,
                      blocks=blocks, standing=st)  # fmt: skip
    return Admitted(members, len(matched), len(blocks.taken), purpose.id, channel, blocks.counts())


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
    blocks: _Blocks,
    standing: Standing,
) -> int:
    """Write one decision per person: allows (with the grant they rest on) and blocks."""
    allowed = np.array(members.to_array(), dtype=np.int64)
    consent = purpose.legal_basis == "consent"
    basis = "consent granted" if consent else f"legal basis {purpose.legal_basis}"
    seqs = [np.full(len(allowed), -1, dtype=np.int64)]
    if consent:
        hit, pos = standing.find(allowed)
        seqs[0] = np.where(hit, standing.entry_seq[pos], -1)
    people, reasons = [allowed], [basis] * len(allowed)
    for reason, ids, found in blocks.groups:
        people.append(ids)
        reasons += [reason] * len(ids)
        seqs.append(found if found is not None else np.full(len(ids), -1, dtype=np.int64))
    n = len(reasons)
    if n == 0:
        return 0
    seq = np.concatenate(seqs)
    now = utcnow()
    table = pa.table(
        {
            "tenant_id": pa.array([tenant] * n),
            "decided_at": pa.array([now] * n, pa.timestamp("us")),
            "act": pa.array([act] * n),
            "act_id": pa.array([act_id] * n),
            "profile_id": pa.array(np.concatenate(people)),
            "purpose_id": pa.array([purpose.id] * n),
            "channel": pa.array([channel] * n),
            "destination": pa.array([destination] * n),
            "decision": pa.array(["allow"] * len(allowed) + ["block"] * (n - len(allowed))),
            "reason": pa.array(reasons),
            "entry_seq": pa.array(seq, mask=seq < 0),
        }
    )
    return db.with_table("staged_decisions", table, q.INSERT_DECISIONS)


def check_channel(channel: str) -> None:
    from quanyu.consent.models import CHANNELS

    if channel not in CHANNELS or channel == "*":
        named = ", ".join(c for c in CHANNELS if c != "*")
        raise ValidationFailed(f"channel {channel!r} is unknown: use one of {named}")
