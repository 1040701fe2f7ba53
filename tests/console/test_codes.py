"""The codes pages in a real browser: a code made, activated and scanned through the API
shows up on its own page with every lifecycle event and the scan, each event proved
against a signed checkpoint; the overview's lifecycle counts, scan map, diversion and
printer package; and the scan map's drawing on its own."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from typing import Any

import httpx

from quanyu.console import scanmap
from quanyu.demo.codes import gtin13
from tests.console.conftest import PASSWORD, ConsoleSite, session_client, shot, sign_in


def _base(site: ConsoleSite) -> str:
    return f"/v1/tenants/{site.tenant_id}"


def _package(site: ConsoleSite, order_id: str, tenant: str | None = None) -> list[dict[str, str]]:
    """The rows of an order's printer package, fetched from the API."""
    with site.server.api() as c:
        r = c.get(f"/v1/tenants/{tenant or site.tenant_id}/codes/orders/{order_id}/package")
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        return list(csv.DictReader(io.StringIO(z.read(name).decode())))


def test_a_scanned_code_shows_its_history_and_a_verified_proof(
    page: Any, site: ConsoleSite
) -> None:
    # a tenant of its own, so the demo's products and orders stay as other tests count them
    srv = site.server
    tenant = srv.create_tenant("Codes console test")["id"]
    base = f"/v1/tenants/{tenant}"
    brand = srv.call("POST", f"{base}/brands", json={"name": "贵酒"})["id"]
    srv.call("PUT", f"{base}/codes/brands/{brand}", json={"short_domain": "t.gui.example.cn"})
    srv.call("POST", f"{base}/users",
             json={"login": "codes-admin", "password": PASSWORD, "role": "admin"})  # fmt: skip
    product = srv.call("POST", f"{base}/codes/products",
                       json={"gtin": gtin13("690123456077"), "brand_id": brand,
                             "name": "贵酒 53% 500ml"})  # fmt: skip
    order = srv.call("POST", f"{base}/codes/orders",
                     json={"product_id": product["id"], "quantity": 4, "line": "L9",
                           "lot": "CT1"})["order"]  # fmt: skip
    srv.call("POST", f"{base}/codes/print", json={"order_id": order["id"]})
    activated = srv.call("POST", f"{base}/codes/activate", json={"order_id": order["id"]})
    row = _package(site, order["id"], tenant)[1]
    answer = httpx.post(
        f"{site.url}/v1/public/tenants/{tenant}/scans",
        json={"code": row["link"], "city": "杭州", "device_id": "console-t"},
    )
    assert answer.status_code == 200 and answer.json()["verdict"] == "genuine", answer.text
    code = answer.json()["code"]

    sign_in(page, "codes-admin")
    page.click("nav.side a[data-nav=codes]")
    page.fill("#lookup input[name=code]", row["link"])  # the Digital Link, as scanned
    page.click("#lookup button[type=submit]")
    page.wait_for_url(re.compile(rf".*/codes/c/{code}$"))
    assert page.get_attribute("[data-state]", "data-state") == "activated"
    actions = page.eval_on_selector_all("tr[data-event]", "els => els.map(e => e.dataset.event)")
    assert actions == ["issue", "print", "activate"]
    scans = page.locator("tr[data-scan=consumer]")
    assert scans.count() == 1 and "杭州" in scans.inner_text()

    latest = f"#proof-{activated['id']}"
    if page.locator(f"{latest} [data-proof=pending]").count():  # no checkpoint covers it yet
        page.click(f"{latest} [data-sign-checkpoint]")
        page.wait_for_url(re.compile(rf".*/codes/c/{code}$"))
    assert page.locator(f"{latest} [data-proof=verified]").count() == 1
    assert page.locator("[data-proof=verified]").count() == 3  # issue, print, activate
    index = int(page.inner_text(f"{latest} [data-leaf-index]"))
    size = int(page.inner_text(f"{latest} [data-tree-size]"))
    leaf = srv.call("GET", f"{base}/ledger/leaves/{index}")
    assert leaf["ref"] == f"code-event:{activated['id']}"
    bundle = srv.call("GET", f"{base}/ledger/proofs/inclusion",
                      params={"index": index, "size": size})  # fmt: skip
    shown = page.eval_on_selector_all(f"{latest} [data-proof-hashes] li",
                                      "els => els.map(e => e.textContent.trim())")  # fmt: skip
    assert shown == bundle["proof"] and len(shown) > 0
    checked = site.api(
        "POST",
        "/v1/ledger/verify",
        json={
            "checkpoint": bundle["checkpoint"],
            "index": index,
            "leaf_hash": leaf["leaf_hash"],
            "proof": bundle["proof"],
            "verifier_key": srv.call("GET", f"{base}/ledger")["verifier_key"],
        },
    )
    assert checked["ok"], checked  # the API's own verifier agrees with the page  # fmt: skip
    shot(page, "codes-code")


