"""Destinations and the outbox on a real DuckDB file: secrets, transactions, tenants."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from quanyu.delivery.models import DestinationCreate, MessageStatus
from quanyu.delivery.service import (
    create_destination,
    delete_destination,
    delivery_report,
    enqueue,
    get_destination,
    get_message,
    list_destinations,
    list_messages,
    retry,
    set_destination_enabled,
)
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import Conflict, NotFound, ValidationFailed
from tests.delivery.conftest import MASTER, TENANT

URL = "http://127.0.0.1:9/hooks"


def make(db, name: str = "crm", tenant: str = TENANT):  # type: ignore[no-untyped-def]
    return create_destination(
        db,
        DestinationCreate(name=name, url=URL),
        tenant=tenant,
        master_key=MASTER,
        allow_private=True,
    )


def test_the_secret_is_shown_once_and_stored_encrypted(store: DuckDBEngine) -> None:
    with store.connect() as db:
        created = make(db)
        assert created.secret.startswith("whsec_")
        assert created.batch_size == 1000 and created.enabled and created.kind == "webhook"
        listed = list_destinations(db, tenant=TENANT)
        assert [d.id for d in listed] == [created.id]
        assert "secret" not in listed[0].model_dump()
        assert "secret" not in get_destination(db, tenant=TENANT, destination_id=created.id)
        raw = db.raw("SELECT * FROM delivery_destinations")
    stored = repr(raw).encode()
    assert created.secret.encode() not in stored
    assert created.secret.removeprefix("whsec_").encode() not in stored


def test_names_are_unique_per_tenant_and_urls_must_be_http(store: DuckDBEngine) -> None:
    with store.connect() as db:
        make(db)
        with pytest.raises(Conflict, match="crm"):
            make(db)
        make(db, tenant="ten_b")  # another tenant may use the name
    with pytest.raises(ValidationError):
        DestinationCreate(name="x", url="ftp://example.com/x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        DestinationCreate(name="x", url=URL, batch_size=0)  # type: ignore[arg-type]


def test_enqueue_joins_the_callers_transaction(store: DuckDBEngine) -> None:
    with store.connect() as db:
        dest = make(db)
        with pytest.raises(RuntimeError), db.transaction():
            enqueue(
                db,
                tenant=TENANT,
                destination_id=dest.id,
                topic="audience.export",
                key="s1",
                payloads=[{"n": 1}],
            )
            raise RuntimeError("the producer's own write failed")
        assert list_messages(db, tenant=TENANT) == []
        with db.transaction():
            ids = enqueue(
                db,
                tenant=TENANT,
                destination_id=dest.id,
                topic="audience.export",
                key="s1",
                payloads=[{"n": 1}, {"n": 2}, {"n": 3}],
            )
        listed = list_messages(db, tenant=TENANT)
        assert [m.id for m in listed] == ids[::-1]  # newest first
        assert {m.status for m in listed} == {MessageStatus.pending}
        one = get_message(db, tenant=TENANT, message_id=ids[1])
        assert one.payload["type"] == "audience.export"
        assert one.payload["data"] == {"n": 2}
        assert one.payload["timestamp"].endswith("Z")
        assert one.key == "s1" and one.attempts == 0


def test_enqueue_refuses_bad_input(store: DuckDBEngine) -> None:
    with store.connect() as db:
        dest = make(db)
        with pytest.raises(NotFound, match="dst_nope"):
            enqueue(
                db, tenant=TENANT, destination_id="dst_nope", topic="a.b", key=None, payloads=[{}]
            )
        with pytest.raises(ValidationFailed, match="topic"):
            enqueue(
                db,
                tenant=TENANT,
                destination_id=dest.id,
                topic="Audience Export",
                key=None,
                payloads=[{}],
            )
        with pytest.raises(ValidationFailed, match="JSON"):
            enqueue(
                db,
                tenant=TENANT,
                destination_id=dest.id,
                topic="a.b",
                key=None,
                payloads=[{"x": object()}],
            )
        assert (
            enqueue(db, tenant=TENANT, destination_id=dest.id, topic="a.b", key="k", payloads=[])
            == []
        )
        assert list_messages(db, tenant=TENANT) == []


def test_messages_without_a_key_are_each_their_own_key(store: DuckDBEngine) -> None:
    with store.connect() as db:
        dest = make(db)
        ids = enqueue(
            db,
            tenant=TENANT,
            destination_id=dest.id,
            topic="consent.changed",
            key=None,
            payloads=[{"a": 1}, {"a": 2}],
        )
        assert [m.key for m in list_messages(db, tenant=TENANT)] == ids[::-1]


def test_a_tenant_sees_only_its_own_destinations_and_messages(store: DuckDBEngine) -> None:
    with store.connect() as db:
        mine = make(db)
        ids = enqueue(
            db,
            tenant=TENANT,
            destination_id=mine.id,
            topic="consent.changed",
            key="P1",
            payloads=[{"granted": False}],
        )
        other = "ten_b"
        assert list_destinations(db, tenant=other) == []
        with pytest.raises(NotFound):
            get_destination(db, tenant=other, destination_id=mine.id)
        with pytest.raises(NotFound):
            set_destination_enabled(db, tenant=other, destination_id=mine.id, enabled=False)
        with pytest.raises(NotFound):
            delete_destination(db, tenant=other, destination_id=mine.id)
        with pytest.raises(NotFound):
            enqueue(db, tenant=other, destination_id=mine.id, topic="a.b", key=None, payloads=[{}])
        assert list_messages(db, tenant=other) == []
        assert list_messages(db, tenant=other, key="P1") == []
        with pytest.raises(NotFound):
            get_message(db, tenant=other, message_id=ids[0])
        with pytest.raises(NotFound):
            retry(db, tenant=other, message_id=ids[0])
        report = delivery_report(db, tenant=other, key="P1")
        assert report.messages == [] and sum(report.counts.values()) == 0
        assert get_destination(db, tenant=TENANT, destination_id=mine.id).enabled
        assert len(list_messages(db, tenant=TENANT, key="P1")) == 1


def test_filters_and_retry_rules(store: DuckDBEngine) -> None:
    with store.connect() as db:
        a, b = make(db, "a"), make(db, "b")
        enqueue(db, tenant=TENANT, destination_id=a.id, topic="t.x", key="k1", payloads=[{}, {}])
        enqueue(db, tenant=TENANT, destination_id=b.id, topic="t.x", key="k2", payloads=[{}])
        assert len(list_messages(db, tenant=TENANT, destination_id=a.id)) == 2
        assert len(list_messages(db, tenant=TENANT, key="k2")) == 1
        assert len(list_messages(db, tenant=TENANT, status=MessageStatus.failed)) == 0
        assert len(list_messages(db, tenant=TENANT, limit=1)) == 1
        with pytest.raises(ValidationFailed):
            list_messages(db, tenant=TENANT, limit=0)
        pending = list_messages(db, tenant=TENANT, key="k2")[0]
        with pytest.raises(Conflict, match="pending"):
            retry(db, tenant=TENANT, message_id=pending.id)
        gone = delete_destination(db, tenant=TENANT, destination_id=b.id)
        assert gone.id == b.id
        with pytest.raises(NotFound):
            get_destination(db, tenant=TENANT, destination_id=b.id)
        # the message outlives its destination, for the record
        assert get_message(db, tenant=TENANT, message_id=pending.id).destination_id == b.id
