"""Tags and audiences on the real server: rules over HTTP (errors with line and column),
the server's refresher keeping tags and audiences fresh, counts, CSV export, a push
the server delivers to a receiver on 127.0.0.1, and the CLI against the running server."""

from __future__ import annotations

import csv
import io
import time
import uuid
from typing import Any

import httpx

from tests.delivery.conftest import Receiver

from .harness import Server, Tenant
from .test_cli import cli


def order(user: str, amount: float, **traits: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "messageId": str(uuid.uuid4()),
        "properties": {"revenue": amount},
    }


def identify(user: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "messageId": str(uuid.uuid4()), "traits": traits}


def send(server: Server, tenant: Tenant, *messages: dict[str, Any]) -> None:
    r = httpx.post(
        f"{server.url}/v1/batch", json={"batch": list(messages)}, auth=(tenant.write_key, "")
    )
    assert r.status_code == 200, r.text


def until(check: Any, bound: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy, within ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            assert found, "condition not met in time"
            return found
        time.sleep(0.1)


def test_tags_and_audiences_over_http(server: Server, tenant: Tenant) -> None:
    t = f"/v1/tenants/{tenant.id}"
    send(
        server,
        tenant,
        identify("u1", tier="gold"),
        identify("u2", tier="gold"),
        identify("u3", tier="silver"),
        order("u1", 300),
        order("u1", 200),
        order("u2", 50),
    )
    with server.api(tenant.secret) as c:
        bad = c.post(
            f"{t}/tags",
            json={
                "key": "x",
                "name_zh": "x",
                "name_en": "x",
                "rule": 'count(event = "Order Completed") >= and',
            },
        )
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_rule"
        assert "line 1, column" in bad.json()["message"]
        made = c.post(
            f"{t}/tags",
            json={
                "key": "repeat",
                "name_zh": "复购",
                "name_en": "Repeat buyer",
                "status": "live",
                "rule": 'count(event = "Order Completed") >= 2',
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["rule_text"] == 'count(event = "Order Completed") >= 2'
        # the server's refresher computes the new live tag once the events are resolved
        counts = until(lambda: c.get(f"{t}/tag-counts").json().get("repeat"))
        assert counts == [{"value": "true", "people": 1}]

        draft = {"rule": 'tag("repeat") or traits.tier = "gold"', "channel": "wechat"}
        found = c.post(f"{t}/audiences/count", json=draft).json()
        # nobody has agreed to marketing yet: consent fails closed
        assert (found["matched"], found["size"]) == (2, 0), found
        assert found["excluded_by"] == {"no consent recorded (unknown)": 2}
        decisions = [
            {"subject": {"type": "user_id", "value": u, "scope": tenant.source_id},
             "purpose": "marketing", "channel": "wechat", "status": "granted",
             "surface": "mini_program"}
            for u in ("u1", "u2", "u3")
        ]  # fmt: skip
        recorded = c.post(f"{t}/consent/decisions", json={"decisions": decisions})
        assert recorded.status_code == 201, recorded.text
        assert [r["entry"]["status"] for r in recorded.json()] == ["granted"] * 3
        u1 = recorded.json()[0]["entry"]["profile"]
        person = c.get(f"{t}/profiles/{u1}/consent").json()
        states = {(s["purpose_id"], s["channel"]): s["status"] for s in person["states"]}
        assert states[("default.marketing", "wechat")] == "granted"
        assert states[("default.ads_targeting", "*")] == "unknown"
        found = c.post(f"{t}/audiences/count", json=draft).json()
        assert (found["matched"], found["size"]) == (2, 2), found
        aud = {"id": "vip", "name": "VIP", **draft}
        assert c.post(f"{t}/audiences", json=aud).status_code == 201
        snap = c.post(f"{t}/audiences/vip/snapshots").json()
        assert snap["size"] == 2
        r = c.get(f"{t}/audiences/vip/export", params={"format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert sorted(row["oneid"] for row in rows) == sorted(found["sample"])

        receiver = Receiver(port=0).start()
        try:
            dest = c.post(f"{t}/destinations", json={"name": "crm", "url": receiver.url}).json()
            receiver.secret = dest["secret"]
            assert "secret" not in c.get(f"{t}/destinations").json()[0]
            pushed = c.post(f"{t}/audiences/vip/push", json={"destination_id": dest["id"]})
            assert pushed.status_code == 202, pushed.text
            until(lambda: receiver.acked())
            assert receiver.acked() == pushed.json()["message_ids"]
            got = receiver.hits[0].body["data"]["records"]
            assert sorted(x["oneid"] for x in got) == sorted(found["sample"])
            log = c.get(
                f"{t}/consent/decision-log", params={"act_id": pushed.json()["message_ids"][0]}
            )
            assert sorted(d["profile"] for d in log.json()) == sorted(found["sample"])
            assert {d["decision"] for d in log.json()} == {"allow"}
            report = c.get(f"{t}/delivery-report", params={"key": "audience:vip"}).json()
            assert report["counts"]["delivered"] == len(pushed.json()["message_ids"])
            [sent] = c.get(f"{t}/outbox", params={"destination_id": dest["id"]}).json()
            assert sent["status"] == "delivered" and sent["last_status_code"] == 200
            again = c.post(f"{t}/outbox/{sent['id']}/retry")
            assert again.status_code == 409 and "only failed or skipped" in again.json()["message"]
            off = c.patch(f"{t}/destinations/{dest['id']}", json={"enabled": False})
            assert off.status_code == 200 and off.json()["enabled"] is False
            assert c.delete(f"{t}/destinations/{dest['id']}").status_code == 200
            assert c.get(f"{t}/destinations").json() == []
        finally:
            receiver.stop()

        # u2 orders again: the refresher recomputes u2 incrementally, and the audience
        # that uses the tag is materialised again because the tag changed
        send(server, tenant, order("u2", 10))
        until(lambda: c.get(f"{t}/tag-counts").json()["repeat"][0]["people"] == 2)
        until(lambda: len(c.get(f"{t}/audiences/vip/snapshots").json()) >= 2)
        assert c.get(f"{t}/audiences/vip/snapshots").json()[0]["reason"] == "tags_changed"

    listed = cli(server, "tags", "list", "--tenant", tenant.id)
    assert listed.returncode == 0 and "repeat" in listed.stdout, listed.stderr
    counted = cli(server, "audiences", "count", 'tag("repeat")', "--channel", "wechat",
                  "--tenant", tenant.id, "--json")  # fmt: skip
    assert counted.returncode == 0 and '"size": 2' in counted.stdout, counted.stderr
    outbox = cli(server, "destinations", "outbox", "--tenant", tenant.id, "--json")
    assert outbox.returncode == 0 and '"delivered"' in outbox.stdout, outbox.stderr
    bad = cli(server, "tags", "check", "count(", "--tenant", tenant.id)
    assert bad.returncode == 1 and "line 1, column" in bad.stderr

    # an audience is edited (the server materialises the new definition) and deleted
    with server.api(tenant.secret) as c:
        t = f"/v1/tenants/{tenant.id}"
        refused = c.patch(f"{t}/audiences/vip", json={"channel": "fax"})
        assert refused.status_code == 400 and "channel 'fax'" in refused.json()["message"]
        assert c.patch(f"{t}/audiences/nope", json={"name": "x"}).status_code == 404
    edited = cli(server, "audiences", "update", "vip", "--name", "VIP by SMS", "--channel", "sms",
                 "--tenant", tenant.id, "--json")  # fmt: skip
    assert edited.returncode == 0 and '"channel": "sms"' in edited.stdout, edited.stderr
    with server.api(tenant.secret) as c:
        until(lambda: c.get(f"{t}/audiences/vip/snapshots").json()[0]["reason"] == "edited")
        assert c.get(f"{t}/audiences/vip").json()["name"] == "VIP by SMS"
    gone = cli(server, "audiences", "delete", "vip", "--tenant", tenant.id)
    assert gone.returncode == 0 and "Deleted audience vip" in gone.stdout, gone.stderr
    with server.api(tenant.secret) as c:
        assert c.get(f"{t}/audiences/vip").status_code == 404
        assert c.get(f"{t}/audiences/vip/snapshots").status_code == 404
