"""The scan API in-process: the public scan (no key) and its rate limit, the scan's
event in ingest, dealer and store scans behind a codes:write key, campaigns and cap
redemption, alerts and the per-dealer diversion report."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from quanyu.api import scans as scans_api
from quanyu.api.app import create_app
from quanyu.codes.scans import ScanLimiter
from quanyu.codes.serials import CodeKeys
from quanyu.config import Settings
from quanyu.engine import Statement
from quanyu.store.journal import JournalError
from tests.codes.test_scans import GTIN, Made, make_code, product

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ADMIN = {"Authorization": "Bearer t"}


@dataclass
class Api:
    app: FastAPI
    c: TestClient
    tenant: str
    product: str

    def code(self, state: str = "activated", **kw: Any) -> Made:
        keys = CodeKeys.derive(self.app.state.master_key, self.tenant)
        with self.app.state.engine.connect() as db:
            return make_code(db, keys, self.tenant, self.product, state, **kw)

    def scan(self, code: str, **body: Any) -> Any:
        return self.c.post(f"/v1/public/tenants/{self.tenant}/scans", json={"code": code, **body})


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    app = create_app(Settings(data_dir=tmp_path / "data"), local_token="t")
    if not {getattr(r, "path", "") for r in scans_api.router.routes} <= {
        getattr(r, "path", "") for r in app.routes
    }:
        app.include_router(scans_api.router)
    with TestClient(app) as c:
        tenant = c.post("/v1/tenants", json={"name": "Guizhou"}, headers=ADMIN).json()["id"]
        with app.state.engine.connect() as db:
            pid = product(db, tenant)
        yield Api(app, c, tenant, pid)
        scanner = getattr(app.state, "scanner", None)
        if scanner is not None:  # app.py's lifespan stops it once the router is wired there
            scanner.stop()


def test_public_scan_answers_and_lands_in_ingest(api: Api) -> None:
    made = api.code()
    r = api.scan(
        f"https://t.brand.cn/01/{GTIN}/21/{made.serial}",
        city="遵义",
        openid="o_9",
        app_id="wxa",
        device_id="d-9",
    )
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] == "genuine" and r.json()["first_scan"] is True
    again = api.scan(made.serial, city="贵阳").json()
    assert again["scans_before"] == 1 and again["first_city"] == "遵义"
    forged = api.scan(made.serial[:-1] + ("Z" if made.serial[-1] != "Z" else "Y")).json()
    assert forged["verdict"] == "forged"
    # durable in the scan journal before each 200; an API read waits for the fold
    listed = api.c.get(
        f"/v1/tenants/{api.tenant}/events", params={"event": "Product Scanned"}, headers=ADMIN
    )
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["items"]) == 3
    with api.app.state.engine.connect() as db:
        src = db.one(
            Statement(
                "t.api_scan_source",
                "SELECT count(*) FROM sources WHERE tenant_id = ? AND name = 'Product QR scans'",
            ),
            [api.tenant],
        )
    assert src == (1,)  # one source, made once


def test_scans_answered_from_memory_match_the_route(api: Api) -> None:
    """Once a tenant's codes and history are in memory, scans skip FastAPI's routing
    (api/hot_scans.py); the answers, the stored rows and the errors stay the route's."""
    made = api.code()
    scanner = api.app.state.scanner if hasattr(api.app.state, "scanner") else None
    assert scanner is None  # made by the first scan, which the route answers
    first = api.scan(made.serial, city="遵义", openid="o_1", app_id="wxa")
    scanner = api.app.state.scanner
    scanner._memory.load(api.tenant)  # the snapshot a server loads at start
    calls: list[object] = []
    now = scanner.scan_now

    def counted(*a: Any, **kw: Any) -> Any:
        got = now(*a, **kw)
        calls.append(got is not None)
        return got

    scanner.scan_now = counted
    second = api.scan(made.serial, city="贵阳", openid="o_2", app_id="wxa")
    forged = api.scan(made.serial[:-1] + ("Z" if made.serial[-1] != "Z" else "Y"))
    assert calls == [True, True]  # both answered by the fast path
    assert first.json()["first_scan"] and second.status_code == 200
    body = second.json()
    assert body["verdict"] == "genuine" and body["scans_before"] == 1
    assert body["first_city"] == "遵义" and "x-request-id" in second.headers
    assert forged.json()["verdict"] == "forged"
    browser = api.c.post(
        f"/v1/public/tenants/{api.tenant}/scans",
        json={"code": made.serial},
        headers={"Origin": "https://h5.brand.cn"},
    )
    assert len(calls) == 2 and browser.json()["scans_before"] == 2  # the route answered
    assert browser.headers["access-control-allow-origin"] in ("*", "https://h5.brand.cn")
    # what the fast path cannot judge goes to the route, which answers as it always has
    bad = api.scan(made.serial, lat=123)
    assert bad.status_code == 422 and "lat" in bad.json()["message"]
    assert len(calls) == 2  # a body that does not validate never reached the scanner
    unknown = api.code()  # issued after the snapshot: the route looks it up
    assert api.scan(unknown.serial).json()["verdict"] == "genuine"
    assert calls == [True, True, False]
    api.app.state.scanner.limiter = ScanLimiter(per_ip=0.5, ip_burst=1)
    assert api.scan(made.serial).status_code == 200
    limited = api.scan(made.serial)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    listed = api.c.get(  # an API read: waits for the fold of every scan answered
        f"/v1/tenants/{api.tenant}/events", params={"event": "Product Scanned"}, headers=ADMIN
    )
    assert len(listed.json()["items"]) == 6  # every scan answered 200
    with api.app.state.engine.connect() as db:
        rows = db.execute(
            Statement(
                "t.api_fast_scans",
                "SELECT verdict, city, scanned_at FROM code_scans WHERE tenant_id = ?"
                " ORDER BY scanned_at",
            ),
            [api.tenant],
        )
    assert [r[:2] for r in rows][:3] == [("genuine", "遵义"), ("genuine", "贵阳"), ("forged", None)]
    assert rows[1][2] == datetime.fromisoformat(body["scanned_at"])


