"""The audiences capability: define, count live, materialise, compare, export, push.

Members always come through the consent gate (``consent_gate.admit``): counts show
who matched and who consent excluded, and snapshots, downloads and pushes only ever
hold admitted members.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime
from itertools import combinations
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from pyroaring import BitMap

from quanyu.audiences import consent_gate
from quanyu.audiences import sql as q
from quanyu.audiences.bitmaps import ProfileIndex, bitmap_of
from quanyu.audiences.evaluate import Evaluator
from quanyu.audiences.index import Built, build
from quanyu.audiences.models import (
    Audience,
    AudienceCreate,
    AudienceDraft,
    AudienceUpdate,
    Count,
    Overlap,
    Region,
    Snapshot,
)
from quanyu.consent import enforce
from quanyu.engine import DuplicateKey, Session, WriteConflict
from quanyu.errors import Conflict, NotFound, ValidationFailed
from quanyu.identity.models import format_oneid
from quanyu.ids import utcnow
from quanyu.tags import jsonform, parse
from quanyu.tags import rules as r
from quanyu.tags import service as tags
from quanyu.tags.query import events_query, persons_query
from quanyu.tags.sql import compiled_statement
from quanyu.tenancy.service import audit

SAMPLE = 20


class IndexCache:
    """One bitmap index per tenant, rebuilt when a tag computation has moved on."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[tuple[int, ...], Built, datetime]] = {}
        self._lock = threading.Lock()

    def get(self, db: Session, *, tenant: str) -> tuple[ProfileIndex, datetime]:
        """The tenant's index, built now if tags or facts changed since it was."""
        version = tags.index_version(db, tenant=tenant)
        with self._lock:
            found = self._built.get(tenant)
            if found is None or found[0] != version:
                traits = sorted(_audience_traits(db, tenant))
                found = (version, build(db, tenant=tenant, traits=traits), utcnow())
                self._built[tenant] = found
        return found[1].index, found[2]

    def drop(self, tenant: str) -> None:
        """Forget a tenant's index (the next use rebuilds it)."""
        with self._lock:
            self._built.pop(tenant, None)


CACHE = IndexCache()


def _audience_traits(db: Session, tenant: str) -> set[str]:
    keys: set[str] = set()
    for a in list_audiences(db, tenant=tenant):
        node = jsonform.from_json(a.rule)
        keys |= {n.key for n in r.walk(node) if isinstance(n, r.Trait)}
    return keys


def read_rule(rule: Any) -> r.Node:
    """An audience rule (a condition) from its text or JSON."""
    return tags.read_rule(rule, want="condition")


def _matches(db: Session, index: ProfileIndex, node: r.Node, *, tenant: str,
             brands: list[str] | None) -> tuple[BitMap, list[str]]:  # fmt: skip
    types = tags.tag_types(db, tenant=tenant)
    now = utcnow()

    def events(part: r.Node) -> BitMap:
        hits, empty = events_query(part, now=now, tag_types=types)
        rows = db.arrow(compiled_statement("audiences.events", hits), hits.params(tenant))
        ids = rows.column("profile_id").to_numpy()
        hit = rows.column("hit").to_numpy(zero_copy_only=False).astype(bool)
        found = bitmap_of(ids[hit])
        if bool(db.execute(compiled_statement("audiences.empty", empty), [])[0][0]):
            found |= index.universe - bitmap_of(ids)
        return found

    def general(part: r.Node) -> BitMap:
        compiled = persons_query(part, now=now, tag_types=types,
                                 trait_rules=tags.trait_rule_names(db, tenant=tenant))  # fmt: skip
        rows = db.arrow(compiled_statement("audiences.general", compiled), compiled.params(tenant))
        return bitmap_of(rows.column(0).to_numpy())

    ev = Evaluator(index, types, events, general)
    found = ev.run(node)
    if brands:
        found &= index.isin("brand", brands)
    return found, ev.plan


def count(db: Session, draft: AudienceDraft, *, tenant: str, cache: IndexCache = CACHE) -> Count:
    """A live count of a draft: matched, excluded by consent, by brand and channel, a sample."""
    started = time.perf_counter()
    node = read_rule(draft.rule)
    ctx = enforce.context(db, tenant=tenant)  # read once for the whole count
    purpose = consent_gate.purpose_of(db, tenant=tenant, purpose=draft.purpose,
                                      channel=draft.channel, brands=draft.brands,
                                      ctx=ctx)  # fmt: skip
    index, built_at = cache.get(db, tenant=tenant)
    matched, plan = _matches(db, index, node, tenant=tenant, brands=draft.brands)
    admitted = consent_gate.admit(db, matched, tenant=tenant, purpose=purpose,
                                  channel=draft.channel, brands=draft.brands, ctx=ctx)  # fmt: skip
    members = admitted.members
    return Count(
        matched=admitted.matched, excluded=admitted.excluded, size=len(members),
        excluded_by=admitted.blocked,
        by_brand=_breakdown(index, "brand", members),
        by_channel=_breakdown(index, "channel", members),
        sample=[format_oneid(int(p)) for p in _sample(members)], plan=plan,
        took_ms=round((time.perf_counter() - started) * 1000, 3), index_built_at=built_at,
    )  # fmt: skip


