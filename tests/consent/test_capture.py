"""Consent captured from tracking events on a real database file: both forms, once
only, invalid decisions kept as dead letters, collection enforcement (exclude and drop),
and a merge of a granted and a withdrawn person that a split undoes."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from quanyu.consent import capture, service
from quanyu.consent import capture_sql as cq
from quanyu.consent.capture import Capturer, capture_pending
from quanyu.consent.models import PurposeCreate, Settings, Status
from quanyu.engine import Session, Statement
from quanyu.ingest import service as ingest
from quanyu.tags import facts
from tests.tags.test_compute import ACTOR, NOW, World, identify, order, world  # noqa: F401


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def updated(user: str, n: str, days_ago: float, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Consent Updated", "userId": user, "messageId": n,
            "timestamp": at(days_ago), "properties": props}  # fmt: skip


def page(user: str, n: str, days_ago: float, prefs: dict[str, bool]) -> dict[str, Any]:
    consent = {"consent": {"categoryPreferences": prefs}}
    return {"type": "page", "name": "home", "userId": user, "messageId": n,
            "timestamp": at(days_ago), "context": consent}  # fmt: skip


def status(w: World, db: Session, user: str, purpose: str, channel: str = "*") -> Any:
    return service.state(db, tenant=w.tenant, profile_id=w.person(db, user), purpose=purpose,
                         channel=channel)  # fmt: skip


def entries(w: World, db: Session, user: str) -> list[Any]:
    return service.history(db, tenant=w.tenant, profile_id=w.person(db, user))


@pytest.mark.parametrize("few", [2_000, 0], ids=["identifiers-by-id", "all-identifiers"])
def test_both_forms_once_only(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    few: int,
) -> None:
    w = world
    monkeypatch.setattr(capture, "_FEW_NODES", few)  # both plans of a pass say the same
    w.send("mp", [
        identify("u1", "i1"),
        updated("u1", "c1", 5, purpose="marketing", channel="sms", status="granted",
                notice_version=None, evidence="sha256:ab"),
        page("u1", "p1", 4, {"Analytics": True, "Advertising": False}),
    ])  # fmt: skip
    # a crash before the cursor moves leaves nothing behind: the pass is one transaction
    monkeypatch.setattr(capture, "_drop", lambda db, tenant: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        capture_pending(w.engine)
    monkeypatch.undo()
    monkeypatch.setattr(capture, "_FEW_NODES", few)
    with w.engine.connect() as db:
        assert entries(w, db, "u1") == []
    assert capture_pending(w.engine) == 3
    with w.engine.connect() as db:
        got = {(e.purpose_id, e.channel): e for e in entries(w, db, "u1")}
        assert {k: e.status for k, e in got.items()} == {
            ("default.marketing", "sms"): "granted",
            ("default.analysis", "*"): "granted",
            ("default.ads_targeting", "*"): "denied",  # never granted: a refusal
        }
        sms = got[("default.marketing", "sms")]
        assert (sms.origin, sms.message_id, sms.surface, sms.evidence) == (
            "event", "c1", "mini_program", "sha256:ab")  # fmt: skip
        assert sms.source_id == w.sources["mp"][0]
        assert sms.decided_at == (NOW - timedelta(days=5)).replace(tzinfo=None)
        assert status(w, db, "u1", "marketing", "sms").status is Status.granted
        assert status(w, db, "u1", "analysis").status is Status.granted
    # the same preference again, and a second pass: nothing new
    w.send("mp", [page("u1", "p2", 3, {"Analytics": True, "Advertising": False})])
    assert capture_pending(w.engine) == 0
    assert capture_pending(w.engine) == 0
    # a changed preference is recorded: a withdrawal, since analysis was granted
    w.send("mp", [page("u1", "p3", 2, {"analytics": False})])
    capturer = Capturer(w.engine)
    assert capturer.run_once() == 1
    with w.engine.connect() as db:
        assert status(w, db, "u1", "analysis").status is Status.withdrawn
        assert len(entries(w, db, "u1")) == 4


def test_invalid_consent_updated_is_a_dead_letter(world: World) -> None:  # noqa: F811
    w = world
    with w.engine.connect() as db:
        service.set_settings(db, Settings(guardian_under=14), tenant=w.tenant, actor=ACTOR)
    kid = {"birthday": f"{NOW.year - 12}-01-01"}
    w.send("pos", [
        identify("u1", "i1"),
        identify("kid", "i2", **kid),
        updated("u1", "bad1", 3, purpose="spam", status="granted"),
        updated("u1", "bad2", 3, purpose="marketing", status="maybe"),
        updated("u1", "bad3", 3, purpose="ads_targeting", status="granted"),
        updated("u1", "bad4", 3, purpose="marketing", status="granted", channel="fax"),
        updated("kid", "bad5", 3, purpose="marketing", status="granted"),
        updated("kid", "ok2", 3, purpose="marketing", status="granted", actor="guardian"),
        updated("u1", "ok", 3, purpose="marketing", status="withdrawn", channel="wechat"),
    ])  # fmt: skip
    assert capture_pending(w.engine) == 2
    with w.engine.connect() as db:
        [entry] = entries(w, db, "u1")
        assert (entry.message_id, entry.surface, entry.status) == ("ok", "pos", "withdrawn")
        [entry] = entries(w, db, "kid")
        assert (entry.message_id, entry.actor) == ("ok2", "guardian")
        letters = ingest.list_dead_letters(db, tenant=w.tenant, code="consent_invalid").items
        reasons = {d.message_id: d.reason for d in letters}
        assert set(reasons) == {"bad1", "bad2", "bad3", "bad4", "bad5"}
        assert "no purpose 'spam'" in reasons["bad1"]
        assert "'maybe' is not one of granted, denied, withdrawn" in reasons["bad2"]
        assert "separate consent" in reasons["bad3"]
        assert "channel 'fax' is unknown" in reasons["bad4"]
        assert "only a guardian may consent" in reasons["bad5"]
        assert {d.disposition for d in letters} == {"flagged"}
        assert letters[0].payload["event"] == "Consent Updated"
    assert capture_pending(w.engine) == 0
    with w.engine.connect() as db:
        assert len(ingest.list_dead_letters(db, tenant=w.tenant, code="consent_invalid").items) == 5


ORDER_TIMES = Statement(
    "t.order_times",
    "SELECT e.message_id FROM events AS e WHERE e.tenant_id = ? AND e.user_id = ?"
    " AND e.event = 'Order Completed' ORDER BY e.timestamp",
)
FACT_TIMES = Statement(
    "t.fact_times",
    "SELECT json_extract_string(properties, '$.ref') FROM event_facts WHERE tenant_id = ?"
    " AND profile_id = ? AND event = 'Order Completed' ORDER BY ts",
)


def orders(user: str) -> list[dict[str, Any]]:
    return [order(user, 10, d, f"{user}-o{d}", ref=f"{user}-o{d}") for d in (20, 10, 5, 1)]


def test_withdrawn_analysis_hides_later_events(world: World) -> None:  # noqa: F811
    w = world
    w.send("mp", [identify("u1", "i1"), identify("u2", "i2"), *orders("u1"), *orders("u2")])
    w.send("mp", [updated("u1", "c1", 8, purpose="analysis", status="withdrawn")])
    capture_pending(w.engine)
    with w.engine.connect() as db:
        folded = facts.fold(db, tenant=w.tenant)
        u1, u2 = w.person(db, "u1"), w.person(db, "u2")
        assert u1 in folded.persons.tolist()
        assert [r[0] for r in db.execute(FACT_TIMES, [w.tenant, u1])] == ["u1-o20", "u1-o10"]
        assert len(db.execute(FACT_TIMES, [w.tenant, u2])) == 4
        # exclude keeps the events themselves
        assert len(db.execute(ORDER_TIMES, [w.tenant, "u1"])) == 4
    # an event arriving later, after the withdrawal, is not folded either
    w.send("mp", [order("u1", 10, 0.5, "late", ref="late")])
    capture_pending(w.engine)
    with w.engine.connect() as db:
        facts.fold(db, tenant=w.tenant)
        assert [r[0] for r in db.execute(FACT_TIMES, [w.tenant, u1])] == ["u1-o20", "u1-o10"]


def test_drop_policy_deletes_later_events(world: World) -> None:  # noqa: F811
    w = world
    with w.engine.connect() as db:
        service.create_purpose(
            db, PurposeCreate(key="behaviour", name_zh="行为采集", name_en="Behaviour",
                              legal_basis="contract", collects=True, on_withdrawal="drop"),
            tenant=w.tenant, actor=ACTOR)  # fmt: skip
    w.send("mp", [identify("u1", "i1"), identify("u2", "i2"), *orders("u1"), *orders("u2")])
    w.send("mp", [updated("u1", "c1", 8, purpose="behaviour", status="withdrawn")])
    capture_pending(w.engine)
    with w.engine.connect() as db:
        left = [r[0] for r in db.execute(ORDER_TIMES, [w.tenant, "u1"])]
        assert left == ["u1-o20", "u1-o10"]
        assert len(db.execute(ORDER_TIMES, [w.tenant, "u2"])) == 4
        # the consent event itself stays: it is the evidence of the decision
        assert ingest.get_event(db, tenant=w.tenant, message_id="c1").event == "Consent Updated"
    w.send("mp", [order("u1", 10, 0.5, "late", ref="late")])
    capture_pending(w.engine)
    with w.engine.connect() as db:
        assert [r[0] for r in db.execute(ORDER_TIMES, [w.tenant, "u1"])] == left
        facts.fold(db, tenant=w.tenant)
        assert [r[0] for r in db.execute(FACT_TIMES, [w.tenant, w.person(db, "u1")])] == left


PHONE_NODE = Statement(
    "t.phone_node",
    "SELECT node_id FROM id_nodes WHERE tenant_id = ? AND id_type = 'phone'",
)


def test_merge_of_granted_and_withdrawn_reads_withdrawn_and_split_restores(
    world: World,  # noqa: F811
) -> None:
    w = world
    # two members of two brands (one member id per brand and person is the rule)
    w.send(
        "mp",
        [
            identify("u1", "i1"),
            updated("u1", "c1", 10, purpose="marketing", channel="sms", status="granted"),
        ],
    )
    w.send("pos", [identify("u2", "i2"),
                   updated("u2", "c2", 9, purpose="marketing", channel="sms",
                           status="withdrawn")])  # fmt: skip
    assert capture_pending(w.engine) == 2
    with w.engine.connect() as db:
        assert status(w, db, "u1", "marketing", "sms").status is Status.granted
        assert status(w, db, "u2", "marketing", "sms").status is Status.withdrawn
    # the two accounts turn out to be one person: both give the same phone
    w.send("mp", [identify("u1", "i3", days_ago=1, phone="13812345678")])
    w.send("pos", [identify("u2", "i4", days_ago=1, phone="13812345678")])
    assert capture_pending(w.engine) == 0
    with w.engine.connect() as db:
        assert w.person(db, "u1") == w.person(db, "u2")
        merged = status(w, db, "u1", "marketing", "sms")
        assert merged.status is Status.withdrawn and merged.conflict
        [(phone,)] = db.execute(PHONE_NODE, [w.tenant])
    w.resolver.unlink(w.tenant, int(phone), actor=ACTOR, reason="shared family phone")
    with w.engine.connect() as db:
        assert w.person(db, "u1") != w.person(db, "u2")
        one, two = status(w, db, "u1", "marketing", "sms"), status(w, db, "u2", "marketing", "sms")
        assert (one.status, one.conflict) == (Status.granted, False)
        assert (two.status, two.conflict) == (Status.withdrawn, False)


def test_capturer_thread_catches_up(world: World) -> None:  # noqa: F811
    w = world
    capturer = Capturer(w.engine, interval=0.05)
    capturer.start()
    try:
        w.send("mp", [identify("u1", "i1"),
                      updated("u1", "c1", 1, purpose="marketing", status="granted")])  # fmt: skip
        capturer.notify()
        for _ in range(200):
            with w.engine.connect() as db:
                if entries(w, db, "u1"):
                    break
            capturer.notify()
            time.sleep(0.05)
        with w.engine.connect() as db:
            assert [e.status for e in entries(w, db, "u1")] == ["granted"]
    finally:
        capturer.stop()


def test_cursor_moves_queue_behind_settings_changes(world: World) -> None:  # noqa: F811
    """Every update of a tenant's consent_state row holds its log lock: the capture
    cursor moving while settings change (or canaries are seeded) waits, never conflicts."""
    w = world
    w.send("mp", [identify("u1", "i1")])
    errors: list[BaseException] = []

    def settings() -> None:
        with w.engine.connect() as db:
            for age in range(40):
                try:
                    service.set_settings(db, Settings(guardian_under=10 + age % 5),
                                         tenant=w.tenant, actor=ACTOR)  # fmt: skip
                except BaseException as e:  # noqa: BLE001 - collected for the assertion
                    errors.append(e)

    def cursor() -> None:
        with w.engine.connect() as db:
            for _ in range(200):
                progress = db.one(cq.PROGRESS, [w.tenant, w.tenant])
                after = int(progress[1] or 0) if progress else 0
                try:
                    capture._move_on(db, w.tenant, after, after)
                except BaseException as e:  # noqa: BLE001 - collected for the assertion
                    errors.append(e)

    threads = [threading.Thread(target=settings), threading.Thread(target=cursor)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
