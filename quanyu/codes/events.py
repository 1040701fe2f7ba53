"""Code lifecycle events: an append-only record per bulk call, each a ledger leaf.

An event's leaf is canonical JSON (RFC 8785 for the values used here: sorted keys, no
whitespace, integers and strings only) naming the action, time, count, the SHA-256 of
the touched codes sorted and concatenated, and context ids (order, dealer, region,
store) — never personal data, so the ledger may publish it. ``leaf_hash`` is the RFC
9162 leaf hash, SHA-256(0x00 || leaf); the event is appended to the tenant's Merkle log
in the same transaction, so an event and its leaf commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from quanyu.codes import lifecycle_sql as q
from quanyu.codes.models import CodeEvent
from quanyu.engine import Session
from quanyu.ledger import service as ledger


def canonical(value: Any) -> bytes:
    """Canonical JSON of a leaf payload (strings, integers, nested objects and lists)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def codes_digest(codes: list[str]) -> str:
    """Hex SHA-256 of the codes sorted and concatenated (16 characters each)."""
    return hashlib.sha256("".join(sorted(codes)).encode()).hexdigest()


@contextmanager
def recording(db: Session, tenant: str) -> Iterator[None]:
    """The transaction to record code events in: it holds the tenant's ledger lock, so its
    leaves queue behind other appends (consent capture, rewards) instead of conflicting."""
    with ledger.appending(db, tenant), db.transaction():
        yield


def record(
    db: Session,
    *,
    tenant: str,
    action: str,
    actor: str,
    count: int,
    codes_sha256: str,
    at: datetime,
    context: dict[str, Any] | None = None,
) -> CodeEvent:
    """Append one event and its ledger leaf in the caller's transaction.

    Returns:
        The stored event with its leaf and hex leaf hash.
    """
    row = db.one(q.NEXT_EVENT, [tenant])
    event_id = int(row[0]) if row else 1
    payload = {
        "v": 1,
        "type": "code_event",
        "tenant": tenant,
        "event": event_id,
        "action": action,
        "at": at.isoformat(timespec="microseconds") + "Z",
        "count": count,
        "codes_sha256": codes_sha256,
        **{k: v for k, v in (context or {}).items() if v is not None},
    }
    leaf = canonical(payload)
    leaf_hash = hashlib.sha256(b"\x00" + leaf).digest()
    db.execute(q.INSERT_EVENT,
               [tenant, event_id, action, at, actor, count, leaf.decode(), leaf_hash])  # fmt: skip
    ledger.append(db, tenant, [ledger.Leaf("code", f"code-event:{event_id}", leaf_hash, leaf)])
    return CodeEvent(id=event_id, action=action, at=at, actor=actor, count=count,
                     leaf=leaf.decode(), leaf_hash=leaf_hash.hex())  # fmt: skip


def events_since(
    db: Session, *, tenant: str, after_id: int = 0, limit: int = 1000
) -> list[CodeEvent]:
    """Events with id above ``after_id``, oldest first (for the ledger, EPCIS and audits)."""
    rows = db.execute(q.EVENTS_SINCE, [tenant, after_id, limit])
    return [CodeEvent(id=r[0], action=r[1], at=r[2], actor=r[3], count=r[4], leaf=r[5],
                      leaf_hash=bytes(r[6]).hex()) for r in rows]  # fmt: skip


def event_codes(db: Session, *, tenant: str, event_id: int) -> list[str]:
    """The codes an event touched, sorted (their digest is the leaf's ``codes_sha256``)."""
    return [r[0] for r in db.execute(q.EVENT_CODES, [tenant, event_id])]
