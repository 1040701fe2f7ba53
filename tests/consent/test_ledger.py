"""The consent ledger on a real database file: recording, a person's state, merges
that never widen consent, splits that restore each side, and the SQL projection held to
the Python rule."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quanyu.consent import enforce, service
from quanyu.consent.models import Decision, PurposeCreate, Settings, Status, Subject
from quanyu.errors import NotFound, ValidationFailed
from quanyu.identity.models import format_oneid
from quanyu.ledger import log, merkle
from quanyu.ledger import service as merkle_log
from tests.tags.test_compute import ACTOR, NOW, World, identify, world  # noqa: F401

SCOPE = {"scope": ""}


def decide(user: str, status: str, purpose: str = "marketing", channel: str = "*",
           days_ago: float = 1, **kw: object) -> Decision:  # fmt: skip
    return Decision(
        subject=Subject(type="user_id", value=user, scope=SCOPE["scope"]), purpose=purpose,
        channel=channel,
        status=status, decided_at=NOW - timedelta(days=days_ago), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_record_and_read_state(world: World) -> None:  # noqa: F811
    w = world
    SCOPE["scope"] = w.sources["mp"][0]
    w.send("mp", [identify("u1", "i1"), identify("u2", "i2")])
    with w.engine.connect() as db:
        u1 = w.person(db, "u1")
        got = service.record(db, w.resolver, [decide("u1", "granted", channel="sms")],
                             tenant=w.tenant, actor=ACTOR)  # fmt: skip
        assert got[0].entry.profile == format_oneid(u1)
        assert got[0].entry.leaf_hash and len(got[0].entry.leaf_hash) == 64
        st = service.state(db, tenant=w.tenant, profile_id=u1, purpose="marketing",
                           channel="sms", now=NOW)  # fmt: skip
        assert st.status is Status.granted and not st.conflict
        # a channel it never spoke for is unknown; '*' covers all
        other = service.state(db, tenant=w.tenant, profile_id=u1, purpose="marketing",
                              channel="email", now=NOW)  # fmt: skip
        assert other.status is Status.unknown
        service.record(db, w.resolver, [decide("u1", "withdrawn", days_ago=0.5)],
                       tenant=w.tenant, actor=ACTOR)  # fmt: skip
        st = service.state(db, tenant=w.tenant, profile_id=u1, purpose="marketing",
                           channel="sms", now=NOW)  # fmt: skip
        assert st.status is Status.withdrawn
        # an older decision arriving late does not override a newer one
        service.record(db, w.resolver, [decide("u1", "granted", channel="sms", days_ago=3)],
                       tenant=w.tenant, actor=ACTOR)  # fmt: skip
        st = service.state(db, tenant=w.tenant, profile_id=u1, purpose="marketing",
                           channel="sms", now=NOW)  # fmt: skip
        assert st.status is Status.withdrawn
        assert [e.status for e in service.history(db, tenant=w.tenant, profile_id=u1)] == [
            "withdrawn",
            "granted",
            "granted",
        ]
        granted = enforce.granted(db, tenant=w.tenant, purpose="default.marketing",
                                  channel="sms", now=NOW)  # fmt: skip
        assert u1 not in granted


def test_separate_consent_and_validation(world: World) -> None:  # noqa: F811
    w = world
    SCOPE["scope"] = w.sources["mp"][0]
    w.send("mp", [identify("u1", "i1")])
    with w.engine.connect() as db:
        with pytest.raises(ValidationFailed, match="separate consent"):
            service.record(db, w.resolver, [decide("u1", "granted", purpose="ads_targeting")],
                           tenant=w.tenant, actor=ACTOR)  # fmt: skip
        with pytest.raises(ValidationFailed, match="channel 'fax' is unknown"):
            service.record(db, w.resolver, [decide("u1", "granted", channel="fax")],
                           tenant=w.tenant, actor=ACTOR)  # fmt: skip
        with pytest.raises(NotFound, match="no purpose 'spam'"):
            service.record(db, w.resolver, [decide("u1", "granted", purpose="spam")],
                           tenant=w.tenant, actor=ACTOR)  # fmt: skip
        service.record(db, w.resolver,
                       [decide("u1", "granted", purpose="ads_targeting", separate=True)],
                       tenant=w.tenant, actor=ACTOR)  # fmt: skip
        u1 = w.person(db, "u1")
        st = service.state(db, tenant=w.tenant, profile_id=u1, purpose="ads_targeting",
                           channel="ads", now=NOW)  # fmt: skip
        assert st.status is Status.granted
        p = service.create_purpose(
            db, PurposeCreate(key="survey", name_zh="调研", name_en="Survey", valid_days=30),
            tenant=w.tenant, actor=ACTOR)  # fmt: skip
        service.record(db, w.resolver, [decide("u1", "granted", purpose=p.id, days_ago=40)],
                       tenant=w.tenant, actor=ACTOR)  # fmt: skip
        st = service.state(db, tenant=w.tenant, profile_id=u1, purpose="survey", channel="sms",
                           now=NOW)  # fmt: skip
        assert st.status is Status.expired


def test_guardian_gate(world: World) -> None:  # noqa: F811
    w = world
    SCOPE["scope"] = w.sources["mp"][0]
    w.send("mp", [identify("kid", "i1", birthday=f"{NOW.year - 12}-01-01")])
    with w.engine.connect() as db:
        service.set_settings(db, Settings(guardian_under=14), tenant=w.tenant, actor=ACTOR)
        with pytest.raises(ValidationFailed, match="only a guardian may consent"):
            service.record(db, w.resolver, [decide("kid", "granted")], tenant=w.tenant,
                           actor=ACTOR)  # fmt: skip
        service.record(db, w.resolver, [decide("kid", "granted", actor="guardian")],
                       tenant=w.tenant, actor=ACTOR)  # fmt: skip
        service.record(db, w.resolver, [decide("kid", "withdrawn", days_ago=0)],
                       tenant=w.tenant, actor=ACTOR)  # fmt: skip


def test_every_entry_is_a_leaf_of_the_tenants_merkle_log(world: World) -> None:  # noqa: F811
    """Consent history is tamper-evident: each entry's leaf is in the log, provably."""
    w = world
    SCOPE["scope"] = w.sources["mp"][0]
    w.send("mp", [identify("u1", "i1")])
    with w.engine.connect() as db:
        made = service.record(db, w.resolver, [decide("u1", "granted"), decide("u1", "withdrawn")],
                              tenant=w.tenant, actor=ACTOR)  # fmt: skip
        size = merkle_log.size(db, w.tenant)
        assert size == 2
        root = merkle_log.root(db, w.tenant, size)
        for r in made:
            [leaf] = log.find_leaves(db, w.tenant, f"consent:{r.entry.seq}")
            assert leaf.leaf_hash.hex() == r.entry.leaf_hash
            proof = merkle_log.inclusion_proof(db, w.tenant, leaf.index, size)
            merkle.verify_inclusion(leaf.leaf_hash, leaf.index, size, proof, root)  # raises
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(bytes(32), 0, size, proof, root)
