"""Tenants never see each other, through every route the server publishes.

Routes are read from the running server's ``/openapi.json``, so a route added
later is covered without touching this file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest

from .harness import Server, Tenant, track

#: Bodies good enough to get past validation on any management route.
BODY = {"name": "probe", "kind": "web", "scopes": ["admin"], "ids": ["dl_x"], "payload": {}}


@dataclass
class World:
    """Two tenants with data: A (the caller) and B (the target)."""

    a: Tenant
    b: Tenant
    b_params: dict[str, str]  # path parameters naming B's real things


@pytest.fixture(scope="module")
def world(server: Server) -> World:
    a, b = server.new_tenant(), server.new_tenant()
    b_msg = track()
    bad = {"type": "track", "userId": "u1"}  # no event: a dead letter for B
    r = httpx.post(f"{server.url}/v1/batch", json={"batch": [b_msg, bad]}, auth=(b.write_key, ""))
    assert r.status_code == 200, r.text
    (letter,) = server.dead_letters(b)
    b_keys = server.call("GET", f"/v1/tenants/{b.id}/keys", b.secret)
    isv = server.call("POST", "/v1/isvs", json={"name": f"ISV-{uuid.uuid4().hex[:8]}"})
    user = server.call(
        "POST",
        f"/v1/tenants/{b.id}/users",
        b.secret,
        json={
            "login": f"b-{uuid.uuid4().hex[:8]}",
            "password": "b's console password",
            "role": "admin",
        },
    )
    return World(
        a,
        b,
        {
            "tenant_id": b.id,
            "source_id": b.source_id,
            "key_id": b_keys[0]["id"],
            "message_id": b_msg["messageId"],
            "letter_id": letter["id"],
            "kind": "events",
            "write_key": b.write_key,
            "isv_id": isv["id"],
            "edge_id": "0",
            "oneid": "P0",
            "profile_id": "P0",
            "key": "rfm_r",
            "audience_id": "vip",
            "request_id": "prq_0",
            "purpose": "marketing",
            "seq": "1",
            "subscriber_id": "sub_0",
            "destination_id": "dst_0",
            "brand_id": "brd_0",
            "order_id": "ord_0",
            "index": "0",
            "dealer_id": "dlr_0",
            "campaign_id": "cmp_0",
            "user_id": user["id"],
        },
    )


def routes(server: Server) -> list[tuple[str, str]]:
    """(method, path template) of every management route the server publishes."""
    spec = httpx.get(f"{server.url}/openapi.json").json()
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if "tracking" in op.get("tags", []) or path in ("/healthz", "/readyz"):
                continue
            if path.startswith("/v1/public/"):  # for consumers, no key: any tenant's codes
                continue
            found.append((method.upper(), path))
    assert len(found) > 20, f"the spec lists only {found}"
    return found


def fill(path: str, params: dict[str, str]) -> str:
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no test value for a parameter of {path}: add it to World"
    return path


def test_tenant_routes_answer_404_for_another_tenant(server: Server, world: World) -> None:
    """A's admin key, on every /v1/tenants/{B}/... route: 404, never 2xx or 403."""
    checked = []
    with server.api(world.a.secret) as c:
        for method, template in routes(server):
            if "{tenant_id}" not in template:
                continue
            path = fill(template, world.b_params)
            r = c.request(method, path, json=BODY if method in ("POST", "PUT") else None)
            assert r.status_code == 404, f"{method} {path} -> {r.status_code} {r.text}"
            assert r.json()["code"] == "not_found"
            checked.append(template)
            # the same call on A's own tenant is not a 404 for the tenant's sake
            own_params = {k: "missing" for k in world.b_params} | {"tenant_id": world.a.id}
            own = c.request(
                method, fill(template, own_params), json=BODY if method in ("POST", "PUT") else None
            )
            assert "No tenant" not in own.text, f"{method} {template} on A's own tenant: {own.text}"
    assert len(checked) >= 12, checked


def test_other_routes_reveal_nothing_of_another_tenant(server: Server, world: World) -> None:
    """Routes outside /v1/tenants/{id}: B's real ids answer like ids that do not exist."""
    missing = {k: f"{v.split('_')[0]}_{uuid.uuid4().hex[:20]}" for k, v in world.b_params.items()}
    with server.api(world.a.secret) as c:
        for method, template in routes(server):
            if "{tenant_id}" in template or "{" not in template:
                continue
            body = BODY if method in ("POST", "PUT") else None
            real = c.request(method, fill(template, world.b_params), json=body)
            fake = c.request(method, fill(template, missing), json=body)
            assert not real.is_success, f"{method} {template} with B's id -> {real.text}"
            assert real.status_code == fake.status_code, (
                f"{method} {template}: B's real id answers {real.status_code} {real.text}, an id"
                f" that does not exist answers {fake.status_code}: that tells B's ids exist"
            )


