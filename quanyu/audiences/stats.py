"""Read-only summaries of audiences for the console: the newest snapshot of every
audience at once (a list page shows each one's size) and an audience's latest pushes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from quanyu.audiences import stats_sql as q
from quanyu.audiences.models import Snapshot
from quanyu.engine import Session

_SNAP = ("snapshot_id", "audience_id", "definition_hash", "size", "matched", "excluded",
         "reason", "created_at")  # fmt: skip


def latest_snapshots(db: Session, *, tenant: str) -> dict[str, Snapshot]:
    """Each audience's newest snapshot, by audience id (audiences never materialised are
    absent). One query, whatever the number of audiences."""
    rows = db.execute(q.LATEST_SNAPSHOTS, [tenant, tenant])
    snaps = [Snapshot(**dict(zip(_SNAP, row, strict=True))) for row in rows]
    return {s.audience_id: s for s in snaps}


@dataclass(frozen=True)
class PushRecord:
    """A push as recorded: which snapshot went where, with which identifier, in how many
    records and batches (the outbox has what became of each batch)."""

    push_id: str
    audience_id: str
    snapshot_id: int
    destination_id: str
    identifier: str
    records: int
    batches: int
    created_at: datetime


def pushes(db: Session, *, tenant: str, audience_id: str, limit: int = 10) -> list[PushRecord]:
    """An audience's latest pushes, newest first."""
    rows = db.execute(q.PUSHES, [tenant, audience_id, limit])
    return [PushRecord(*row) for row in rows]
