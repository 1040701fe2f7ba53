"""The resolver on a real database file: events in, people out, merges, limits and splits."""

from __future__ import annotations

import dataclasses
import json
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from quanyu.config import Settings
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.identity.secrets import load_master_key
from quanyu.identity.service import Resolver
from quanyu.identity.types import IdentityRules
from quanyu.ingest.normalize import normalize
from quanyu.ingest.writer import Chunk, write_chunks
from quanyu.store import open_store

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
TENANT = "ten_a"


def send(
    engine: DuckDBEngine,
    messages: list[dict[str, Any]],
    *,
    source: str = "src_mp",
    brand: str | None = "brd_lumi",
    tenant: str = TENANT,
) -> None:
    items = [
        json.dumps({"type": "identify", "messageId": f"m{random.random()}", **m}).encode()
        for m in messages
    ]
    norm = normalize(items, received_at=NOW)
    assert not norm.rejects, norm.rejects
    write_chunks(
        engine,
        [
            Chunk.normalized(
                norm,
                tenant_id=tenant,
                source_id=source,
                brand_id=brand,
                received_at=NOW.replace(tzinfo=None),
            )
        ],
    )


def resolver(engine: DuckDBEngine, tmp_path: Path) -> Resolver:
    return Resolver(engine, load_master_key(tmp_path))


def people(engine: DuckDBEngine, tenant: str = TENANT) -> dict[str, int]:
    """Masked identifier → profile number."""
    with engine.connect() as db:
        rows = db.raw(  # type: ignore[attr-defined]
            "SELECT id_type || '=' || masked, profile_id FROM id_nodes WHERE tenant_id = ?",
            [tenant],
        )
    return {k: int(v) for k, v in rows}


