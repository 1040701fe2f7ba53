"""The plan compiler and checker (pure), and the compiled-plan cache over a real store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyu.config import Settings
from quanyu.errors import InvalidRequest, NotFound
from quanyu.ingest import plans
from quanyu.ingest.normalize import normalize
from quanyu.ingest.plan_models import TrackingPlanSpec
from quanyu.store import open_store
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import SourceCreate, TenantCreate

ORDER = {
    "type": "object",
    "required": ["revenue"],
    "properties": {
        "revenue": {"type": "number", "minimum": 0},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"price": {"type": "number"}}},
        },
    },
    "patternProperties": {"^x_": {}},
}


def plan(**spec: Any) -> plans.CompiledPlan:
    spec.setdefault("events", [{"name": "Order Completed", "properties": ORDER}])
    return plans.CompiledPlan(TrackingPlanSpec.model_validate(spec), source="src_1")


def props(**values: Any) -> bytes:
    return msgspec.json.encode(values)


@pytest.mark.parametrize(
    ("mode", "violated", "blocked"),
    [
        ("allow_all", False, False),
        ("flag_unplanned", True, False),
        ("block_unplanned", True, True),
        ("omit_unplanned_properties", True, False),
    ],
)
def test_unplanned_event_per_mode(mode: str, violated: bool, blocked: bool) -> None:
    verdict = plan(mode=mode).check("track", "Order Complted", props(revenue=1), None)
    assert bool(verdict.violations) is violated and verdict.block is blocked
    if violated:
        (v,) = verdict.violations
        assert (v.code, v.rule) == ("unplanned_event", "unplanned_event:Order Complted")
        assert "Did you mean 'Order Completed'?" in v.message


def test_a_valid_planned_event_passes_untouched() -> None:
    for mode in ("flag_unplanned", "omit_unplanned_properties"):
        verdict = plan(mode=mode).check("track", "Order Completed", props(revenue=2, x_a=1), None)
        assert verdict.violations == () and verdict.properties is None


@pytest.mark.parametrize(
    ("body", "rule", "words"),
    [
        (
            props(revenue="12.5"),
            "schema:Order Completed:/properties/revenue type",
            'properties.revenue must be number (got "12.5")',
        ),
        (props(revenue=-1), "schema:Order Completed:/properties/revenue minimum", "(got -1)"),
        (None, "schema:Order Completed:/properties required", "lacks required 'revenue'"),
        (
            props(revenue=1, items=[{"price": 1}, {"price": "x"}]),
            "schema:Order Completed:/properties/items/*/price type",
            "items[1].price",
        ),
    ],
)
def test_schema_violations_name_the_rule(body: bytes | None, rule: str, words: str) -> None:
    for block in (True, False):
        verdict = plan(block_invalid=block).check("track", "Order Completed", body, None)
        (v,) = verdict.violations
        assert (v.code, v.rule, verdict.block) == ("invalid_properties", rule, block)
        assert words in v.message
        assert ("replay" in v.message) is block


def test_omit_removes_undeclared_properties_and_validates_the_rest() -> None:
    verdict = plan(mode="omit_unplanned_properties").check(
        "track", "Order Completed", props(revenue=1, coupon="X", x_keep=2), None
    )
    assert msgspec.json.decode(verdict.properties or b"") == {"revenue": 1, "x_keep": 2}
    (v,) = verdict.violations
    assert v.rule == "unplanned_properties:Order Completed" and "'coupon'" in v.message
    both = plan(mode="omit_unplanned_properties", block_invalid=True).check(
        "track", "Order Completed", props(revenue="1", coupon="X"), None
    )
    assert [v.code for v in both.violations] == ["unplanned_properties", "invalid_properties"]
    assert both.block


def test_additional_properties_or_no_schema_keep_everything() -> None:
    checker = plan(
        mode="omit_unplanned_properties",
        events=[
            {"name": "Open", "properties": {"type": "object", "additionalProperties": True}},
            {"name": "Bare"},
        ],
    )
    for event in ("Open", "Bare"):
        assert checker.check("track", event, props(a=1, b=2), None).violations == ()


def test_identify_page_and_group_schemas() -> None:
    checker = plan(
        events=[
            {"type": "page", "properties": {"type": "object", "required": ["path"]}},
            {
                "type": "group",
                "traits": {"type": "object", "properties": {"employees": {"type": "integer"}}},
            },
        ],
        identify_traits={"type": "object", "properties": {"email": {"format": "email"}}},
    )
    assert checker.check("identify", None, None, {"email": "a@b.cn"}).violations == ()
    (v,) = checker.check("identify", None, None, {"email": "nope"}).violations
    assert (v.code, v.rule) == ("invalid_traits", "schema:identify:/traits/email format")
    (v,) = checker.check("page", None, props(title="x"), None).violations
    assert v.rule == "schema:page:/properties required"
    (v,) = checker.check("group", None, None, {"employees": "many"}).violations
    assert v.rule == "schema:group:/traits/employees type"
    for kind in ("screen", "alias"):
        assert checker.check(kind, None, props(anything=1), None).violations == ()
    assert plan().check("identify", None, None, {"email": 5}).violations == ()


@pytest.mark.parametrize(
    ("events", "words"),
    [
        ([{"name": "A", "properties": {"type": "objekt"}}], "type 'objekt'"),
        (
            [{"name": "A", "properties": {"properties": {"b": {"anyOf": [{"type": "txt"}]}}}}],
            "at /properties/b/anyOf/0, type 'txt'",
        ),
        ([{"name": "A", "properties": {"type": ["string", "null"]}}], "JSON object"),
        ([{"name": "A", "properties": {"minimum": "zero"}}], "minimum must be a number"),
        ([{"name": "A", "properties": {"$ref": "file:///etc/passwd"}}], "remote $ref"),
        ([{"name": "A", "properties": {"$ref": "#/definitions/nope"}}], "Unresolvable ref"),
        ([{"type": "group", "properties": {}}], "give its schema as 'traits'"),
    ],
)
def test_bad_schemas_are_refused(events: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        plan(events=events)
    assert words in err.value.message


@given(
    st.dictionaries(
        st.sampled_from(["revenue", "sku", "coupon", "x_1", "debug", "é"]), st.integers(0, 10)
    )
)
def test_omit_keeps_exactly_the_declared_properties(sent: dict[str, int]) -> None:
    checker = plan(
        mode="omit_unplanned_properties",
        events=[
            {
                "name": "E",
                "properties": {
                    "properties": {"revenue": {}, "sku": {}},
                    "patternProperties": {"^x_": {}},
                },
            }
        ],
    )
    verdict = checker.check("track", "E", msgspec.json.encode(sent), None)
    kept = {k: v for k, v in sent.items() if k in ("revenue", "sku") or k.startswith("x_")}
    stored = sent if verdict.properties is None else msgspec.json.decode(verdict.properties)
    assert stored == kept
    assert bool(verdict.violations) is (kept != sent)


def test_normalize_applies_the_verdict() -> None:
    items = [
        props(type="track", event="Order Completed", userId="u", properties={"revenue": "x"}),
        props(
            type="track",
            event="Order Completed",
            userId="u",
            properties={"revenue": 1, "coupon": "c"},
        ),
        props(type="track", event="Nope", userId="u"),
    ]
    out = normalize(
        items,
        received_at=datetime(2025, 1, 1, tzinfo=UTC),
        plan=plan(mode="omit_unplanned_properties", block_invalid=True),
    )
    assert [r.rule for r in out.rejects] == ["schema:Order Completed:/properties/revenue type"]
    assert [r.rule for r in out.flagged] == [
        "unplanned_properties:Order Completed",
        "unplanned_event:Nope",
    ]
    assert out.columns["properties"][0] == b'{"revenue":1}'


def test_compiled_recompiles_only_when_the_plan_changes(tmp_path: Path) -> None:
    engine = open_store(Settings(data_dir=tmp_path))
    try:
        with engine.connect() as db:
            t = tenancy.create_tenant(db, TenantCreate(name="T"), actor="test").id
            s = tenancy.create_source(db, SourceCreate(name="S"), tenant=t, actor="test").id
            assert plans.compiled(db, tenant=t, source=s) is None
            spec = TrackingPlanSpec(events=[{"name": "A"}])  # type: ignore[list-item]
            plans.set_plan(db, spec, tenant=t, source=s, actor="test")
            first = plans.compiled(db, tenant=t, source=s)
            assert first is not None and plans.compiled(db, tenant=t, source=s) is first
            assert plans.compiled(db, tenant="ten_other", source=s) is None
            plans.set_plan(
                db,
                spec.model_copy(update={"block_invalid": True}),
                tenant=t,
                source=s,
                actor="test",
            )
            second = plans.compiled(db, tenant=t, source=s)
            assert second is not first and isinstance(second, plans.CompiledPlan)
            assert second.block_invalid
            plans.delete_plan(db, tenant=t, source=s, actor="test")
            assert plans.compiled(db, tenant=t, source=s) is None
            with pytest.raises(NotFound):
                plans.set_plan(db, spec, tenant="ten_other", source=s, actor="test")
    finally:
        engine.close()


def test_did_you_mean_stays_cheap_on_big_plans() -> None:
    events = [{"name": f"Event {i}"} for i in range(1000)] + [{"name": "Order Completed"}]
    checker = plan(mode="flag_unplanned", events=events)
    (v,) = checker.check("track", "order_completed", None, None).violations
    assert "Did you mean 'Order Completed'?" in v.message
    (v,) = checker.check("track", "Order Complted", None, None).violations
    assert "Did you mean" not in v.message  # fuzzy matching is skipped over 200 events
