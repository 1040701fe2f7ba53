"""Enforcement in collection: the events of a person who withdrew (or refused) the
purpose collection rests on are not used.

A purpose with ``collects`` (the default ``analysis``) carries what happens to the
events a person's identifiers bring in after they said no (``on_withdrawal``):
``exclude`` keeps them, unused (the tags capability leaves them out of the facts its
rules and audiences read), ``drop`` deletes them (consent capture does, on each pass).

**Since when.** A person is withheld while their state for such a purpose (channel
``*``) is ``denied`` or ``withdrawn``; ``since`` is when the decision that state rests on
was made, and only events dated after it are withheld. The tag facts of those events are
deleted on every fold, so they stay out even after the person grants again; events from
the grant on are used again. Two edges are not exact: an event of the withheld window
that arrives only after the new grant is used, and facts deleted for a merged person
stay deleted if a split later shows the withdrawal was the other side's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from quanyu.consent import capture_sql as cq
from quanyu.consent import sql as q
from quanyu.engine import Session
from quanyu.ids import utcnow

WITHHELD_SCHEMA = pa.schema([("profile_id", pa.int64()), ("since", pa.timestamp("us"))])
#: Columns of ``consent.list_purposes`` this module reads.
_ID, _ON_WITHDRAWAL, _COLLECTS = 0, 10, 11


def collecting_purposes(
    db: Session, *, tenant: str, policies: Sequence[str] = ("exclude", "drop")
) -> list[str]:
    """Ids of the tenant's purposes collection rests on, with one of ``policies``."""
    return [
        str(r[_ID])
        for r in db.execute(q.LIST_PURPOSES, [tenant])
        if r[_COLLECTS] and r[_ON_WITHDRAWAL] in policies
    ]


def withheld(
    db: Session,
    tenant: str,
    *,
    policies: Sequence[str] = ("exclude", "drop"),
    now: datetime | None = None,
) -> pa.Table:
    """The persons whose events after ``since`` must not be used (see the module
    docstring), for the collecting purposes with one of ``policies``.

    Reads only (safe inside a caller's transaction; creates no defaults).

    Returns:
        ``profile_id`` (int64), ``since`` (naive UTC timestamp): one row per person, the
        earliest withdrawal where several purposes are withheld.
    """
    at = now or utcnow()
    parts: list[pa.Table] = []
    for purpose in collecting_purposes(db, tenant=tenant, policies=policies):
        states = db.arrow(q.STATES, [at, tenant, purpose, "*", at, tenant, tenant])
        said_no = states.filter(pc.greater_equal(states["rank"], 2))
        if said_no.num_rows == 0:
            continue
        seqs = [int(s) for s in said_no["entry_seq"].to_pylist()]
        decided = dict(db.execute(cq.DECIDED_AT, [tenant, seqs]))
        parts.append(
            pa.table(
                {
                    "profile_id": said_no["profile_id"].cast(pa.int64()),
                    "since": pa.array([decided[s] for s in seqs], pa.timestamp("us")),
                },
                schema=WITHHELD_SCHEMA,
            )
        )
    if not parts:
        return WITHHELD_SCHEMA.empty_table()
    table = pa.concat_tables(parts)
    if len(parts) == 1:
        return table
    grouped = table.group_by("profile_id").aggregate([("since", "min")])
    return pa.table(
        {
            "profile_id": grouped["profile_id"],
            "since": grouped["since_min"],
        },
        schema=WITHHELD_SCHEMA,
    )
