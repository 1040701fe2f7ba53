"""Propagation (the HYPERS case): every consent change reaches every touchpoint that
cares, through the delivery outbox.

A touchpoint registers as a subscriber: a webhook destination (URL and signing secret,
:mod:`quanyu.delivery`) and the purposes and brands it cares about. :func:`announce`
runs in the transaction that appends ledger entries and writes one outbox message per
entry and interested subscriber, so a change and the news of it commit together. The
delivery worker sends them signed (Standard Webhooks), retries with backoff and keeps
them in order per person (the ordering key is the person's OneID, or the identifier's
graph key for a person not seen yet).

:func:`create_subscriber`, :func:`list_subscribers` and :func:`delete_subscriber` manage
subscribers; :func:`report` says who was told of one entry and what each answered.

Each message's ``data``::

    {"entry": 17, "id": "cst_...", "profile": "P42", "purpose": "default.marketing",
     "purpose_key": "marketing", "entity": "default", "channel": "sms",
     "status": "withdrawn", "decided_at": "...Z", "surface": "pos",
     "identifiers": [{"type": "unionid", "scope": "", "value": "o6_..."}]}

``identifiers`` lists the person's identifiers that are not personal data in the clear
(openids, unionids, member ids, user ids); a phone or e-mail is never sent: a touchpoint
keyed by phone looks the OneID up through the API. For a person not resolved yet
(``profile`` null) it holds the identifier the decision named, unless that is personal
data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa

from quanyu.consent import ledger
from quanyu.consent import propagate_sql as pq
from quanyu.consent import sql as q
from quanyu.consent.models import Entry
from quanyu.consent.propagate_models import (
    PropagationReport,
    Subscriber,
    SubscriberCreate,
    SubscriberCreated,
    Told,
)
from quanyu.delivery import service as delivery
from quanyu.delivery.models import DestinationCreate, MessageStatus, OutboxMessage
from quanyu.engine import Session
from quanyu.errors import Conflict, NotFound, ValidationFailed
from quanyu.ids import new_id, utcnow

TOPIC = "consent.changed"
_KEY_ROOM = 180  # the outbox takes keys of up to 200 characters

# --- subscribers ----------------------------------------------------------------------------


def _json_list(value: str | None) -> list[str] | None:
    return list(orjson.loads(value)) if value is not None else None


def _subscriber(row: tuple[Any, ...], urls: dict[str, str]) -> Subscriber:
    return Subscriber(
        id=row[0],
        name=row[1],
        destination_id=row[2],
        url=urls.get(row[2]),
        purposes=_json_list(row[3]),
        brands=_json_list(row[4]),
        created_at=row[5],
    )


def _urls(db: Session, tenant: str) -> dict[str, str]:
    return {d.id: d.url for d in delivery.list_destinations(db, tenant=tenant)}


def _purpose_ids(db: Session, tenant: str, refs: list[str] | None) -> list[str] | None:
    from quanyu.consent.service import get_purpose

    if refs is None:
        return None
    if not refs:
        raise ValidationFailed(
            "purposes is empty, so the subscriber would hear of nothing: name at least one"
            " purpose, or send null for every purpose"
        )
    return list(dict.fromkeys(get_purpose(db, tenant=tenant, ref=r).id for r in refs))


def _brand_ids(db: Session, tenant: str, brands: list[str] | None) -> list[str] | None:
    from quanyu.tenancy.service import list_brands

    if brands is None:
        return None
    if not brands:
        raise ValidationFailed(
            "brands is empty, so the subscriber would hear of nothing: name at least one"
            " brand, or send null for every brand"
        )
    unknown = sorted(set(brands) - {b.id for b in list_brands(db, tenant=tenant)})
    if unknown:
        raise ValidationFailed(
            f"brands {unknown} are not brands of tenant {tenant}: list them with"
            f" GET /v1/tenants/{tenant}/brands"
        )
    return list(dict.fromkeys(brands))


def create_subscriber(
    db: Session,
    body: SubscriberCreate,
    *,
    tenant: str,
    master_key: bytes,
    actor: str,
    allow_private: bool = False,
) -> SubscriberCreated:
    """Register a touchpoint to be told of consent changes from now on.

    Creates its webhook destination (with a new signing secret, returned this once).

    Raises:
        Conflict: the tenant has a subscriber (or destination) of that name.
        NotFound: an unknown purpose.
        ValidationFailed: an ambiguous purpose key, an unknown brand, an empty list, or
            a URL on a private network while ``allow_private`` is false.
    """
    from quanyu.tenancy.service import audit

    if db.one(pq.SUBSCRIBER_BY_NAME, [tenant, body.name]):
        raise Conflict(f"Tenant {tenant} has a consent subscriber named {body.name!r} already.")
    purposes = _purpose_ids(db, tenant, body.purposes)
    brands = _brand_ids(db, tenant, body.brands)
    dest = delivery.create_destination(
        db,
        DestinationCreate(name=f"consent:{body.name}", url=body.url, batch_size=1),
        tenant=tenant,
        master_key=master_key,
        allow_private=allow_private,
    )
    made = Subscriber(
        id=new_id("csb"), name=body.name, destination_id=dest.id, url=dest.url,
        purposes=purposes, brands=brands, created_at=utcnow(),
    )  # fmt: skip
    try:
        with db.transaction():
            db.execute(
                q.INSERT_SUBSCRIBER,
                [tenant, made.id, made.name, dest.id,
                 orjson.dumps(purposes).decode() if purposes is not None else None,
                 orjson.dumps(brands).decode() if brands is not None else None,
                 made.created_at],
            )  # fmt: skip
            audit(db, actor=actor, action="consent.subscriber.create", target=made,
                  target_type="consent_subscriber", target_id=made.id, tenant=tenant)  # fmt: skip
    except BaseException:
        # the destination alone would be a webhook target nobody manages
        delivery.delete_destination(db, tenant=tenant, destination_id=dest.id)
        raise
    return SubscriberCreated(**made.model_dump(), secret=dest.secret)


def list_subscribers(db: Session, *, tenant: str) -> list[Subscriber]:
    """The tenant's consent subscribers, oldest first (never their secrets)."""
    urls = _urls(db, tenant)
    return [_subscriber(r, urls) for r in db.execute(q.LIST_SUBSCRIBERS, [tenant])]