def test_the_overview_counts_maps_and_flags_diversion(page: Any, site: ConsoleSite) -> None:
    base = _base(site)
    states: dict[str, int] = {}
    for o in site.api("GET", f"{base}/codes/orders"):
        for state, n in site.api("GET", f"{base}/codes/orders/{o['id']}/states").items():
            states[state] = states.get(state, 0) + n
    sign_in(page, "analyst")
    page.goto(f"/console/t/{site.tenant_id}/codes")
    assert int(page.inner_text("[data-stat=codes]").replace(",", "")) == sum(states.values())
    bars = page.eval_on_selector_all("#lifecycle g[data-state]", "els => els.map(e => [e.dataset"
                                     ".state, e.querySelector('title').textContent])")  # fmt: skip
    assert {s: int(title.split(": ")[1].replace(",", "")) for s, title in bars} == states
    cities = page.eval_on_selector_all("#map g.city", "els => els.map(e => e.dataset.city)")
    assert len(cities) >= 3 and set(cities) <= set(scanmap.CITIES)  # the demo scans 10 cities
    diversion = page.locator("#diversion tr[data-alert=diversion]")
    assert diversion.count() == 1 and "east-dealer" in diversion.inner_text()
    assert page.get_attribute("#diversion g[data-dealer=east-dealer]", "data-flagged") == "true"
    assert page.locator("[data-sign-checkpoint]").count() == 0  # an analyst signs nothing
    # printer packages hold the inner (reward) codes: only roles that run codes get them
    assert page.locator("#orders a[download]").count() == 0
    shot(page, "codes")
    page.click("#diversion a[href$='/codes/dealers/east-dealer']")
    assert "上海,江苏,浙江" in page.inner_text("main")
    shot(page, "codes-dealer")


def test_an_operator_downloads_a_package_and_a_forged_code_is_refused(
    page: Any, site: ConsoleSite
) -> None:
    with session_client(site, "analyst") as c:
        order = site.api("GET", f"{_base(site)}/codes/orders")[0]["id"]
        url = f"/console/t/{site.tenant_id}/codes/orders/{order}/package"
        assert c.get(url).status_code == 403
    sign_in(page, "operator")
    page.goto(f"/console/t/{site.tenant_id}/codes")
    with page.expect_download() as got:
        page.click(f"#orders tr[data-order={order}] a[download]")
    with zipfile.ZipFile(got.value.path()) as z:
        manifest = json.loads(z.read("manifest.json"))
    assert manifest["order_id"] == order and manifest["algorithm"] == "Ed25519"
    assert manifest["count"] == len(_package(site, order))
    page.click("a.lang:has-text('中文')")
    response = page.goto(f"/console/t/{site.tenant_id}/codes/lookup?code=06GQAD833Y1YTYPVNRCX")
    assert response is not None and response.status == 422
    assert "not issued by this brand" in page.inner_text("#lookup [role=alert]")
    shot(page, "codes-zh")


def test_the_scan_map_merges_city_spellings_and_lists_what_it_cannot_place() -> None:
    drawn = scanmap.render(
        [("成都", 5, 5), ("Chengdu", 2, 1), ("成都市", 1, 1), ("上海", 3, 3), ("Atlantis", 4, 4),
         (None, 6, 6)],
        title="scans", legend=("scans", "not genuine"),
    )  # fmt: skip
    assert [(c.name, c.scans, c.genuine) for c in drawn.placed] == [("成都", 8, 7), ("上海", 3, 3)]
    assert [(c.name, c.scans) for c in drawn.unknown] == [("Atlantis", 4)] and drawn.no_city == 6
    assert drawn.svg.count('class="city"') == 2 and "Atlantis" not in drawn.svg
    chengdu, shanghai = scanmap.project(30.573, 104.066), scanmap.project(31.230, 121.474)
    assert chengdu[0] < shanghai[0] and abs(chengdu[1] - shanghai[1]) < 15  # west, same latitude
