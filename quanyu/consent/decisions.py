"""The decision log: every allow and block enforcement made, queryable."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from quanyu.consent import sql as q
from quanyu.engine import Session


class Logged(BaseModel):
    decided_at: datetime
    act: str
    act_id: str
    profile: str
    purpose_id: str
    channel: str
    destination: str
    decision: str
    reason: str
    entry_seq: int | None


def list_decisions(
    db: Session,
    *,
    tenant: str,
    profile_id: int | None = None,
    decision: str | None = None,
    act_id: str | None = None,
    purpose: str | None = None,
    limit: int = 100,
) -> list[Logged]:
    """Decisions, newest first, optionally of one person, decision, act or purpose id."""
    params = [tenant, profile_id, profile_id, decision, decision, act_id, act_id, purpose,
              purpose, limit]  # fmt: skip
    return [
        Logged(
            decided_at=r[1],
            act=r[2],
            act_id=r[3],
            profile=f"P{r[4]}",
            purpose_id=r[5],
            channel=r[6],
            destination=r[7],
            decision=r[8],
            reason=r[9],
            entry_seq=r[10],
        )  # fmt: skip
        for r in db.execute(q.LIST_DECISIONS, params)
    ]
