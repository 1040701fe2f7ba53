"""The people count: one per OneID, however many identifiers each person has."""

from __future__ import annotations

from quanyu.profiles import population
from tests.tags.test_compute import World, identify, world  # noqa: F401


def test_people_are_counted_once_per_oneid(world: World) -> None:  # noqa: F811
    w = world
    with w.engine.connect() as db:
        assert population.count_people(db, tenant=w.tenant) == 0
    w.send("mp", [identify("u1", "i1"), identify("u2", "i2")])
    # a third person, and u1 again with an anonymous id: still one person for u1
    w.send(
        "mp",
        [
            {"type": "identify", "userId": "u3", "messageId": "i3", "traits": {}},
            {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "i4"},
        ],
    )
    with w.engine.connect() as db:
        assert population.count_people(db, tenant=w.tenant) == 3
        assert population.count_people(db, tenant=w.other) == 0
