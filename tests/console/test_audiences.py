"""The audiences pages in a browser: the rule builder's live count against the REST API,
inline rule errors, saving, overlap as a Venn diagram, CSV export, pushes with their
delivery status, and what an analyst may not do."""

from __future__ import annotations

import csv
import io
import math
import re
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from quanyu.console import venn
from tests.console.conftest import ConsoleSite, csrf_of, session_client, shot, sign_in
from tests.delivery.conftest import Receiver

#: What the test builds in the browser, written by hand as the API's rule text.
RULE = 'count(event = "Order Completed", within 365d) >= 1 and not tag("lifecycle") = "churned"'


def _base(site: ConsoleSite) -> str:
    return f"/v1/tenants/{site.tenant_id}"


def _audience(site: ConsoleSite, aid: str, rule: str, **extra: Any) -> dict[str, Any]:
    """An audience made and materialised through the REST API."""
    body = {"id": aid, "name": extra.pop("name", aid), "rule": rule, **extra}
    made = site.api("POST", f"{_base(site)}/audiences", json=body)
    site.api("POST", f"{_base(site)}/audiences/{aid}/snapshots")
    return dict(made)


def test_the_builders_live_count_equals_the_apis(page: Any, site: ConsoleSite) -> None:
    brands = site.api("GET", f"{_base(site)}/brands")
    sign_in(page, "marketer")
    page.click("nav.side a[data-nav=audiences]")
    page.click("a:has-text('New audience')")
    page.wait_for_selector("#count-hint")  # an untouched row: a hint, not an error
    # row 1: bought at least once in a year
    page.select_option('select[name="g.0.kind"]', "event")
    page.wait_for_selector('input[name="g.0.within"]')
    page.fill('input[name="g.0.key"]', "Order Completed")
    page.fill('input[name="g.0.within"]', "365")
    page.fill('input[name="g.0.value"]', "1")
    # a NOT group: lifecycle = churned
    page.click('button[data-action="add-group:g"]')
    page.wait_for_selector('fieldset[data-path="g.1"]')
    page.check('input[name="g.1.not"]')
    page.select_option('select[name="g.1.0.key"]', "lifecycle")
    page.select_option('select[name="g.1.0.op"]', "=")
    page.fill('input[name="g.1.0.value"]', "churned")
    page.check(f'#brand-scope input[value="{brands[0]["id"]}"]')
    page.select_option("#channel", "sms")
    page.wait_for_function(
        "() => { const r = document.querySelector('#count-rule'); return r"
        " && r.textContent.includes('churned') && !document.querySelector('.htmx-request') }"
    )
    page.wait_for_timeout(700)  # the last keystroke's count (debounced) has landed
    count = page.locator("#count")
    shown = {k: int(count.get_attribute(f"data-{k}")) for k in ("matched", "excluded", "size")}
    api = site.api(
        "POST",
        f"{_base(site)}/audiences/count",
        json={"rule": RULE, "brands": [brands[0]["id"]], "purpose": "marketing", "channel": "sms"},
    )
    assert shown == {k: api[k] for k in ("matched", "excluded", "size")}
    assert shown["matched"] > 0 and shown["excluded"] > 0  # the demo has both
    assert page.inner_text("#count-rule") == RULE
    sentence = page.inner_text("#count-sentence")
    assert f"{api['matched']:,} matched; {api['excluded']:,} excluded for lack of SMS" in sentence
    bars = page.eval_on_selector_all(
        "#by-channel .bar", "els => Object.fromEntries(els.map(e => [e.dataset.key, +e.dataset.n]))"
    )
    assert bars == api["by_channel"]
    by_brand = page.eval_on_selector_all(
        "#by-brand .bar", "els => Object.fromEntries(els.map(e => [e.dataset.key, +e.dataset.n]))"
    )
    assert by_brand == api["by_brand"]
    assert page.locator("#sample tbody tr").count() == min(10, len(api["sample"]))
    assert "****" in page.inner_text("#sample")  # phones masked
    shot(page, "audience-builder")
    # save it, then see it among the audiences
    page.fill("input[name=id]", "console-buyers")
    page.fill("input[name=name]", "一年内购买 · Bought this year")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/audiences/console-buyers\?saved=1$"))
    assert page.inner_text("#audience-rule") == RULE
    saved = site.api("GET", f"{_base(site)}/audiences/console-buyers")
    assert saved["brands"] == [brands[0]["id"]] and saved["channel"] == "sms"
    # in Chinese, the gate's reasons are said in Chinese (the API keeps its English)
    with session_client(site, "marketer") as c:
        c.get("/console/lang/zh")
        token = csrf_of(c.get(site.page_url("audiences/new")).text)
        form = {"csrf_token": token, "mode": "text", "rule_text": RULE, "purpose": "marketing",
                "channel": "sms", "brands": brands[0]["id"]}  # fmt: skip
        shown = re.findall(r'<li data-reason="([^"]+)">([^<]+): [\d,]+</li>',
                           c.post(site.page_url("audiences/count"), data=form).text)  # fmt: skip
    assert {english for english, _ in shown} == set(api["excluded_by"])
    assert all(re.search(r"[\u4e00-\u9fff]", zh) for _, zh in shown), shown


