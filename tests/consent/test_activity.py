"""Consent changes counted per status since a time, per tenant."""

from __future__ import annotations

from datetime import timedelta

from quanyu.consent import activity, service
from quanyu.ids import utcnow
from tests.consent.test_ledger import SCOPE, decide
from tests.tags.test_compute import ACTOR, World, identify, world  # noqa: F401


def test_changes_since_count_what_was_recorded(world: World) -> None:  # noqa: F811
    w = world
    SCOPE["scope"] = w.sources["mp"][0]
    w.send("mp", [identify("u1", "i1"), identify("u2", "i2")])
    start = utcnow() - timedelta(seconds=1)
    with w.engine.connect() as db:
        assert activity.changes_since(db, tenant=w.tenant, since=start) == {}
        decisions = [decide("u1", "granted", channel="sms"), decide("u2", "granted")]
        service.record(db, w.resolver, decisions, tenant=w.tenant, actor=ACTOR)
        service.record(db, w.resolver, [decide("u1", "withdrawn", days_ago=0.5)],
                       tenant=w.tenant, actor=ACTOR)  # fmt: skip
        assert activity.changes_since(db, tenant=w.tenant, since=start) == {
            "granted": 2,
            "withdrawn": 1,
        }
        later = utcnow() + timedelta(seconds=1)
        assert activity.changes_since(db, tenant=w.tenant, since=later) == {}
        assert activity.changes_since(db, tenant=w.other, since=start) == {}
