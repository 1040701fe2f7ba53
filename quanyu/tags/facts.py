"""Fold resolved events into ``event_facts``, the per-person events tag rules read.

Identity resolves events in commit order and numbers every change of a person
(merge, split, rebuild). A fold appends the facts of newly resolved commits and moves
the facts of changed persons to their identifiers' current person, then records how
far it got, so each fold does only new work. It returns the persons whose facts
changed: an incremental tag computation recomputes those.

Collection is enforced here: facts of a person who withdrew (or refused) the purpose
collection rests on, dated after their decision, are deleted on every fold
(:func:`quanyu.consent.collection.withheld`), so no rule or audience uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from quanyu.engine import Session
from quanyu.ids import utcnow
from quanyu.tags import sql as q


@dataclass(frozen=True)
class Fold:
    """What one fold did: commits (after, upto], facts added, persons touched."""

    after: int
    upto: int
    facts: int
    persons: np.ndarray  # int64 profile ids whose facts changed (old and new ids)


def state(db: Session, *, tenant: str) -> tuple[int, int, int]:
    """(folded commit, folded identity change, next run number) of a tenant."""
    row = db.one(q.GET_STATE, [tenant])
    if row is None:
        db.execute(q.CREATE_STATE, [tenant, utcnow()])
        return 0, 0, 1
    return int(row[0]), int(row[1]), int(row[2])


def next_run(db: Session, *, tenant: str) -> int:
    """Number a new computation run of a tenant."""
    state(db, tenant=tenant)
    row = db.one(q.NEXT_RUN, [tenant])
    assert row is not None
    return int(row[0])


def fold(db: Session, *, tenant: str) -> Fold:
    """Bring a tenant's facts up to what identity has resolved.

    Returns:
        The commits folded, the facts added and the persons whose facts changed.
    """
    from quanyu.consent.collection import withheld

    held = withheld(db, tenant)
    with db.transaction():
        seq, change, _ = state(db, tenant=tenant)
        progress = db.one(q.IDENTITY_PROGRESS, [tenant])
        upto, next_change = (int(progress[0]), int(progress[1])) if progress else (seq, change)
        affected = np.zeros(0, np.int64)
        if next_change > change:
            rows = db.arrow(q.AFFECTED, [tenant, change, tenant, change])
            affected = rows.column(0).to_numpy().astype(np.int64)
            if len(affected):
                db.with_table(
                    "tag_affected",
                    pa.table({"profile_id": affected}),
                    q.REMAP_FACTS,
                    [tenant, tenant],
                )
        added = 0
        fresh = np.zeros(0, np.int64)
        if upto > seq:
            res = db.execute(q.FOLD_EVENTS, [tenant, seq, upto, tenant, seq, upto])
            added = int(res[0][0]) if res else 0
            if added:
                fresh = db.arrow(q.FOLDED_PERSONS, [tenant, seq, upto]).column(0).to_numpy()
        hidden = np.zeros(0, np.int64)
        if held.num_rows:
            db.register("tag_withheld", held)
            hidden = db.arrow(q.WITHHELD_PERSONS, [tenant]).column(0).to_numpy().astype(np.int64)
            if len(hidden):
                db.execute(q.DROP_WITHHELD_FACTS, [tenant])
            db.unregister("tag_withheld")
        db.execute(q.SET_FOLDED, [max(upto, seq), max(next_change, change), utcnow(), tenant])
    persons = np.unique(np.concatenate([affected, fresh.astype(np.int64), hidden]))
    return Fold(seq, max(upto, seq), added, persons)
