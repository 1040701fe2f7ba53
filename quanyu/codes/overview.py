"""Read-only summaries of a tenant's codes for the console: codes per lifecycle state
(for the tenant and per recent order) and consumer scans per city.

Each is one bounded query: state counts group one column of ``codes``; the city summary
reads only scans since a given time and returns at most ``limit`` cities.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from quanyu.codes import overview_sql as q
from quanyu.engine import Session

#: Lifecycle states in the order a code passes through them (``redeemed`` is the rewards
#: work's); anything else a count returns is shown after these.
STATES = (
    "issued", "printed", "activated", "aggregated", "shipped", "received", "redeemed",
    "voided", "recalled", "destroyed",
)  # fmt: skip


class CityScans(BaseModel):
    """Consumer scans in one city (``city`` None: the scanner gave none)."""

    city: str | None
    scans: int
    genuine: int
    codes: int


def ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    """``counts`` as (state, n) in lifecycle order, unknown states last by name."""
    known = [(s, counts[s]) for s in STATES if s in counts]
    return known + sorted((s, n) for s, n in counts.items() if s not in STATES)


def state_counts(db: Session, *, tenant: str) -> dict[str, int]:
    """How many of the tenant's codes are in each lifecycle state."""
    return {r[0]: int(r[1]) for r in db.execute(q.STATE_COUNTS, [tenant])}


def order_state_counts(db: Session, *, tenant: str, limit: int = 100) -> dict[str, dict[str, int]]:
    """Codes per state of each of the ``limit`` newest orders (as ``list_orders`` gives
    them), by order id; an order with no codes yet is absent."""
    out: dict[str, dict[str, int]] = {}
    for order_id, state, n in db.execute(q.ORDER_STATE_COUNTS, [tenant, tenant, limit]):
        out.setdefault(order_id, {})[state] = int(n)
    return out


def scans_by_city(
    db: Session, *, tenant: str, since: datetime, limit: int = 200
) -> list[CityScans]:
    """Consumer scans since ``since`` per city as the scanner named it, most first."""
    rows = db.execute(q.SCANS_BY_CITY, [tenant, since, limit])
    return [CityScans(city=r[0], scans=int(r[1]), genuine=int(r[2] or 0), codes=int(r[3]))
            for r in rows]  # fmt: skip