def test_a_rule_error_in_the_text_shows_its_line_and_column(page: Any, site: ConsoleSite) -> None:
    sign_in(page, "marketer")
    page.goto(site.page_url("audiences/new"))
    page.click('button[data-action="to-text"]')
    page.wait_for_selector("#builder .notice.error")  # an empty row cannot become text
    page.select_option('select[name="g.0.key"]', "high_value_member")
    page.click('button[data-action="to-text"]')
    page.wait_for_selector("#rule-text")
    assert page.input_value("#rule-text") == 'tag("high_value_member")'
    page.fill("#rule-text", 'tag("high_value_member")\n  or traits.tier => 3')
    error = page.wait_for_selector("#count-error")
    assert (error.get_attribute("data-line"), error.get_attribute("data-column")) == ("2", "18")
    assert "write >=" in error.inner_text()
    shot(page, "audience-rule-error")
    page.fill("#rule-text", 'tag("high_value_member") or traits.tier = "gold"')
    page.wait_for_selector("#count[data-size]")
    page.click('button[data-action="to-builder"]')
    page.wait_for_selector('[data-path="g.1"]')  # back to two rows joined by OR
    assert page.input_value('select[name="g.op"]') == "or"
    assert page.input_value('input[name="g.1.key"]') == "tier"


def test_overlap_of_two_and_three_audiences(page: Any, site: ConsoleSite) -> None:
    _audience(site, "ov-active", 'tag("lifecycle") in ("active", "new")', name="活跃 Active",
              purpose="analysis", channel="none")  # fmt: skip
    _audience(site, "ov-buyers", 'count(event = "Order Completed") >= 2', name="Repeat buyers",
              purpose="analysis", channel="none")  # fmt: skip
    _audience(site, "ov-pos", 'channel = "pos"', name="POS customers", purpose="analysis",
              channel="none")  # fmt: skip
    sign_in(page, "analyst")
    page.goto(site.page_url("audiences"))
    page.check('input[name=ids][value="ov-active"]')
    page.check('input[name=ids][value="ov-buyers"]')
    page.click("#compare")
    page.wait_for_selector("#venn svg")
    api = site.api(
        "GET",
        f"{_base(site)}/audience-overlap",
        params=[("ids", "ov-active"), ("ids", "ov-buyers")],
    )
    shown = page.eval_on_selector_all(
        "#overlap-regions tr[data-region]",
        "els => Object.fromEntries(els.map(e => [e.dataset.region, +e.dataset.size]))",
    )
    assert shown == {"+".join(r["inside"]): r["size"] for r in api["regions"]}
    assert all(v > 0 for v in shown.values())  # a real overlap, not a trivial one
    labels = page.eval_on_selector_all(
        "#venn text[data-region]", "els => els.map(e => e.textContent)"
    )
    assert sorted(labels) == sorted(f"{r['size']:,}" for r in api["regions"])
    shot(page, "audience-overlap")
    page.goto(site.page_url("audiences/overlap?ids=ov-active&ids=ov-buyers&ids=ov-pos"))
    three = site.api(
        "GET",
        f"{_base(site)}/audience-overlap",
        params=[("ids", "ov-active"), ("ids", "ov-buyers"), ("ids", "ov-pos")],
    )
    rows = page.locator("#overlap-regions tr[data-region]")
    assert rows.count() == 7
    middle = page.get_attribute('#overlap-regions tr[data-region="ov-active+ov-buyers+ov-pos"]',
                               "data-size")  # fmt: skip
    assert int(middle or -1) == next(r["size"] for r in three["regions"] if len(r["inside"]) == 3)
    assert page.locator("#venn circle").count() == 3
    shot(page, "audience-overlap-3")


