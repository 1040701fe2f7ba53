"""Enforcement, table-driven: purpose × channel × state × destination → allow or block
(unknown blocks), the age gate, canaries, and the SQL projection held to the Python rule
on random ledgers."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
from pyroaring import BitMap

from quanyu.audiences.sendgate import GATES
from quanyu.consent import canary, enforce, ledger, service
from quanyu.consent import sql as q
from quanyu.consent.ledger import NewEntry
from quanyu.consent.models import Decision, PurposeCreate, Settings, Status, Subject
from quanyu.delivery import service as delivery
from quanyu.delivery.models import DestinationCreate
from quanyu.delivery.worker import deliver_due
from quanyu.engine import Session, Statement
from quanyu.identity.models import format_oneid
from quanyu.identity.secrets import load_master_key
from quanyu.ingest.writer import write_chunks
from quanyu.tags import service as tags
from tests.delivery.conftest import FAST, Receiver
from tests.tags.test_compute import ACTOR, NOW, World, identify, world  # noqa: F401

# (purpose, recorded channel or None for no word, status, separate, asked channel,
#  destination, decision)
CASES = [
    ("marketing", "sms", "granted", False, "sms", None, "allow"),
    ("marketing", "*", "granted", False, "wechat", None, "allow"),
    ("marketing", "sms", "granted", False, "wechat", None, "block"),
    ("marketing", "sms", "withdrawn", False, "sms", None, "block"),
    ("marketing", "sms", "denied", False, "sms", None, "block"),
    ("marketing", "sms", "expired", False, "sms", None, "block"),
    ("marketing", None, None, False, "sms", None, "block"),
    ("marketing", None, None, False, "none", None, "block"),
    ("ads_targeting", "ads", "granted", True, "ads", None, "allow"),
    ("ads_targeting", None, None, False, "ads", None, "block"),
    ("service", None, None, False, "sms", None, "allow"),
    ("service", "*", "withdrawn", False, "sms", None, "allow"),
    ("analysis", None, None, False, "none", None, "allow"),
    ("survey", "*", "granted", False, "email", "dst_ok", "allow"),
    ("survey", "*", "granted", False, "email", "dst_other", "block"),
    ("survey", "*", "withdrawn", False, "email", "dst_ok", "block"),
]


def anonymous(device: str, n: str) -> dict[str, object]:
    return {"type": "identify", "anonymousId": device, "messageId": n,
            "timestamp": (NOW - timedelta(days=50)).isoformat(), "traits": {}}  # fmt: skip


def person_of(w: World, db: Session, value: str) -> int:
    sql = "SELECT DISTINCT profile_id FROM id_nodes WHERE tenant_id = ? AND value = ?"
    rows = db.execute(Statement("t.person_of", sql), [w.tenant, value])
    assert len(rows) == 1, rows
    return int(rows[0][0])


@pytest.fixture
def people(world: World) -> World:  # noqa: F811
    w = world
    w.send("mp", [identify(f"u{i}", f"i{i}") for i in range(len(CASES))])
    with w.engine.connect() as db:
        service.create_purpose(
            db, PurposeCreate(key="survey", name_zh="调研", name_en="Survey",
                              destinations=["dst_ok"]), tenant=w.tenant, actor=ACTOR,
        )  # fmt: skip
        decisions = [
            Decision(
                subject=Subject(profile=format_oneid(w.person(db, f"u{i}"))),
                purpose=p,
                channel=ch,
                status=st,
                separate=sep,
                decided_at=NOW - timedelta(days=1),
            )  # type: ignore[arg-type]  # fmt: skip
            for i, (p, ch, st, sep, *_) in enumerate(CASES)
            if ch is not None
        ]
        service.record(db, w.resolver, decisions, tenant=w.tenant, actor=ACTOR)
    return w


@pytest.mark.parametrize("i", range(len(CASES)), ids=lambda i: "-".join(map(str, CASES[i][:6])))
def test_purpose_channel_state_destination(people: World, i: int) -> None:
    w = people
    purpose, _, _, _, channel, destination, want = CASES[i]
    with w.engine.connect() as db:
        person = w.person(db, f"u{i}")
        p = service.get_purpose(db, tenant=w.tenant, ref=purpose)
        got = enforce.admit(db, BitMap([person]), tenant=w.tenant, purpose=p, channel=channel,
                            destination=destination, act="test", act_id=f"case{i}")  # fmt: skip
        assert (person in got.members) == (want == "allow"), got.blocked
        from quanyu.consent.decisions import list_decisions

        [logged] = list_decisions(db, tenant=w.tenant, act_id=f"case{i}")
        assert (logged.decision, logged.profile) == (want, format_oneid(person))
        if want == "allow" and p.legal_basis == "consent":
            assert logged.entry_seq is not None  # the grant it rests on


def test_marketing_age_gate(world: World) -> None:  # noqa: F811
    w = world
    w.send("mp", [identify("adult", "i1", birthday="1990-05-01"),
                  identify("minor", "i2", birthday=f"{NOW.year - 16}-01-01"),
                  identify("ageless", "i3")])  # fmt: skip
    with w.engine.connect() as db:
        ids = {u: w.person(db, u) for u in ("adult", "minor", "ageless")}
        service.record(db, w.resolver, [
            Decision(subject=Subject(profile=format_oneid(n)), purpose="marketing",
                     status="granted")  # type: ignore[arg-type]  # fmt: skip
            for n in ids.values()
        ], tenant=w.tenant, actor=ACTOR)  # fmt: skip
        p = service.get_purpose(db, tenant=w.tenant, ref="marketing")
        everyone = BitMap(ids.values())
        assert (
            enforce.admit(db, everyone, tenant=w.tenant, purpose=p, channel="sms").members
            == everyone
        )
        service.set_settings(db, Settings(marketing_min_age=18), tenant=w.tenant, actor=ACTOR)
        tags.compute_tags(db, tenant=w.tenant, now=NOW)  # folds the traits ages are read from
        got = enforce.admit(db, everyone, tenant=w.tenant, purpose=p, channel="sms")
        assert got.members == BitMap([ids["adult"]])
        assert got.blocked == {"under 18: no marketing": 1, "age unknown; marketing needs 18+": 1}
        service_p = service.get_purpose(db, tenant=w.tenant, ref="service")
        assert len(enforce.admit(db, everyone, tenant=w.tenant, purpose=service_p,
                                 channel="sms").members) == 3  # fmt: skip


def test_canaries_are_blocked_everywhere_and_reported(world: World) -> None:  # noqa: F811
    w = world
    with w.engine.connect() as db:
        made = canary.seed(db, w.resolver, tenant=w.tenant, count=2, actor=ACTOR,
                           write=lambda chunk: write_chunks(w.engine, [chunk]))  # fmt: skip
    w.resolver.catch_up()
    with w.engine.connect() as db:
        birds = enforce.canaries(db, tenant=w.tenant)
        assert len(birds) == 2 and len(made) == 2
        for key in ("marketing", "service"):
            p = service.get_purpose(db, tenant=w.tenant, ref=key)
            got = enforce.admit(db, birds, tenant=w.tenant, purpose=p, channel="sms",
                                act="push", act_id=f"wrong-{key}")  # fmt: skip
            assert not got.members
        report = canary.check(db, tenant=w.tenant)
        assert (report.canaries, report.allowed, report.blocked, report.ok) == (2, 0, 4, True)
        state = service.state(db, tenant=w.tenant, profile_id=birds[0], purpose="marketing",
                              channel="sms")  # fmt: skip
        assert state.status is Status.withdrawn


def test_sql_projection_agrees_with_the_python_rule(world: World) -> None:  # noqa: F811
    """Random decisions on people who then merge (a shared phone): for every person,
    purpose and channel the tenant-wide SQL gives the state the Python rule gives."""
    w = world
    rng = random.Random(7)
    users = [f"r{i}" for i in range(12)]  # even: user ids; odd: anonymous devices
    w.send("mp", [identify(u, f"m{u}") if i % 2 == 0 else anonymous(u, f"m{u}")
                  for i, u in enumerate(users)])  # fmt: skip
    with w.engine.connect() as db:
        ids = {u: person_of(w, db, u) for u in users}
        service.ensure_defaults(db, tenant=w.tenant)  # the purposes the entries are for
        entries = []
        for _ in range(60):
            u = rng.choice(users)
            keys = [r[0] for r in db.execute(q.PROFILE_KEYS, [w.tenant, ids[u]])]
            entries.append(NewEntry(
                purpose_id=rng.choice(["default.marketing", "default.ads_targeting"]),
                channel=rng.choice(["sms", "wechat", "*"]),
                status=rng.choice(["granted", "denied", "withdrawn", "granted"]),
                separate=rng.random() < 0.5,
                decided_at=(NOW - timedelta(hours=rng.randrange(1, 500))).replace(tzinfo=None),
                surface="api", actor="self", subject_key=keys[0], subject_type="user_id",
                profile_id=ids[u], origin="test", recorded_by=ACTOR, covers=keys,
            ))  # fmt: skip
        with db.transaction():
            ledger.append(db, w.tenant, entries)
    # people merge in pairs: each user signs in on a device
    w.send("mp", [{**identify(users[i], f"p{i}"), "anonymousId": users[i + 1]}
                  for i in range(0, 12, 2)])  # fmt: skip
    with w.engine.connect() as db:
        persons = {person_of(w, db, u) for u in users}
        assert len(persons) == 6
        for purpose in ("default.marketing", "default.ads_targeting"):
            for channel in ("sms", "wechat"):
                st = enforce.standing(db, tenant=w.tenant, purpose_id=purpose, channel=channel,
                                      now=NOW)  # fmt: skip
                where = st.lookup()
                for person in persons:
                    want = service.state(db, tenant=w.tenant, profile_id=person, purpose=purpose,
                                         channel=channel, now=NOW)  # fmt: skip
                    got = st.status[where[person]] if person in where else "unknown"
                    assert got == want.status.value, (person, purpose, channel)
                    assert (person in st.granted) == (want.status is Status.granted)


def test_a_wrong_export_to_a_canary_is_caught_at_send_time(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    """An export message that names a canary (as a bug upstream of the gate would make
    it) is stopped by the delivery worker's send-time check and shows in the report."""
    w = world
    w.send("mp", [identify("real", "i1")])
    master = load_master_key(tmp_path)
    receiver = Receiver(port=0).start()
    try:
        with w.engine.connect() as db:
            canary.seed(db, w.resolver, tenant=w.tenant, count=1, actor=ACTOR,
                        write=lambda chunk: write_chunks(w.engine, [chunk]))  # fmt: skip
        w.resolver.catch_up()
        with w.engine.connect() as db:
            [bird] = enforce.canaries(db, tenant=w.tenant)
            real = w.person(db, "real")
            service.record(db, w.resolver, [Decision(
                subject=Subject(profile=format_oneid(real)), purpose="marketing",
                status="granted")], tenant=w.tenant, actor=ACTOR)  # type: ignore[arg-type]  # fmt: skip
            dest = delivery.create_destination(db, DestinationCreate(name="crm", url=receiver.url),
                                               tenant=w.tenant, master_key=master,
                                               allow_private=True)  # fmt: skip
            receiver.secret = dest.secret
            records = [{"oneid": format_oneid(p)} for p in (real, bird)]
            [wrong] = delivery.enqueue(db, tenant=w.tenant, destination_id=dest.id,
                                       topic="audience.export", key="a:1", payloads=[
                {"purpose": "marketing", "channel": "sms", "records": records}])  # fmt: skip
        deliver_due(w.engine, master_key=master, policy=FAST, gates=GATES)
        [hit] = receiver.hits
        assert hit.body["data"]["records"] == [{"oneid": format_oneid(real)}]
        with w.engine.connect() as db:
            report = canary.check(db, tenant=w.tenant)
        assert (report.ok, report.allowed, report.blocked) == (True, 0, 1)
        assert report.attempts[0].act_id == wrong and report.attempts[0].act == "send"
    finally:
        receiver.stop()