def test_events_become_people_and_merge_across_sources(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    r = resolver(engine, tmp_path)
    send(engine, [{"anonymousId": "a1", "traits": {"unionid": "U1", "phone": "13812345678"}}])
    send(
        engine,
        [{"userId": "pos-7", "traits": {"phone": "+86 138-1234-5678"}}],
        source="src_pos",
    )
    send(engine, [{"anonymousId": "a2", "traits": {"unionid": "U2"}}])
    report = r.catch_up()
    assert report.events == 3
    p = people(engine)
    assert p["user_id=pos-7"] == p["unionid=U1"] == p["anonymous_id=a1"]
    assert p["unionid=U2"] != p["unionid=U1"]
    # the phone is stored masked and hashed, never in the clear
    assert "phone=+86 138****5678" in p
    with engine.connect() as db:
        keys = db.raw("SELECT key, value FROM id_nodes WHERE id_type = 'phone'")  # type: ignore[attr-defined]
    assert keys and all("13812345678" not in k and v is None for k, v in keys)
    # nothing left to do: a second run resolves nothing
    assert r.catch_up().events == 0


def test_a_shared_tablet_keeps_two_people_and_records_the_conflict(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    r = resolver(engine, tmp_path)
    send(engine, [{"userId": "alice", "context": {"device": {"id": "tablet-1"}}}])
    send(engine, [{"userId": "bob", "context": {"device": {"id": "tablet-1"}}}])
    report = r.catch_up()
    assert report.conflicts == 1
    p = people(engine)
    assert p["user_id=alice"] != p["user_id=bob"]
    with engine.connect() as db:
        refused = db.raw("SELECT bucket FROM id_edges WHERE status = 'refused'")  # type: ignore[attr-defined]
    assert refused == [("user_id:src_mp",)]


def test_member_ids_stay_in_their_brand_and_unionid_crosses_apps(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    r = resolver(engine, tmp_path)
    send(engine, [{"anonymousId": "x", "traits": {"member_id": "M1"}}], brand="brd_lumi")
    send(engine, [{"anonymousId": "y", "traits": {"member_id": "M1"}}], brand="brd_petal")
    send(
        engine,
        [
            {
                "anonymousId": "z",
                "traits": {"openid": "o1", "unionid": "U9"},
                "context": {"app": {"id": "wx_app_a"}},
            }
        ],
    )
    send(
        engine,
        [
            {
                "anonymousId": "w",
                "traits": {"openid": "o1", "unionid": "U9"},
                "context": {"app": {"id": "wx_app_b"}},
            }
        ],
    )
    r.catch_up()
    p = people(engine)
    # the same member number in two brands is two people
    with engine.connect() as db:
        members = db.raw(  # type: ignore[attr-defined]
            "SELECT scope, profile_id FROM id_nodes WHERE id_type = 'member_id' ORDER BY scope"
        )
    assert [m[0] for m in members] == ["brd_lumi", "brd_petal"]
    assert members[0][1] != members[1][1]
    # one openid in two apps is two identifiers; the unionid joins them
    with engine.connect() as db:
        apps = db.raw("SELECT scope FROM id_nodes WHERE id_type = 'openid' ORDER BY 1")  # type: ignore[attr-defined]
    assert apps == [("wx_app_a",), ("wx_app_b",)]
    assert p["anonymous_id=z"] == p["anonymous_id=w"]


def test_full_rebuild_equals_incremental(engine: DuckDBEngine, tmp_path: Path) -> None:
    rng = random.Random(7)
    r = resolver(engine, tmp_path)
    for _ in range(20):
        batch = []
        for _ in range(25):
            traits: dict[str, Any] = {"unionid": f"U{rng.randrange(60)}"}
            if rng.random() < 0.5:
                traits["phone"] = f"1390000{rng.randrange(80):04d}"
            batch.append({"anonymousId": f"a{rng.randrange(200)}", "traits": traits})
        send(engine, batch)
        r.catch_up()
    before = people(engine)
    report = r.rebuild(TENANT)
    assert report.moved == 0
    assert people(engine) == before
    # and a fresh resolver (a restart) carries on from the store
    send(engine, [{"anonymousId": "a1", "traits": {"unionid": "U1"}}])
    assert Resolver(engine, load_master_key(tmp_path)).catch_up().events == 1


def test_unlinking_an_identifier_splits_the_person(engine: DuckDBEngine, tmp_path: Path) -> None:
    r = resolver(engine, tmp_path)
    send(engine, [{"userId": "alice", "traits": {"email": "shared@family.cn"}}])
    send(engine, [{"userId": "carol", "traits": {"email": "shared@family.cn"}}], source="src_pos")
    r.catch_up()
    p = people(engine)
    assert p["user_id=alice"] == p["user_id=carol"]
    person = p["user_id=alice"]
    with engine.connect() as db:
        node = db.raw("SELECT node_id FROM id_nodes WHERE id_type = 'email'")[0][0]  # type: ignore[attr-defined]
    pieces = r.unlink(TENANT, int(node), actor="ops@test", reason="a family e-mail")
    after = people(engine)
    assert after["user_id=alice"] != after["user_id=carol"]
    assert person in pieces and len(pieces) == 3
    # the smallest node's piece keeps the number
    assert after["user_id=alice"] == person
    # events follow their identifiers: carol's event now belongs to carol's person
    with engine.connect() as db:
        owners = dict(
            db.raw(  # type: ignore[attr-defined]
                "SELECT e.user_id, n.profile_id FROM events e JOIN event_nodes x"
                " ON x.message_id = e.message_id AND x.source_id = e.source_id"
                " JOIN id_nodes n ON n.node_id = x.node_id"
            )
        )
    assert owners == {"alice": after["user_id=alice"], "carol": after["user_id=carol"]}
    with engine.connect() as db:
        kinds = db.raw("SELECT DISTINCT kind, actor FROM profile_changes")  # type: ignore[attr-defined]
    assert ("split", "ops@test") in kinds
    # the history's numbering is saved with it: a restart goes on after the last change
    with engine.connect() as db:
        ((last, saved),) = db.raw(  # type: ignore[attr-defined]
            "SELECT (SELECT max(change_id) FROM profile_changes), next_change FROM identity_state"
        )
    assert saved == last + 1
    # the same link arriving again does not undo the split
    send(engine, [{"userId": "carol", "traits": {"email": "shared@family.cn"}}], source="src_pos")
    r.catch_up()
    assert people(engine)["user_id=carol"] != people(engine)["user_id=alice"]
    # and a full rebuild agrees
    r.rebuild(TENANT)
    assert people(engine) == people(engine) and people(engine)["user_id=carol"] != person


@settings(max_examples=15, deadline=None)
@given(
    events=st.lists(
        st.lists(
            st.tuples(st.sampled_from(["device_id", "crm_no"]), st.integers(0, 12)),
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=30,
    ),
    seed=st.integers(0, 1000),
)
def test_arrival_order_does_not_change_the_people_when_no_limit_applies(
    events: list[list[tuple[str, int]]], seed: int
) -> None:
    """Unlimited identifier types: any order of the same events gives the same partition."""

    def partition(order: list[list[tuple[str, int]]]) -> set[frozenset[str]]:
        with tempfile.TemporaryDirectory() as tmp:
            engine = open_store(Settings(data_dir=Path(tmp)))
            try:
                for ids in order:
                    external = [{"type": t, "id": f"v{v}", "collection": "users"} for t, v in ids]
                    message = {"anonymousId": f"a{random.random()}"}
                    send(engine, [{**message, "context": {"externalIds": external}}])
                Resolver(engine, load_master_key(Path(tmp))).catch_up()
                groups: dict[int, set[str]] = {}
                for k, p in people(engine).items():
                    if not k.startswith("anonymous_id="):
                        groups.setdefault(p, set()).add(k)
                return {frozenset(v) for v in groups.values()}
            finally:
                engine.close()

    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    assert partition(events) == partition(shuffled)


def test_a_limit_within_a_time_window_lets_an_old_identifier_go(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    """One phone per person within 30 days: a number unused for a year is no obstacle."""
    r = resolver(engine, tmp_path)
    rules = IdentityRules.default()
    phone = dataclasses.replace(rules.get("phone"), limit=1, limit_window_days=30)
    with engine.connect() as db:
        r.set_rules(db, TENANT, rules.with_type(phone))
    send(engine, [{"userId": "u1", "traits": {"phone": "13900000001"},
                   "timestamp": "2025-01-01T00:00:00Z"}])  # fmt: skip
    send(engine, [{"userId": "u2", "traits": {"phone": "13900000002"},
                   "timestamp": "2025-01-02T00:00:00Z"}])  # fmt: skip
    # a year later u1 uses a new number; and, a day after u2's, u2's number again for u3
    send(engine, [{"userId": "u1", "traits": {"phone": "13900000003"},
                   "timestamp": "2026-01-10T00:00:00Z"}])  # fmt: skip
    send(engine, [{"anonymousId": "dev-9", "traits": {"phone": "13900000002"},
                   "timestamp": "2025-01-03T00:00:00Z"},
                  {"anonymousId": "dev-9", "traits": {"phone": "13900000004"},
                   "timestamp": "2025-01-03T00:00:01Z"}])  # fmt: skip
    report = r.catch_up()
    p = people(engine)
    assert p["phone=+86 139****0001"] == p["phone=+86 139****0003"] == p["user_id=u1"]
    # two phones within a day of each other: the second link is refused
    assert p["phone=+86 139****0004"] != p["phone=+86 139****0002"]
    assert report.conflicts == 1
    before = people(engine)
    r.rebuild(TENANT)
    assert people(engine) == before


def test_identifiers_met_before_resolve_from_memory_as_from_scratch(
    engine: DuckDBEngine, tmp_path: Path, monkeypatch: Any
) -> None:
    """A returning identifier takes its node from the graph's memory of raw values; the
    people come out the same as when every batch works every identifier out again."""
    from quanyu.identity import graph

    def stream(target: DuckDBEngine, r: Resolver) -> None:
        rng = random.Random(11)
        random.seed(11)  # send's message ids: the same stream twice, in the same order
        for _ in range(12):
            batch = []
            for _ in range(30):
                n = rng.randrange(50)
                phone = rng.choice([f"1390000{n:04d}", f"+86 139-0000-{n:04d}", "12345"])
                traits: dict[str, Any] = {"unionid": f"U{rng.randrange(40)}", "phone": phone}
                batch.append({"anonymousId": f"a{rng.randrange(120)}", "traits": traits})
            send(target, batch)
            r.catch_up()

    remembering = resolver(engine, tmp_path)
    stream(engine, remembering)
    memory = remembering._graphs[TENANT].raw_nodes
    assert graph._INVALID in memory.values()  # "12345" is refused once, then from memory
    assert sum(v >= 0 for v in memory.values()) > 100

    scratch = open_store(Settings(data_dir=tmp_path / "scratch"))
    monkeypatch.setattr(graph, "_remember", lambda *a: None)
    forgetting = resolver(scratch, tmp_path)
    stream(scratch, forgetting)
    assert forgetting._graphs[TENANT].raw_nodes == {}
    assert people(engine) == people(scratch)
    with engine.connect() as a, scratch.connect() as b:
        q = "SELECT count(*), count(DISTINCT node_id) FROM event_nodes"
        assert a.raw(q) == b.raw(q)  # type: ignore[attr-defined]
    scratch.close()


def test_status_counts_the_committed_events_not_resolved_yet(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    from quanyu.identity import admin

    r = resolver(engine, tmp_path)
    with engine.connect() as db:
        empty = admin.status(db, tenant=TENANT)
    assert (empty.pending_events, empty.pending_upto, empty.lag_seconds) == (0, None, 0.0)
    send(engine, [{"anonymousId": "a1", "traits": {"unionid": "U1"}}])
    send(engine, [{"anonymousId": f"a{i}"} for i in range(2, 5)])
    send(engine, [{"anonymousId": "b1"}], tenant="ten_b")  # another tenant's: not counted
    with engine.connect() as db:
        behind = admin.status(db, tenant=TENANT)
    assert behind.resolved_seq == 0 and behind.pending_events == 4
    assert behind.pending_upto == 2  # the two commits of this tenant; the third is ten_b's
    assert behind.oldest_pending_at == NOW.replace(tzinfo=None)
    assert behind.lag_seconds > 0  # NOW is in the past: the events have waited since
    r.catch_up(TENANT)
    with engine.connect() as db:
        done = admin.status(db, tenant=TENANT)
        other = admin.status(db, tenant="ten_b")
    assert (done.resolved_seq, done.pending_events, done.lag_seconds) == (2, 0, 0.0)
    assert done.oldest_pending_at is None
    assert (other.pending_events, other.pending_upto) == (1, 3)


def test_commits_behind_counts_announced_commits_until_a_background_run_ends(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    r = resolver(engine, tmp_path)
    send(engine, [{"anonymousId": "g1", "traits": {"unionid": "G1"}}])
    send(engine, [{"anonymousId": "g2"}])
    r.notify(1)
    r.notify(2)
    assert r.commits_behind == 2  # no run yet
    r.start()
    try:
        deadline = time.monotonic() + 10
        while r.commits_behind:
            assert time.monotonic() < deadline, "the background run did not catch up"
            time.sleep(0.02)
    finally:
        r.stop()
    from quanyu.identity import admin

    with engine.connect() as db:
        assert admin.status(db, tenant=TENANT).pending_events == 0
    r.notify(3)  # a commit announced after the run: behind again until the next one
    assert r.commits_behind == 1