def test_csv_export_downloads_the_snapshot(page: Any, site: ConsoleSite, tmp_path: Path) -> None:
    _audience(site, "export-me", 'tag("high_value_member")', name="High value",
              purpose="analysis", channel="none")  # fmt: skip
    sign_in(page, "marketer")
    page.goto(site.page_url("audiences/export-me"))
    size = int(page.inner_text("#snap-size").replace(",", ""))
    assert size > 0
    with page.expect_download() as info:
        page.click("#download-csv")
    path = tmp_path / "export.csv"
    info.value.save_as(path)
    assert info.value.suggested_filename.startswith("export-me-") and path.suffix == ".csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == size and all(re.fullmatch(r"P\d+", r["oneid"]) for r in rows)
    with site.server.api(site.admin_key) as c:
        api = c.get(f"{_base(site)}/audiences/export-me/export", params={"format": "csv"})
    assert api.status_code == 200 and api.text == path.read_text()
    with session_client(site, "marketer") as c:
        got = c.get(site.page_url("audiences/export-me/export"), params={"format": "parquet"})
    assert got.headers["content-type"] == "application/vnd.apache.parquet"
    assert pq.read_table(io.BytesIO(got.content)).column("oneid").to_pylist() == [
        r["oneid"] for r in rows
    ]
    before = len(site.api("GET", f"{_base(site)}/audiences/export-me/snapshots"))
    page.click("#materialise")  # a second snapshot: the size chart appears
    page.wait_for_selector("#size-chart .uplot canvas")
    after = site.api("GET", f"{_base(site)}/audiences/export-me/snapshots")
    assert len(after) > before
    newest = int(page.inner_text("#snapshots tbody tr:first-child td:first-child"))
    assert newest in [x["snapshot_id"] for x in after[: len(after) - before]]  # made just now
    page.click("#count-now")
    assert int(page.wait_for_selector("#count").get_attribute("data-size")) == size
    shot(page, "audience")
    page.click("a.lang:has-text('中文')")
    page.click("#count-now")
    page.wait_for_selector("#count")
    assert "人符合规则" in page.inner_text("#count-sentence")
    shot(page, "audience-zh")


def test_push_to_a_destination_shows_the_delivery(page: Any, site: ConsoleSite) -> None:
    _audience(site, "push-me", 'tag("high_value_member")', name="To the CRM",
              purpose="analysis", channel="none")  # fmt: skip
    receiver = Receiver(port=0).start()
    try:
        sign_in(page, "marketer")
        page.goto(site.page_url("audiences/push-me"))
        page.click("summary:has-text('Add a destination')")
        page.fill("#push input[name=name]", "Console CRM")
        page.fill("#push input[name=url]", receiver.url)
        page.click("#push button:has-text('Create')")
        receiver.secret = page.inner_text("#new-secret code")
        assert receiver.secret.startswith("whsec_")
        page.select_option("#destination", label="Console CRM")
        page.click("#push-now")
        page.wait_for_url(re.compile(r".*/audiences/push-me\?push=push_.*"))
        deadline = time.monotonic() + 15
        while page.locator('h3 [data-status="delivered"]').count() == 0:
            assert time.monotonic() < deadline, page.inner_text("#outbox")
            page.wait_for_timeout(300)
            page.reload()
        assert len(receiver.acked()) == 1 and receiver.forged == 0
        batch = receiver.hits[0].body["data"]
        records = page.locator("#pushes tbody tr td.num").nth(1).inner_text()
        assert batch["audience_id"] == "push-me" and len(batch["records"]) == int(records)
        shot(page, "audience-push")
    finally:
        receiver.stop()


def test_a_marketer_edits_and_deletes_an_audience(page: Any, site: ConsoleSite) -> None:
    _audience(site, "to-edit", 'tag("high_value_member")', name="High value", channel="wechat")
    sign_in(page, "marketer")
    page.goto(site.page_url("audiences/to-edit"))
    page.click("#edit")
    page.wait_for_url(re.compile(r".*/audiences/to-edit/edit$"))
    assert page.input_value("input[name=id]") == "to-edit"
    assert page.get_attribute("input[name=id]", "readonly") is not None
    page.click('button[data-action="to-text"]')
    page.wait_for_selector("textarea[name=rule_text]")
    page.fill("textarea[name=rule_text]", 'tag("high_value_member") and traits.gender = "f"')
    page.fill("input[name=name]", "High value women")
    page.select_option("#channel", "sms")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/audiences/to-edit\?saved=1$"))
    saved = site.api("GET", f"{_base(site)}/audiences/to-edit")
    assert (saved["name"], saved["channel"]) == ("High value women", "sms")
    assert saved["rule_text"] == 'tag("high_value_member") and traits.gender = "f"'
    assert page.inner_text("#audience-rule") == saved["rule_text"]
    # a broken rule is refused on the edit page; nothing changes
    page.goto(site.page_url("audiences/to-edit/edit"))
    page.click('button[data-action="to-text"]')
    page.wait_for_selector("textarea[name=rule_text]")
    page.fill("textarea[name=rule_text]", 'tag("high_value_member") and')
    page.click("#save")
    page.wait_for_selector("#save-error")
    assert site.api("GET", f"{_base(site)}/audiences/to-edit")["rule_text"] == saved["rule_text"]
    page.goto(site.page_url("audiences/to-edit"))
    page.once("dialog", lambda d: d.accept())
    page.click("#delete")
    page.wait_for_selector("#deleted")
    assert "to-edit" not in [a["id"] for a in site.api("GET", f"{_base(site)}/audiences")]
    shot(page, "audience-deleted")


