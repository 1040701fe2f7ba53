"""Read-only summaries of audiences for the console: the newest snapshot of every
audience at once (a list page shows each one's size) and an audience's latest pushes."""

from __future__ import annotations

from quanyu.audiences import sql as aq
from quanyu.audiences import stats_sql as q
from quanyu.audiences.models import PushRecord, Snapshot
from quanyu.audiences.service import snapshot_of
from quanyu.engine import Session


def latest_snapshots(db: Session, *, tenant: str) -> dict[str, Snapshot]:
    """Each audience's newest snapshot, by audience id (audiences never materialised are
    absent). One query, whatever the number of audiences."""
    rows = db.execute(aq.LATEST_SNAPSHOTS, [tenant, tenant])
    snaps = [snapshot_of(row) for row in rows]
    return {s.audience_id: s for s in snaps}


def pushes(db: Session, *, tenant: str, audience_id: str, limit: int = 10) -> list[PushRecord]:
    """An audience's latest pushes, newest first."""
    rows = db.execute(q.PUSHES, [tenant, audience_id, limit])
    return [PushRecord(**dict(zip(PushRecord.model_fields, row, strict=True))) for row in rows]
