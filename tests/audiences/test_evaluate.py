"""The audience evaluator (bitmap index + DuckDB for events) agrees with the compiled
per-person SQL on random worlds and rules, and answers indexed rules without SQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from pyroaring import BitMap

from quanyu.audiences.bitmaps import bitmap_of
from quanyu.audiences.evaluate import Evaluator
from quanyu.audiences.index import build
from quanyu.engine import Session, Statement
from quanyu.tags import rules as r
from quanyu.tags.query import events_query
from tests.tags.reference import Person
from tests.tags.test_compiled_agrees import (
    _PROPERTY,
    NOW,
    TAG_TYPES,
    conditions,
    db,  # noqa: F401 - the fixture
    fresh_world,
    persons,
    worlds,
)

TAGS_ROW = (
    "INSERT INTO tags (tenant_id, key, name_zh, name_en, description, owner, value_type, rule,"
    " refresh_seconds, status, created_at, updated_at) VALUES (?, ?, ?, ?, '', 'group', ?,"
    " 'true', 3600, 'live', ?, ?)"
)


def evaluator(db: Session, tenant: str, now: datetime = NOW) -> Evaluator:  # noqa: F811
    for key, value_type in TAG_TYPES.items():
        db.execute(Statement("t.tag", TAGS_ROW), [tenant, key, key, key, value_type, now, now])
    index = build(db, tenant=tenant, traits=["city", "age", "member"]).index

    def events(part: r.Node) -> BitMap:
        hits, empty = events_query(part, now=now, tag_types=TAG_TYPES)
        rows = db.arrow(Statement("t.ev", hits.sql()), hits.params(tenant))
        ids = rows.column("profile_id").to_numpy()
        found = bitmap_of(ids[rows.column("hit").to_numpy(zero_copy_only=False).astype(bool)])
        if db.execute(Statement("t.empty", empty.sql()))[0][0]:
            found |= index.universe - bitmap_of(ids)
        return found

    def general(part: r.Node) -> BitMap:
        return BitMap(persons(db, tenant, part, now=now))

    return Evaluator(index, dict(TAG_TYPES), events, general)


@_PROPERTY
@given(data=worlds(), rule=conditions(3))
def test_evaluator_agrees_with_compiled_sql(
    db: Session,  # noqa: F811
    data: tuple[list[Person], dict[str, str]],
    rule: r.Node,
) -> None:
    world, _ = data
    tenant = fresh_world(db, world)
    ev = evaluator(db, tenant)
    got = set(ev.run(rule))
    assert got == persons(db, tenant, rule, trait_rules={}), (rule, ev.plan)


@pytest.mark.parametrize(
    "rule",
    [
        r.And((r.TagRef("vip"), r.Cmp(">", r.TagRef("score"), r.Lit(5)))),
        r.Or((r.In(r.Trait("city"), ("上海", "杭州")), r.Not(r.HasIdentifier("openid", "wx_app")))),
        r.And((r.Cmp("=", r.ProfileSet("brand"), r.Lit("b1")), r.IsNull(r.Trait("age"), True))),
    ],
)
def test_indexed_rules_need_no_sql(db: Session, rule: r.Node) -> None:  # noqa: F811
    from hypothesis import find

    world, _ = find(worlds(), lambda d: len(d[0]) >= 4)
    tenant = fresh_world(db, world)
    ev = evaluator(db, tenant)
    assert set(ev.run(rule)) == persons(db, tenant, rule, trait_rules={})
    assert set(ev.plan) == {"index"}
