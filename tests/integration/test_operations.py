"""Operations: health and readiness, Prometheus metrics, JSON logs with request ids."""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from .harness import Server, Tenant, metric, samples, track


def test_health_and_readiness(server: Server) -> None:
    r = httpx.get(f"{server.url}/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert isinstance(ready.json()["queued_events"], int)


def test_metrics_count_accepted_and_rejected_by_source(server: Server, tenant: Tenant) -> None:
    batch = [track(), track(), track(), {"type": "track", "userId": "u1"}]
    r = httpx.post(f"{server.url}/v1/batch", json={"batch": batch}, auth=(tenant.write_key, ""))
    assert r.status_code == 200, r.text
    found = samples(server)
    assert metric(found, "quanyu_events_accepted_total", source=tenant.source_id) == 3
    rejected = metric(
        found, "quanyu_events_rejected_total", source=tenant.source_id, reason="missing_field"
    )
    assert rejected == 1
    assert metric(found, "quanyu_request_duration_seconds_count", route="/v1/batch") >= 1
    assert metric(found, "quanyu_request_duration_seconds_bucket", route="/v1/batch", le="+Inf")
    statuses = {lbl.get("status") for lbl, _ in found["quanyu_request_duration_seconds_count"]}
    assert "200" in statuses


def log_entry(server: Server, request_id: str, timeout: float = 3.0) -> dict[str, Any]:
    """The JSON log line of one request (the access line is written as it ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.log_lines():
            if request_id in line:
                return dict(json.loads(line))
        time.sleep(0.05)
    raise AssertionError(f"no log line for request {request_id}:\n{server.log_tail()}")


def test_a_4xx_is_logged_as_json_with_its_request_id(server: Server) -> None:
    rid = f"it-{uuid.uuid4().hex}"
    r = httpx.post(
        f"{server.url}/v1/batch",
        json={"batch": []},
        auth=("wk_unknown", ""),
        headers={"X-Request-ID": rid},
    )
    assert r.status_code == 401
    assert r.headers["x-request-id"] == rid
    entry = log_entry(server, rid)
    assert entry["request_id"] == rid
    assert entry["status"] == 401
    assert entry["path"] == "/v1/batch"
    assert entry["method"] == "POST"
    assert entry["level"] in ("info", "warning")
    assert isinstance(entry["ms"], int | float)


def test_every_response_has_a_request_id(server: Server) -> None:
    ids = set()
    for path in ("/healthz", "/readyz", "/metrics", "/v1/nowhere"):
        r = httpx.get(f"{server.url}{path}")
        rid = r.headers.get("x-request-id", "")
        assert re.fullmatch(r"[0-9A-Za-z_-]{8,128}", rid), f"{path}: X-Request-ID {rid!r}"
        ids.add(rid)
    assert len(ids) == 4, "request ids must differ"
    nowhere = httpx.get(f"{server.url}/v1/nowhere")
    assert nowhere.status_code == 404
    assert nowhere.json()["code"] == "not_found"


def test_every_stderr_line_is_json(server: Server, tenant: Tenant) -> None:
    """Log shippers parse stderr line by line: warnings and tracebacks must be JSON too."""
    r = httpx.post(f"{server.url}/v1/batch", json={"batch": [track()]}, auth=(tenant.write_key, ""))
    assert r.status_code == 200
    httpx.get(f"{server.url}/v1/nowhere")
    bad = []
    for line in server.log_lines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            bad.append(line)
            continue
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
    assert not bad, "stderr lines that are not JSON:\n" + "\n".join(bad[:10])


def test_concurrent_requests_with_one_key_all_succeed(server: Server, tenant: Tenant) -> None:
    """Recording a key's last use must not fail requests that race on it."""

    def get(_: int) -> int:
        with server.api(tenant.secret) as c:
            return c.get(f"/v1/tenants/{tenant.id}/sources").status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(get, range(64)))
    assert codes == [200] * 64
    keys = server.call("GET", f"/v1/tenants/{tenant.id}/keys", tenant.secret)
    assert any(k["last_used_at"] for k in keys)


def test_a_revoked_secret_key_stops_working_at_once(server: Server, tenant: Tenant) -> None:
    """Authenticated keys are remembered for a moment; a revocation forgets them."""
    made = server.call(
        "POST", f"/v1/tenants/{tenant.id}/keys", json={"name": "temp", "scopes": ["admin"]}
    )
    with server.api(made["secret"]) as c:
        assert c.get(f"/v1/tenants/{tenant.id}/sources").status_code == 200
        server.call("DELETE", f"/v1/tenants/{tenant.id}/keys/{made['id']}", tenant.secret)
        r = c.get(f"/v1/tenants/{tenant.id}/sources")
    assert r.status_code == 401 and "revoked" in r.json()["message"]


def test_a_restarted_server_loads_its_code_snapshots_before_any_scan(
    fresh_server: Server,
) -> None:
    s = fresh_server
    tenant = s.new_tenant()
    with s.api(tenant.secret) as c:
        base = f"/v1/tenants/{tenant.id}/codes"
        brand = c.post(f"/v1/tenants/{tenant.id}/brands", json={"name": "G"}).json()["id"]
        assert c.put(f"{base}/brands/{brand}", json={"short_domain": "t.brand.cn"}).is_success
        made = {"gtin": "6901234567892", "brand_id": brand, "name": "x"}
        product = c.post(f"{base}/products", json=made).json()["id"]
        wanted = {"product_id": product, "quantity": 7, "line": "L1", "lot": "B1"}
        order = c.post(f"{base}/orders", json=wanted)
        assert order.status_code == 201, order.text
    s.restart()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # no scan is sent: the server warms on its own
        held = metric(samples(s), "quanyu_code_snapshot_codes", tenant=tenant.id)
        if held:
            break
        time.sleep(0.1)
    assert held == 7
