"""Tags computed on a real database file, from events sent through ingest and resolved
into people: values, incremental runs, merges, history, expert SQL, templates, cycles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from quanyu.engine import Session, Statement
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import Conflict
from quanyu.identity.secrets import load_master_key
from quanyu.identity.service import Resolver
from quanyu.ingest.normalize import normalize
from quanyu.ingest.writer import Chunk, write_chunks
from quanyu.tags import service
from quanyu.tags.models import TagCreate, TagUpdate
from quanyu.tags.rules import RuleError
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import BrandCreate, SourceCreate, TenantCreate

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
ACTOR = "test"


@dataclass
class World:
    engine: DuckDBEngine
    resolver: Resolver
    tenant: str
    brands: dict[str, str]
    sources: dict[str, tuple[str, str | None]]
    other: str

    def send(self, source: str, messages: list[dict[str, Any]], tenant: str | None = None) -> None:
        source_id, brand_id = self.sources[source]
        items = [json.dumps(m).encode() for m in messages]
        norm = normalize(items, received_at=NOW)
        assert not norm.rejects, norm.rejects
        chunk = Chunk.normalized(
            norm,
            tenant_id=tenant or self.tenant,
            source_id=source_id,
            brand_id=brand_id,
            received_at=NOW.replace(tzinfo=None),
        )
        write_chunks(self.engine, [chunk])
        self.resolver.catch_up()

    def person(self, db: Session, user_id: str) -> int:
        row = db.execute(
            Statement(
                "t.person",
                "SELECT DISTINCT profile_id FROM id_nodes WHERE tenant_id = ?"
                " AND id_type = 'user_id' AND value = ?",
            ),
            [self.tenant, user_id],
        )
        assert len(row) == 1, row
        return int(row[0][0])


def order(user: str, amount: float, days_ago: float, n: str, **props: Any) -> dict[str, Any]:
    at = (NOW - timedelta(days=days_ago)).isoformat()
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "messageId": n,
        "timestamp": at,
        "properties": {"revenue": amount, **props},
    }


def identify(user: str, n: str, days_ago: float = 50, **traits: Any) -> dict[str, Any]:
    at = (NOW - timedelta(days=days_ago)).isoformat()
    return {"type": "identify", "userId": user, "messageId": n, "timestamp": at, "traits": traits}


@pytest.fixture
def world(engine: DuckDBEngine, tmp_path: Path) -> Iterator[World]:
    with engine.connect() as db:
        t = tenancy.create_tenant(db, TenantCreate(name="Kao"), actor=ACTOR).id
        other = tenancy.create_tenant(db, TenantCreate(name="Other"), actor=ACTOR).id
        brands = {
            n: tenancy.create_brand(db, BrandCreate(name=n), tenant=t, actor=ACTOR).id
            for n in ("biore", "merries")
        }
        sources = {}
        for name, kind, brand in (("mp", "mini_program", "biore"), ("pos", "pos", "merries")):
            s = tenancy.create_source(
                db,
                SourceCreate(name=name, kind=kind, brand_id=brands[brand]),
                tenant=t,
                actor=ACTOR,
            )
            sources[name] = (s.id, brands[brand])
        s = tenancy.create_source(db, SourceCreate(name="x", kind="pos"), tenant=other, actor=ACTOR)
        sources["other"] = (s.id, None)
    resolver = Resolver(engine, load_master_key(tmp_path))
    # the resolver resolves events up to its clock; the events are in the past of NOW
    yield World(engine, resolver, t, brands, sources, other)


def values(db: Session, tenant: str, key: str) -> dict[int, str]:
    rows = db.execute(
        Statement(
            "t.values",
            "SELECT profile_id, value FROM tag_history WHERE tenant_id = ?"
            " AND tag_key = ? AND valid_to IS NULL",
        ),
        [tenant, key],
    )
    return {int(p): v for p, v in rows}


def tag(key: str, rule: str, value_type: str = "boolean", **kw: Any) -> TagCreate:
    return TagCreate(
        key=key, name_zh=key, name_en=key, rule=rule, value_type=value_type, status="live", **kw
    )


def test_tags_follow_events_merges_and_keep_history(world: World) -> None:
    w = world
    w.send(
        "mp",
        [
            identify("u1", "i1", city="上海", tier="gold"),
            identify("u2", "i2", city="杭州"),
            order("u1", 120, 10, "o1"),
            order("u1", 80, 40, "o2"),
            order("u2", 500, 200, "o3"),
        ],
    )
    w.send("pos", [order("u3", 60, 5, "o4", category="diapers")])
    w.send("other", [order("u1", 999, 1, "x1")], tenant=w.other)  # another tenant's u1
    with w.engine.connect() as db:
        service.create_tag(
            db,
            tag("buyer2", 'count(event = "Order Completed", within 90d) >= 2'),
            tenant=w.tenant,
            actor=ACTOR,
        )
        service.create_tag(
            db,
            tag("spend", 'sum(amount, event = "Order Completed")', "number"),
            tenant=w.tenant,
            actor=ACTOR,
        )
        service.create_tag(
            db,
            tag("sh_buyer", 'tag("buyer2") and traits.city = "上海"'),
            tenant=w.tenant,
            actor=ACTOR,
        )
        run = service.compute_tags(db, tenant=w.tenant, now=NOW)
        assert run.status == "done" and run.mode == "full"
        u1, u2, u3 = (w.person(db, k) for k in ("u1", "u2", "u3"))
        assert values(db, w.tenant, "buyer2") == {u1: "true"}
        assert values(db, w.tenant, "spend") == {u1: "200", u2: "500", u3: "60"}
        assert values(db, w.tenant, "sh_buyer") == {u1: "true"}  # a later layer sees buyer2

    # new events for u2 only: an incremental run recomputes u2 and closes its old spend
    w.send("mp", [order("u2", 1, 3, "o5"), order("u2", 2, 2, "o6")])
    with w.engine.connect() as db:
        run = service.compute_tags(db, tenant=w.tenant, incremental=True, now=NOW)
        assert run.mode == "incremental" and run.profiles == 1
        assert values(db, w.tenant, "buyer2") == {u1: "true", u2: "true"}
        assert values(db, w.tenant, "spend")[u2] == "503"
        history = service.profile_tags(db, tenant=w.tenant, profile_id=u2)
        spend = [(h.value, h.valid_to is None) for h in history if h.key == "spend"]
        assert sorted(spend) == [("500", False), ("503", True)]

    # u3 turns out to be u1 (same phone): after the merge the survivor holds the sum and
    # the absorbed person's values are closed
    w.send("mp", [identify("u1", "i3", days_ago=1, phone="13812345678")])
    w.send("pos", [identify("u3", "i4", days_ago=1, phone="13812345678")])
    with w.engine.connect() as db:
        survivor = w.person(db, "u1")
        assert w.person(db, "u3") == survivor
        service.compute_tags(db, tenant=w.tenant, incremental=True, now=NOW)
        spend = values(db, w.tenant, "spend")
        assert spend[survivor] == "260"
        assert set(spend) == {survivor, u2}
        # how many people had each spend value at two moments
        points = service.history(
            db, tenant=w.tenant, key="spend", times=[datetime(2000, 1, 1), datetime(2100, 1, 1)]
        )
        assert points[0].counts == []
        assert sum(c.people for c in points[1].counts) == 2


def test_expert_sql_templates_and_cycles(world: World) -> None:
    w = world
    w.send(
        "mp",
        [
            identify("u1", "i1", phone="13912345678"),
            order("u1", 3000, 10, "o1", category="skin"),
            order("u1", 2500, 20, "o2"),
        ],
    )
    w.send(
        "pos",
        [
            identify("u1", "i2", phone="13912345678"),
            order("u1", 100, 15, "o3", category="skin"),
            order("u2", 50, 400, "o4"),
        ],
    )
    with w.engine.connect() as db:
        made = []
        for template in (
            "rfm",
            "lifecycle",
            "cross_brand_buyer",
            "channel_preference",
            "favourite_category",
            "high_value_member",
        ):
            made += service.add_template(db, template, tenant=w.tenant, actor=ACTOR)
        assert {c.id for c in service.list_categories(db, tenant=w.tenant)} >= {
            "value",
            "lifecycle",
        }
        service.compute_tags(db, tenant=w.tenant, now=NOW)
        u1, u2 = w.person(db, "u1"), w.person(db, "u2")
        assert values(db, w.tenant, "rfm_r") == {u1: "5", u2: "1"}
        assert values(db, w.tenant, "rfm_segment") == {u1: "important_value", u2: "general_recall"}
        assert values(db, w.tenant, "lifecycle") == {u1: "new", u2: "churned"}
        assert values(db, w.tenant, "cross_brand_buyer") == {u1: "true"}
        assert values(db, w.tenant, "channel_preference")[u1] == "mini_program"
        assert values(db, w.tenant, "favourite_category") == {u1: "skin"}
        assert values(db, w.tenant, "high_value_member") == {}  # nobody has a member id

        service.create_tag(db, tag("a", 'tag("rfm_r") >= 3'), tenant=w.tenant, actor=ACTOR)
        with pytest.raises(Conflict, match="cycle: rfm_r → a → rfm_r|cycle: a → rfm_r → a"):
            service.update_tag(
                db,
                "rfm_r",
                TagUpdate(rule='case when tag("a") then 5 end'),
                tenant=w.tenant,
                actor=ACTOR,
            )
        with pytest.raises(RuleError, match="does not exist"):
            service.create_tag(db, tag("b", 'tag("nope")'), tenant=w.tenant, actor=ACTOR)
        with pytest.raises(RuleError, match="line 1, column"):
            service.create_tag(db, tag("c", "count(event = ) >= 2"), tenant=w.tenant, actor=ACTOR)
        expert = TagCreate(
            key="big",
            name_zh="big",
            name_en="big",
            status="live",
            sql="SELECT profile_id, sum(amount) > 1000 FROM events GROUP BY 1",
        )
        service.create_tag(db, expert, tenant=w.tenant, actor=ACTOR)
        with pytest.raises(RuleError, match="only read|must be one SELECT"):
            bad = expert.model_copy(update={"key": "bad", "sql": "DELETE FROM events"})
            service.create_tag(db, bad, tenant=w.tenant, actor=ACTOR)
        service.compute_tags(db, tenant=w.tenant, keys=["big"], now=NOW)
        assert values(db, w.tenant, "big") == {u1: "true"}
        # the query's now() is the computation's clock, as for rule tags
        recent = expert.model_copy(update={"key": "recent", "sql": "SELECT profile_id,"
                                           " max(ts) >= now() - INTERVAL 12 DAY FROM events"
                                           " GROUP BY 1"})  # fmt: skip
        service.create_tag(db, recent, tenant=w.tenant, actor=ACTOR)
        service.compute_tags(db, tenant=w.tenant, keys=["recent"], now=NOW)
        assert values(db, w.tenant, "recent") == {u1: "true"}  # ordered 10 days before NOW
        service.compute_tags(db, tenant=w.tenant, keys=["recent"], now=NOW + timedelta(days=5))
        assert values(db, w.tenant, "recent") == {}
