"""How many codes were scanned lately, for dashboards."""

from __future__ import annotations

from datetime import datetime

from quanyu.codes import scan_activity_sql as q
from quanyu.engine import Session


def scans_since(db: Session, *, tenant: str, since: datetime) -> dict[str, int]:
    """Scans since ``since`` (naive UTC) per verdict: genuine, forged, recalled …

    Every scan counts, by consumers, dealers and stores alike.
    """
    return {str(verdict): int(n) for verdict, n in db.execute(q.SCANS_SINCE, [tenant, since])}