def test_an_analyst_can_count_but_not_save_materialise_or_push(
    page: Any, site: ConsoleSite
) -> None:
    _audience(site, "analyst-view", 'tag("high_value_member")', purpose="analysis",
              channel="none")  # fmt: skip
    sign_in(page, "analyst")
    page.goto(site.page_url("audiences/new"))
    assert page.locator("#save").count() == 0 and page.locator("#read-only").count() == 1
    page.goto(site.page_url("audiences/analyst-view"))
    page.click("#count-now")
    page.wait_for_selector("#count[data-size]")  # the live count is a read
    assert page.locator("#materialise").count() == 0 and page.locator("#push-now").count() == 0
    with session_client(site, "analyst") as c:
        token = csrf_of(c.get(site.page_url("audiences/new")).text)
        form = {"csrf_token": token, "mode": "text", "rule_text": 'tag("high_value_member")',
                "id": "by-analyst", "name": "nope", "purpose": "analysis",
                "channel": "none"}  # fmt: skip
        assert c.post(site.page_url("audiences"), data=form).status_code == 403
        url = site.page_url("audiences/analyst-view/materialise")
        assert c.post(url, data={"csrf_token": token}).status_code == 403
        url = site.page_url("audiences/analyst-view/push")
        assert c.post(url, data={"csrf_token": token, "destination_id": "x"}).status_code == 403
        assert c.get(site.page_url("audiences/analyst-view/edit")).status_code == 403
        url = site.page_url("audiences/analyst-view/edit")
        assert c.post(url, data={**form, "name": "changed"}).status_code == 403
        url = site.page_url("audiences/analyst-view/delete")
        assert c.post(url, data={"csrf_token": token}).status_code == 403
        counted = c.post(site.page_url("audiences/count"), data=form)
        assert counted.status_code == 200 and 'id="count"' in counted.text
    ids = [a["id"] for a in site.api("GET", f"{_base(site)}/audiences")]
    assert "by-analyst" not in ids and "analyst-view" in ids
    assert site.api("GET", f"{_base(site)}/audiences/analyst-view")["name"] == "analyst-view"


# -- the Venn diagram (pure; no browser) ----------------------------------------------------
def test_two_circles_overlap_by_the_intersection() -> None:
    for r1, r2, share in ((10.0, 10.0, 50.0), (10.0, 4.0, 30.0), (3.0, 9.0, 1.0)):
        d = venn.distance_for(r1, r2, share)
        assert abs(venn.lens_area(r1, r2, d) - share) < 1e-6 * share
    assert venn.distance_for(5.0, 3.0, 0) > 8.0  # disjoint: apart
    assert venn.distance_for(5.0, 3.0, 1e9) == 2.0  # contained: inside, touching
    circles = venn.layout([400, 100], {(0, 1): 60})
    assert abs(math.pi * circles[0].r ** 2 - 400) < 1e-9
    d = math.hypot(circles[1].x - circles[0].x, circles[1].y - circles[0].y)
    assert abs(venn.lens_area(circles[0].r, circles[1].r, d) - 60) < 1e-6


def test_the_svg_labels_every_region_and_escapes_names() -> None:
    regions = {(0, 1, 2): 5, (0, 1): 10, (0, 2): 7, (1, 2): 3, (0,): 40, (1,): 25, (2,): 12}
    drawn = venn.svg(["<b>A</b>", "会员", "C"], [62, 43, 27], regions)
    assert "<b>" not in drawn and "&lt;b&gt;" in drawn
    labels = re.findall(r'data-region="([\d-]+)">([\d,]+)<', drawn)
    assert sorted(labels) == sorted(("-".join(map(str, k)), f"{v:,}") for k, v in regions.items())
    assert drawn.count("<circle") == 3
    with pytest.raises(ValueError, match="two or three"):
        venn.svg(["only"], [1], {(0,): 1})