def _breakdown(index: ProfileIndex, column: str, members: BitMap) -> dict[str, int]:
    if not index.has(column):
        return {}
    out = {str(v): n for v, n in index.counts(column, members).items()}
    return {k: v for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v}


def _sample(members: BitMap) -> list[int]:
    n = len(members)
    if not n:
        return []
    picks = np.unique(np.linspace(0, n - 1, min(SAMPLE, n)).astype(np.int64))
    return [members[int(i)] for i in picks]


# -- definitions ------------------------------------------------------------------------------
_COLS = ("id", "name", "description", "rule", "brands", "purpose", "channel", "refresh_seconds",
         "created_at", "updated_at")  # fmt: skip


def _audience(row: tuple[Any, ...]) -> Audience:
    data = dict(zip(_COLS, row, strict=True))
    data["rule"] = orjson.loads(data["rule"])
    data["brands"] = orjson.loads(data["brands"]) if data["brands"] else None
    data["rule_text"] = parse.to_text(jsonform.from_json(data["rule"]))
    return Audience(**data)


def create_audience(db: Session, body: AudienceCreate, *, tenant: str, actor: str) -> Audience:
    """Save an audience; its rule is checked now."""
    node = read_rule(body.rule)
    consent_gate.purpose_of(db, tenant=tenant, purpose=body.purpose, channel=body.channel,
                            brands=body.brands)  # fmt: skip
    now = utcnow()
    aud = Audience(
        **body.model_dump(exclude={"rule"}), rule=jsonform.to_json(node),
        rule_text=parse.to_text(node), created_at=now, updated_at=now,
    )  # fmt: skip
    row = [aud.id, aud.name, aud.description, orjson.dumps(aud.rule).decode(),
           orjson.dumps(aud.brands).decode() if aud.brands else None, aud.purpose, aud.channel,
           aud.refresh_seconds, now, now]  # fmt: skip
    try:
        with db.transaction():
            db.execute(q.INSERT_AUDIENCE, [tenant, *row])
            audit(db, actor=actor, action="audience.create", target=aud, target_type="audience",
                  target_id=aud.id, tenant=tenant)  # fmt: skip
    except DuplicateKey as e:
        raise Conflict(f"audience {aud.id!r} exists already: pick another id") from e
    return aud


def update_audience(
    db: Session, audience_id: str, body: AudienceUpdate, *, tenant: str, actor: str
) -> Audience:
    """Change a saved audience (the fields ``body`` sets); its rule is checked now.

    Raises:
        NotFound: no such audience.
        ValidationFailed: a rule, purpose or channel that does not hold up.
    """
    given = body.model_fields_set
    with db.transaction():
        before = get_audience(db, tenant=tenant, audience_id=audience_id)
        changes = {k: getattr(body, k) for k in given if k != "rule"}
        for required in ("name", "purpose", "channel", "refresh_seconds", "description"):
            if required in changes and changes[required] is None:
                raise ValidationFailed(f"{required} cannot be null: leave it out to keep it")
        if "rule" in given:
            if body.rule is None:
                raise ValidationFailed("rule cannot be null: leave it out to keep it")
            node = read_rule(body.rule)
            changes |= {"rule": jsonform.to_json(node), "rule_text": parse.to_text(node)}
        after = before.model_copy(update=changes | {"updated_at": utcnow()})
        consent_gate.purpose_of(db, tenant=tenant, purpose=after.purpose, channel=after.channel,
                                brands=after.brands)  # fmt: skip
        brands = orjson.dumps(after.brands).decode() if after.brands else None
        db.execute(q.UPDATE_AUDIENCE, [
            after.name, after.description, orjson.dumps(after.rule).decode(), brands,
            after.purpose, after.channel, after.refresh_seconds, after.updated_at, tenant,
            audience_id])  # fmt: skip
        audit(db, actor=actor, action="audience.update", target=after, before=before,
              target_type="audience", target_id=audience_id, tenant=tenant)  # fmt: skip
    return after


def delete_audience(db: Session, audience_id: str, *, tenant: str, actor: str) -> Audience:
    """Delete a saved audience and its snapshots (lists of people); what was pushed stays
    recorded in its pushes and the decision log. Returns what was deleted.

    Raises:
        NotFound: no such audience.
    """
    with db.transaction():
        before = get_audience(db, tenant=tenant, audience_id=audience_id)
        db.execute(q.DELETE_SNAPSHOTS, [tenant, audience_id])
        db.execute(q.DELETE_AUDIENCE, [tenant, audience_id])
        audit(db, actor=actor, action="audience.delete", target=None, before=before,
              target_type="audience", target_id=audience_id, tenant=tenant)  # fmt: skip
    return before


def list_audiences(db: Session, *, tenant: str) -> list[Audience]:
    """Every saved audience of a tenant."""
    return [_audience(row) for row in db.execute(q.LIST_AUDIENCES, [tenant])]