def get_subscriber(db: Session, *, tenant: str, subscriber_id: str) -> Subscriber:
    """One subscriber. Raises NotFound."""
    row = db.one(pq.GET_SUBSCRIBER, [tenant, subscriber_id])
    if row is None:
        raise NotFound(
            f"Tenant {tenant} has no consent subscriber {subscriber_id!r}; list them with"
            f" GET /v1/tenants/{tenant}/consent/subscribers."
        )
    return _subscriber(row, _urls(db, tenant))


def delete_subscriber(db: Session, *, tenant: str, subscriber_id: str, actor: str) -> Subscriber:
    """Stop telling a subscriber: delete it and its destination (its secret goes too).

    Messages already written stay for the record; those still pending are skipped.
    Returns what was deleted. Raises NotFound.
    """
    from quanyu.tenancy.service import audit

    found = get_subscriber(db, tenant=tenant, subscriber_id=subscriber_id)
    with db.transaction():
        db.execute(q.DELETE_SUBSCRIBER, [tenant, subscriber_id])
        audit(db, actor=actor, action="consent.subscriber.delete", target=None,
              target_type="consent_subscriber", target_id=subscriber_id, tenant=tenant,
              before=found)  # fmt: skip
        if found.url is not None:
            delivery.delete_destination(db, tenant=tenant, destination_id=found.destination_id)
    return found


# --- announcing -----------------------------------------------------------------------------


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
    """Messages about one person share a key, so they arrive in order: the OneID, or
    for a person not resolved yet the identifier's graph key (hashed when long)."""
    if e.profile:
        return f"consent:{e.profile}"
    subject = subject_key or e.id
    if len(subject) > _KEY_ROOM:
        subject = hashlib.sha256(subject.encode()).hexdigest()
    return f"consent:key:{subject}"