def test_public_scan_is_rate_limited_with_retry_after(api: Api) -> None:
    made = api.code()
    assert api.scan(made.serial).status_code == 200
    api.app.state.scanner.limiter = ScanLimiter(per_ip=0.5, ip_burst=2)
    assert api.scan(made.serial).status_code == 200
    assert api.scan(made.serial).status_code == 200
    r = api.scan(made.serial)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1


def test_party_scans_need_a_codes_write_key(api: Api) -> None:
    made = api.code("shipped", dealer="D1", region="四川")
    body = {"codes": [made.serial], "role": "store", "party_id": "S1", "city": "广州"}
    path = f"/v1/tenants/{api.tenant}/scans"
    assert api.c.post(path, json=body).status_code == 401
    key = api.c.post(
        f"/v1/tenants/{api.tenant}/keys",
        headers=ADMIN,
        json={"name": "ro", "scopes": ["codes:read"]},
    ).json()["secret"]
    assert (
        api.c.post(path, json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 403
    )
    r = api.c.post(path, json=body, headers=ADMIN)
    assert r.status_code == 200 and r.json()[0]["verdict"] == "genuine"
    for i in range(3):
        other = api.code("shipped", dealer="D1", region="四川")
        api.c.post(path, headers=ADMIN, json={**body, "codes": [other.serial], "party_id": f"S{i}"})
    det = api.c.post(f"/v1/tenants/{api.tenant}/scans/anomalies/detect", headers=ADMIN)
    assert det.status_code == 200 and det.json()["by_kind"] == {"diversion": 1}
    alerts = api.c.get(f"/v1/tenants/{api.tenant}/scans/alerts?kind=diversion", headers=ADMIN)
    assert [a["dealer_id"] for a in alerts.json()] == ["D1"]
    rep = api.c.get(f"/v1/tenants/{api.tenant}/scans/dealers/D1/report", headers=ADMIN).json()
    assert rep["rows"][0]["outside_cities"] == {"广州": 4} and rep["rows"][0]["flagged"]


def test_campaign_and_redemption_over_http(api: Api) -> None:
    camps = f"/v1/tenants/{api.tenant}/rewards/campaigns"
    made = api.code()
    bad = api.c.post(camps, headers=ADMIN, json={"name": "x", "odds": 1, "prize_cents": 100})
    assert bad.status_code == 400 and "budget" in bad.json()["message"]
    camp = api.c.post(
        camps,
        headers=ADMIN,
        json={"name": "cny", "odds": 1, "prize_cents": 100, "budget_count": 10},
    ).json()
    path = f"/v1/public/tenants/{api.tenant}/redemptions"
    body = {"code": made.inner_serial, "campaign_id": camp["id"], "person": "o_1"}
    first = api.c.post(path, json=body)
    assert first.status_code == 200 and first.json()["outcome"] == "won", first.text
    assert api.c.post(path, json=body).json()["outcome"] == "already_redeemed"
    listed = api.c.get(camps, headers=ADMIN).json()
    assert listed[0]["issued_count"] == 1


def test_epcis_export_over_http(api: Api) -> None:
    path = f"/v1/tenants/{api.tenant}/epcis/events"
    assert api.c.get(path).status_code == 401
    r = api.c.get(path, headers=ADMIN)
    assert r.status_code == 200 and r.headers["content-type"] == "application/ld+json"
    assert r.json()["type"] == "EPCISDocument" and r.headers["X-Next-After"] == "0"


def test_a_fast_path_failure_is_answered_like_the_apps_errors(api: Api) -> None:
    made = api.code()
    assert api.scan(made.serial).status_code == 200  # the scanner exists from here on
    scanner = api.app.state.scanner

    def broken(*a: Any, **kw: Any) -> Any:
        raise RuntimeError("a bug")

    def stopping(*a: Any, **kw: Any) -> Any:
        raise JournalError("the scans journal is stopped")

    scanner.scan_now = broken
    r = api.scan(made.serial)
    assert r.status_code == 500 and r.json()["code"] == "internal_error", r.text
    scanner.scan_now = stopping
    r = api.scan(made.serial)
    assert r.status_code == 503 and "scan again" in r.json()["message"], r.text
