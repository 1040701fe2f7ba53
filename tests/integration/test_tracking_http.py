"""The tracking API over raw HTTP: every way Segment clients authenticate and encode,
every endpoint alias, the settings document analytics.js loads, CORS, and dedup."""

from __future__ import annotations

import gzip
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from .harness import Server, Tenant, track


def post(server: Server, path: str, body: Any, **kw: Any) -> httpx.Response:
    """POST ``body`` (JSON-encoded unless bytes) to the tracking API."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    kw.setdefault("headers", {}).setdefault("Content-Type", "application/json")
    return httpx.post(f"{server.url}{path}", content=content, timeout=30.0, **kw)


def stored_ids(server: Server, tenant: Tenant) -> list[str]:
    return [e["message_id"] for e in server.events(tenant)]


@pytest.mark.parametrize("how", ["basic", "x-write-key", "query", "body"])
def test_every_way_of_sending_the_write_key(server: Server, tenant: Tenant, how: str) -> None:
    msg = track()
    kw: dict[str, Any] = {}
    if how == "basic":
        kw["auth"] = (tenant.write_key, "")
    elif how == "x-write-key":
        kw["headers"] = {"X-Write-Key": tenant.write_key}
    elif how == "query":
        kw["params"] = {"writeKey": tenant.write_key}
    else:
        msg["writeKey"] = tenant.write_key
    r = post(server, "/v1/track", msg, **kw)
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "accepted": 1, "rejected": []}
    assert stored_ids(server, tenant) == [msg["messageId"]]


def test_batch_body_write_key_and_text_plain(server: Server, tenant: Tenant) -> None:
    """analytics.js sends text/plain (a CORS 'simple request') with the key in the body."""
    msgs = [track(), track(), track()]
    body = {"batch": msgs, "writeKey": tenant.write_key}
    r = post(server, "/v1/batch", body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3
    assert sorted(stored_ids(server, tenant)) == sorted(m["messageId"] for m in msgs)


def test_gzip_body(server: Server, tenant: Tenant) -> None:
    msgs = [track(properties={"i": i}) for i in range(50)]
    raw = gzip.compress(orjson.dumps({"batch": msgs}))
    r = post(
        server,
        "/v1/batch",
        raw,
        auth=(tenant.write_key, ""),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    stored = {e["message_id"]: e for e in server.events(tenant)}
    assert set(stored) == {m["messageId"] for m in msgs}
    assert sorted(e["properties"]["i"] for e in stored.values()) == list(range(50))


def test_gzip_that_does_not_inflate_is_a_400(server: Server, tenant: Tenant) -> None:
    r = post(
        server,
        "/v1/batch",
        b"\x1f\x8b not really gzip",
        auth=(tenant.write_key, ""),
        headers={"Content-Encoding": "gzip"},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_request"
    assert "gzip" in r.json()["message"]


ONE_LETTER = {
    "i": {"userId": "u1", "traits": {"plan": "pro"}},
    "t": {"userId": "u1", "event": "Clicked"},
    "p": {"anonymousId": "a1", "name": "Home"},
    "s": {"userId": "u1", "name": "Cart"},
    "g": {"userId": "u1", "groupId": "g1"},
    "a": {"userId": "u1", "previousId": "a1"},
}
KINDS = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group", "a": "alias"}


@pytest.mark.parametrize("letter", sorted(ONE_LETTER))
@pytest.mark.parametrize("long", [False, True], ids=["short", "long"])
def test_single_call_paths(server: Server, tenant: Tenant, letter: str, long: bool) -> None:
    """/v1/t and /v1/track alike store a message of the type the path names."""
    msg = {**ONE_LETTER[letter], "messageId": f"m-{uuid.uuid4().hex}"}
    path = f"/v1/{KINDS[letter] if long else letter}"
    r = post(server, path, msg, auth=(tenant.write_key, ""))
    assert r.status_code == 200, r.text
    (event,) = server.events(tenant)
    assert (event["message_id"], event["type"]) == (msg["messageId"], KINDS[letter])


@pytest.mark.parametrize("path", ["/v1/b", "/v1/import"])
def test_batch_aliases(server: Server, tenant: Tenant, path: str) -> None:
    """The short batch path and the historical import both store a batch as sent."""
    old = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    msgs = [track(timestamp=(old + timedelta(minutes=i)).isoformat()) for i in range(3)]
    r = post(server, path, {"batch": msgs}, auth=(tenant.write_key, ""))
    assert r.status_code == 200, r.text
    stored = {e["message_id"]: e for e in server.events(tenant)}
    assert set(stored) == {m["messageId"] for m in msgs}
    for i, m in enumerate(msgs):
        # without sentAt there is no skew to correct: the historical time is kept
        assert stored[m["messageId"]]["timestamp"] == (old + timedelta(minutes=i)).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )


def test_clock_skew_is_corrected(server: Server, tenant: Tenant) -> None:
    """A client whose clock runs a day slow: timestamp = receivedAt - (sentAt - original)."""
    slow = datetime.now(UTC) - timedelta(days=1)
    msg = track(originalTimestamp=(slow - timedelta(seconds=10)).isoformat())
    body = {"batch": [msg], "sentAt": slow.isoformat()}
    assert post(server, "/v1/batch", body, auth=(tenant.write_key, "")).status_code == 200
    (event,) = server.events(tenant)
    lag = datetime.fromisoformat(event["received_at"]) - datetime.fromisoformat(event["timestamp"])
    assert timedelta(seconds=9) <= lag <= timedelta(seconds=12), lag


def test_import_keeps_historical_timestamps_as_sent(server: Server, tenant: Tenant) -> None:
    """/v1/import does not skew-correct: a backfill keeps the times it states."""
    when = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    msg = track(timestamp=when.isoformat())
    body = {"batch": [msg], "sentAt": (when + timedelta(days=1)).isoformat()}
    r = post(server, "/v1/import", body, auth=(tenant.write_key, ""))
    assert r.status_code == 200, r.text
    (event,) = server.events(tenant)
    assert event["timestamp"] == "2021-03-04T05:06:07"


def test_project_settings_point_back_here(server: Server, tenant: Tenant) -> None:
    r = httpx.get(
        f"{server.url}/v1/projects/{tenant.write_key}/settings",
        headers={"Origin": "http://shop.example"},
    )
    assert r.status_code == 200, r.text
    seg = r.json()["integrations"]["Segment.io"]
    assert seg["apiKey"] == tenant.write_key
    assert f"{seg['protocol']}://{seg['apiHost']}" == f"{server.url}/v1"
    assert r.headers["access-control-allow-origin"] in ("*", "http://shop.example")
    unknown = httpx.get(f"{server.url}/v1/projects/wk_not_a_key/settings")
    assert unknown.status_code == 401
    assert unknown.json()["code"] == "unauthorized"


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/t", "/v1/projects/wk_x/settings"])
def test_cors_preflight_is_allowed(server: Server, path: str) -> None:
    r = httpx.options(
        f"{server.url}{path}",
        headers={
            "Origin": "http://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization,x-write-key",
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] in ("*", "http://shop.example")
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


def test_same_batch_twice_is_stored_once(server: Server, tenant: Tenant) -> None:
    msgs = [track(properties={"n": i}) for i in range(20)]
    for _ in range(2):
        r = post(server, "/v1/batch", {"batch": msgs}, auth=(tenant.write_key, ""))
        assert r.status_code == 200, r.text
    ids = stored_ids(server, tenant)
    assert sorted(ids) == sorted(m["messageId"] for m in msgs)


def test_duplicates_inside_one_batch_and_across_paths(server: Server, tenant: Tenant) -> None:
    msg = track()
    r = post(server, "/v1/batch", {"batch": [msg, msg, msg]}, auth=(tenant.write_key, ""))
    assert r.status_code == 200, r.text
    single = {k: v for k, v in msg.items() if k != "type"}
    assert post(server, "/v1/t", single, auth=(tenant.write_key, "")).status_code == 200
    assert stored_ids(server, tenant) == [msg["messageId"]]


def test_concurrent_retries_of_one_batch_are_stored_once(server: Server, tenant: Tenant) -> None:
    """Retries racing each other land in the same group commit: still one copy each."""
    msgs = [track(properties={"n": i}) for i in range(100)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda _: (
                    post(
                        server, "/v1/batch", {"batch": msgs}, auth=(tenant.write_key, "")
                    ).status_code
                ),
                range(8),
            )
        )
    assert codes == [200] * 8
    ids = stored_ids(server, tenant)
    assert len(ids) == len(set(ids)) == 100
