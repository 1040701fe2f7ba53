"""The worker against a real HTTP receiver on 127.0.0.1 that checks every signature."""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest

from quanyu.delivery.models import MessageStatus
from quanyu.delivery.sender import RESPONSE_LIMIT, Policy, backoff
from quanyu.delivery.service import (
    delete_destination,
    delivery_report,
    enqueue,
    get_message,
    list_messages,
    retry,
    set_destination_enabled,
)
from quanyu.delivery.worker import DeliveryWorker, deliver_due, prune
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import Conflict
from quanyu.ids import utcnow
from tests.delivery.conftest import (
    FAST,
    MASTER,
    TENANT,
    Receiver,
    destination,
    down_receiver,
    settle,
)


def put(
    engine: DuckDBEngine, dest_id: str, key: str | None, n: int, topic: str = "a.b"
) -> list[str]:
    with engine.connect() as db:
        return enqueue(
            db,
            tenant=TENANT,
            destination_id=dest_id,
            topic=topic,
            key=key,
            payloads=[{"n": i, "key": key} for i in range(n)],
        )


def message(engine: DuckDBEngine, msg_id: str):  # type: ignore[no-untyped-def]
    with engine.connect() as db:
        return get_message(db, tenant=TENANT, message_id=msg_id)


def test_a_message_is_delivered_signed_with_its_reply(
    store: DuckDBEngine, receiver: Receiver
) -> None:
    dest = destination(store, receiver)
    receiver.reply = b"x" * 5000
    [msg_id] = put(store, dest.id, "s1", 1, topic="crm.update")
    assert deliver_due(store, master_key=MASTER, policy=FAST) == 1
    assert receiver.forged == 0
    assert receiver.acked() == [msg_id]
    assert receiver.hits[0].body == {
        "type": "crm.update",
        "timestamp": receiver.hits[0].body["timestamp"],
        "data": {"n": 0, "key": "s1"},
    }
    m = message(store, msg_id)
    assert m.status is MessageStatus.delivered and m.attempts == 1
    assert m.last_status_code == 200 and m.delivered_at is not None
    assert m.response == "x" * RESPONSE_LIMIT
    assert deliver_due(store, master_key=MASTER, policy=FAST) == 0  # nothing left to send


