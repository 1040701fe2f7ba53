"""Propagation (the HYPERS case): every consent change reaches every touchpoint that
cares, through the delivery outbox.

A touchpoint registers as a subscriber: a webhook destination (URL and signing secret,
:mod:`quanyu.delivery`) and the purposes and brands it cares about. :func:`announce`
runs in the transaction that appends ledger entries and writes one outbox message per
entry and interested subscriber, so a change and the news of it commit together. The
delivery worker sends them signed (Standard Webhooks), retries with backoff and keeps
them in order per person (the ordering key is the person's OneID, or the identifier
for a person not seen yet).

Each message's ``data``::

    {"entry": 17, "id": "cst_...", "profile": "P42", "purpose": "default.marketing",
     "purpose_key": "marketing", "entity": "default", "channel": "sms",
     "status": "withdrawn", "decided_at": "...Z", "surface": "pos",
     "identifiers": [{"type": "unionid", "scope": "", "value": "o6_..."}]}

``identifiers`` lists the person's identifiers that are not personal data in the clear
(openids, unionids, member ids, user ids); a phone or e-mail is never sent: a touchpoint
keyed by phone looks the OneID up through the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa

from quanyu.consent import sql as q
from quanyu.consent.models import Entry
from quanyu.delivery import service as delivery
from quanyu.engine import Session

TOPIC = "consent.changed"


def _subscribers(
    db: Session, tenant: str
) -> list[tuple[str, str, set[str] | None, set[str] | None]]:
    out = []
    for sub_id, _name, dest, purposes, brands, _at in db.execute(q.LIST_SUBSCRIBERS, [tenant]):
        out.append((
            sub_id,
            dest,
            set(orjson.loads(purposes)) if purposes is not None else None,
            set(orjson.loads(brands)) if brands is not None else None,
        ))  # fmt: skip
    return out


def ordering_key(e: Entry, subject_key: str | None = None) -> str:
    """Messages about one person share a key, so they arrive in order."""
    return f"consent:{e.profile}" if e.profile else f"consent:key:{(subject_key or e.id)[:64]}"


def announce(db: Session, tenant: str, entries: Sequence[Entry]) -> dict[int, list[str]]:
    """Enqueue the news of ``entries`` for every interested subscriber, in the caller's
    transaction. Returns the subscriber ids told of each entry (by seq)."""
    subs = _subscribers(db, tenant)
    if not subs or not entries:
        return {}
    entity_brands: dict[str, set[str]] = {}
    for entity, brand in db.execute(q.ENTITY_BRANDS, [tenant]):
        entity_brands.setdefault(entity, set()).add(brand)
    told: dict[int, list[str]] = {}
    staged: dict[str, list[Any]] = {
        "tenant_id": [],
        "seq": [],
        "subscriber_id": [],
        "message_id": [],
    }
    ids_of: dict[str | None, list[dict[str, str]]] = {}
    for e in entries:
        entity = e.purpose_id.split(".", 1)[0]
        if e.profile not in ids_of:
            ids_of[e.profile] = _identifiers(db, tenant, e.profile)
        data = {
            "entry": e.seq, "id": e.id, "profile": e.profile, "purpose": e.purpose_id,
            "purpose_key": e.purpose_id.split(".", 1)[1], "entity": entity,
            "channel": e.channel, "status": e.status,
            "decided_at": e.decided_at.isoformat(timespec="milliseconds") + "Z",
            "surface": e.surface, "identifiers": ids_of[e.profile],
        }  # fmt: skip
        for sub_id, dest, purposes, brands in subs:
            if purposes is not None and e.purpose_id not in purposes:
                continue
            if (
                brands is not None
                and entity != "default"
                and not brands & entity_brands.get(entity, set())
            ):
                continue
            [message] = delivery.enqueue(
                db, tenant=tenant, destination_id=dest, topic=TOPIC, key=ordering_key(e),
                payloads=[data],
            )  # fmt: skip
            told.setdefault(e.seq, []).append(sub_id)
            for c, v in (("tenant_id", tenant), ("seq", e.seq), ("subscriber_id", sub_id),
                         ("message_id", message)):  # fmt: skip
                staged[c].append(v)
    if staged["seq"]:
        db.with_table("staged_propagation", pa.table(staged), q.INSERT_PROPAGATION)
    return told


def _identifiers(db: Session, tenant: str, profile: str | None) -> list[dict[str, str]]:
    if profile is None:
        return []
    rows = db.execute(q.PROFILE_IDENTIFIERS, [tenant, int(profile[1:])])
    return [{"type": t, "scope": s, "value": v} for t, s, v in rows]
