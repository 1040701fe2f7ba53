"""Exports of audience snapshots: CSV and Parquet files, and pushes to destinations.

Each row carries the identifier the channel needs: the openid of one app (scope =
the app id) for WeChat messages, a SHA-256 of the E.164 phone (or of the lower-case
e-mail) for ad platforms, the member id of one brand for POS, or just the OneID.
Members come from snapshots, and pass the consent gate again at the moment of export
(consent may have changed since the snapshot): a download and a push log every allow
and block, and the delivery worker checks each webhook once more when it sends it.
"""

from __future__ import annotations

import hashlib
import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from quanyu.audiences import consent_gate, service
from quanyu.audiences import sql as q
from quanyu.audiences.models import Push, PushRequest
from quanyu.delivery import service as delivery
from quanyu.delivery.models import Destination, DestinationCreate, DestinationCreated
from quanyu.engine import Session
from quanyu.errors import ValidationFailed
from quanyu.identity import admin as identity
from quanyu.identity.models import format_oneid
from quanyu.identity.service import Resolver
from quanyu.ids import new_id, utcnow
from quanyu.tenancy.service import audit

#: Export identifier kinds: (identity type, hashed).
KINDS: dict[str, tuple[str | None, bool]] = {
    "oneid": (None, False),
    "openid": ("openid", False),
    "unionid": ("unionid", False),
    "member_id": ("member_id", False),
    "user_id": ("user_id", False),
    "device_id": ("device_id", False),
    "phone_sha256": ("phone", True),
    "email_sha256": ("email", True),
}
_SCOPED = ("openid", "member_id")


def rows(
    db: Session,
    resolver: Resolver,
    *,
    tenant: str,
    snapshot_id: int,
    identifier: str = "oneid",
    scope: str | None = None,
    act: str = "export",
    act_id: str | None = None,
    destination: str = "download",
) -> pa.Table:
    """A snapshot's members who may be reached now, as rows ``oneid`` (+ ``identifier``),
    by OneID number. Every allow and block is logged under ``act`` and ``act_id``.

    Members without the identifier are left out (the channel could not reach them).
    """
    if identifier not in KINDS:
        raise ValidationFailed(
            f"identifier {identifier!r} is unknown: use one of {', '.join(KINDS)}"
        )
    id_type, hashed = KINDS[identifier]
    if id_type in _SCOPED and not scope:
        what = "app id" if id_type == "openid" else "brand id"
        raise ValidationFailed(f"{identifier} needs a scope: give the {what} it belongs to")
    snap, members = service.snapshot_members(db, tenant=tenant, snapshot_id=snapshot_id)
    aud = service.get_audience(db, tenant=tenant, audience_id=snap.audience_id)
    members = consent_gate.admit(
        db, members, tenant=tenant, purpose=aud.purpose, channel=aud.channel, brands=aud.brands,
        destination=destination, act=act, act_id=act_id or f"{aud.id}:{snapshot_id}",
    ).members  # fmt: skip
    ids = service.members_array(members)
    if id_type is None:
        return pa.table({"oneid": [format_oneid(int(i)) for i in ids.to_numpy()]})
    found = identity.identifier_values(
        db, resolver, tenant=tenant, profile_ids=ids, type=id_type, scope=scope
    )
    values = found.column("value").to_pylist()
    if hashed:
        values = [hashlib.sha256(v.strip().lower().encode()).hexdigest() for v in values]
    oneids = [format_oneid(int(i)) for i in found.column("profile_id").to_numpy()]
    return pa.table({"oneid": oneids, identifier: pa.array(values, pa.string())})


def to_bytes(table: pa.Table, fmt: str) -> bytes:
    """A table as CSV (with a header) or Parquet bytes."""
    sink = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, sink)
    else:
        pacsv.write_csv(table, sink)
    return sink.getvalue()


def push(
    db: Session,
    resolver: Resolver,
    body: PushRequest,
    *,
    tenant: str,
    audience_id: str,
    actor: str,
) -> Push:
    """Send an audience's latest snapshot to a destination as signed webhooks in batches.

    The batches go into the delivery outbox in one transaction, ordered under the
    audience's id; the delivery worker sends them, retries a destination that is down
    and never sends again what a destination acknowledged.
    """
    snap, _ = service.latest_members(db, tenant=tenant, audience_id=audience_id)
    aud = service.get_audience(db, tenant=tenant, audience_id=audience_id)
    push_id = new_id("push")
    table = rows(db, resolver, tenant=tenant, snapshot_id=snap.snapshot_id,
                 identifier=body.identifier, scope=body.scope, act="push", act_id=push_id,
                 destination=body.destination_id)  # fmt: skip
    records = table.to_pylist()
    batches = [records[i : i + body.batch_size] for i in range(0, len(records), body.batch_size)]
    payloads = [
        {"push_id": push_id, "audience_id": audience_id, "snapshot_id": snap.snapshot_id,
         "purpose": aud.purpose, "channel": aud.channel, "brands": aud.brands,
         "identifier": body.identifier, "scope": body.scope, "batch": n + 1,
         "batches": len(batches), "records": batch}
        for n, batch in enumerate(batches)
    ]  # fmt: skip
    result = Push(
        push_id=push_id, audience_id=audience_id, snapshot_id=snap.snapshot_id,
        destination_id=body.destination_id, identifier=body.identifier, records=len(records),
        batches=len(batches), message_ids=[], created_at=utcnow(),
    )  # fmt: skip
    with db.transaction():
        ids = delivery.enqueue(db, tenant=tenant, destination_id=body.destination_id,
                               topic="audience.export", key=f"audience:{audience_id}",
                               payloads=payloads)  # fmt: skip
        result.message_ids = ids
        db.execute(q.INSERT_PUSH, [tenant, push_id, audience_id, snap.snapshot_id,
                                   body.destination_id, body.identifier, len(records),
                                   len(batches), result.created_at])  # fmt: skip
        audit(db, actor=actor, action="audience.push", target=result, target_type="audience",
              target_id=audience_id, tenant=tenant)  # fmt: skip
    return result


def add_destination(
    db: Session,
    body: DestinationCreate,
    *,
    tenant: str,
    master_key: bytes,
    actor: str,
    allow_private: bool = False,
) -> DestinationCreated:
    """Add a webhook destination for pushes (its secret is shown once, never audited).

    ``allow_private`` as in :func:`quanyu.delivery.service.create_destination`.
    """
    created = delivery.create_destination(
        db, body, tenant=tenant, master_key=master_key, allow_private=allow_private
    )
    shown = Destination(**created.model_dump(exclude={"secret"}))
    audit(db, actor=actor, action="destination.create", target=shown, target_type="destination",
          target_id=created.id, tenant=tenant)  # fmt: skip
    return created