def test_503s_are_retried_with_backoff_then_delivered(
    store: DuckDBEngine, receiver: Receiver
) -> None:
    dest = destination(store, receiver)
    receiver.fail_first = 2
    [msg_id] = put(store, dest.id, "s1", 1)
    policy = Policy(allow_private=True, backoff_base=10.0, backoff_max=100.0, max_attempts=5)
    t0 = utcnow()
    rng = random.Random(7)
    assert deliver_due(store, t0, master_key=MASTER, policy=policy, rng=rng) == 1
    first = message(store, msg_id)
    assert first.status is MessageStatus.pending and first.attempts == 1
    assert first.last_status_code == 503 and "HTTP 503" in (first.last_error or "")
    wait = (first.next_attempt_at - t0).total_seconds()
    assert 0 < wait <= 10.0  # full jitter within backoff_base * 2**0
    # not due yet: nothing is sent
    assert deliver_due(store, t0, master_key=MASTER, policy=policy, rng=rng) == 0
    assert len(receiver.hits) == 1
    t1 = first.next_attempt_at
    assert deliver_due(store, t1, master_key=MASTER, policy=policy, rng=rng) == 1
    second = message(store, msg_id)
    assert second.attempts == 2 and second.status is MessageStatus.pending
    assert 0 < (second.next_attempt_at - t1).total_seconds() <= 20.0  # ceiling doubled
    assert deliver_due(store, second.next_attempt_at, master_key=MASTER, policy=policy) == 1
    done = message(store, msg_id)
    assert done.status is MessageStatus.delivered and done.attempts == 3
    assert done.last_error is None and done.last_status_code == 200
    assert [h.status for h in receiver.hits] == [503, 503, 200]
    assert {h.id for h in receiver.hits} == {msg_id}  # the same webhook-id every time


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = Policy(allow_private=True, backoff_base=1.0, backoff_max=60.0)
    rng = random.Random(1)
    for attempts in range(1, 12):
        cap = min(60.0, 2.0 ** (attempts - 1))
        draws = [backoff(attempts, policy, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in draws)
        assert max(draws) > cap * 0.8 and min(draws) < cap * 0.2  # spread over the range


def test_retry_after_is_honoured(store: DuckDBEngine, receiver: Receiver) -> None:
    dest = destination(store, receiver)
    receiver.status, receiver.retry_after = 429, "30"
    [msg_id] = put(store, dest.id, None, 1)
    t0 = utcnow()
    deliver_due(store, t0, master_key=MASTER, policy=FAST)
    m = message(store, msg_id)
    assert m.status is MessageStatus.pending and m.last_status_code == 429
    # FAST caps every delay at backoff_max (0.02 s), Retry-After included
    assert m.next_attempt_at - t0 <= timedelta(seconds=0.02)
    slow = Policy(allow_private=True, backoff_base=0.001, backoff_max=3600)
    deliver_due(store, m.next_attempt_at, master_key=MASTER, policy=slow)
    again = message(store, msg_id)
    assert again.next_attempt_at - m.next_attempt_at >= timedelta(seconds=30)


def test_a_4xx_fails_at_once(store: DuckDBEngine, receiver: Receiver) -> None:
    dest = destination(store, receiver)
    receiver.status, receiver.reply = 400, b'{"error": "unknown field"}'
    [msg_id] = put(store, dest.id, "s1", 1)
    settle(store)
    m = message(store, msg_id)
    assert m.status is MessageStatus.failed and m.attempts == 1
    assert m.last_status_code == 400 and "refused" in (m.last_error or "")
    assert m.response == '{"error": "unknown field"}'
    assert len(receiver.hits) == 1
    deliver_due(store, master_key=MASTER, policy=FAST)
    assert len(receiver.hits) == 1  # a failed message stays failed
    receiver.status = 200
    with store.connect() as db:
        assert retry(db, tenant=TENANT, message_id=msg_id).status is MessageStatus.pending
    settle(store)
    assert message(store, msg_id).status is MessageStatus.delivered
    receiver.assert_no_resend()


def test_a_down_receiver_is_retried_until_max_attempts(store: DuckDBEngine) -> None:
    down = down_receiver()
    dest = destination(store, down)
    [msg_id] = put(store, dest.id, "s1", 1)
    settle(store, policy=Policy(allow_private=True, max_attempts=4, backoff_base=0.002,
                                backoff_max=0.01, give_up_after=0.0))  # fmt: skip
    m = message(store, msg_id)
    assert m.status is MessageStatus.failed and m.attempts == 4
    assert m.last_error and m.last_error.startswith("gave up after 4 attempts: cannot reach")
    assert m.last_status_code is None
    down.start()  # the receiver comes back on the same port
    try:
        with store.connect() as db:
            retry(db, tenant=TENANT, message_id=msg_id)
        settle(store)
        assert down.acked() == [msg_id]
        assert message(store, msg_id).attempts == 1
    finally:
        down.stop()


def test_a_slow_receiver_times_out_and_is_retried(store: DuckDBEngine, receiver: Receiver) -> None:
    dest = destination(store, receiver)
    receiver.delay = 0.5
    [msg_id] = put(store, dest.id, "s1", 1)
    deliver_due(
        store, master_key=MASTER, policy=Policy(allow_private=True, timeout=0.1, backoff_base=0.001)
    )
    m = message(store, msg_id)
    assert m.status is MessageStatus.pending and m.attempts == 1
    assert "no reply" in (m.last_error or "")


def test_order_per_key_holds_and_nothing_acknowledged_is_sent_twice(
    store: DuckDBEngine, receiver: Receiver
) -> None:
    dest = destination(store, receiver)
    receiver.fail_first = 7
    keys = {f"snap{k}": put(store, dest.id, f"snap{k}", 5) for k in range(6)}
    passes = settle(store)
    for _ in range(5):  # more passes after everything is delivered send nothing
        assert deliver_due(store, master_key=MASTER, policy=FAST) == 0
    assert receiver.forged == 0
    receiver.assert_no_resend()
    acked = receiver.acked()
    assert sorted(acked) == sorted(i for ids in keys.values() for i in ids)
    for key, ids in keys.items():
        # acknowledged in enqueue order, and never asked for a later one first
        assert [i for i in acked if i in ids] == ids
        asked = [ids.index(h.id) for h in receiver.hits if h.id in ids]
        assert asked == sorted(asked), (key, asked)
    assert passes > 1  # the 503s needed more passes
    with store.connect() as db:
        report = delivery_report(db, tenant=TENANT, key="snap3")
    assert [m.id for m in report.messages] == keys["snap3"]
    assert report.counts[MessageStatus.delivered] == 5
    assert report.counts[MessageStatus.pending] == 0


def test_a_failed_message_lets_the_next_of_its_key_go(
    store: DuckDBEngine, receiver: Receiver
) -> None:
    dest = destination(store, receiver)
    receiver.status = 422
    first, second = put(store, dest.id, "P1", 2)
    deliver_due(store, master_key=MASTER, policy=FAST)
    assert [h.id for h in receiver.hits] == [first, second]
    with store.connect() as db:
        report = delivery_report(db, tenant=TENANT, key="P1")
    assert report.counts[MessageStatus.failed] == 2


def test_a_disabled_or_deleted_destination_skips_its_messages(
    store: DuckDBEngine, receiver: Receiver
) -> None:
    dest = destination(store, receiver)
    ids = put(store, dest.id, "s1", 3)
    with store.connect() as db:
        set_destination_enabled(db, tenant=TENANT, destination_id=dest.id, enabled=False)
    assert deliver_due(store, master_key=MASTER, policy=FAST) == 3
    assert receiver.hits == []
    skipped = message(store, ids[0])
    assert skipped.status is MessageStatus.skipped and "disabled" in (skipped.last_error or "")
    with store.connect() as db, pytest.raises(Conflict, match="disabled"):
        retry(db, tenant=TENANT, message_id=ids[0])
    with store.connect() as db:
        set_destination_enabled(db, tenant=TENANT, destination_id=dest.id, enabled=True)
        retry(db, tenant=TENANT, message_id=ids[0])
    settle(store)
    assert receiver.acked() == [ids[0]]

    other = destination(store, receiver, name="gone")
    [late] = put(store, other.id, "s2", 1)
    with store.connect() as db:
        delete_destination(db, tenant=TENANT, destination_id=other.id)
    deliver_due(store, master_key=MASTER, policy=FAST)
    gone = message(store, late)
    assert gone.status is MessageStatus.skipped and "deleted" in (gone.last_error or "")
    assert receiver.acked() == [ids[0]]


def test_a_secret_sealed_under_another_master_key_fails_loudly(
    store: DuckDBEngine, receiver: Receiver
) -> None:
    dest = destination(store, receiver)
    [msg_id] = put(store, dest.id, None, 1)
    deliver_due(store, master_key=bytes(32), policy=FAST)
    m = message(store, msg_id)
    assert m.status is MessageStatus.failed and "master key" in (m.last_error or "")
    assert receiver.hits == []


def test_the_worker_thread_delivers_on_notify(store: DuckDBEngine, receiver: Receiver) -> None:
    dest = destination(store, receiver)
    worker = DeliveryWorker(
        store, master_key=MASTER, allow_private=True, poll_interval=5.0, backoff_base=0.001
    )
    worker.start()
    try:
        assert worker.alive
        time.sleep(0.05)  # let the first (empty) pass finish, then sleep a long poll
        ids = put(store, dest.id, "s1", 3)
        started = time.monotonic()
        worker.notify()
        while len(receiver.acked()) < 3 and time.monotonic() - started < 3.0:
            time.sleep(0.01)
        assert receiver.acked() == ids
        assert time.monotonic() - started < 3.0  # woken, not polled after 5 s
    finally:
        worker.stop()
    assert not worker.alive
    with store.connect() as db:
        assert {m.status for m in list_messages(db, tenant=TENANT)} == {MessageStatus.delivered}


def test_a_receiver_down_for_an_hour_gets_every_message_in_order_when_back(
    store: DuckDBEngine,
) -> None:
    """The server's policy: retries keep coming (at most backoff_max apart) past
    max_attempts until the message is give_up_after old; the messages behind it wait."""
    down = down_receiver()
    dest = destination(store, down)
    ids = put(store, dest.id, "person-1", 3)
    policy = Policy(
        allow_private=True, timeout=0.2
    )  # the defaults: 8 attempts, 300 s apart at most, 3 days
    t = utcnow()
    end = t + timedelta(hours=1)
    while t < end:  # an hour of the worker's passes, on a simulated clock
        deliver_due(store, t, master_key=MASTER, policy=policy)
        t += timedelta(seconds=policy.backoff_max + 1)
    head = message(store, ids[0])
    assert head.status is MessageStatus.pending and head.attempts > policy.max_attempts
    assert all(message(store, i).attempts == 0 for i in ids[1:])  # in line behind it
    down.start()
    try:
        for _ in range(3):
            t += timedelta(seconds=policy.backoff_max + 1)
            deliver_due(store, t, master_key=MASTER, policy=policy)
        assert down.acked() == ids
        assert all(message(store, i).status is MessageStatus.delivered for i in ids)
    finally:
        down.stop()


def test_retention_deletes_settled_audience_pushes_only(
    store: DuckDBEngine, receiver: Receiver
) -> None:
    dest = destination(store, receiver)
    pushed = put(store, dest.id, "aud-1", 2, topic="audience.export")
    news = put(store, dest.id, "person-1", 1, topic="consent.changed")
    gates = {"audience.export": lambda db, **kw: kw["body"]}  # let every record through
    deliver_due(store, master_key=MASTER, policy=FAST, gates=gates)
    waiting = put(store, dest.id, "aud-2", 1, topic="audience.export")  # still pending
    assert [message(store, m).status for m in pushed + news] == [MessageStatus.delivered] * 3
    # a day later, with 30 days' retention: nothing is old enough
    assert prune(store, older_than=timedelta(days=30), now=utcnow() + timedelta(days=1)) == 0
    # 31 days later: the delivered pushes go; consent news and the pending push stay
    later = utcnow() + timedelta(days=31)
    assert prune(store, older_than=timedelta(days=30), now=later) == 2
    with store.connect() as db:
        left = {m.id for m in list_messages(db, tenant=TENANT)}
    assert left == set(news + waiting)