def test_listings_show_only_the_callers_tenant(server: Server, world: World) -> None:
    a, b = world.a, world.b
    assert [t["id"] for t in server.call("GET", "/v1/tenants", a.secret)] == [a.id]
    keys = server.call("GET", "/v1/keys", a.secret)
    assert keys and {k["tenant_id"] for k in keys} == {a.id}
    audit = server.call("GET", "/v1/audit", a.secret)
    assert b.id not in str(audit)
    assert server.call("GET", "/v1/isvs", a.secret) == []


def test_write_key_writes_into_its_own_tenant_only(server: Server, world: World) -> None:
    a, b = world.a, world.b
    before_b = {e["message_id"] for e in server.events(b)}
    msg = track(context={"groupId": b.id})
    for path in (f"/v1/batch?writeKey={b.write_key}", "/v1/batch"):
        body = {"batch": [msg], "writeKey": b.write_key}
        r = httpx.post(f"{server.url}{path}", json=body, auth=(a.write_key, ""))
        assert r.status_code == 200, r.text
    assert msg["messageId"] in {e["message_id"] for e in server.events(a)}
    assert {e["message_id"] for e in server.events(b)} == before_b
    # and A's secret key cannot read B's event by id
    with server.api(a.secret) as c:
        assert c.get(f"/v1/tenants/{a.id}/events/{world.b_params['message_id']}").status_code == 404


def test_a_write_key_is_not_a_management_key(server: Server, world: World) -> None:
    with server.api(world.a.write_key) as c:
        r = c.get(f"/v1/tenants/{world.a.id}/events")
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"


def test_isv_key_sees_its_own_tenants_only(server: Server, world: World) -> None:
    x = server.call("POST", "/v1/isvs", json={"name": f"ISV-X-{uuid.uuid4().hex[:6]}"})
    y = server.call("POST", "/v1/isvs", json={"name": f"ISV-Y-{uuid.uuid4().hex[:6]}"})
    x_key = server.call("POST", f"/v1/isvs/{x['id']}/keys", json={"name": "x", "scopes": ["admin"]})
    x_secret = x_key["secret"]
    mine = server.create_tenant(secret=x_secret)
    assert mine["isv_id"] == x["id"], "an ISV key creates tenants under its own ISV"
    theirs = server.call("POST", "/v1/tenants", json={"name": "Y's client", "isv_id": y["id"]})
    seen = {t["id"] for t in server.call("GET", "/v1/tenants", x_secret)}
    assert seen == {mine["id"]}
    assert [i["id"] for i in server.call("GET", "/v1/isvs", x_secret)] == [x["id"]]
    src = server.create_source(mine["id"], secret=x_secret)
    assert src["write_key"]
    with server.api(x_secret) as c:
        for target in (theirs["id"], world.a.id, world.b.id):
            for method, template in routes(server):
                if "{tenant_id}" not in template:
                    continue
                path = fill(template, {**world.b_params, "tenant_id": target})
                r = c.request(method, path, json=BODY if method in ("POST", "PUT") else None)
                assert r.status_code == 404, f"ISV X: {method} {path} -> {r.status_code} {r.text}"
        assert c.post(
            f"/v1/isvs/{y['id']}/keys", json={"name": "y", "scopes": ["admin"]}
        ).status_code in (403, 404)
        r = c.post("/v1/tenants", json={"name": "sneaky", "isv_id": y["id"]})
        assert r.status_code == 201 and r.json()["isv_id"] == x["id"]


def test_a_tenant_key_cannot_revoke_platform_keys(server: Server, world: World) -> None:
    """DELETE /v1/keys/{id} is for platform and ISV keys; a tenant's key has no say there."""
    platform = server.call("POST", "/v1/keys", json={"name": "ops", "scopes": ["admin"]})
    with server.api(world.a.secret) as c:
        r = c.delete(f"/v1/keys/{platform['id']}")
    assert r.status_code in (403, 404), f"a tenant key revoked a platform key: {r.text}"
    listed = {k["id"]: k for k in server.call("GET", "/v1/keys")}
    assert listed[platform["id"]]["revoked_at"] is None
    with server.api(platform["secret"]) as c:
        assert c.get("/v1/tenants").status_code == 200, "the platform key must still work"