def get_audience(db: Session, *, tenant: str, audience_id: str) -> Audience:
    """One audience. Raises NotFound."""
    row = db.one(q.GET_AUDIENCE, [tenant, audience_id])
    if row is None:
        raise NotFound(f"audience {audience_id!r} does not exist in this tenant")
    return _audience(row)


def definition_hash(aud: Audience) -> str:
    """A hash of what decides membership: rule, brands, purpose, channel."""
    body = orjson.dumps(
        [aud.rule, aud.brands, aud.purpose, aud.channel], option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(body).hexdigest()[:16]


# -- snapshots --------------------------------------------------------------------------------
_SNAP = ("snapshot_id", "audience_id", "definition_hash", "size", "matched", "excluded",
         "reason", "created_at")  # fmt: skip


def materialise(db: Session, *, tenant: str, audience_id: str, reason: str = "manual",
                cache: IndexCache = CACHE) -> Snapshot:  # fmt: skip
    """Compute an audience's members now and keep them as a snapshot."""
    aud = get_audience(db, tenant=tenant, audience_id=audience_id)
    index, _ = cache.get(db, tenant=tenant)
    matched, _ = _matches(db, index, read_rule(aud.rule), tenant=tenant, brands=aud.brands)
    admitted = consent_gate.admit(db, matched, tenant=tenant, purpose=aud.purpose,
                                  channel=aud.channel, brands=aud.brands)  # fmt: skip
    members = admitted.members
    members.run_optimize()
    blob = members.serialize()
    for attempt in range(5):
        try:
            return _store_snapshot(db, aud, admitted, blob, tenant=tenant, reason=reason)
        except (DuplicateKey, WriteConflict):
            # the refresher and a request materialised at once: number it again
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _store_snapshot(db: Session, aud: Audience, admitted: consent_gate.Admitted, blob: bytes,
                    *, tenant: str, reason: str) -> Snapshot:  # fmt: skip
    with db.transaction():
        row = db.one(q.NEXT_SNAPSHOT, [tenant])
        snap = Snapshot(
            snapshot_id=int(row[0]) if row else 1, audience_id=aud.id,
            definition_hash=definition_hash(aud), size=len(admitted.members),
            matched=admitted.matched, excluded=admitted.excluded, reason=reason,
            created_at=utcnow(),
        )  # fmt: skip
        db.execute(q.INSERT_SNAPSHOT, [tenant, *[getattr(snap, c) for c in _SNAP], blob])
    return snap


def snapshots(db: Session, *, tenant: str, audience_id: str, limit: int = 100) -> list[Snapshot]:
    """An audience's snapshots, newest first: its size over time."""
    get_audience(db, tenant=tenant, audience_id=audience_id)
    rows = db.execute(q.LIST_SNAPSHOTS, [tenant, audience_id, limit])
    return [snapshot_of(row) for row in rows]


def snapshot_of(row: tuple[Any, ...]) -> Snapshot:
    """A snapshot from a row of the snapshot columns, in their table order (no members)."""
    return Snapshot(**dict(zip(_SNAP, row, strict=True)))


def snapshot_members(db: Session, *, tenant: str, snapshot_id: int) -> tuple[Snapshot, BitMap]:
    """A snapshot and its members. Raises NotFound."""
    row = db.one(q.SNAPSHOT_MEMBERS, [tenant, snapshot_id])
    if row is None:
        raise NotFound(f"snapshot {snapshot_id} does not exist in this tenant")
    return snapshot_of(row[:-1]), BitMap.deserialize(row[-1])


def latest_members(db: Session, *, tenant: str, audience_id: str) -> tuple[Snapshot, BitMap]:
    """The newest snapshot of an audience (made now if there is none)."""
    found = snapshots(db, tenant=tenant, audience_id=audience_id, limit=1)
    snap = found[0] if found else materialise(db, tenant=tenant, audience_id=audience_id)
    return snapshot_members(db, tenant=tenant, snapshot_id=snap.snapshot_id)


def overlap(db: Session, *, tenant: str, audience_ids: list[str]) -> Overlap:
    """The Venn regions of two or three audiences' latest snapshots."""
    if not 2 <= len(audience_ids) <= 3 or len(set(audience_ids)) != len(audience_ids):
        raise Conflict("overlap takes two or three different audiences")
    sets = {a: latest_members(db, tenant=tenant, audience_id=a)[1] for a in audience_ids}
    regions = []
    for k in range(len(audience_ids), 0, -1):
        for inside in combinations(audience_ids, k):
            acc = (
                BitMap.intersection(*(sets[a] for a in inside)) if k > 1 else sets[inside[0]].copy()
            )
            for other in audience_ids:
                if other not in inside:
                    acc -= sets[other]
            regions.append(Region(inside=list(inside), size=len(acc)))
    return Overlap(
        audiences=audience_ids, sizes={a: len(s) for a, s in sets.items()}, regions=regions
    )


def members_array(members: BitMap) -> pa.Array:
    """A bitmap's members as an int64 Arrow array."""
    return pa.array(np.asarray(members.to_array(), dtype=np.int64))
