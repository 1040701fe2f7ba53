"""Audiences on a real database file: live counts against an independent DuckDB count,
the consent gate, snapshots, overlap, CSV/Parquet exports and pushes to a real receiver."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from quanyu.audiences import export, service
from quanyu.audiences.models import AudienceCreate, AudienceDraft, AudienceUpdate, PushRequest
from quanyu.audiences.refresh import Pass, refresh_tenant
from quanyu.audiences.sendgate import GATES
from quanyu.consent import decisions as decision_log
from quanyu.consent import service as consent
from quanyu.consent.models import Decision, Subject
from quanyu.delivery.models import DestinationCreate, MessageStatus
from quanyu.delivery.service import list_messages
from quanyu.delivery.worker import deliver_due
from quanyu.engine import Session, Statement
from quanyu.errors import NotFound, ValidationFailed
from quanyu.identity.models import format_oneid
from quanyu.identity.secrets import load_master_key
from quanyu.tags import service as tags
from quanyu.tags.rules import RuleError
from quanyu.tenancy import service as tenancy
from tests.delivery.conftest import FAST, Receiver
from tests.tags.test_compute import ACTOR, NOW, World, identify, order, tag, world  # noqa: F401

RULE = 'tag("buyer") and traits.tier = "gold"'


@pytest.fixture
def shop(world: World) -> World:  # noqa: F811
    w = world
    w.send(
        "mp",
        [
            identify("u1", "i1", tier="gold", phone="13812345678"),
            identify("u2", "i2", tier="gold", phone="13912345678"),
            identify("u3", "i3", tier="silver"),
            identify("u4", "i4", tier="gold"),
            order("u1", 100, 3, "o1"),
            order("u2", 50, 4, "o2"),
            order("u3", 70, 5, "o3"),
        ],
    )
    w.send("pos", [order("u5", 20, 6, "o5")])
    with w.engine.connect() as db:
        tags.create_tag(
            db, tag("buyer", 'count(event = "Order Completed") >= 1'), tenant=w.tenant, actor=ACTOR
        )
        tags.compute_tags(db, tenant=w.tenant, now=NOW)
        # everyone agreed to marketing on every channel, then u2 withdrew it for SMS
        grant(w, db, ["u1", "u2", "u3", "u4", "u5"], "granted", "*")
        grant(w, db, ["u2"], "withdrawn", "sms")
    return w


def grant(w: World, db: Session, users: list[str], status: str, channel: str) -> None:
    """Record a marketing decision of each user."""
    decisions = [
        Decision(
            subject=Subject(profile=format_oneid(w.person(db, u))),
            purpose="marketing",
            channel=channel,
            status=status,
        )  # type: ignore[arg-type]  # fmt: skip
        for u in users
    ]
    consent.record(db, w.resolver, decisions, tenant=w.tenant, actor=ACTOR)


def independent_count(w: World) -> int:
    """The same audience counted with hand-written SQL over the stored tables."""
    sql = (
        "SELECT count(DISTINCT h.profile_id) FROM tag_history AS h WHERE h.tenant_id = ?"
        " AND h.tag_key = 'buyer' AND h.valid_to IS NULL AND h.profile_id IN ("
        "  SELECT profile_id FROM event_facts WHERE tenant_id = ? AND type = 'identify'"
        "  GROUP BY profile_id"
        "  HAVING arg_max(json_extract_string(traits, '$.tier'), ts) = 'gold')"
    )
    with w.engine.connect() as db:
        return int(db.execute(Statement("t.count", sql), [w.tenant, w.tenant])[0][0])


def test_count_gate_snapshot_overlap_and_exports(shop: World, tmp_path: Path) -> None:
    w = shop
    cache = service.IndexCache()
    with w.engine.connect() as db:
        u1, u2 = w.person(db, "u1"), w.person(db, "u2")
        found = service.count(db, AudienceDraft(rule=RULE), tenant=w.tenant, cache=cache)
        assert found.matched == independent_count(w) == 2
        assert (found.excluded, found.size) == (1, 1)  # u2 opted out of SMS
        assert found.sample == [format_oneid(u1)]
        assert found.by_channel == {"mini_program": 1}
        assert set(found.plan) == {"index"}
        wechat = AudienceDraft(rule=RULE, channel="wechat")
        assert service.count(db, wechat, tenant=w.tenant, cache=cache).size == 2
        assert found.excluded_by == {"consent withdrawn": 1}
        with pytest.raises(ValidationFailed, match="purpose 'spam' is unknown"):
            service.count(db, AudienceDraft(rule=RULE, purpose="spam"), tenant=w.tenant)

        body = AudienceCreate(id="gold", name="Gold buyers", rule=RULE, channel="wechat")
        service.create_audience(db, body, tenant=w.tenant, actor=ACTOR)
        body = AudienceCreate(id="buyers", name="Buyers", rule='tag("buyer")', channel="wechat")
        service.create_audience(db, body, tenant=w.tenant, actor=ACTOR)
        snap = service.materialise(db, tenant=w.tenant, audience_id="gold", cache=cache)
        assert (snap.size, snap.matched, snap.excluded) == (2, 2, 0)
        overlap = service.overlap(db, tenant=w.tenant, audience_ids=["gold", "buyers"])
        regions = {tuple(r.inside): r.size for r in overlap.regions}
        assert regions == {("gold", "buyers"): 2, ("gold",): 0, ("buyers",): 2}

        resolver = w.resolver
        table = export.rows(
            db, resolver, tenant=w.tenant, snapshot_id=snap.snapshot_id, identifier="phone_sha256"
        )
        want = {format_oneid(u1): "+8613812345678", format_oneid(u2): "+8613912345678"}
        assert dict(
            zip(
                table.column("oneid").to_pylist(),
                table.column("phone_sha256").to_pylist(),
                strict=True,
            )
        ) == {k: hashlib.sha256(v.encode()).hexdigest() for k, v in want.items()}
        csv = pacsv.read_csv(io.BytesIO(export.to_bytes(table, "csv")))
        parquet = pq.read_table(io.BytesIO(export.to_bytes(table, "parquet")))
        assert csv.to_pylist() == parquet.to_pylist() == table.to_pylist()
        with pytest.raises(ValidationFailed, match="needs a scope"):
            export.rows(
                db, resolver, tenant=w.tenant, snapshot_id=snap.snapshot_id, identifier="openid"
            )


def test_push_retries_a_destination_that_is_down_and_never_resends(
    shop: World, tmp_path: Path
) -> None:
    w = shop
    master = load_master_key(tmp_path)  # the key the world's resolver uses
    receiver = Receiver(port=0, fail_first=3).start()
    try:
        with w.engine.connect() as db:
            dest = export.add_destination(
                db,
                DestinationCreate(name="crm", url=receiver.url),
                tenant=w.tenant,
                master_key=master,
                actor=ACTOR,
                allow_private=True,
            )
            receiver.secret = dest.secret
            body = AudienceCreate(id="buyers", name="Buyers", rule='tag("buyer")', channel="wechat")
            service.create_audience(db, body, tenant=w.tenant, actor=ACTOR)
            pushed = export.push(
                db,
                w.resolver,
                PushRequest(destination_id=dest.id, batch_size=2),
                tenant=w.tenant,
                audience_id="buyers",
                actor=ACTOR,
            )
            assert (pushed.records, pushed.batches) == (4, 2)
        for _ in range(200):
            deliver_due(w.engine, master_key=master, policy=FAST, gates=GATES)
            with w.engine.connect() as db:
                if not list_messages(db, tenant=w.tenant, status=MessageStatus.pending):
                    break
        for _ in range(3):  # more passes send nothing again
            deliver_due(w.engine, master_key=master, policy=FAST, gates=GATES)
        receiver.assert_no_resend()
        assert receiver.acked() == pushed.message_ids  # in order, after three 503s
        got = [
            rec["oneid"]
            for h in receiver.hits
            if h.status == 200
            for rec in h.body["data"]["records"]
        ]
        with w.engine.connect() as db:
            snap, members = service.snapshot_members(
                db, tenant=w.tenant, snapshot_id=pushed.snapshot_id
            )
        assert got == [format_oneid(m) for m in members] and snap.size == 4
    finally:
        receiver.stop()


def test_consent_is_checked_again_when_each_webhook_is_sent(shop: World, tmp_path: Path) -> None:
    """A withdrawal after a push was queued still stops the send; without the gate, a
    message that carries people is never sent."""
    w = shop
    master = load_master_key(tmp_path)
    receiver = Receiver(port=0).start()
    try:
        with w.engine.connect() as db:
            made = DestinationCreate(name="crm", url=receiver.url)
            dest = export.add_destination(
                db, made, tenant=w.tenant, master_key=master, actor=ACTOR, allow_private=True
            )
            receiver.secret = dest.secret
            body = AudienceCreate(id="buyers", name="Buyers", rule='tag("buyer")', channel="wechat")
            service.create_audience(db, body, tenant=w.tenant, actor=ACTOR)
            push = PushRequest(destination_id=dest.id, batch_size=10)
            pushed = export.push(db, w.resolver, push, tenant=w.tenant, audience_id="buyers",
                                 actor=ACTOR)  # fmt: skip
            assert pushed.records == 4
            u1 = w.person(db, "u1")
            grant(w, db, ["u1"], "withdrawn", "*")  # after the push was queued
        deliver_due(w.engine, master_key=master, policy=FAST, gates=GATES)
        [hit] = [h for h in receiver.hits if h.status == 200]
        sent = [r["oneid"] for r in hit.body["data"]["records"]]
        assert len(sent) == 3 and format_oneid(u1) not in sent
        assert hit.body["data"]["withheld"] == 1
        with w.engine.connect() as db:
            [blocked] = decision_log.list_decisions(db, tenant=w.tenant, decision="block",
                                                    act_id=pushed.message_ids[0])  # fmt: skip
            assert (blocked.profile, blocked.reason) == (format_oneid(u1), "consent withdrawn")
            allowed = decision_log.list_decisions(db, tenant=w.tenant, decision="allow",
                                                  act_id=pushed.message_ids[0])  # fmt: skip
            assert sorted(a.profile for a in allowed) == sorted(sent)
            assert all(a.entry_seq is not None for a in allowed)
            again = export.push(db, w.resolver, push, tenant=w.tenant, audience_id="buyers",
                                actor=ACTOR)  # fmt: skip
        deliver_due(w.engine, master_key=master, policy=FAST)  # no gates given
        with w.engine.connect() as db:
            [failed] = list_messages(db, tenant=w.tenant, status=MessageStatus.failed)
        assert failed.id == again.message_ids[0]
        assert "never sent unchecked" in (failed.last_error or "")
        assert len([h for h in receiver.hits if h.status == 200]) == 1
    finally:
        receiver.stop()


def test_an_audience_is_edited_rematerialised_and_deleted(shop: World) -> None:
    w = shop
    with w.engine.connect() as db:
        body = AudienceCreate(id="gold", name="Gold buyers", rule=RULE, channel="wechat")
        made = service.create_audience(db, body, tenant=w.tenant, actor=ACTOR)
        first = service.materialise(db, tenant=w.tenant, audience_id="gold")
        assert first.size == 2
        with pytest.raises(RuleError, match="line 1"):
            service.update_audience(db, "gold", AudienceUpdate(rule='tag("buyer" and'),
                                    tenant=w.tenant, actor=ACTOR)  # fmt: skip
        with pytest.raises(ValidationFailed, match="channel 'fax' is unknown"):
            service.update_audience(db, "gold", AudienceUpdate(channel="fax"), tenant=w.tenant,
                                    actor=ACTOR)  # fmt: skip
        with pytest.raises(ValidationFailed, match="name cannot be null"):
            service.update_audience(db, "gold", AudienceUpdate(name=None), tenant=w.tenant,
                                    actor=ACTOR)  # fmt: skip
        assert service.get_audience(db, tenant=w.tenant, audience_id="gold") == made  # untouched

        edit = AudienceUpdate(name="Gold buyers by SMS", channel="sms")
        changed = service.update_audience(db, "gold", edit, tenant=w.tenant, actor=ACTOR)
        assert (changed.name, changed.channel, changed.rule_text) == (
            "Gold buyers by SMS", "sms", made.rule_text)  # fmt: skip
        assert service.get_audience(db, tenant=w.tenant, audience_id="gold") == changed

        # the next refresh sees a new definition and materialises it: u2 withdrew SMS
        done = Pass()
        refresh_tenant(db, tenant=w.tenant, done=done)
        assert f"{w.tenant}/gold" in done.materialised
        latest, older = service.snapshots(db, tenant=w.tenant, audience_id="gold", limit=2)
        assert (latest.reason, latest.size, latest.excluded) == ("edited", 1, 1)
        assert older.definition_hash == first.definition_hash != latest.definition_hash
        again = Pass()
        refresh_tenant(db, tenant=w.tenant, done=again)
        assert f"{w.tenant}/gold" not in again.materialised  # nothing new to make

        log = tenancy.list_audit(db, tenant=w.tenant)
        entry = next(e for e in log if e.action == "audience.update")
        assert entry.before is not None and entry.after is not None
        assert (entry.before["channel"], entry.after["channel"]) == ("wechat", "sms")

        service.delete_audience(db, "gold", tenant=w.tenant, actor=ACTOR)
        with pytest.raises(NotFound):
            service.get_audience(db, tenant=w.tenant, audience_id="gold")
        snaps = Statement("t.snaps", "SELECT count(*) FROM audience_snapshots"
                          " WHERE tenant_id = ? AND audience_id = 'gold'")  # fmt: skip
        left = db.execute(snaps, [w.tenant])
        assert left[0][0] == 0  # its lists of people went with it
        with pytest.raises(NotFound):
            service.update_audience(db, "gold", edit, tenant=w.tenant, actor=ACTOR)
        with pytest.raises(NotFound):
            service.delete_audience(db, "gold", tenant=w.tenant, actor=ACTOR)
        assert any(e.action == "audience.delete" for e in tenancy.list_audit(db, tenant=w.tenant))