def announce(db: Session, tenant: str, entries: Sequence[Entry]) -> dict[int, list[str]]:
    """Enqueue the news of ``entries`` for every interested subscriber, in the caller's
    transaction. Returns the subscriber ids told of each entry (by seq)."""
    subs = _subscribers(db, tenant)
    if not subs or not entries:
        return {}
    entity_brands: dict[str, set[str]] = {}
    for entity, brand in db.execute(q.ENTITY_BRANDS, [tenant]):
        entity_brands.setdefault(entity, set()).add(brand)
    subject_keys: dict[int, str] = {}
    if any(e.profile is None for e in entries):  # Entry does not carry its subject key
        seqs = [e.seq for e in entries]
        subject_keys = dict(db.execute(pq.SUBJECT_KEYS, [tenant, min(seqs), max(seqs)]))
    # in entry order, so the messages of each (subscriber, person) are in order too
    plan: list[tuple[str, int, delivery.Outgoing]] = []
    ids_of: dict[str, list[dict[str, str]]] = {}
    for e in entries:
        entity = e.purpose_id.split(".", 1)[0]
        if e.profile is None:
            identifiers = _unresolved(subject_keys.get(e.seq))
        else:
            if e.profile not in ids_of:
                ids_of[e.profile] = _identifiers(db, tenant, e.profile)
            identifiers = ids_of[e.profile]
        data = {
            "entry": e.seq, "id": e.id, "profile": e.profile, "purpose": e.purpose_id,
            "purpose_key": e.purpose_id.split(".", 1)[1], "entity": entity,
            "channel": e.channel, "status": e.status,
            "decided_at": e.decided_at.isoformat(timespec="milliseconds") + "Z",
            "surface": e.surface, "identifiers": identifiers,
        }  # fmt: skip
        key = ordering_key(e, subject_keys.get(e.seq))
        for sub_id, dest, purposes, brands in subs:
            if purposes is not None and e.purpose_id not in purposes:
                continue
            if (
                brands is not None
                and entity != "default"
                and not brands & entity_brands.get(entity, set())
            ):
                continue
            plan.append((sub_id, e.seq, delivery.Outgoing(dest, key, data)))
    if not plan:
        return {}
    ids = delivery.enqueue_each(db, tenant=tenant, topic=TOPIC, messages=[m for _, _, m in plan])
    told: dict[int, list[str]] = {}
    for sub_id, seq, _ in plan:
        told.setdefault(seq, []).append(sub_id)
    staged = {
        "tenant_id": [tenant] * len(plan),
        "seq": [seq for _, seq, _ in plan],
        "subscriber_id": [sub_id for sub_id, _, _ in plan],
        "message_id": ids,
    }
    db.with_table("staged_propagation", pa.table(staged), q.INSERT_PROPAGATION)
    return {seq: sorted(subs_told) for seq, subs_told in sorted(told.items())}


def _identifiers(db: Session, tenant: str, profile: str) -> list[dict[str, str]]:
    rows = db.execute(q.PROFILE_IDENTIFIERS, [tenant, int(profile[1:])])
    return [{"type": t, "scope": s, "value": v} for t, s, v in rows]


def _unresolved(subject_key: str | None) -> list[dict[str, str]]:
    """The identifier a decision named for a person not resolved yet, from its graph key
    (``type:scope:value``); none for personal data, whose key holds only a keyed hash."""
    parts = (subject_key or "").split(":", 2)
    if len(parts) < 3 or parts[2].startswith("h:"):
        return []
    return [{"type": parts[0], "scope": parts[1], "value": parts[2]}]


# --- the report -----------------------------------------------------------------------------


def report(db: Session, *, tenant: str, seq: int) -> PropagationReport:
    """Who was told of ledger entry ``seq``: each subscriber's message, its status,
    attempts, delivery time and the subscriber's acknowledgement, with counts.

    Raises:
        NotFound: no such entry.
    """
    entry = ledger.get_entry(db, tenant, seq)
    if entry is None:
        raise NotFound(
            f"Tenant {tenant} has no consent ledger entry {seq}: entries are numbered from 1."
        )
    rows = db.execute(q.PROPAGATION_OF, [tenant, seq])
    messages = delivery.get_messages(db, tenant=tenant, ids=[m for _, m in rows])
    names = {r[0]: r[1] for r in db.execute(q.LIST_SUBSCRIBERS, [tenant])}
    told = [_told(sub, names.get(sub), mid, messages.get(mid)) for sub, mid in rows]
    counts = dict.fromkeys(MessageStatus, 0)
    for t in told:
        counts[t.status] += 1
    return PropagationReport(
        seq=seq, entry_id=entry.id, purpose_id=entry.purpose_id, recorded_at=entry.recorded_at,
        counts=counts, complete=all(t.status is MessageStatus.delivered for t in told),
        told=told,
    )  # fmt: skip


def _told(sub: str, name: str | None, mid: str, m: OutboxMessage | None) -> Told:
    if m is None:  # the outbox keeps every message; a gap means the store was edited
        return Told(
            subscriber_id=sub, subscriber=name, message_id=mid, status=MessageStatus.skipped,
            attempts=0, last_attempt_at=None, delivered_at=None, status_code=None,
            acknowledgement=None, last_error=f"outbox message {mid} is missing from the store",
        )  # fmt: skip
    return Told(
        subscriber_id=sub, subscriber=name, message_id=mid, status=m.status,
        attempts=m.attempts, last_attempt_at=m.last_attempt_at, delivered_at=m.delivered_at,
        status_code=m.last_status_code, acknowledgement=m.response, last_error=m.last_error,
    )  # fmt: skip
