"""The tags pages in a browser: the taxonomy, the rule editor's inline errors and live
count, saving, computing and the history, and what an analyst may not do."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import ConsoleSite, csrf_of, session_client, shot, sign_in

BAD_RULE = 'count(event = "Order Completed") >= 1\nand traits.city = 上海'
GOOD_RULE = 'count(event = "Order Completed", within 365d) >= 2'


def _api_matched(site: ConsoleSite, rule: str) -> int:
    """People a rule matches, by the REST API's audience count (before consent)."""
    body = {"rule": rule, "purpose": "analysis", "channel": "none"}
    return int(
        site.api("POST", f"/v1/tenants/{site.tenant_id}/audiences/count", json=body)["matched"]
    )


def test_the_taxonomy_shows_categories_tags_and_counts(page: Any, site: ConsoleSite) -> None:
    sign_in(page, "marketer")
    page.click("nav.side a[data-nav=tags]")
    page.wait_for_selector("tr[data-tag=high_value_member]")
    value = page.locator("[data-category=value]")
    assert "Value" in value.locator("h2").inner_text()
    row = value.locator("tr[data-tag=high_value_member]")
    assert "live" in row.inner_text() and "yes/no" in row.inner_text()
    counts = site.api("GET", f"/v1/tenants/{site.tenant_id}/tag-counts")
    hv = sum(c["people"] for c in counts["high_value_member"] if c["value"] == "true")
    assert row.locator("td.num").inner_text().split()[0] == f"{hv:,}"
    shot(page, "tags")
    page.click("a.lang:has-text('中文')")
    page.wait_for_selector("text=标签体系")
    assert "价值" in page.locator("[data-category=value] h2").inner_text()
    shot(page, "tags-zh")


def test_a_syntax_error_shows_inline_with_its_line_and_column(page: Any, site: ConsoleSite) -> None:
    sign_in(page, "marketer")
    page.goto(site.page_url("tags/new"))
    page.fill("#rule", BAD_RULE)
    page.press("#rule", "End")  # a keyup: the editor checks the rule 400 ms after typing
    error = page.wait_for_selector("#rule-check [role=alert]")
    assert (error.get_attribute("data-line"), error.get_attribute("data-column")) == ("2", "19")
    assert "line 2, column 19" in error.inner_text() and "quotes" in error.inner_text()
    assert page.locator("#rule-check .caret").count() == 1  # under the offending character
    shot(page, "tag-rule-error")
    page.fill("#rule", GOOD_RULE)
    page.press("#rule", "End")
    live = page.wait_for_selector("#live-count")
    assert int(live.get_attribute("data-people")) == _api_matched(site, GOOD_RULE)


def test_create_compute_and_see_the_history(page: Any, site: ConsoleSite) -> None:
    sign_in(page, "marketer")
    page.goto(site.page_url("tags"))
    page.click("a:has-text('New tag')")
    page.fill("input[name=key]", "console_repeat_buyer")
    page.fill("input[name=name_zh]", "复购客户")
    page.fill("input[name=name_en]", "Repeat buyer (console)")
    page.select_option("select[name=category_id]", "behaviour")
    page.fill("#rule", GOOD_RULE)
    page.press("#rule", "End")
    expected = int(page.wait_for_selector("#live-count").get_attribute("data-people"))
    page.click("#save")
    page.wait_for_url(re.compile(r".*/tags/console_repeat_buyer\?saved=1$"))
    assert "Saved" in page.inner_text("[role=status]") and "draft" in page.inner_text("main")
    assert page.inner_text("#tag-people") == "–"  # a draft is not computed by itself
    page.click("#compute")
    page.wait_for_url(re.compile(r".*/tags/console_repeat_buyer\?run=\d+$"))
    assert "Computed: run" in page.inner_text("#run-result")
    counts = site.api("GET", f"/v1/tenants/{site.tenant_id}/tag-counts")["console_repeat_buyer"]
    assert counts == [{"value": "true", "people": expected}]
    assert page.inner_text("#tag-people") == f"{expected:,}"
    history = site.api(
        "GET", f"/v1/tenants/{site.tenant_id}/tags/console_repeat_buyer/history", params={"days": 2}
    )
    assert history[-1]["counts"] == [{"value": "true", "people": expected}]
    page.wait_for_selector("#tag-history .uplot canvas")  # the chart is drawn
    assert page.locator("#tag-runs tbody tr").count() >= 1
    shot(page, "tag")
    page.fill("#rule", GOOD_RULE.replace(">= 2", ">= 3"))
    page.select_option("select[name=status]", "live")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/tags/console_repeat_buyer\?saved=1$"))
    tag = site.api("GET", f"/v1/tenants/{site.tenant_id}/tags/console_repeat_buyer")
    assert (tag["rule_text"], tag["status"]) == (GOOD_RULE.replace(">= 2", ">= 3"), "live")
    assert tag["name_zh"] == "复购客户" and tag["category_id"] == "behaviour"  # kept


def test_an_analyst_sees_tags_but_cannot_save_or_compute(page: Any, site: ConsoleSite) -> None:
    sign_in(page, "analyst")
    page.goto(site.page_url("tags/high_value_member"))
    assert page.locator("#save").count() == 0 and page.locator("#compute").count() == 0
    assert page.locator("#read-only").count() == 1
    assert page.locator("a:has-text('New tag')").count() == 0
    with session_client(site, "analyst") as c:
        token = csrf_of(c.get(site.page_url("tags/high_value_member")).text)
        form = {"csrf_token": token, "name_zh": "改", "name_en": "Changed", "rule": GOOD_RULE}
        assert c.post(site.page_url("tags/high_value_member"), data=form).status_code == 403
        done = c.post(site.page_url("tags/high_value_member/compute"), data={"csrf_token": token})
        assert done.status_code == 403
        assert c.get(site.page_url("tags/new")).status_code == 403
    tag = site.api("GET", f"/v1/tenants/{site.tenant_id}/tags/high_value_member")
    assert tag["name_en"] == "High-value member"  # unchanged
