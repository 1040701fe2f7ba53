"""How many people (unified profiles) a tenant has, for dashboards."""

from __future__ import annotations

from quanyu.engine import Session
from quanyu.profiles import population_sql as q


def count_people(db: Session, *, tenant: str) -> int:
    """The tenant's people: one per OneID, however many identifiers each has.

    It counts what identity resolution has stored; events still waiting for the resolver
    add their people a moment later.
    """
    row = db.one(q.COUNT_PEOPLE, [tenant])
    return int(row[0]) if row else 0
