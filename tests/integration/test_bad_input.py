"""Bad input gets its documented answer, and nothing valid sent alongside it is lost.

Every error body carries a stable ``code`` and a human ``message``; rejected
messages are kept in the dead-letter store with their reason.
"""

from __future__ import annotations

import gzip
import time
from typing import Any

import httpx
import orjson
import pytest

from .harness import Server, Tenant, track


def post(server: Server, path: str, body: Any, key: str | None, **kw: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    auth = (key, "") if key is not None else None
    return httpx.post(f"{server.url}{path}", content=content, auth=auth, timeout=30.0, **kw)


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check an error answer: its status, its code, and a message of some substance."""
    assert r.status_code == status, f"expected {status} {code}, got {r.status_code}: {r.text}"
    body = r.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and len(body["message"]) > 20, body
    return dict(body)


def test_malformed_json_batch(server: Server, tenant: Tenant) -> None:
    raw = b'{"batch": [{"type": "track", "userId": "u1", "event": '
    error(post(server, "/v1/batch", raw, tenant.write_key), 400, "invalid_json")
    (letter,) = server.dead_letters(tenant)
    assert letter["code"] == "invalid_json"
    assert letter["payload"] == raw.decode(), "the unparseable body is kept as received"
    assert letter["source_id"] == tenant.source_id


def test_malformed_json_single_call(server: Server, tenant: Tenant) -> None:
    r = post(server, "/v1/track", b'{"userId": "u1", "event": ', tenant.write_key)
    assert r.status_code == 400, r.text
    body = r.json()
    codes = {body["code"], *(x["code"] for x in body.get("rejected", []))}
    assert "invalid_json" in codes, body
    assert [d["code"] for d in server.dead_letters(tenant)] == ["invalid_json"]


def test_wrong_types_are_rejected_and_neighbours_kept(server: Server, tenant: Tenant) -> None:
    good = [track(), track()]
    bad = [
        {**track(), "userId": {"nested": "object"}},
        {**track(), "properties": ["not", "an", "object"]},
        {**track(), "timestamp": "yesterday-ish"},
    ]
    r = post(server, "/v1/batch", {"batch": [good[0], *bad, good[1]]}, tenant.write_key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2
    assert [(x["index"], x["code"]) for x in body["rejected"]] == [
        (1, "invalid_field"),
        (2, "invalid_field"),
        (3, "invalid_field"),
    ]
    assert all(x["message"] for x in body["rejected"])
    assert sorted(e["message_id"] for e in server.events(tenant)) == sorted(
        m["messageId"] for m in good
    )
    letters = server.dead_letters(tenant)
    assert sorted(d["code"] for d in letters) == ["invalid_field"] * 3


def test_oversize_message_rejected_neighbours_stored(server: Server, tenant: Tenant) -> None:
    good = [track(), track()]
    huge = track(properties={"blob": "x" * (33 * 1024)})
    r = post(server, "/v1/batch", {"batch": [good[0], huge, good[1]]}, tenant.write_key)
    assert r.status_code == 200, r.text
    (rej,) = r.json()["rejected"]
    assert (rej["index"], rej["code"]) == (1, "message_too_large")
    assert "32768" in rej["message"] or "32 KB" in rej["message"]
    assert sorted(e["message_id"] for e in server.events(tenant)) == sorted(
        m["messageId"] for m in good
    )
    assert [d["code"] for d in server.dead_letters(tenant)] == ["message_too_large"]


def test_oversize_request(server: Server, tenant: Tenant) -> None:
    msgs = [track(properties={"blob": "y" * 20_000}) for _ in range(30)]  # ~600 KB
    error(post(server, "/v1/batch", {"batch": msgs}, tenant.write_key), 400, "payload_too_large")
    assert server.events(tenant) == []


def test_gzip_bomb_is_refused(server: Server, tenant: Tenant) -> None:
    """A small gzip body that inflates past 500 KB is refused before it is inflated whole."""
    body = b'{"batch": [' + b" " * (20 * 1024 * 1024) + b"]}"
    bomb = gzip.compress(body)
    assert len(bomb) < 100 * 1024
    r = post(server, "/v1/batch", bomb, tenant.write_key, headers={"Content-Encoding": "gzip"})
    error(r, 400, "payload_too_large")


def test_batch_over_2500_messages(server: Server, tenant: Tenant) -> None:
    msgs = [{"type": "track", "userId": "u", "event": "e"} for _ in range(2501)]
    body = error(
        post(server, "/v1/batch", {"batch": msgs}, tenant.write_key), 400, "payload_too_large"
    )
    assert "2500" in body["message"] or "2,500" in body["message"]
    assert server.events(tenant) == []


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "track", "event": "No One"}, "missing_identity"),
        ({"type": "identify", "traits": {"a": 1}}, "missing_identity"),
        ({"type": "track", "userId": "u1"}, "missing_field"),
        ({"type": "track", "userId": "u1", "event": ""}, "missing_field"),
        ({"type": "group", "userId": "u1"}, "missing_field"),
        ({"type": "alias", "userId": "u1"}, "missing_field"),
        ({"type": "purchase", "userId": "u1"}, "unknown_type"),
    ],
)
def test_spec_violations(
    server: Server, tenant: Tenant, message: dict[str, Any], code: str
) -> None:
    message = {**message, "messageId": f"bad-{code}"}
    ok = track()
    r = post(server, "/v1/batch", {"batch": [message, ok]}, tenant.write_key)
    assert r.status_code == 200, r.text
    assert [(x["code"], x["messageId"]) for x in r.json()["rejected"]] == [(code, f"bad-{code}")]
    assert [e["message_id"] for e in server.events(tenant)] == [ok["messageId"]]
    # alone, the same message gets a 400 naming the reason
    alone = error(
        post(server, "/v1/batch", {"batch": [message]}, tenant.write_key), 400, "validation_failed"
    )
    assert alone["rejected"][0]["code"] == code
    assert [d["code"] for d in server.dead_letters(tenant)] == [code, code]


def test_unknown_write_key(server: Server) -> None:
    body = error(post(server, "/v1/batch", {"batch": [track()]}, "wk_nobody"), 401, "unauthorized")
    assert "unknown" in body["message"].lower()
    none = error(post(server, "/v1/batch", {"batch": [track()]}, None), 401, "unauthorized")
    assert "write key" in none["message"].lower()


def test_revoked_write_key(server: Server, tenant: Tenant) -> None:
    assert post(server, "/v1/batch", {"batch": [track()]}, tenant.write_key).status_code == 200
    keys = server.call("GET", f"/v1/tenants/{tenant.id}/keys", tenant.secret)
    (write,) = [k for k in keys if k["kind"] == "write" and k["source_id"] == tenant.source_id]
    server.call("DELETE", f"/v1/tenants/{tenant.id}/keys/{write['id']}", tenant.secret)
    late = track()
    body = error(
        post(server, "/v1/batch", {"batch": [late]}, tenant.write_key), 401, "unauthorized"
    )
    assert "revoked" in body["message"]
    assert late["messageId"] not in {e["message_id"] for e in server.events(tenant)}


def test_rate_limit(server: Server) -> None:
    t = server.new_tenant(rate_limit=50)
    answers: list[httpx.Response] = []
    start = time.monotonic()
    with httpx.Client(base_url=server.url, auth=(t.write_key, ""), timeout=30.0) as c:
        for _ in range(20):  # 200 events in 10-event batches, as fast as we can
            answers.append(
                c.post("/v1/batch", content=orjson.dumps({"batch": [track() for _ in range(10)]}))
            )
    elapsed = time.monotonic() - start
    ok = [r for r in answers if r.status_code == 200]
    limited = [r for r in answers if r.status_code == 429]
    assert len(ok) + len(limited) == len(answers), [r.status_code for r in answers]
    assert limited, f"no 429 for 200 events in {elapsed:.2f} s at a limit of 50/s"
    # a 1-second burst plus what refills while we send
    assert len(ok) * 10 <= 50 + 50 * elapsed + 10
    r = limited[0]
    error(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1
    assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time()) - 1
    assert len(server.events(t)) == 10 * len(ok), "a limited batch must store nothing"
