"""The console's one-read view of a person's consent gives exactly the services' answers:
states and history, across channels, a merge in conflict, late decisions and another
tenant holding the same identifier."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quanyu.consent import ledger, service
from quanyu.consent.models import Decision, Status, Subject
from quanyu.consent.person_view import consent_of
from quanyu.engine import Session
from tests.tags.test_compute import ACTOR, NOW, World, identify, world  # noqa: F401


def _decide(unionid: str, status: str, channel: str = "*", days_ago: float = 1.0,
            purpose: str = "marketing") -> Decision:  # fmt: skip
    return Decision.model_validate({
        "subject": Subject(type="unionid", value=unionid), "purpose": purpose,
        "channel": channel, "status": status, "decided_at": NOW - timedelta(days=days_ago),
    })  # fmt: skip


def _same_as_the_services(db: Session, tenant: str, person: int) -> None:
    view = consent_of(db, tenant=tenant, profile_id=person, now=NOW)
    assert view.states == service.states(db, tenant=tenant, profile_id=person, now=NOW)
    assert view.history == service.history(db, tenant=tenant, profile_id=person)
    two = consent_of(db, tenant=tenant, profile_id=person, limit=2, now=NOW).history
    assert two == view.history[:2] and view.identifiers > 0


@pytest.mark.parametrize("by_key", [20, 0], ids=["services-by-key", "services-by-join"])
def test_the_view_matches_states_and_history(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    by_key: int,
) -> None:
    """With ``by_key`` 0 the services read through one join and the view by the key
    index: the two ways of reading a person's entries give the same answers."""
    monkeypatch.setattr(ledger, "_BY_KEY", by_key)
    w = world
    w.send("mp", [identify("u1", "i1", unionid="o6_a"), identify("u2", "i2", unionid="o6_b"),
                  identify("u3", "i3", unionid="o6_c")])  # fmt: skip
    w.send(
        "other",
        [
            identify(f"x{i}", f"j{i}", unionid=u)
            for i, u in enumerate(("o6_x", "o6_y", "o6_z", "o6_a"))
        ],
        tenant=w.other,
    )
    with w.engine.connect() as db:
        record = [_decide("o6_a", "granted", "sms", 5), _decide("o6_a", "withdrawn", "*", 2),
                  _decide("o6_a", "granted", "email", 3), _decide("o6_b", "granted", "sms", 4),
                  _decide("o6_a", "granted", "sms", 9)]  # a late, older grant  # fmt: skip
        service.record(db, w.resolver, record, tenant=w.tenant, actor=ACTOR)
        # the other tenant's word on the same unionid (its entry 4, as u2's is here) must
        # not leak into this tenant's view
        others = [_decide(u, "granted", "wechat", 0.5) for u in ("o6_x", "o6_y", "o6_z", "o6_a")]
        service.record(db, w.resolver, others, tenant=w.other, actor=ACTOR)
        u1, u3 = w.person(db, "u1"), w.person(db, "u3")
        _same_as_the_services(db, w.tenant, u1)
        _same_as_the_services(db, w.tenant, u3)  # nobody said anything: all unknown
        view = consent_of(db, tenant=w.tenant, profile_id=u1, now=NOW)
        assert len(view.history) == 4
        assert {s.channel for s in view.states} == {"*", "sms", "email"}
        assert not consent_of(db, tenant=w.tenant, profile_id=u3, now=NOW).history
        assert consent_of(db, tenant=w.tenant, profile_id=10**6, now=NOW).identifiers == 0

    # two accounts on two sources turn out to be one person (the same phone): the merged
    # person reads withdrawn on sms, in conflict
    w.send("mp", [identify("m1", "k1")])
    w.send("pos", [identify("m2", "k2")])
    with w.engine.connect() as db:
        for user, status in (("m1", "granted"), ("m2", "withdrawn")):
            said = Decision.model_validate({
                "subject": Subject(profile=f"P{w.person(db, user)}"), "purpose": "marketing",
                "channel": "sms", "status": status, "decided_at": NOW - timedelta(days=1),
            })  # fmt: skip
            service.record(db, w.resolver, [said], tenant=w.tenant, actor=ACTOR)
    w.send("mp", [identify("m1", "k3", days_ago=1, phone="13812345678")])
    w.send("pos", [identify("m2", "k4", days_ago=1, phone="13812345678")])
    with w.engine.connect() as db:
        merged = w.person(db, "m1")
        assert merged == w.person(db, "m2")
        _same_as_the_services(db, w.tenant, merged)
        view = consent_of(db, tenant=w.tenant, profile_id=merged, now=NOW)
        sms = next(s for s in view.states
                   if s.purpose_id == "default.marketing" and s.channel == "sms")  # fmt: skip
        assert sms.status is Status.withdrawn and sms.conflict and len(view.history) == 2
