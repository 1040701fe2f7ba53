"""OneID on the real server: events sent over HTTP become people, conflicts are listed,
a split through the CLI separates them, and a tenant's people are its own."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pyarrow as pa

from .harness import Server, Tenant
from .test_cli import cli


def identify(
    user: str | None = None, anonymous: str | None = None, **traits: Any
) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "identify", "messageId": str(uuid.uuid4()), "traits": traits}
    if user:
        msg["userId"] = user
    if anonymous:
        msg["anonymousId"] = anonymous
    return msg


def send(server: Server, write_key: str, *messages: dict[str, Any]) -> float:
    r = httpx.post(f"{server.url}/v1/batch", json={"batch": list(messages)}, auth=(write_key, ""))
    assert r.status_code == 200, r.text
    return time.monotonic()


def lookup(server: Server, tenant: Tenant, type: str, value: str, **kw: str) -> httpx.Response:
    with server.api(tenant.secret) as c:
        return c.get(
            f"/v1/tenants/{tenant.id}/identity/lookup", params={"type": type, "value": value, **kw}
        )


def wait_profile(
    server: Server, tenant: Tenant, type: str, value: str, bound: float = 5.0, **kw: str
) -> str:
    """The OneID of an identifier, polling until the resolver has it (within ``bound`` s)."""
    deadline = time.monotonic() + bound
    while True:
        r = lookup(server, tenant, type, value, **kw)
        if r.status_code == 200:
            return str(r.json()["profile"])
        assert r.status_code == 404, r.text
        assert time.monotonic() < deadline, f"{type} {value} not resolved within {bound} s"
        time.sleep(0.02)


def test_events_from_two_touchpoints_become_one_person_within_a_second(
    server: Server, tenant: Tenant
) -> None:
    pos = server.create_source(tenant.id, "POS", kind="pos")
    sent = send(
        server, tenant.write_key, identify(anonymous="mp-1", unionid="U-1", phone="13912345678")
    )
    first = wait_profile(server, tenant, "unionid", "U-1")
    took = time.monotonic() - sent
    send(server, pos["write_key"], identify(user="card-88", phone="+86 139 1234 5678"))
    deadline = time.monotonic() + 5
    while wait_profile(server, tenant, "user_id", "card-88", scope=pos["id"]) != first:
        assert time.monotonic() < deadline, "the POS member never joined the mini-program person"
        time.sleep(0.02)
    # the phone, typed either way, finds the same person
    assert wait_profile(server, tenant, "phone", "13912345678") == first
    assert took < 3.0, f"resolution took {took:.2f} s after the 200"
    # unknown identifiers are a clear 404
    r = lookup(server, tenant, "phone", "13700000001")
    assert r.status_code == 404 and "No person has the phone" in r.json()["message"]


def test_a_shared_device_is_a_conflict_and_a_split_separates_people(
    server: Server, tenant: Tenant
) -> None:
    # one request each, so ann's links come first (within a request, event time decides)
    send(
        server,
        tenant.write_key,
        identify(user="ann", email="family@home.cn"),
        identify(user="ann", phone="13811112222"),
    )
    send(
        server,
        tenant.write_key,
        identify(user="ben", email="family@home.cn"),
        identify(user="ben", phone="13833334444"),
    )
    ann = wait_profile(server, tenant, "user_id", "ann", scope=tenant.source_id)
    ben = wait_profile(server, tenant, "user_id", "ben", scope=tenant.source_id)
    # a user id is one per person per source, so the shared e-mail cannot merge them
    assert ann != ben
    page = server.call("GET", f"/v1/tenants/{tenant.id}/identity/conflicts", tenant.secret)
    (conflict,) = page["data"]
    assert conflict["limit"] == f"user_id:{tenant.source_id}"
    reviewed = server.call(
        "POST",
        f"/v1/tenants/{tenant.id}/identity/conflicts/{conflict['edge_id']}/review",
        tenant.secret,
        json={"review": "a family e-mail: keep apart"},
    )
    assert reviewed["review"].startswith("a family")
    assert (
        server.call("GET", f"/v1/tenants/{tenant.id}/identity/conflicts", tenant.secret)["data"]
        == []
    )
    # unlink the e-mail from ann through the CLI: ann keeps her OneID, the e-mail stands alone
    out = cli(server, "profiles", "split", "email:family@home.cn", "--tenant", tenant.id, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)[0]
    assert ann in result["profiles"] and len(result["profiles"]) == 2
    assert wait_profile(server, tenant, "user_id", "ann", scope=tenant.source_id) == ann
    assert wait_profile(server, tenant, "email", "family@home.cn") != ann
    audit = server.call("GET", f"/v1/tenants/{tenant.id}/audit", tenant.secret)
    assert any(e["action"] == "identity.unlink" for e in audit)


def test_full_rebuild_through_the_cli_keeps_every_person(server: Server, tenant: Tenant) -> None:
    send(
        server,
        tenant.write_key,
        *[identify(anonymous=f"a{i}", unionid=f"U{i % 7}") for i in range(40)],
    )
    before = {f"U{i}": wait_profile(server, tenant, "unionid", f"U{i}") for i in range(7)}
    out = cli(server, "resolve", "--full", "--tenant", tenant.id, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)[0]
    assert report["moved"] == 0 and report["profiles"] == 7
    assert {u: wait_profile(server, tenant, "unionid", u) for u in before} == before


def test_status_shows_resolution_catching_up_through_the_api_and_the_cli(
    server: Server, tenant: Tenant
) -> None:
    send(
        server,
        tenant.write_key,
        *[identify(anonymous=f"st{i}", unionid=f"SU{i}") for i in range(5)],
    )
    wait_profile(server, tenant, "unionid", "SU4")
    with server.api(tenant.secret) as c:
        deadline = time.monotonic() + 5
        while (found := c.get(f"/v1/tenants/{tenant.id}/identity/status").json())["pending_events"]:
            assert time.monotonic() < deadline, found
            time.sleep(0.05)
    assert found["resolved_seq"] >= 1 and found["lag_seconds"] == 0.0
    deadline = time.monotonic() + 5  # the gauge follows the background runs of every tenant
    behind = "quanyu_identity_commits_behind 0.0"
    while behind not in (m := httpx.get(f"{server.url}/metrics").text):
        assert time.monotonic() < deadline, [x for x in m.splitlines() if "behind" in x]
        time.sleep(0.05)
    assert found["pending_upto"] is None and found["oldest_pending_at"] is None
    out = cli(server, "resolve", "--status", "--tenant", tenant.id, "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)[0]
    assert shown["pending_events"] == 0 and shown["resolved_seq"] >= found["resolved_seq"]
    both = cli(server, "resolve", "--status", "--full", "--tenant", tenant.id)
    assert both.returncode != 0 and "without --full" in both.stderr + both.stdout


def test_people_are_invisible_to_another_tenant(server: Server) -> None:
    a, b = server.new_tenant(), server.new_tenant()
    send(server, b.write_key, identify(anonymous="x", unionid="SECRET-U"))
    wait_profile(server, b, "unionid", "SECRET-U")
    with server.api(a.secret) as c:
        r = c.get(
            f"/v1/tenants/{b.id}/identity/lookup", params={"type": "unionid", "value": "SECRET-U"}
        )
        assert r.status_code == 404
        r = c.get(
            f"/v1/tenants/{a.id}/identity/lookup", params={"type": "unionid", "value": "SECRET-U"}
        )
        assert r.status_code == 404


def test_the_360_view_through_the_api_and_the_cli(server: Server, tenant: Tenant) -> None:
    pos = server.create_source(tenant.id, "POS", kind="pos")
    send(
        server,
        tenant.write_key,
        identify(anonymous="mp-9", unionid="U-9", phone="13700001111", city="上海"),
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": "mp-9",
            "messageId": str(uuid.uuid4()),
            "context": {"traits": {"unionid": "U-9"}},
        },
    )
    send(server, pos["write_key"], identify(user="card-9", phone="137-0000-1111", city="杭州"))
    oneid = wait_profile(server, tenant, "unionid", "U-9")
    deadline = time.monotonic() + 5
    while wait_profile(server, tenant, "user_id", "card-9", scope=pos["id"]) != oneid:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    view = server.call(
        "GET",
        f"/v1/tenants/{tenant.id}/profiles/by-identifier",
        tenant.secret,
        params={"type": "phone", "value": "+8613700001111"},
    )
    assert view["oneid"] == oneid
    kinds = sorted(i["type"] for i in view["identities"])
    assert kinds == ["anonymous_id", "phone", "unionid", "user_id"]
    # the phone is shown masked (it is stored sealed), the latest city survives
    (phone,) = [i for i in view["identities"] if i["type"] == "phone"]
    assert phone["value"] == "+86 137****1111"
    assert view["traits"]["city"]["value"] == "杭州"
    assert view["traits"]["phone"]["value"] == "+86 137****1111"
    assert view["basics"]["events"] == 3
    page = server.call("GET", f"/v1/tenants/{tenant.id}/profiles/{oneid}/events", tenant.secret)
    assert sorted(e["type"] for e in page["items"]) == ["identify", "identify", "track"]
    out = cli(server, "profiles", "show", "unionid:U-9", "--tenant", tenant.id)
    assert out.returncode == 0, out.stderr
    assert (
        oneid in out.stdout and "+86 137****1111" in out.stdout and "13700001111" not in out.stdout
    )
    # another tenant's key cannot read it
    other = server.new_tenant()
    with server.api(other.secret) as c:
        assert c.get(f"/v1/tenants/{tenant.id}/profiles/{oneid}").status_code == 404


def test_trait_rules_choose_the_surviving_value(server: Server, tenant: Tenant) -> None:
    pos = server.create_source(tenant.id, "POS", kind="pos")
    send(server, pos["write_key"], identify(anonymous="t-1", unionid="U-T", birthday="1990-05-01"))
    time.sleep(0.01)  # the mini-program's later, mistyped birthday
    send(server, tenant.write_key, identify(anonymous="t-2", unionid="U-T", birthday="1990-01-05"))
    wait_profile(server, tenant, "anonymous_id", "t-2", scope=tenant.source_id)
    path = f"/v1/tenants/{tenant.id}/profiles/by-identifier"
    params = {"type": "unionid", "value": "U-T"}
    latest = server.call("GET", path, tenant.secret, params=params)
    assert latest["traits"]["birthday"]["value"] == "1990-01-05"
    rules = {"keys": {"birthday": {"rule": "source_priority", "sources": ["pos"]}}}
    server.call("PUT", f"/v1/tenants/{tenant.id}/trait-rules", tenant.secret, json=rules)
    chosen = server.call("GET", path, tenant.secret, params=params)["traits"]["birthday"]
    assert (chosen["value"], chosen["source_id"]) == ("1990-05-01", pos["id"])
    with server.api(tenant.secret) as c:
        bad = c.put(f"/v1/tenants/{tenant.id}/trait-rules", json={"keys": {"x": "loudest"}})
    assert bad.status_code in (400, 422) and "loudest" in bad.json()["message"]


def test_rules_are_read_and_replaced_per_tenant(server: Server, tenant: Tenant) -> None:
    path = f"/v1/tenants/{tenant.id}/identity/rules"
    rules = server.call("GET", path, tenant.secret)["rules"]
    assert rules["types"]["phone"]["pii"] is True and rules["types"]["unionid"]["limit"] == 1
    custom = {
        "key": "tmall_id", "scope": "group", "priority": 2, "limit": 1,
        "blocked_values": ["guest"],
    }  # fmt: skip
    rules["types"]["tmall_id"] = custom
    server.call("PUT", path, tenant.secret, json={"rules": rules})
    ext = [{"id": "guest", "type": "tmall_id"}]
    send(
        server,
        tenant.write_key,
        {"type": "track", "event": "Viewed", "anonymousId": "g1", "messageId": str(uuid.uuid4()),
         "context": {"externalIds": ext}},
        {"type": "track", "event": "Viewed", "anonymousId": "g2", "messageId": str(uuid.uuid4()),
         "context": {"externalIds": ext}},
    )  # fmt: skip
    one = wait_profile(server, tenant, "anonymous_id", "g1", scope=tenant.source_id)
    two = wait_profile(server, tenant, "anonymous_id", "g2", scope=tenant.source_id)
    assert one != two, "a blocked value must link nobody"
    assert lookup(server, tenant, "tmall_id", "guest").status_code in (400, 404)
    rules["types"]["tmall_id"] = {**custom, "limit": 0}
    with server.api(tenant.secret) as c:
        bad = c.put(path, json={"rules": rules})
    assert bad.status_code in (400, 422) and "limit" in bad.json()["message"]
    audit = server.call("GET", f"/v1/tenants/{tenant.id}/audit", tenant.secret)
    assert any(e["action"] == "identity.rules.update" for e in audit)


def test_bad_input_to_the_identity_api_is_answered_clearly(server: Server, tenant: Tenant) -> None:
    send(server, tenant.write_key, identify(anonymous="ok-1", unionid="U-OK"))
    wait_profile(server, tenant, "unionid", "U-OK")
    base = f"/v1/tenants/{tenant.id}"
    with server.api(tenant.secret) as c:
        r = c.get(f"{base}/identity/lookup", params={"type": "phone", "value": "call me"})
        assert r.status_code == 400 and "phone" in r.json()["message"]
        r = c.get(f"{base}/identity/lookup", params={"type": "openid", "value": "o-1"})
        assert r.status_code == 400 and "scope" in r.json()["message"]  # which app?
        r = c.post(f"{base}/identity/evaluate", content=b"not arrow")
        assert r.status_code == 400 and "Arrow IPC" in r.json()["message"]
        sink = pa.BufferOutputStream()
        table = pa.table({"record_id": ["x"]})
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        r = c.post(f"{base}/identity/evaluate", content=sink.getvalue().to_pybytes())
        assert r.status_code == 400 and "person_id" in r.json()["message"]
        r = c.get(f"{base}/profiles/not-a-oneid")
        assert r.status_code in (400, 404) and "OneID" in r.json()["message"]
        r = c.delete(f"{base}/identity/links", params={"type": "unionid", "value": "U-NONE"})
        assert r.status_code == 404
    # nothing valid was lost: the person is still there
    assert wait_profile(server, tenant, "unionid", "U-OK")
