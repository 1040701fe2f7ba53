"""Bulk preparation: Arrow rows in, events and reasoned rejects out, as the tracking API rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanyu.config import Settings
from quanyu.engine import Session
from quanyu.errors import InvalidRequest
from quanyu.ingest import bulk
from quanyu.ingest.normalize import extract_identifiers
from quanyu.ingest.plan_models import PlanMode, PlannedEvent, TrackingPlanSpec
from quanyu.ingest.plans import CompiledPlan
from quanyu.ingest.writer import EVENT_SCHEMA
from quanyu.store import open_store
from quanyu.tenancy.models import Source, SourceKind

RECEIVED = datetime(2025, 6, 1, 12, 0, 0)
NOW = datetime(2025, 1, 1)
SRC = Source(
    id="src_a", tenant_id="ten_1", brand_id="br_a", name="POS", kind=SourceKind.pos, created_at=NOW
)
OTHER = Source(
    id="src_b", tenant_id="ten_1", brand_id=None, name="Web", kind=SourceKind.web, created_at=NOW
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    engine = open_store(Settings(data_dir=tmp_path_factory.mktemp("bulk")))
    with engine.connect() as session:
        yield session
    engine.close()


def text_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an all-text table, the way a CSV arrives."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    return pa.table({n: pa.array([_cell(r.get(n)) for r in rows], pa.string()) for n in names})


def _cell(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v)


def prep(db: Session, table: pa.Table, kind: bulk.Kind = "events") -> bulk.Prepared:
    return bulk.prepare(
        db,
        table,
        kind=kind,
        tenant="ten_1",
        source="src_a",
        sources=[SRC, OTHER],
        received_at=RECEIVED,
    )


def by_user(p: bulk.Prepared) -> dict[str | None, dict[str, Any]]:
    return {r["user_id"]: r for r in p.events.to_pylist()}


def test_valid_rows_become_events_in_the_table_layout(db: Session) -> None:
    p = prep(
        db,
        text_table(
            [
                {
                    "event": "Order Completed",
                    "userId": "u1",
                    "properties": {"total": 9.5},
                    "timestamp": "2024-03-01T08:00:00+08:00",
                    "messageId": "m1",
                },
                {
                    "type": "identify",
                    "userId": "u2",
                    "event": "ignored",
                    "traits": {"name": "Li"},
                    "timestamp": "2024-03-01 10:00:00",
                },
                {"type": "page", "anonymous_id": "a3", "name": "Home"},
            ]
        ),
    )
    assert p.events.schema == EVENT_SCHEMA
    assert (p.read, p.valid, p.rejected) == (3, 3, [])
    rows = by_user(p)
    order = rows["u1"]
    assert order["type"] == "track" and order["event"] == "Order Completed"
    assert order["message_id"] == "m1" and order["tenant_id"] == "ten_1"
    assert order["source_id"] == "src_a" and order["brand_id"] == "br_a"
    assert order["timestamp"] == datetime(2024, 3, 1, 0, 0)  # +08:00 applied
    assert order["original_timestamp"] == datetime(2024, 3, 1, 0, 0)
    assert json.loads(order["properties"]) == {"total": 9.5}
    assert order["context"] == "{}" and order["received_at"] == RECEIVED
    ident = rows["u2"]
    assert ident["event"] is None  # only track calls keep an event name
    assert ident["timestamp"] == datetime(2024, 3, 1, 10, 0)  # no offset: UTC
    page = rows[None]
    assert page["anonymous_id"] == "a3" and page["name"] == "Home"
    assert page["timestamp"] == RECEIVED  # no timestamp: when received


def test_invalid_rows_are_rejected_with_reasons_and_valid_ones_kept(db: Session) -> None:
    rows: list[dict[str, Any]] = [
        {"event": "ok", "userId": "u0"},
        {"type": "purchase", "userId": "u1"},
        {"event": "no one"},
        {"type": "track", "userId": "u3"},
        {"type": "alias", "userId": "u4"},
        {"type": "group", "userId": "u5"},
        {"event": "e", "userId": "u6", "properties": "[1, 2]"},
        {"event": "e", "userId": "u7", "properties": "{not json"},
        {"event": "e", "userId": "u8", "timestamp": "yesterday"},
        {"event": "e", "userId": "u9", "context": "42"},
        {"event": "e", "userId": "u10", "properties": {"big": "x" * 40_000}},
        {"event": "ok too", "userId": "u11"},
    ]
    p = prep(db, text_table(rows))
    assert sorted(by_user(p)) == ["u0", "u11"]
    got = {r.index: (r.code, r.message) for r in p.rejected}
    assert got[1] == (
        "unknown_type",
        "Unknown message type 'purchase': use one of alias, group, identify, page, screen, track.",
    )
    assert got[2][0] == "missing_identity" and "userId or an anonymousId" in got[2][1]
    assert got[3] == ("missing_field", "A track call needs a non-empty 'event' name.")
    assert got[4] == ("missing_field", "An alias call needs both previousId and userId.")
    assert got[5] == ("missing_field", "A group call needs a groupId.")
    assert got[6] == ("invalid_field", "Invalid message: 'properties' must be a JSON object.")
    assert got[7][0] == "invalid_field"
    assert got[8] == (
        "invalid_field",
        "Invalid message: 'timestamp' is not an ISO-8601 time: 'yesterday'.",
    )
    assert got[9] == ("invalid_field", "Invalid message: 'context' must be a JSON object.")
    assert got[10][0] == "message_too_large"
    assert len(p.rejected) == 10
    first = next(r for r in p.rejected if r.index == 1)
    assert json.loads(first.row) == {"type": "purchase", "userId": "u1"}  # empty cells left out
    assert first.event_type == "purchase"


def test_missing_message_ids_are_a_content_hash(db: Session) -> None:
    rows = [
        {"event": "View", "userId": f"u{i}", "timestamp": "2024-01-01T00:00:00Z"} for i in range(3)
    ]
    first, again = prep(db, text_table(rows)), prep(db, text_table(rows))
    ids = first.events.column("message_id").to_pylist()
    assert ids == again.events.column("message_id").to_pylist()
    assert len(set(ids)) == 3 and all(i.startswith("imp-") for i in ids)
    changed = prep(db, text_table([{**rows[0], "timestamp": "2024-01-01T00:00:01Z"}]))
    assert changed.events.column("message_id")[0].as_py() not in ids


def test_repeats_within_a_batch_are_stored_once(db: Session) -> None:
    row = {"event": "View", "userId": "u1"}
    p = prep(
        db,
        text_table(
            [
                row,
                {"event": "Other", "userId": "u1"},
                row,
                {"event": "x", "userId": "u2", "messageId": "m"},
                {"event": "y", "userId": "u3", "messageId": "m"},
            ]
        ),
    )
    assert (p.valid, p.events.num_rows) == (5, 3)
    assert p.rows.to_pylist() == [0, 1, 3]  # the first of each


def test_struct_and_json_text_columns_give_the_same_json(db: Session) -> None:
    props = [{"sku": "A", "price": 1.5, "tags": ["x"]}, {"sku": "B", "qty": 2}]
    structs = pa.table(
        {
            "event": ["e1", "e2"],
            "userId": ["u1", "u2"],
            "properties": pa.array(props),
            "context": pa.array([{"app": {"id": "wx1"}}, None]),
        }
    )
    texts = text_table(
        [
            {"event": f"e{i + 1}", "userId": f"u{i + 1}", "properties": p}
            for i, p in enumerate(props)
        ]
    )
    a, b = prep(db, structs), prep(db, texts)
    for x, y in zip(a.events.to_pylist(), b.events.to_pylist(), strict=True):
        assert json.loads(x["properties"]) == json.loads(y["properties"])
    # a struct has every key on every row: the missing ones (nulls) are left out
    assert json.loads(a.events.to_pylist()[1]["properties"]) == {"sku": "B", "qty": 2}
    assert json.loads(a.events.to_pylist()[0]["context"]) == {"app": {"id": "wx1"}}


def test_typed_columns_become_text_and_timestamps(db: Session) -> None:
    shanghai = timezone(timedelta(hours=8))
    table = pa.table(
        {
            "event": ["e", "e"],
            "user_id": pa.array([12, 13], pa.int64()),
            "groupId": pa.array([1.0, 2.5]),
            "timestamp": pa.array(
                [datetime(2024, 5, 1, 8, tzinfo=shanghai)] * 2,
                pa.timestamp("us", tz="Asia/Shanghai"),
            ),
        }
    )
    table = table.append_column(
        "sentAt", pa.array([1_714_521_600_000_000_123] * 2, pa.timestamp("ns"))
    )
    rows = prep(db, table).events.to_pylist()
    assert rows[0]["sent_at"] == datetime(2024, 5, 1, 0, 0)  # ns cut to us
    assert [r["user_id"] for r in rows] == ["12", "13"]
    assert [r["group_id"] for r in rows] == ["1", "2.5"]
    assert rows[0]["timestamp"] == datetime(2024, 5, 1, 0, 0)


def test_mapping_renames_and_refuses_clashes() -> None:
    table = pa.table({"uid": ["u1"], "evt": ["e"], "event": ["x"]})
    mapped = bulk.apply_mapping(table, {"uid": "userId", "evt": "name"})
    assert mapped.column_names == ["userId", "name", "event"]
    with pytest.raises(InvalidRequest, match="clashes"):
        bulk.apply_mapping(table, {"evt": "event"})
    with pytest.raises(InvalidRequest, match="'nope' is not in the data"):
        bulk.apply_mapping(table, {"nope": "userId"})


def test_a_source_column_routes_rows_within_the_tenant_only(db: Session) -> None:
    p = prep(
        db,
        text_table(
            [
                {"event": "e", "userId": "u1", "source": "src_b"},
                {"event": "e", "userId": "u2"},
                {"event": "e", "userId": "u3", "source": "src_of_another_tenant"},
            ]
        ),
    )
    rows = by_user(p)
    assert (rows["u1"]["source_id"], rows["u1"]["brand_id"]) == ("src_b", None)
    assert rows["u2"]["source_id"] == "src_a"
    (bad,) = p.rejected
    assert bad.code == "unknown_source" and "src_of_another_tenant" in bad.message


def test_profiles_become_identify_events_with_identifiers(db: Session) -> None:
    table = text_table(
        [
            {"user_id": "c1", "phone": "13800000001", "email": "a@x.cn", "tier": "gold"},
            {"phone": "13800000002", "openid": "o-2", "app_id": "wx9", "member_id": "M2"},
            {"tier": "silver"},
        ]
    )
    p = prep(db, table, "profiles")
    assert [r.code for r in p.rejected] == ["no_identifier"]
    assert "no identifier" in p.rejected[0].message
    rows = p.events.to_pylist()
    assert {r["type"] for r in rows} == {"identify"}
    known, anon = rows
    assert known["user_id"] == "c1" and known["anonymous_id"] is None
    assert json.loads(known["traits"]) == {
        "phone": "13800000001",
        "email": "a@x.cn",
        "tier": "gold",
    }
    assert json.loads(known["identifiers"]) == [
        {"type": "phone", "value": "13800000001", "scope": None},
        {"type": "email", "value": "a@x.cn", "scope": None},
    ]
    assert json.loads(anon["identifiers"]) == [
        {"type": "phone", "value": "13800000002", "scope": None},
        {"type": "openid", "value": "o-2", "scope": "wx9"},
        {"type": "member_id", "value": "M2", "scope": "br_a"},  # the source's brand
    ]
    assert anon["user_id"] is None and anon["anonymous_id"].startswith("imp-")
    again = prep(db, table, "profiles").events.to_pylist()
    assert [r["anonymous_id"] for r in again] == [r["anonymous_id"] for r in rows]


def test_unparsed_lines_are_rejected_as_invalid_json(db: Session) -> None:
    table = pa.table(
        {"userId": ["u1", None], "event": ["e", None], bulk.UNPARSED: [None, "{broken"]}
    )
    p = prep(db, table)
    assert p.events.num_rows == 1
    (bad,) = p.rejected
    assert (bad.index, bad.code, bad.row) == (1, "invalid_json", "{broken")


def test_a_tracking_plan_blocks_and_flags_per_event(db: Session) -> None:
    spec = TrackingPlanSpec(mode=PlanMode.block_unplanned, events=[PlannedEvent(name="Order")])
    p = prep(
        db, text_table([{"event": "Order", "userId": "u1"}, {"event": "Unplanned", "userId": "u2"}])
    )
    kept, notes = bulk.apply_plan(p.events, p.rows, CompiledPlan(spec, source="src_a"))
    assert kept.column("event").to_pylist() == ["Order"]
    (note,) = notes
    assert (note.index, note.disposition) == (1, "rejected")
    assert orjson.loads(note.payload)["event"] == "Unplanned"


scalar = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.integers(-5, 10**12),
    st.sampled_from([1.0, 2.5, 13800138000.0, True, 0, 0.0, False]),
)
id_keys = st.sampled_from(
    ["phone", "mobile", "email", "unionId", "openid", "open_id", "member_id", "memberId", "name"]
)
# a falsy scope (0, false, "") is skipped for the next one, as normalize._first does
scope_keys = st.sampled_from(["app_id", "appId", "appid", "brand", "brand_id", "brandId"])
# an object where an app or brand id belongs is not an id: the API would use its repr
bag = st.builds(
    lambda ids, scopes: {**ids, **scopes},
    st.dictionaries(id_keys, st.one_of(scalar, st.just({"x": 1})), max_size=4),
    st.dictionaries(scope_keys, scalar, max_size=2),
)
external = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["phone", "openId", "member_id", "crm", ""]), "id": scalar},
        optional={"collection": scalar, "appid": scalar, "appId": scalar, "brandId": scalar},
    ),
    max_size=3,
)
contexts = st.fixed_dictionaries(
    {},
    optional={
        "traits": bag,
        "externalIds": external,
        "device": st.fixed_dictionaries({"id": scalar}),
        "app": st.fixed_dictionaries({}, optional={"id": scalar, "appId": scalar}),
    },
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=st.lists(st.tuples(st.one_of(st.none(), bag), contexts), min_size=1, max_size=8))
def test_identifiers_match_the_tracking_api(db: Session, pairs: list[tuple[Any, Any]]) -> None:
    # several rows per preparation: each one compiles the whole statement (~0.3 s)
    rows = [
        {"type": "identify", "userId": f"u{i}", "traits": traits, "context": context}
        for i, (traits, context) in enumerate(pairs)
    ]
    events = {e["user_id"]: e for e in prep(db, text_table(rows)).events.to_pylist()}
    assert len(events) == len(rows)
    for row in rows:
        event = events[row["userId"]]
        expected = extract_identifiers(row["traits"], row["context"], "br_a") or None
        got = json.loads(event["identifiers"]) if event["identifiers"] else None
        assert got == expected, row


def test_rows_json_of_rejects_keeps_nested_values(db: Session) -> None:
    table = pa.table({"type": ["nope"], "userId": ["u"], "properties": pa.array([{"a": {"b": 1}}])})
    (bad,) = prep(db, table).rejected
    assert json.loads(bad.row) == {"type": "nope", "userId": "u", "properties": {"a": {"b": 1}}}
