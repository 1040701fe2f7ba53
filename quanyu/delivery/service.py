"""Delivery services: webhook destinations and the outbox.

Producers (audience pushes, consent propagation) call :func:`enqueue` inside the
transaction that records their own change, so the change and the messages announcing
it commit together or not at all. :mod:`quanyu.delivery.worker` sends them.

Each stored message is one request body::

    {"type": "<topic>", "timestamp": "<enqueue time, ISO 8601 UTC>", "data": <payload>}

(the Standard Webhooks payload shape). A producer with many records puts at most the
destination's ``batch_size`` of them in each payload.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from quanyu.delivery import netguard
from quanyu.delivery import sql as q
from quanyu.delivery.models import (
    DeliveryReport,
    Destination,
    DestinationCreate,
    DestinationCreated,
    MessageStatus,
    OutboxMessage,
)
from quanyu.delivery.schema import OUTBOX_COLUMNS
from quanyu.delivery.signing import SecretBox, generate_secret
from quanyu.engine import Session
from quanyu.errors import Conflict, NotFound, ValidationFailed
from quanyu.ids import new_id, utcnow

_TOPIC = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_KEY_MAX = 200

# --- destinations -----------------------------------------------------------------------


def _destination(row: tuple[Any, ...]) -> Destination:
    return Destination(
        id=row[0],
        tenant_id=row[1],
        name=row[2],
        kind=row[3],
        url=row[4],
        batch_size=row[5],
        enabled=row[6],
        created_at=row[7],
    )


def create_destination(
    db: Session,
    body: DestinationCreate,
    *,
    tenant: str,
    master_key: bytes,
    allow_private: bool = False,
) -> DestinationCreated:
    """Add a webhook destination with a new signing secret, returned this once.

    The secret is stored encrypted under ``master_key`` (the worker needs the same key).
    Unless ``allow_private`` (the server's ``webhook_allow_private_networks``), a URL
    whose host is a private, loopback or link-local address is refused now; names are
    checked at each connection (:mod:`quanyu.delivery.netguard`).

    Raises:
        Conflict: the tenant has a destination of that name.
        ValidationFailed: the URL's host is plainly not public.
    """
    netguard.check_url(str(body.url), allow_private=allow_private)
    secret = generate_secret()
    now = utcnow()
    dest = Destination(
        id=new_id("dst"),
        tenant_id=tenant,
        name=body.name,
        kind=body.kind,
        url=str(body.url),
        batch_size=body.batch_size,
        enabled=body.enabled,
        created_at=now,
    )
    sealed = SecretBox(master_key).seal(tenant, dest.id, secret)
    with db.transaction():
        if db.one(q.DESTINATION_BY_NAME, [tenant, body.name]):
            raise Conflict(f"Tenant {tenant} has a destination named {body.name!r} already.")
        db.execute(
            q.INSERT_DESTINATION,
            [dest.id, tenant, dest.name, dest.kind, dest.url, sealed, dest.batch_size]
            + [dest.enabled, now, now],
        )
    return DestinationCreated(**dest.model_dump(), secret=secret)


def list_destinations(db: Session, *, tenant: str) -> list[Destination]:
    """The tenant's destinations, oldest first (never their secrets)."""
    return [_destination(r) for r in db.execute(q.LIST_DESTINATIONS, [tenant])]


def get_destination(db: Session, *, tenant: str, destination_id: str) -> Destination:
    """One destination of the tenant. Raises NotFound."""
    row = db.one(q.GET_DESTINATION, [tenant, destination_id])
    if row is None:
        raise NotFound(
            f"Tenant {tenant} has no destination {destination_id!r}; list them with"
            f" GET /v1/tenants/{tenant}/destinations."
        )
    return _destination(row)


def set_destination_enabled(
    db: Session, *, tenant: str, destination_id: str, enabled: bool
) -> Destination:
    """Enable or disable a destination. While disabled, its pending messages are
    skipped (not held): :func:`retry` sends one again once it is enabled. Raises NotFound."""
    get_destination(db, tenant=tenant, destination_id=destination_id)
    db.execute(q.SET_DESTINATION_ENABLED, [enabled, utcnow(), tenant, destination_id])
    return get_destination(db, tenant=tenant, destination_id=destination_id)


def delete_destination(db: Session, *, tenant: str, destination_id: str) -> Destination:
    """Delete a destination and its secret; its messages stay for the record and its
    pending ones are skipped. Returns what was deleted. Raises NotFound."""
    found = get_destination(db, tenant=tenant, destination_id=destination_id)
    db.execute(q.DELETE_DESTINATION, [tenant, destination_id])
    return found


# --- the outbox -------------------------------------------------------------------------

_seq_lock = threading.Lock()
_last_seq = 0


def _next_seqs(db: Session, n: int) -> list[int]:
    """``n`` increasing numbers above any stored: microseconds, bumped past collisions,
    so order follows enqueue order within and across processes on one clock."""
    global _last_seq
    stored = db.one(q.MAX_SEQ)
    floor = int(stored[0]) if stored else 0
    with _seq_lock:
        start = max(time.time_ns() // 1000, _last_seq + 1, floor + 1)
        _last_seq = start + n - 1
    return list(range(start, start + n))


def enqueue(
    db: Session,
    *,
    tenant: str,
    destination_id: str,
    topic: str,
    key: str | None,
    payloads: list[dict[str, Any]],
) -> list[str]:
    """Add one message per payload, in the caller's transaction if one is open.

    Args:
        tenant: the tenant the messages belong to.
        destination_id: one of the tenant's destinations (a disabled one records the
            messages as skipped).
        topic: the event type, dotted lower case (``audience.export``).
        key: messages with the same key reach the destination in order (each is sent
            only once those before it are delivered, failed or skipped); None orders
            nothing.
        payloads: the ``data`` of each message, JSON-serialisable.

    Returns:
        The message ids (the ``webhook-id`` of each), in order.

    Raises:
        NotFound: no such destination for the tenant.
        ValidationFailed: a bad topic or key, or a payload that is not JSON.
    """
    if key is not None and not 0 < len(key) <= _KEY_MAX:
        raise ValidationFailed(f"key {key[:40]!r} must be 1 to {_KEY_MAX} characters, or None")
    get_destination(db, tenant=tenant, destination_id=destination_id)
    return enqueue_each(
        db,
        tenant=tenant,
        topic=topic,
        messages=[Outgoing(destination_id, key, p) for p in payloads],
    )


class Outgoing(NamedTuple):
    """One message of :func:`enqueue_each`: where to, its ordering key, its ``data``."""

    destination_id: str
    key: str | None
    payload: dict[str, Any]


def enqueue_each(
    db: Session, *, tenant: str, topic: str, messages: Sequence[Outgoing]
) -> list[str]:
    """:func:`enqueue` for messages to several destinations and keys at once, in one
    insert (a producer that tells many receivers of one change stays fast). Messages
    sharing a destination and key are ordered as listed.

    Returns:
        The message ids, in the order of ``messages``.

    Raises:
        NotFound: a destination the tenant does not have.
        ValidationFailed: a bad topic or key, or a payload that is not JSON.
    """
    if not _TOPIC.match(topic) or len(topic) > 100:
        raise ValidationFailed(
            f"topic {topic!r} is invalid: use dotted lower-case words such as 'audience.export'"
        )
    if not messages:
        return []
    for m in messages:
        if m.key is not None and not 0 < len(m.key) <= _KEY_MAX:
            raise ValidationFailed(
                f"key {m.key[:40]!r} must be 1 to {_KEY_MAX} characters, or None"
            )
    known = {d.id for d in list_destinations(db, tenant=tenant)}
    for dest in dict.fromkeys(m.destination_id for m in messages):
        if dest not in known:
            get_destination(db, tenant=tenant, destination_id=dest)  # raises NotFound
    now = utcnow()
    stamp = now.isoformat(timespec="milliseconds") + "Z"
    try:
        bodies = [
            orjson.dumps({"type": topic, "timestamp": stamp, "data": m.payload}).decode()
            for m in messages
        ]
    except TypeError as e:
        raise ValidationFailed(f"a {topic} payload is not JSON-serialisable: {e}") from e
    ids = [new_id("msg") for _ in messages]
    n = len(ids)
    columns: dict[str, list[Any]] = {
        "id": ids,
        "seq": _next_seqs(db, n),
        "tenant_id": [tenant] * n,
        "destination_id": [m.destination_id for m in messages],
        "topic": [topic] * n,
        "ordering_key": [
            m.key if m.key is not None else i for m, i in zip(messages, ids, strict=True)
        ],
        "payload": bodies,
        "status": [MessageStatus.pending.value] * n,
        "attempts": [0] * n,
        "next_attempt_at": [now] * n,
        "created_at": [now] * n,
    }
    table = pa.table({c: columns[c] for c in OUTBOX_COLUMNS})
    db.with_table("staged_delivery_outbox", table, q.INSERT_MESSAGES)
    return ids


def _message(row: tuple[Any, ...]) -> OutboxMessage:
    return OutboxMessage(
        id=row[0],
        tenant_id=row[1],
        destination_id=row[2],
        topic=row[3],
        key=row[4],
        status=row[5],
        attempts=row[6],
        next_attempt_at=row[7],
        last_attempt_at=row[8],
        last_error=row[9],
        last_status_code=row[10],
        response=row[11],
        created_at=row[12],
        delivered_at=row[13],
        payload=orjson.loads(row[14]) if len(row) > 14 else None,
    )


def list_messages(
    db: Session,
    *,
    tenant: str,
    destination_id: str | None = None,
    status: MessageStatus | None = None,
    key: str | None = None,
    limit: int = 100,
) -> list[OutboxMessage]:
    """The tenant's messages, newest first, optionally of one destination, status or key."""
    if not 1 <= limit <= 10_000:
        raise ValidationFailed(f"limit {limit} is out of range: use 1 to 10000")
    s = status.value if status is not None else None
    params = [tenant, destination_id, destination_id, s, s, key, key, limit]
    return [_message(r) for r in db.execute(q.LIST_MESSAGES, params)]


def get_message(db: Session, *, tenant: str, message_id: str) -> OutboxMessage:
    """One message with the body it carries. Raises NotFound."""
    row = db.one(q.GET_MESSAGE, [tenant, message_id])
    if row is None:
        raise NotFound(f"Tenant {tenant} has no outbox message {message_id!r}.")
    return _message(row)


def get_messages(db: Session, *, tenant: str, ids: list[str]) -> dict[str, OutboxMessage]:
    """The tenant's messages among ``ids`` (without their bodies), by id; ids of other
    tenants or of no message are left out."""
    if not ids:
        return {}
    # as in Session.with_table: on failure the name stays registered until the session ends
    db.register("staged_message_ids", pa.table({"id": pa.array(ids, pa.string())}))
    rows = db.execute(q.MESSAGES_BY_IDS, [tenant])
    db.unregister("staged_message_ids")
    return {m.id: m for m in map(_message, rows)}


def delivery_report(db: Session, *, tenant: str, key: str) -> DeliveryReport:
    """Every message sent under ``key`` (to any destination), oldest first, with the
    number in each status: who was told, and when."""
    messages = [_message(r) for r in db.execute(q.MESSAGES_BY_KEY, [tenant, key])]
    counts = dict.fromkeys(MessageStatus, 0)
    for m in messages:
        counts[m.status] += 1
    return DeliveryReport(key=key, counts=counts, messages=messages)


def retry(
    db: Session, *, tenant: str, message_id: str, now: datetime | None = None
) -> OutboxMessage:
    """Put a failed or skipped message back in line with fresh attempts.

    Raises:
        NotFound: no such message.
        Conflict: the message is pending or delivered, or its destination is disabled
            or deleted.
    """
    found = get_message(db, tenant=tenant, message_id=message_id)
    if found.status not in (MessageStatus.failed, MessageStatus.skipped):
        raise Conflict(
            f"Message {message_id} is {found.status.value}: only failed or skipped messages"
            " can be retried."
        )
    dest = db.one(q.GET_DESTINATION, [tenant, found.destination_id])
    if dest is None or not dest[6]:
        state = "deleted" if dest is None else "disabled"
        raise Conflict(
            f"Destination {found.destination_id} of message {message_id} is {state}:"
            " enable it (or enqueue to another destination) before retrying."
        )
    db.execute(q.REQUEUE_MESSAGE, [now or utcnow(), tenant, message_id])
    return get_message(db, tenant=tenant, message_id=message_id)
