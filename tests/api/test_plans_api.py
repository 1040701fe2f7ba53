"""Tracking plans end to end: the management API sets them, the tracking API obeys them."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quanyu.api import plans
from quanyu.api.app import create_app
from quanyu.config import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ADMIN = {"Authorization": "Bearer t"}
ORDER_SCHEMA = {
    "type": "object",
    "required": ["revenue"],
    "properties": {"revenue": {"type": "number"}, "sku": {"type": "string"}},
}


class Api:
    """A tenant with one source on an in-process app, and the calls the tests make."""

    def __init__(self, client: TestClient, name: str = "Swellfun") -> None:
        self.c = client
        self.tenant = self.c.post("/v1/tenants", json={"name": name}, headers=ADMIN).json()["id"]
        self.source, self.write_key = self.new_source("Mini program")

    def new_source(self, name: str) -> tuple[str, str]:
        made = self.c.post(
            f"/v1/tenants/{self.tenant}/sources", json={"name": name}, headers=ADMIN
        ).json()
        return made["id"], made["write_key"]

    def plan_path(self, source: str | None = None, tenant: str | None = None) -> str:
        t, s = tenant or self.tenant, source or self.source
        return f"/v1/tenants/{t}/sources/{s}/tracking-plan"

    def put_plan(self, **plan: Any) -> httpx.Response:
        return self.c.put(self.plan_path(), json=plan, headers=ADMIN)

    def send(self, *messages: dict[str, Any], key: str | None = None) -> httpx.Response:
        return self.c.post(
            "/v1/batch", json={"batch": list(messages)}, auth=(key or self.write_key, "")
        )

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        page = self.c.get(f"/v1/tenants/{self.tenant}/events", params=filters, headers=ADMIN)
        return list(page.json()["items"])

    def dead(self, **filters: Any) -> list[dict[str, Any]]:
        page = self.c.get(f"/v1/tenants/{self.tenant}/dead-letters", params=filters, headers=ADMIN)
        return list(page.json()["items"])


def build_client(tmp_path: Path) -> TestClient:
    app = create_app(Settings(data_dir=tmp_path), local_token="t")
    if not any(getattr(r, "path", None) == plans._PLAN for r in app.routes):
        app.include_router(plans.router)
    return TestClient(app, base_url="http://quanyu.test")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with build_client(tmp_path) as c:
        yield c


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


def track(event: str, mid: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "messageId": mid,
        "userId": "u1",
        "properties": properties,
    }


def test_plan_round_trip_and_audit(api: Api) -> None:
    assert api.c.get(api.plan_path(), headers=ADMIN).status_code == 404
    put = api.put_plan(
        mode="block_unplanned", events=[{"name": "Order Completed", "properties": ORDER_SCHEMA}]
    )
    assert put.status_code == 200, put.text
    got = api.c.get(api.plan_path(), headers=ADMIN).json()
    assert got["mode"] == "block_unplanned" and got["block_invalid"] is False
    assert got["events"][0]["properties"] == ORDER_SCHEMA
    assert api.c.delete(api.plan_path(), headers=ADMIN).json()["mode"] == "block_unplanned"
    assert api.c.get(api.plan_path(), headers=ADMIN).status_code == 404
    assert api.c.delete(api.plan_path(), headers=ADMIN).status_code == 404
    audit = api.c.get(f"/v1/tenants/{api.tenant}/audit", headers=ADMIN).json()
    actions = [a["action"] for a in audit if a["target_type"] == "tracking_plan"]
    assert actions == ["tracking_plan.delete", "tracking_plan.set"]
    assert audit[0]["before"]["events"][0]["name"] == "Order Completed"
    assert audit[0]["request_id"]


def test_allow_all_records_nothing_about_unplanned_events(api: Api) -> None:
    api.put_plan(mode="allow_all", events=[{"name": "Order Completed", "properties": ORDER_SCHEMA}])
    r = api.send(track("Coupon Clicked", "m1", code="X"))
    assert r.json() == {"success": True, "accepted": 1, "rejected": []}
    assert [e["event"] for e in api.events()] == ["Coupon Clicked"]
    assert api.dead() == []


def test_flag_unplanned_stores_and_flags(api: Api) -> None:
    api.put_plan(mode="flag_unplanned", events=[{"name": "Order Completed"}])
    r = api.send(track("Order Complted", "m1", revenue=5))
    assert r.json()["accepted"] == 1 and r.json()["rejected"] == []
    assert api.events()[0]["properties"] == {"revenue": 5}
    (letter,) = api.dead()
    assert (letter["disposition"], letter["status"]) == ("flagged", "flagged")
    assert (letter["code"], letter["rule"]) == ("unplanned_event", "unplanned_event:Order Complted")
    assert "Did you mean 'Order Completed'?" in letter["reason"]


def test_block_unplanned_rejects_to_dead_letters(api: Api) -> None:
    api.put_plan(mode="block_unplanned", events=[{"name": "Order Completed"}])
    r = api.send(track("Coupon Clicked", "m1"), track("Order Completed", "m2", revenue=1))
    assert r.json()["accepted"] == 1
    assert r.json()["rejected"][0]["rule"] == "unplanned_event:Coupon Clicked"
    assert [e["message_id"] for e in api.events()] == ["m2"]
    (letter,) = api.dead()
    assert (letter["disposition"], letter["status"], letter["message_id"]) == (
        "rejected",
        "open",
        "m1",
    )
    assert letter["payload"]["event"] == "Coupon Clicked"


def test_omit_unplanned_properties_removes_them_from_the_stored_event(api: Api) -> None:
    api.put_plan(
        mode="omit_unplanned_properties",
        events=[{"name": "Order Completed", "properties": ORDER_SCHEMA}],
    )
    r = api.send(
        track("Order Completed", "m1", revenue=9.5, sku="A1", coupon="X", debug=True),
        track("Order Completed", "m2", revenue=1),
        track("Signed Up", "m3", via="qr"),
    )
    assert r.json()["accepted"] == 3
    stored = {e["message_id"]: e for e in api.events()}
    assert stored["m1"]["properties"] == {"revenue": 9.5, "sku": "A1"}
    assert stored["m2"]["properties"] == {"revenue": 1}
    assert stored["m3"]["properties"] == {"via": "qr"}  # unplanned: kept and flagged
    letters = {d["message_id"]: d for d in api.dead()}
    assert set(letters) == {"m1", "m3"}
    assert letters["m1"]["rule"] == "unplanned_properties:Order Completed"
    assert letters["m1"]["disposition"] == "flagged"
    assert "'coupon', 'debug'" in letters["m1"]["reason"]
    assert letters["m3"]["rule"] == "unplanned_event:Signed Up"


@pytest.mark.parametrize("block", [True, False])
def test_schema_violations_with_block_invalid(api: Api, block: bool) -> None:
    api.put_plan(
        mode="block_unplanned",
        block_invalid=block,
        events=[{"name": "Order Completed", "properties": ORDER_SCHEMA}],
        identify_traits={
            "type": "object",
            "properties": {"email": {"type": "string", "format": "email"}},
        },
    )
    api.send(
        track("Order Completed", "m1", revenue="12.5"),
        track("Order Completed", "m2"),
        {
            "type": "identify",
            "userId": "u1",
            "messageId": "m3",
            "traits": {"email": "not-an-email"},
        },
        track("Order Completed", "ok", revenue=3),
    )
    stored = {e["message_id"] for e in api.events()}
    assert stored == ({"ok"} if block else {"ok", "m1", "m2", "m3"})
    letters = {d["message_id"]: d for d in api.dead()}
    assert {m: d["rule"] for m, d in letters.items()} == {
        "m1": "schema:Order Completed:/properties/revenue type",
        "m2": "schema:Order Completed:/properties required",
        "m3": "schema:identify:/traits/email format",
    }
    assert {d["disposition"] for d in letters.values()} == {"rejected" if block else "flagged"}
    assert {d["code"] for d in letters.values()} == {"invalid_properties", "invalid_traits"}
    assert "properties.revenue must be number" in letters["m1"]["reason"]
    assert "lacks required 'revenue'" in letters["m2"]["reason"]


def test_page_and_group_are_planned_unless_listed(api: Api) -> None:
    api.put_plan(
        mode="block_unplanned",
        block_invalid=True,
        events=[
            {"type": "page", "properties": {"type": "object", "required": ["path"]}},
        ],
    )
    api.send(
        {"type": "page", "userId": "u1", "messageId": "p1", "properties": {"path": "/"}},
        {"type": "page", "userId": "u1", "messageId": "p2", "properties": {}},
        {"type": "screen", "userId": "u1", "messageId": "s1"},
        {"type": "group", "userId": "u1", "groupId": "g1", "messageId": "g1"},
        {"type": "alias", "userId": "u1", "previousId": "a1", "messageId": "a1"},
    )
    assert {e["message_id"] for e in api.events()} == {"p1", "s1", "g1", "a1"}
    assert [d["rule"] for d in api.dead()] == ["schema:page:/properties required"]


@pytest.mark.parametrize(
    ("plan", "status", "words"),
    [
        (
            {
                "events": [
                    {
                        "name": "Order Completed",
                        "properties": {"properties": {"revenue": {"type": "numbr"}}},
                    }
                ]
            },
            400,
            ["'Order Completed'", "/properties/revenue", "'numbr'"],
        ),
        (
            {"events": [{"name": "Order Completed", "properties": {"type": "string"}}]},
            400,
            ["'Order Completed'", "JSON object"],
        ),
        (
            {"events": [{"name": "A", "properties": {"patternProperties": {"(": {}}}}]},
            400,
            ["'A'", "not a valid JSON Schema"],
        ),
        (
            {"events": [{"name": "A", "properties": {"$ref": "http://127.0.0.1:1/s.json"}}]},
            400,
            ["'A'", "remote $ref"],
        ),
        ({"events": [{"name": "A"}, {"name": "A"}]}, 400, ["'A' twice"]),
        ({"events": [{"properties": {}}]}, 400, ["without a name"]),
        ({"events": [{"type": "page", "name": "Home"}]}, 400, ["page entries have none"]),
        ({"identify_traits": {"required": "email"}}, 400, ["'identify'", "required"]),
        ({"mode": "block_everything"}, 422, ["mode"]),
    ],
)
def test_bad_plans_are_refused_with_a_clear_message(
    api: Api, plan: dict[str, Any], status: int, words: list[str]
) -> None:
    r = api.put_plan(**plan)
    assert r.status_code == status, r.text
    for word in words:
        assert word in r.json()["message"]
    assert api.c.get(api.plan_path(), headers=ADMIN).status_code == 404


def test_replay_after_the_plan_includes_the_event_stores_it_once(api: Api) -> None:
    api.put_plan(mode="block_unplanned", events=[{"name": "Order Completed"}])
    blocked = {
        "type": "track",
        "event": "Coupon Applied",
        "userId": "u1",
        "properties": {"code": "SPRING"},
    }  # no messageId: replays under the letter's id
    r = api.send(blocked, track("Coupon Applied", "c2"))
    assert r.status_code == 400 and r.json()["code"] == "validation_failed"
    letters = api.dead(status="open")
    ids = sorted(d["id"] for d in letters)
    unnamed = next(d["id"] for d in letters if d["message_id"] is None)
    assert len(ids) == 2 and api.events() == []
    path = f"/v1/tenants/{api.tenant}/dead-letters/replay"
    early = api.c.post(path, json={"ids": ids}, headers=ADMIN).json()
    assert early["replayed"] == [] and len(early["still_rejected"]) == 2
    api.put_plan(
        mode="block_unplanned", events=[{"name": "Order Completed"}, {"name": "Coupon Applied"}]
    )
    first = api.c.post(path, json={"ids": ids}, headers=ADMIN).json()
    assert sorted(first["replayed"]) == ids and first["still_rejected"] == []
    again = api.c.post(path, json={"ids": ids}, headers=ADMIN).json()
    assert again["replayed"] == []
    stored = api.events(event="Coupon Applied")
    assert sorted(e["message_id"] for e in stored) == sorted([unnamed, "c2"])
    assert {d["status"] for d in api.dead()} == {"replayed"}


def test_plans_are_isolated_between_tenants(client: TestClient) -> None:
    a, b = Api(client, "Swellfun"), Api(client, "Kao")
    assert (
        a.put_plan(mode="block_unplanned", events=[{"name": "Order Completed"}]).status_code == 200
    )
    b_key = client.post(
        f"/v1/tenants/{b.tenant}/keys", json={"name": "b", "scopes": ["admin"]}, headers=ADMIN
    ).json()["secret"]
    as_b = {"Authorization": f"Bearer {b_key}"}
    for path in (a.plan_path(), a.plan_path(tenant=b.tenant)):
        assert client.get(path, headers=as_b).status_code == 404
        assert client.put(path, json={"mode": "allow_all"}, headers=as_b).status_code == 404
        assert client.delete(path, headers=as_b).status_code == 404
    assert client.get(a.plan_path(), headers=ADMIN).json()["mode"] == "block_unplanned"
    quality = f"/v1/tenants/{a.tenant}/quality"
    assert client.get(quality, headers=as_b).status_code == 404
    assert (
        client.get(
            f"/v1/tenants/{b.tenant}/quality", params={"source": a.source}, headers=as_b
        ).status_code
        == 404
    )
    # b's source has no plan: what a blocks, b stores
    assert b.send(track("Coupon Clicked", "m1")).json()["accepted"] == 1
    assert a.send(track("Coupon Clicked", "m1")).status_code == 400


def test_delete_takes_effect_at_once(api: Api) -> None:
    api.put_plan(mode="block_unplanned", events=[{"name": "Order Completed"}])
    assert api.send(track("Coupon Clicked", "m1")).status_code == 400
    api.c.delete(api.plan_path(), headers=ADMIN)
    assert api.send(track("Coupon Clicked", "m2")).json()["accepted"] == 1
    assert [e["message_id"] for e in api.events()] == ["m2"]
