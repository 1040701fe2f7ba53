"""Finding people from one search box and seeing them at a glance, on a real database file
with events written through ingest and resolved by the identity resolver."""

from __future__ import annotations

import pytest

from quanyu.errors import ValidationFailed
from quanyu.identity.models import format_oneid
from quanyu.profiles import finder, summary
from quanyu.profiles.service import get_profile
from tests.tags.test_compute import World, identify, order, world  # noqa: F401


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("P42", "oneid"),
        ("p7", "oneid"),
        ("li@example.cn", "email"),
        ("+86 138-1234-5678", "phone"),
        ("138 1234 5678", "phone"),
        ("(+86)13812345678", "phone"),
        ("+44 20 7946 0958", "phone"),
        ("1381234", "any"),  # too short for a phone without a country code: an id prefix
        ("LM10000034", "any"),
        ("oHnmGFCEjeEX", "any"),
        ("王", "any"),
        ("Li Lei", "any"),
    ],
)
def test_detect(text: str, kind: str) -> None:
    assert finder.detect(text) == kind


def _send_people(w: World) -> tuple[int, int]:
    w.send(
        "mp",
        [
            identify("u1", "i1", 30, name="王小明", city="上海", phone="13812345678"),
            identify("u1", "i2", 2, name="王小明", city="杭州", unionid="oUNION0001"),
            order("u1", 99.0, 1, "o1"),
            identify("u2", "i3", 5, name="Wang Li", city="北京", member_id="LM10000034"),
        ],
    )
    w.send("pos", [identify("p1", "i4", 1, phone="+86 138 1234 5678", email="x@y.cn")])
    with w.engine.connect() as db:
        return w.person(db, "u1"), w.person(db, "u2")


def test_find_a_phone_in_any_spelling_and_ids_names_and_oneids(world: World) -> None:  # noqa: F811
    w = world
    u1, u2 = _send_people(w)
    with w.engine.connect() as db:
        for typed in ("+86 138-1234-5678", "138 1234 5678", "0086 13812345678"):
            found = finder.find(db, w.resolver, tenant=w.tenant, text=typed)
            assert found.kind == "phone"
            assert [h.profile_id for h in found.hits] == [u1], typed
            assert found.hits[0].value == "+86 138****5678"  # masked, never the number
        assert finder.find(db, w.resolver, tenant=w.tenant, text="X@Y.CN").hits[0].profile_id == u1
        nobody = finder.find(db, w.resolver, tenant=w.tenant, text="+86 139 0000 0000")
        assert not nobody.hits and nobody.reason == "not_found" and nobody.note
        bad = finder.find(db, w.resolver, tenant=w.tenant, text="12", kind="phone")
        assert not bad.hits and bad.reason == "invalid"

        member = finder.find(db, w.resolver, tenant=w.tenant, text="LM1000")
        assert [(h.profile_id, h.field) for h in member.hits] == [(u2, "member_id")]
        union = finder.find(db, w.resolver, tenant=w.tenant, text="oUNION", kind="unionid")
        assert [h.profile_id for h in union.hits] == [u1]
        assert not finder.find(db, w.resolver, tenant=w.tenant, text="oUNION", kind="openid").hits
        named = finder.find(db, w.resolver, tenant=w.tenant, text="王", kind="name")
        assert {h.profile_id for h in named.hits} == {u1}
        latin = finder.find(db, w.resolver, tenant=w.tenant, text="wang l")
        assert [(h.profile_id, h.field) for h in latin.hits] == [(u2, "name")]
        city = finder.find(db, w.resolver, tenant=w.tenant, text="杭州")  # any trait value
        assert [(h.profile_id, h.field) for h in city.hits] == [(u1, "city")]

        oneid = finder.find(db, w.resolver, tenant=w.tenant, text=format_oneid(u2).lower())
        assert [h.oneid for h in oneid.hits] == [format_oneid(u2)]
        gone = finder.find(db, w.resolver, tenant=w.tenant, text="P999999")
        assert not gone.hits and gone.reason == "gone"
        none = finder.find(db, w.resolver, tenant=w.tenant, text="zz-nothing")
        assert not none.hits and none.reason == "no_prefix"
        # another tenant's people are never found
        assert not finder.find(db, w.resolver, tenant=w.other, text="138 1234 5678").hits
        assert not finder.find(db, w.resolver, tenant=w.other, text="LM1000").hits


def test_find_refuses_an_unknown_kind_and_empty_text(world: World) -> None:  # noqa: F811
    with world.engine.connect() as db, pytest.raises(ValidationFailed, match="unknown"):
        finder.find(db, world.resolver, tenant=world.tenant, text="x", kind="passport")
    with world.engine.connect() as db, pytest.raises(ValidationFailed, match="empty"):
        finder.find(db, world.resolver, tenant=world.tenant, text="  ")


def test_glance_names_brands_and_last_seen(world: World) -> None:  # noqa: F811
    w = world
    u1, u2 = _send_people(w)
    with w.engine.connect() as db:
        seen = summary.glance(db, tenant=w.tenant, profile_ids=[u1, u2, 999_999])
        assert set(seen) == {u1, u2}  # a number no one has is left out
        a, b = seen[u1], seen[u2]
        view = get_profile(db, tenant=w.tenant, profile_id=u1)
        # the newest identify call (the counter's) named no one: the one before did
        assert (a.name, a.city) == ("王小明", "杭州")
        assert a.events == view.basics.events == 4
        assert a.last_seen == view.basics.last_seen
        assert a.brands == sorted({w.brands["biore"], w.brands["merries"]})
        assert (b.name, b.city, b.events) == ("Wang Li", "北京", 1)
        assert b.brands == [w.brands["biore"]]
        assert summary.glance(db, tenant=w.other, profile_ids=[u1]) == {}
        with pytest.raises(ValueError, match="at most"):
            summary.glance(db, tenant=w.tenant, profile_ids=range(summary.MOST_PEOPLE + 1))


def test_sightings_say_where_each_identifier_was_seen(world: World) -> None:  # noqa: F811
    w = world
    u1, _ = _send_people(w)
    with w.engine.connect() as db:
        view = get_profile(db, tenant=w.tenant, profile_id=u1)
        seen = summary.sightings(db, tenant=w.tenant, profile_id=u1, identities=view.identities)
    by_type = {i.type: seen[i.node_id] for i in view.identities if i.type != "user_id"}
    mp, pos = w.sources["mp"][0], w.sources["pos"][0]
    assert set(seen) == {i.node_id for i in view.identities}
    phone = by_type["phone"]
    assert phone.sources[0] == mp and pos in phone.sources  # carried by both touchpoints
    assert phone.links >= 2  # to the member's user id and to the counter's
    assert by_type["email"].sources == [pos]
    assert sum(s.events for s in seen.values()) == view.basics.events  # each filed once
    for i in view.identities:
        s = seen[i.node_id]
        assert s.first_seen <= i.first_seen and s.first_seen <= s.last_seen
    assert max(s.last_seen for s in seen.values()) == view.basics.last_seen
