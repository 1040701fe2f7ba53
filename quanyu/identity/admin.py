"""Reading and reviewing the identity graph: lookups, conflicts, evaluation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from quanyu.engine import Session
from quanyu.errors import InvalidRequest, NotFound
from quanyu.identity import sql as q
from quanyu.identity.models import (
    Conflict,
    ConflictPage,
    Evaluation,
    IdentifierRef,
    ResolveStatus,
    format_oneid,
)
from quanyu.identity.secrets import decrypt
from quanyu.identity.service import Resolver
from quanyu.ids import utcnow


def find(
    db: Session, resolver: Resolver, *, tenant: str, type: str, value: str, scope: str = ""
) -> tuple[int, IdentifierRef]:
    """The node and person of an identifier as a person would type it.

    Raises:
        NotFound: no event has carried that identifier.
    """
    key = resolver.node_key(db, tenant, type, value, scope)
    rows = [r for r in db.execute(q.FIND_NODE, [key]) if r[0] == tenant]
    row = rows[0][1:] if rows else None
    if row is None:
        where = f" in {scope}" if scope else ""
        raise NotFound(
            f"No person has the {type} {value!r}{where}: check the value, or that events"
            " carrying it have been sent (resolution follows ingest within a second)."
        )
    return int(row[0]), IdentifierRef(type=row[2], value=row[3], profile=format_oneid(row[1]))


def status(db: Session, *, tenant: str) -> ResolveStatus:
    """How far resolution has come with the tenant's committed events."""
    state = db.one(q.GET_STATE, [tenant])
    resolved = int(state[4]) if state is not None else 0
    row = db.one(q.PENDING_STATUS, [tenant, resolved])
    assert row is not None  # an aggregate: always one row
    pending, upto, oldest = row
    lag = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
    return ResolveStatus(
        resolved_seq=resolved,
        pending_events=int(pending),
        pending_upto=int(upto) if upto is not None else None,
        oldest_pending_at=oldest,
        lag_seconds=round(lag, 3),
    )


def list_conflicts(
    db: Session, *, tenant: str, reviewed: bool = False, cursor: str | None = None, limit: int = 50
) -> ConflictPage:
    """Links a limit refused, newest first; reviewed ones only when asked."""
    before = int(cursor) if cursor else 2**62
    rows = db.execute(q.LIST_CONFLICTS, [tenant, reviewed, before, limit + 1])
    data = [
        Conflict(
            edge_id=r[0],
            limit=r[1],
            source_id=r[2],
            message_id=r[3],
            seen_at=r[4],
            review=r[5],
            reviewed_at=r[6],
            a=IdentifierRef(type=r[7], value=r[8], profile=format_oneid(r[9])),
            b=IdentifierRef(type=r[10], value=r[11], profile=format_oneid(r[12])),
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return ConflictPage(data=data, next_cursor=str(data[-1].edge_id) if more else None)


def review_conflict(db: Session, *, tenant: str, edge_id: int, review: str) -> None:
    """Mark a conflict as reviewed (the people stay apart; unlink to change that)."""
    rows = db.execute(q.REVIEW_CONFLICT, [review, utcnow(), tenant, edge_id])
    if not rows or not rows[0][0]:
        raise NotFound(f"Conflict {edge_id} does not exist in this tenant.")


def evaluate(db: Session, *, tenant: str, truth: pa.Table) -> Evaluation:
    """Pairwise precision, recall and F1 of the partition against ``truth``.

    ``truth`` has ``record_id`` (an event's messageId) and ``person_id`` (the true
    person); records whose event carried no usable identifier are left out.
    """
    missing = {"record_id", "person_id"} - set(truth.column_names)
    if missing:
        raise InvalidRequest(
            f"The truth file lacks {', '.join(sorted(missing))}: it needs record_id and"
            " person_id columns (the demo writes one as truth.parquet)."
        )
    table = truth.select(["record_id", "person_id"])
    db.register("staged_truth", table)
    try:
        row = db.one(q.EVALUATE, [tenant, tenant])
    finally:
        db.unregister("staged_truth")
    assert row is not None
    both, ours, true, records, profiles, persons = (int(x or 0) for x in row)
    precision = both / ours if ours else 1.0
    recall = both / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Evaluation(
        records=records,
        profiles=profiles,
        persons=persons,
        precision=round(precision, 6),
        recall=round(recall, 6),
        f1=round(f1, 6),
    )


def persons(db: Session, *, tenant: str) -> pa.Table:
    """Every person (``profile_id``) of a tenant."""
    return db.arrow(q.PERSONS, [tenant])


def identifier_kinds(db: Session, *, tenant: str) -> pa.Table:
    """(profile_id, id_type, scope): the kinds of identifier each person has."""
    return db.arrow(q.PERSON_ID_TYPES, [tenant])


def identifier_values(
    db: Session,
    resolver: Resolver,
    *,
    tenant: str,
    profile_ids: pa.Array,
    type: str,
    scope: str | None = None,
) -> pa.Table:
    """The newest identifier of a type (and scope) of each given person, in clear:
    ``profile_id, value``. Values stored only encrypted are decrypted here, for
    activation (an export a tenant asked for); a person without one is left out.
    """
    db.register("export_persons", pa.table({"profile_id": profile_ids}))
    try:
        rows = db.arrow(q.IDENTIFIERS_OF, [tenant, type, scope, scope])
    finally:
        db.unregister("export_persons")
    ids = rows.column("profile_id").to_numpy()
    first = np.ones(len(ids), bool)
    first[1:] = ids[1:] != ids[:-1]
    keep = rows.filter(pa.array(first))
    keys = resolver.keys(tenant)
    values = []
    for key, value, blob in zip(
        keep.column("key").to_pylist(),
        keep.column("value").to_pylist(),
        keep.column("value_enc").to_pylist(),
        strict=True,
    ):
        values.append(value if value is not None else decrypt(keys, blob, aad=key.encode()))
    return pa.table(
        {"profile_id": keep.column("profile_id"), "value": pa.array(values, pa.string())}
    )
