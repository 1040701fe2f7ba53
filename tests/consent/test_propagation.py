"""Consent propagation against real touchpoints on 127.0.0.1: subscribers, fault
injection (500s, timeouts, a touchpoint down and back, lost acknowledgements and the
duplicates they cause), the propagation report, the REST API, and (slow) a real
server killed with SIGKILL mid-delivery."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quanyu.api import consent_subscribers
from quanyu.api.app import create_app
from quanyu.config import Settings
from quanyu.consent import propagate, service
from quanyu.consent.models import Decision, Subject
from quanyu.consent.propagate_models import SubscriberCreate, SubscriberCreated
from quanyu.delivery import service as delivery
from quanyu.delivery.models import MessageStatus
from quanyu.delivery.sender import Policy
from quanyu.delivery.worker import deliver_due
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import Conflict, NotFound, ValidationFailed
from quanyu.identity.secrets import load_master_key
from tests.consent.propagation_helpers import Touchpoint
from tests.tags.test_compute import ACTOR, World, identify, world  # noqa: F401

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

#: Short timeouts and backoff, and attempts enough to outlast a touchpoint that is down.
POLICY = Policy(
    allow_private=True, timeout=0.3, max_attempts=200, backoff_base=0.005, backoff_max=0.05
)


def master(tmp_path: Path) -> bytes:
    return load_master_key(tmp_path)


def change(unionid: str, status: str, purpose: str = "marketing", channel: str = "*") -> Decision:
    return Decision(
        subject=Subject(type="unionid", value=unionid), purpose=purpose, channel=channel,
        status=status,  # type: ignore[arg-type]
    )  # fmt: skip


def pending(engine: DuckDBEngine, tenant: str) -> int:
    with engine.connect() as db:
        return len(delivery.list_messages(db, tenant=tenant, status=MessageStatus.pending))


def settle(engine: DuckDBEngine, key: bytes, tenant: str, within: float = 20.0) -> None:
    end = time.monotonic() + within
    while time.monotonic() < end:
        deliver_due(engine, master_key=key, policy=POLICY)
        if not pending(engine, tenant):
            return
        time.sleep(0.005)
    raise AssertionError(f"{pending(engine, tenant)} messages still pending after {within} s")


@pytest.fixture
def touchpoints() -> Iterator[list[Touchpoint]]:
    made: list[Touchpoint] = []
    yield made
    for tp in made:
        tp.stop()


def subscribe(
    w: World, key: bytes, tp: Touchpoint, name: str, **interest: Any
) -> SubscriberCreated:
    with w.engine.connect() as db:
        made = propagate.create_subscriber(
            db, SubscriberCreate(name=name, url=tp.url, **interest), tenant=w.tenant,
            master_key=key, actor=ACTOR, allow_private=True,
        )  # fmt: skip
    tp.secret = made.secret
    return made


def test_subscribers_are_managed(world: World, tmp_path: Path) -> None:  # noqa: F811
    w, key = world, master(tmp_path)
    tp = Touchpoint().start()
    try:
        made = subscribe(w, key, tp, "pos", purposes=["marketing", "default.analysis"],
                         brands=[w.brands["biore"]])  # fmt: skip
        assert made.secret.startswith("whsec_")
        assert made.purposes == ["default.marketing", "default.analysis"]
        with w.engine.connect() as db:
            listed = propagate.list_subscribers(db, tenant=w.tenant)
            assert [(s.id, s.url) for s in listed] == [(made.id, tp.url)]
            assert "secret" not in listed[0].model_dump()
            assert propagate.list_subscribers(db, tenant=w.other) == []
            with pytest.raises(Conflict, match="named 'pos' already"):
                propagate.create_subscriber(
                    db, SubscriberCreate(name="pos", url=tp.url),
                    tenant=w.tenant, master_key=key, actor=ACTOR, allow_private=True)  # fmt: skip
            with pytest.raises(NotFound, match="no purpose 'spam'"):
                propagate.create_subscriber(
                    db, SubscriberCreate(name="x", url=tp.url, purposes=["spam"]),
                    tenant=w.tenant, master_key=key, actor=ACTOR, allow_private=True)  # fmt: skip
            with pytest.raises(ValidationFailed, match="not brands of tenant"):
                propagate.create_subscriber(
                    db, SubscriberCreate(name="x", url=tp.url, brands=["brd_nope"]),
                    tenant=w.tenant, master_key=key, actor=ACTOR, allow_private=True)  # fmt: skip
            with pytest.raises(ValidationFailed, match="purposes is empty"):
                propagate.create_subscriber(
                    db, SubscriberCreate(name="x", url=tp.url, purposes=[]),
                    tenant=w.tenant, master_key=key, actor=ACTOR, allow_private=True)  # fmt: skip
            # nothing half-made by the refusals
            assert len(delivery.list_destinations(db, tenant=w.tenant)) == 1
            # news written before the subscriber goes is skipped, not sent
            [rec] = service.record(db, w.resolver, [change("o6_a", "granted")], tenant=w.tenant,
                                   actor=ACTOR)  # fmt: skip
            assert rec.subscribers == [made.id]
            gone = propagate.delete_subscriber(db, tenant=w.tenant, subscriber_id=made.id,
                                               actor=ACTOR)  # fmt: skip
            assert gone.id == made.id
            assert propagate.list_subscribers(db, tenant=w.tenant) == []
            assert delivery.list_destinations(db, tenant=w.tenant) == []
            with pytest.raises(NotFound, match="no consent subscriber"):
                propagate.delete_subscriber(db, tenant=w.tenant, subscriber_id=made.id,
                                            actor=ACTOR)  # fmt: skip
        deliver_due(w.engine, master_key=key, policy=POLICY)
        with w.engine.connect() as db:
            rep = propagate.report(db, tenant=w.tenant, seq=rec.entry.seq)
            assert [(t.subscriber_id, t.subscriber, t.status) for t in rep.told] == [
                (made.id, None, MessageStatus.skipped)
            ]
            assert not rep.complete and rep.counts[MessageStatus.skipped] == 1
            with pytest.raises(NotFound, match="no consent ledger entry 999"):
                propagate.report(db, tenant=w.tenant, seq=999)
            with pytest.raises(NotFound):
                propagate.report(db, tenant=w.other, seq=rec.entry.seq)
        assert tp.received == {}
    finally:
        tp.stop()


def test_enqueue_each_writes_every_message_in_one_go(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    w, key = world, master(tmp_path)
    tp = Touchpoint().start()
    try:
        dest = subscribe(w, key, tp, "crm").destination_id
        out = delivery.Outgoing
        with w.engine.connect() as db:
            with pytest.raises(NotFound, match="no destination 'dst_nope'"):
                delivery.enqueue_each(db, tenant=w.tenant, topic="consent.changed",
                                      messages=[out("dst_nope", "k", {})])  # fmt: skip
            with pytest.raises(ValidationFailed, match="must be 1 to 200 characters"):
                delivery.enqueue_each(db, tenant=w.tenant, topic="consent.changed",
                                      messages=[out(dest, "k" * 201, {})])  # fmt: skip
            with pytest.raises(NotFound):  # another tenant's destination
                delivery.enqueue_each(db, tenant=w.other, topic="consent.changed",
                                      messages=[out(dest, "k", {})])  # fmt: skip
            three = [out(dest, "a", {"n": 1}), out(dest, None, {"n": 2}), out(dest, "a", {"n": 3})]
            ids = delivery.enqueue_each(db, tenant=w.tenant, topic="consent.changed",
                                        messages=three)  # fmt: skip
            assert len(set(ids)) == 3
        settle(w.engine, key, w.tenant)
        got = [d["n"] for _, d, _ in tp.processed]
        assert sorted(got) == [1, 2, 3] and got.index(1) < got.index(3)  # key "a" kept order
    finally:
        tp.stop()


def test_every_touchpoint_gets_every_change_once_in_order_despite_faults(
    world: World,  # noqa: F811
    tmp_path: Path,
    touchpoints: list[Touchpoint],
) -> None:
    w, key = world, master(tmp_path)
    w.send("mp", [identify("u1", "i1", unionid="o6_p1"), identify("u2", "i2", unionid="o6_p2")])
    flaky = Touchpoint(plan=["500"] * 4).start()  # refuses, then recovers
    slow = Touchpoint(plan=["hang"] * 3, hang=0.6).start()  # times out (policy: 0.3 s)
    down = Touchpoint().start()  # goes away and comes back on the same port
    forgetful = Touchpoint(plan=["ok", "lost_ack", "lost_ack", "ok", "lost_ack"]).start()
    bystander = Touchpoint().start()  # cares about another purpose only
    touchpoints.extend([flaky, slow, down, forgetful, bystander])
    subs = {
        tp_name: subscribe(w, key, tp, tp_name)
        for tp_name, tp in (("flaky", flaky), ("slow", slow), ("down", down),
                            ("forgetful", forgetful))
    }  # fmt: skip
    other = subscribe(w, key, bystander, "bystander", purposes=["analysis"])
    down.stop()

    # people: two resolved (their OneIDs order their news), one never seen (its unionid does)
    people = ["o6_p1", "o6_p2", "o6_new"]
    seqs: list[int] = []
    with w.engine.connect() as db:
        for rnd, status in enumerate(["granted", "withdrawn", "granted", "denied", "withdrawn"]):
            batch = [change(u, status, channel="sms" if rnd % 2 else "*") for u in people]
            for rec in service.record(db, w.resolver, batch, tenant=w.tenant, actor=ACTOR):
                assert sorted(rec.subscribers) == sorted(s.id for s in subs.values())
                seqs.append(rec.entry.seq)
    assert len(seqs) == 15

    # while one touchpoint is down the others get everything; its news waits, in order
    end = time.monotonic() + 20
    while time.monotonic() < end and any(
        len(tp.entries()) < len(seqs) for tp in (flaky, slow, forgetful)
    ):
        deliver_due(w.engine, master_key=key, policy=POLICY)
    assert down.received == {}
    with w.engine.connect() as db:
        waiting = delivery.list_messages(
            db, tenant=w.tenant, destination_id=subs["down"].destination_id
        )
        assert len(waiting) == len(seqs)
        assert all(m.status is MessageStatus.pending for m in waiting)
        assert max(m.attempts for m in waiting) >= 2
        assert all("cannot reach" in (m.last_error or "") for m in waiting if m.attempts)
    down.start()
    settle(w.engine, key, w.tenant)

    for tp in (flaky, slow, down, forgetful):
        assert tp.forged == 0
        assert sorted(tp.entries()) == seqs, "every change exactly once after dedupe"
        order = tp.by_person()
        assert set(order) == {"P" + str(p) for p in _people(w)} | {"unionid:o6_new"}
        for person, got in order.items():
            assert got == sorted(got), f"{person}'s changes out of order: {got}"
            assert len(got) == 5
    assert flaky.behaved["500"] == 4 and slow.behaved["hang"] == 3
    assert forgetful.behaved["lost_ack"] == 3 and forgetful.duplicates() >= 3
    assert bystander.received == {}

    with w.engine.connect() as db:
        for seq in seqs:
            rep = propagate.report(db, tenant=w.tenant, seq=seq)
            assert rep.complete, rep
            assert rep.counts[MessageStatus.delivered] == 4
            assert {t.subscriber_id for t in rep.told} == {s.id for s in subs.values()}
            assert other.id not in {t.subscriber_id for t in rep.told}
            for t in rep.told:
                assert t.status_code == 200 and t.delivered_at is not None
                assert t.acknowledgement is not None and t.message_id in t.acknowledgement
        retried = {
            t.subscriber
            for s in seqs
            for t in propagate.report(db, tenant=w.tenant, seq=s).told
            if t.attempts > 1
        }
        assert retried == {"flaky", "slow", "down", "forgetful"}  # fmt: skip


def _people(w: World) -> list[int]:
    with w.engine.connect() as db:
        return [w.person(db, u) for u in ("u1", "u2")]


# --- the REST API -----------------------------------------------------------------------------

ADMIN = {"Authorization": "Bearer t"}


def test_subscribers_over_http(tmp_path: Path) -> None:
    from quanyu.api import consent

    app = create_app(Settings(data_dir=tmp_path / "data"), local_token="t")
    paths = {getattr(r, "path", "") for r in app.routes}
    for module in (consent, consent_subscribers):
        if not {getattr(r, "path", "") for r in module.router.routes} <= paths:
            app.include_router(module.router)
    tp = Touchpoint().start()
    try:
        with TestClient(app) as c:
            tenant = c.post("/v1/tenants", json={"name": "Kao"}, headers=ADMIN).json()["id"]
            base = f"/v1/tenants/{tenant}/consent"
            r = c.post(f"{base}/subscribers", json={"name": "crm", "url": tp.url}, headers=ADMIN)
            assert r.status_code == 201, r.text
            tp.secret = r.json()["secret"]
            sub = r.json()["id"]
            body = {"name": "x", "url": tp.url, "purposes": ["spam"]}
            bad = c.post(f"{base}/subscribers", json=body, headers=ADMIN)
            assert bad.status_code == 404 and "spam" in bad.json()["message"]
            listed = c.get(f"{base}/subscribers", headers=ADMIN).json()
            assert [s["id"] for s in listed] == [sub] and "secret" not in listed[0]
            assert c.get(f"{base}/subscribers").status_code == 401
            rec = c.post(f"{base}/decisions", headers=ADMIN, json={"decisions": [
                change("o6_h", "withdrawn").model_dump(mode="json")]})  # fmt: skip
            assert rec.status_code == 201, rec.text
            seq = rec.json()[0]["entry"]["seq"]
            end = time.monotonic() + 10
            while time.monotonic() < end:
                rep = c.get(f"{base}/entries/{seq}/propagation", headers=ADMIN).json()
                if rep["complete"]:
                    break
                time.sleep(0.02)
            assert rep["complete"], rep
            assert rep["told"][0]["subscriber_id"] == sub and rep["told"][0]["status_code"] == 200
            assert tp.entries() == [seq]
            missing = c.get(f"{base}/entries/999/propagation", headers=ADMIN)
            assert missing.status_code == 404
            gone = c.delete(f"{base}/subscribers/{sub}", headers=ADMIN)
            assert gone.status_code == 200 and gone.json()["id"] == sub
            assert c.get(f"{base}/subscribers", headers=ADMIN).json() == []
    finally:
        tp.stop()


# --- a real server killed mid-delivery ------------------------------------------------------


def _wait(what: str, done: Any, within: float) -> None:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if done():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {within} s")


@pytest.mark.slow
def test_kill_9_mid_delivery_loses_no_change(tmp_path: Path, touchpoints: list[Touchpoint]) -> None:
    from tests.integration.harness import Server

    server = Server(tmp_path)
    server.start()
    try:
        tenant = server.create_tenant()["id"]
        base = f"/v1/tenants/{tenant}/consent"
        tps = [Touchpoint(delay=0.1).start() for _ in range(3)]  # slow: the kill lands mid-way
        touchpoints.extend(tps)
        for i, tp in enumerate(tps):
            made = server.call("POST", f"{base}/subscribers", json={"name": f"t{i}", "url": tp.url})
            tp.secret = made["secret"]
        seqs: list[int] = []
        for rnd, status in enumerate(["granted", "withdrawn", "granted", "denied", "withdrawn"]):
            body = {"decisions": [
                change(f"o6_k{p}", status, channel="sms" if rnd % 2 else "*").model_dump(
                    mode="json") for p in range(8)]}  # fmt: skip
            seqs += [r["entry"]["seq"] for r in server.call("POST", f"{base}/decisions", json=body)]
        assert len(seqs) == 40
        total = len(seqs) * len(tps)
        _wait("a first delivery", lambda: sum(len(tp.entries()) for tp in tps) >= 10, 20)
        server.kill()
        before = sum(len(tp.entries()) for tp in tps)
        assert before < total, "every change arrived before the kill: the test proves nothing"
        server.restart()
        _wait("every delivery", lambda: all(len(tp.entries()) == len(seqs) for tp in tps), 60)

        for tp in tps:
            assert tp.forged == 0
            assert sorted(tp.entries()) == sorted(seqs), "every change exactly once after dedupe"
            for person, got in tp.by_person().items():
                assert got == sorted(got) and len(got) == 5, f"{person}: {got}"
        for seq in seqs:  # every entry and every outbox row survived, and the report says so
            assert server.call("GET", f"{base}/entries/{seq}")["seq"] == seq
            _wait(f"entry {seq} reported delivered", lambda s=seq: server.call(
                "GET", f"{base}/entries/{s}/propagation")["complete"], 10)  # fmt: skip
            rep = server.call("GET", f"{base}/entries/{seq}/propagation")
            assert rep["counts"]["delivered"] == len(tps) == len(rep["told"])
    finally:
        server.stop()
