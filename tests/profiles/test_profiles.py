"""Profiles on a real database file: identities, brand views, basics, timeline, history, search.

Rows go straight into the identity tables, as the resolver would write them, so
these tests pin down the read side whatever the resolver does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from quanyu.engine import Session, Statement
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import NotFound, ValidationFailed
from quanyu.profiles import service
from quanyu.profiles import sql as q
from quanyu.profiles.survivorship import TraitRule, TraitRules

T0 = datetime(2026, 3, 1, 9, 0)
SOURCES = [  # id, tenant, brand, kind
    ("s_mp", "t1", "b1", "mini_program"),
    ("s_pos", "t1", "b1", "pos"),
    ("s_tm", "t1", "b2", "tmall"),
    ("s_oa", "t1", None, "official_account"),
    ("s_x", "t2", "bx", "pos"),
]
NODES = [  # tenant, node, type, scope, value (None: PII), masked, profile, source, first seen
    ("t1", 1, "user_id", "s_mp", "u-1", "u-1", 1, "s_mp", 0),
    ("t1", 2, "user_id", "s_mp", "u-2", "u-2", 2, "s_mp", 1),
    ("t1", 3, "phone", "", None, "+86 138****5678", 1, "s_pos", 2),
    ("t1", 4, "unionid", "", "un-abc", "un-abc", 1, "s_tm", 3),
    ("t1", 5, "openid", "wx1", "o-555", "o-555", 1, "s_mp", 4),
    ("t2", 1, "user_id", "s_x", "un-zzz", "un-zzz", 1, "s_x", 0),
    ("t2", 9, "user_id", "s_x", "u-9", "u-9", 9, "s_x", 0),
]


def run(db: Session, sql: str, params: list[Any]) -> None:
    db.execute(Statement("test.insert", sql), params)


D, H = timedelta(days=1), timedelta(hours=1)
IDENTIFY = [  # tenant, source, message id, node, time, traits
    ("t1", "s_mp", "id1", 1, T0, {"name": "Li Lei", "city": "Shanghai", "level": "gold",
                                  "phone": "13812345678", "birthday": "1990-01-01"}),
    ("t1", "s_tm", "id2", 4, T0 + D, {"city": "Hangzhou", "level": "silver",
                                      "birthday": "1991-02-02"}),
    ("t1", "s_pos", "id3", 3, T0 - D, {"birthday": "1990-05-05", "name": None}),
    ("t2", "s_x", "m1", 1, T0 + 5 * D, {"name": "Lina"}),
]  # fmt: skip
TRACK = [  # tenant, source, message id, node (-1: none), time, event, context
    ("t1", "s_oa", "tr1", 5, T0 + 2 * D, "Order", {"traits": {"city": "Suzhou"}}),
    ("t1", "s_mp", "other", 2, T0 + 3 * D, "Other", None),  # another person's
    ("t1", "s_mp", "nobody", -1, T0 + 3 * D, "View", None),
    ("t1", "s_mp", "sc1", 2, T0 + 4 * D, "Home", None),  # a screen call: "Home" is its name
    # ties in time on purpose, and the same message ids in two sources
    *(("t1", "s_mp" if i % 2 else "s_pos", f"m{i // 2}", 1 + 4 * (i % 3 == 0), T0 + i // 3 * H,
       "View", None) for i in range(20)),
]  # fmt: skip
CHANGES = [  # tenant, change id, hour, kind, profile, other profile
    ("t1", 0, 0, "merge", 1, 4),
    ("t1", 1, 2, "merge", 1, 5),
    ("t1", 2, 1, "split", 2, 7),
    ("t2", 0, 0, "merge", 1, 9),
]
SEPS = {True: (",", ":"), False: (", ", ": ")}
NODE_OF_EVENT = (
    "INSERT INTO event_nodes (tenant_id, source_id, message_id, node_id, resolved_at, commit_seq,"
    " timestamp, type, event, name, brand_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_EVENT = (
    "INSERT INTO events (tenant_id, source_id, brand_id, message_id, type, event, name, timestamp,"
    " received_at, traits, context, commit_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_NODE = (
    "INSERT INTO id_nodes (tenant_id, node_id, id_type, scope, key, value, masked, profile_id,"
    " source_id, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@pytest.fixture
def db(engine: DuckDBEngine) -> Iterator[Session]:
    with engine.connect() as db:
        for b, t in (("b1", "t1"), ("b2", "t1"), ("bx", "t2")):
            run(db, "INSERT INTO brands VALUES (?, ?, ?, ?)", [b, t, b.upper(), T0])
        brand_of = {}
        for sid, t, b, kind in SOURCES:
            brand_of[sid] = b
            run(db, "INSERT INTO sources (id, tenant_id, brand_id, name, kind, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", [sid, t, b, sid, kind, T0])  # fmt: skip
        for t, n, typ, scope, value, masked, p, src, day in NODES:
            key = f"{typ}:{scope}:{value or n}"
            run(db, INSERT_NODE, [t, n, typ, scope, key, value, masked, p, src, T0 + day * D])
        # id2 as compact JSON (as ingest writes it), the others with spaces (as imports may)
        rows = [(t, s, m, n, at, "identify", None, json.dumps(tr, separators=SEPS[m == "id2"]),
                 None) for t, s, m, n, at, tr in IDENTIFY]  # fmt: skip
        rows += [(t, s, m, n, at, "screen" if m == "sc1" else "track", ev, None,
                  json.dumps(ctx) if ctx else None)
                 for t, s, m, n, at, ev, ctx in TRACK]  # fmt: skip
        # commits of two events each, out of time order, as a writer groups arrivals
        for i, (t, s, m, n, at, typ, ev, traits, ctx) in enumerate(rows):
            ev, name, seq = (None, ev, 1 + i // 2) if typ == "screen" else (ev, None, 1 + i // 2)
            run(db, INSERT_EVENT, [t, s, brand_of[s], m, typ, ev, name, at, at, traits, ctx, seq])
            run(db, NODE_OF_EVENT, [t, s, m, n, at, seq, at, typ, ev, name, brand_of[s]])
            if (s, m) == ("s_mp", "m1"):  # also listed under a 2nd node of the same person
                run(db, NODE_OF_EVENT, [t, s, m, 3, at, seq, at, typ, ev, name, brand_of[s]])
        for t, cid, hour, kind, p, other in CHANGES:
            run(db, "INSERT INTO profile_changes (tenant_id, change_id, changed_at, kind,"
                " profile_id, other_profile_id, actor) VALUES (?, ?, ?, ?, ?, ?, 'resolver')",
                [t, cid, T0 + hour * H, kind, p, other])  # fmt: skip
        yield db


def test_identities_traits_and_pii_masking(db: Session) -> None:
    view = service.get_profile(db, tenant="t1", profile_id="P1")
    assert view.oneid == "P1" and view.profile_id == 1
    assert [(i.type, i.value) for i in view.identities] == [
        ("user_id", "u-1"),
        ("phone", "+86 138****5678"),
        ("unionid", "un-abc"),
        ("openid", "o-555"),
    ]
    assert view.identities[1].source_id == "s_pos"
    t = view.traits
    assert t["city"].value == "Suzhou" and t["city"].source_id == "s_oa"  # context.traits count
    assert t["name"].value == "Li Lei"  # a later null does not clear it
    assert t["phone"].value == "+86 138****5678"  # a PII trait is masked, never raw
    assert "13812345678" not in view.model_dump_json()
    assert view.brands == ["b1", "b2"]


def test_source_priority_rule_through_the_service(db: Session) -> None:
    rules = TraitRules(keys={"birthday": TraitRule("source_priority", ("pos", "mini_program"))})
    view = service.get_profile(db, tenant="t1", profile_id=1, trait_rules=rules)
    assert view.traits["birthday"].value == "1990-05-05"  # POS wins though it is the oldest
    assert view.traits["birthday"].rule == "source_priority"
    assert view.traits["city"].rule == "latest"


def test_brand_view_hides_other_brands_traits_and_shows_shared(db: Session) -> None:
    rules = TraitRules(brand_keys=("level",), shared_with_brands=("name",))
    group = service.get_profile(db, tenant="t1", profile_id=1, trait_rules=rules)
    assert "level" not in group.traits and "city" in group.traits
    assert {b: t["level"].value for b, t in group.brand_traits.items()} == {
        "b1": "gold",
        "b2": "silver",
    }
    b1 = service.get_profile(db, tenant="t1", profile_id=1, brand="b1", trait_rules=rules)
    assert b1.traits["level"].value == "gold" and b1.traits["name"].value == "Li Lei"
    assert "city" not in b1.traits and b1.brand_traits == {}  # not shared with brands
    b2 = service.get_profile(db, tenant="t1", profile_id=1, brand="b2", trait_rules=rules)
    assert b2.traits["level"].value == "silver"
    with pytest.raises(NotFound, match="brand 'bx'"):
        service.get_profile(db, tenant="t1", profile_id=1, brand="bx")  # another tenant's


def expected_events(db: Session) -> set[tuple[str, str]]:
    rows = db.execute(
        Statement(
            "test.mine",
            "SELECT DISTINCT en.source_id, en.message_id FROM event_nodes en"
            " JOIN id_nodes n ON n.tenant_id = en.tenant_id AND n.node_id = en.node_id"
            " WHERE en.tenant_id = 't1' AND n.profile_id = 1",
        ),
    )
    return {(s, m) for s, m in rows}


@pytest.mark.parametrize("limit", [1, 3, 7, 100])
def test_timeline_pages_every_event_once(db: Session, limit: int) -> None:
    seen: list[tuple[datetime, str, str]] = []
    cursor = None
    while True:
        page = service.timeline(db, tenant="t1", profile_id=1, cursor=cursor, limit=limit)
        assert len(page.items) <= limit
        seen += [(e.timestamp, e.message_id, e.source_id) for e in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    keys = [(s, m) for _, m, s in seen]
    assert len(keys) == len(set(keys)) == 24
    assert set(keys) == expected_events(db)
    assert ("s_mp", "other") not in keys and ("s_mp", "nobody") not in keys
    assert seen == sorted(seen, reverse=True)


def test_timeline_filters(db: Session) -> None:
    def ids(**kw: Any) -> set[str]:
        return {e.message_id for e in service.timeline(db, tenant="t1", profile_id=1, **kw).items}

    assert ids(type="identify") == {"id1", "id2", "id3"}
    assert ids(brand="b2") == {"id2"}
    assert ids(event="Order") == {"tr1"}
    assert ids(source="s_oa") == {"tr1"}
    with pytest.raises(ValidationFailed, match="cursor"):
        service.timeline(db, tenant="t1", profile_id=1, cursor="garbage")


def test_timeline_matches_screen_names_and_fetches_only_the_persons_events(db: Session) -> None:
    def ids(**kw: Any) -> list[str]:
        page = service.timeline(db, tenant="t1", profile_id=2, **kw)
        return [e.message_id for e in page.items]

    # "nobody" shares the commit, time and source of "other": the fetch must leave it out
    assert ids() == ["sc1", "other"]
    assert ids(event="Home") == ["sc1"] and ids(event="Other") == ["other"]
    assert ids(event="View") == [] and ids(type="screen") == ["sc1"]
    view = service.get_profile(db, tenant="t1", profile_id=2)
    last = view.basics.channels["mini_program"].last_event
    assert (last.message_id, last.type, last.name) == ("sc1", "screen", "Home")
    assert view.basics.by_type == {"screen": 1, "track": 1}
    assert view.basics.by_event == {"Other": 1}  # track event names only
    assert service.basics(db, tenant="t1", profile_id=2) == view.basics


def test_key_windows_cover_every_key_in_at_most_windows_ranges() -> None:
    commits = [1, 2, 3, 40, 41, 90, 7, 7, 500, 501, 502, 1000]
    times = [T0 + i * i * H for i in range(len(commits))]
    ids = [f"demo-{i}" for i in range(9)] + ["crm-1", "crm-2", "x"]
    binds = q.key_windows(commits, times, ids)
    assert len(binds) == 3 * 2 * q.WINDOWS
    kinds = [binds[k * 2 * q.WINDOWS : (k + 1) * 2 * q.WINDOWS] for k in range(3)]
    for values, flat, closed in ((commits, kinds[0], False), (times, kinds[1], False),
                                 (ids, kinds[2], True)):  # fmt: skip
        ranges = [(lo, hi) for lo, hi in zip(flat[::2], flat[1::2], strict=True) if lo is not None]
        assert len(ranges) == q.WINDOWS  # more distinct values than windows: all are used
        for v in values:
            assert sum(lo <= v and (v <= hi if closed else v < hi) for lo, hi in ranges) == 1
    # the widest gaps are cut: 1000 and 90 stand alone; crm and x ids apart from demo ones
    assert (1000, 1001) in zip(kinds[0][::2], kinds[0][1::2], strict=True)
    assert ("x", "x") in zip(kinds[2][::2], kinds[2][1::2], strict=True)
    one = q.key_windows([5], [T0], ["m"])
    assert one[:2] == [5, 6] and one[2 : 2 * q.WINDOWS] == [None] * (2 * q.WINDOWS - 2)


def test_basics(db: Session) -> None:
    b = service.get_profile(db, tenant="t1", profile_id=1).basics
    assert b.events == 24
    assert b.by_type == {"identify": 3, "track": 21}
    assert b.by_event == {"Order": 1, "View": 20}
    assert b.first_seen == T0 - timedelta(days=1) and b.last_seen == T0 + timedelta(days=2)
    assert set(b.brands) == {"b1", "b2"} and b.brands["b2"].events == 1
    assert b.brands["b1"].last_event.timestamp == T0 + timedelta(hours=6)
    assert b.channels["official_account"].last_event.message_id == "tr1"
    assert sum(a.events for a in b.channels.values()) == 24
    assert b.channels["pos"].first_at == T0 - timedelta(days=1)


def test_history_newest_first_and_paged(db: Session) -> None:
    page = service.history(db, tenant="t1", profile_id=1)
    assert [(c.change_id, c.other_oneid) for c in page.items] == [(1, "P5"), (0, "P4")]
    first = service.history(db, tenant="t1", profile_id=1, limit=1)
    rest = service.history(db, tenant="t1", profile_id=1, limit=1, cursor=first.next_cursor)
    assert [c.change_id for c in first.items + rest.items] == [1, 0] and rest.next_cursor is None
    assert [c.oneid for c in service.history(db, tenant="t1", profile_id="P5").items] == ["P1"]
    assert service.get_profile(db, tenant="t1", profile_id=1).history == page.items


def test_search_by_identifier_and_trait_prefix(db: Session) -> None:
    def found(**kw: Any) -> set[tuple[str, str, str]]:
        return {(h.oneid, h.matched, h.field) for h in service.search(db, tenant="t1", **kw).items}

    assert found(prefix="un-") == {("P1", "identifier", "unionid")}  # t2's un-zzz not visible
    assert found(prefix="u-", id_type="user_id") == {
        ("P1", "identifier", "user_id"),
        ("P2", "identifier", "user_id"),
    }
    assert found(prefix="+86", id_type="phone") == set()  # PII: hashed, no prefix match
    assert found(prefix="LI l") == {("P1", "trait", "name")}
    assert found(prefix="hang", trait="city") == {("P1", "trait", "city")}
    assert found(prefix="lin") == set()  # t2's trait
    assert found(prefix="138", trait=None) == set()  # PII traits are never searched
    with pytest.raises(ValidationFailed, match="PII"):
        service.search(db, tenant="t1", prefix="138", trait="phone")
    with pytest.raises(ValidationFailed, match="empty"):
        service.search(db, tenant="t1", prefix="  ")


def test_not_found_merged_and_tenant_isolation(db: Session) -> None:
    with pytest.raises(NotFound, match="P42 does not exist"):
        service.get_profile(db, tenant="t1", profile_id=42)
    with pytest.raises(NotFound, match="merged into P1"):
        service.get_profile(db, tenant="t1", profile_id="P5")
    with pytest.raises(NotFound):
        service.get_profile(db, tenant="t1", profile_id=9)  # exists in t2 only
    with pytest.raises(NotFound):
        service.timeline(db, tenant="t1", profile_id=9)
    other = service.get_profile(db, tenant="t2", profile_id=1)
    assert [i.value for i in other.identities] == ["un-zzz"]
    assert other.traits["name"].value == "Lina" and other.basics.events == 1
    assert [c.other_oneid for c in other.history] == ["P9"]


def test_oneid_format_and_parse() -> None:
    assert service.format_oneid(42) == "P42"
    assert [service.parse_oneid(x) for x in ("P42", "42", " p7 ", 3)] == [42, 42, 7, 3]
    for bad in ("", "Q1", "P-1", "P1.5", "P" + "9" * 20, -1):
        with pytest.raises(ValidationFailed, match="OneID"):
            service.parse_oneid(bad)
