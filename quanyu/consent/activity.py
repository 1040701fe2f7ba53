"""How many consent decisions a tenant recorded lately, for dashboards."""

from __future__ import annotations

from datetime import datetime

from quanyu.consent import activity_sql as q
from quanyu.engine import Session


def changes_since(db: Session, *, tenant: str, since: datetime) -> dict[str, int]:
    """Consent ledger entries recorded since ``since`` (naive UTC), per status.

    Every recorded decision counts (a grant, a withdrawal, an expiry), whichever surface it
    came through; the total is the number of changes.
    """
    return {str(status): int(n) for status, n in db.execute(q.CHANGES_SINCE, [tenant, since])}
