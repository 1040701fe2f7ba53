"""One code's history, read-only: the lifecycle events that touched it and its scans.

Lifecycle events list the codes they touched, except generation (one event per chunk of
an order, naming the order and the seq range in its leaf), so a code's ``issue`` event is
found through its order and seq. Each event is a leaf of the tenant's Merkle log
(``code-event:<id>``); proving it is the ledger's work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel

from quanyu.codes import code_history_sql as q
from quanyu.codes.models import CodeEvent
from quanyu.engine import Session


class CodeScan(BaseModel):
    """One scan of a code (no identifier of the scanner is kept with scans)."""

    scanned_at: datetime
    role: str
    party_id: str | None
    city: str | None
    verdict: str
    state: str | None
    inner_code: bool
    precise: bool


def _event(r: tuple[Any, ...]) -> CodeEvent:
    return CodeEvent(id=r[0], action=r[1], at=r[2], actor=r[3], count=r[4], leaf=r[5],
                     leaf_hash=bytes(r[6]).hex())  # fmt: skip


def _issued_here(leaf: str, order_id: str, seq: int) -> bool:
    data = orjson.loads(leaf)
    first, last = data.get("first_seq"), data.get("last_seq")
    return (
        data.get("order") == order_id
        and isinstance(first, int)
        and isinstance(last, int)
        and first <= seq <= last
    )


def events(db: Session, *, tenant: str, code: str, order_id: str, seq: int) -> list[CodeEvent]:
    """The lifecycle events of ``code`` (canonical, 16 characters) of order ``order_id``
    at print position ``seq``, oldest first, generation included."""
    pattern = f'%"order":{orjson.dumps(order_id).decode()}%'
    issued = [
        _event(r)
        for r in db.execute(q.ISSUE_EVENTS, [tenant, pattern])
        if _issued_here(r[5], order_id, seq)
    ]
    touched = [_event(r) for r in db.execute(q.CODE_EVENTS, [tenant, tenant, code])]
    return sorted(issued + touched, key=lambda e: e.id)


def scans(db: Session, *, tenant: str, code: str, limit: int = 200) -> tuple[int, list[CodeScan]]:
    """How many scans ``code`` has had, and the newest ``limit`` of them."""
    row = db.one(q.CODE_SCAN_COUNT, [tenant, code])
    rows = db.execute(q.CODE_SCANS, [tenant, code, limit])
    return int(row[0]) if row else 0, [
        CodeScan(scanned_at=r[0], role=r[1], party_id=r[2], city=r[3], verdict=r[4],
                 state=r[5], inner_code=r[6], precise=bool(r[7]))
        for r in rows
    ]  # fmt: skip
