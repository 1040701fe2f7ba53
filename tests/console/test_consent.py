"""The consent pages in a real browser: purposes and notices, a person's ledger, a withdrawal
recorded in the console and followed to every subscriber (a real touchpoint on 127.0.0.1
and one that is down), the PIPL queue, and an analyst who may look but not record."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.consent.propagation_helpers import Touchpoint
from tests.console.conftest import ConsoleSite, csrf_of, session_client, shot, sign_in


def _base(site: ConsoleSite) -> str:
    return f"/v1/tenants/{site.tenant_id}"


def an_openid(site: ConsoleSite, skip: int = 0) -> tuple[str, str, str]:
    """A demo person's OneID and one of their openids with its app (the scope)."""
    found = site.api("GET", f"{_base(site)}/profiles", params={"prefix": "o", "limit": 5})
    assert len(found["items"]) > skip, f"the demo has too few people with openids: {found}"
    hit = found["items"][skip]
    person = site.api("GET", f"{_base(site)}/profiles/{hit['oneid']}")
    scope = next(i["scope"] for i in person["identities"]
                 if i["type"] == "openid" and i["value"] == hit["value"])  # fmt: skip
    return str(hit["oneid"]), str(hit["value"]), str(scope)


def a_person(site: ConsoleSite, skip: int = 0) -> str:
    """The OneID of a demo person found through an identifier, as a user would."""
    return an_openid(site, skip)[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens here once the socket closes


@pytest.fixture
def subscribers(site: ConsoleSite) -> Iterator[tuple[Touchpoint, dict[str, Any], dict[str, Any]]]:
    """A working touchpoint and one that is down, both subscribed to marketing; both are
    unsubscribed afterwards so later tests' decisions tell nobody."""
    tp = Touchpoint().start()
    url = f"{_base(site)}/consent/subscribers"
    ok = site.api("POST", url, json={"name": "CRM 会员中心", "url": tp.url,
                                     "purposes": ["marketing"]})  # fmt: skip
    tp.secret = ok["secret"]
    down = site.api("POST", url, json={"name": "SMS gateway (down)",
                                       "url": f"http://127.0.0.1:{_closed_port()}/hook",
                                       "purposes": ["marketing"]})  # fmt: skip
    try:
        yield tp, ok, down
    finally:
        for s in (ok, down):
            site.api("DELETE", f"{url}/{s['id']}")
        tp.stop()


def test_withdraw_in_the_browser_and_follow_the_propagation(
    page: Any, site: ConsoleSite, subscribers: tuple[Touchpoint, dict[str, Any], dict[str, Any]]
) -> None:
    tp, ok, down = subscribers
    person, openid, app = an_openid(site)
    sign_in(page, "operator")
    page.click("nav.side a[data-nav=consent]")
    assert page.is_visible(f"#subscribers :text('{ok['name']}')")
    page.select_option("#lookup select[name=kind]", "openid")  # as the customer service
    page.fill("#lookup input[name=value]", openid)  # agent reads it off the mini-program
    page.fill("#lookup input[name=scope]", app)
    page.click("#lookup button[type=submit]")
    page.wait_for_url(re.compile(rf".*/consent/people/{person}$"))
    before = site.api("GET", f"{_base(site)}/profiles/{person}/consent")["history"]

    page.select_option("select[name=purpose]", "default.marketing")
    page.select_option("select[name=channel]", "sms")
    page.select_option("select[name=status]", "withdrawn")
    page.select_option("select[name=surface]", "call_centre")
    page.click("#record-decision")
    page.wait_for_url(re.compile(r".*/consent/entries/\d+$"))
    seq = int(page.url.rsplit("/", 1)[1])
    assert "withdrawn" in page.inner_text("h1")

    # the report refreshes itself until the working touchpoint has acknowledged
    page.wait_for_selector(f"tr[data-subscriber={ok['id']}][data-status=delivered]")
    page.wait_for_selector(f"tr[data-subscriber={down['id']}] .error")
    assert seq in tp.entries(), f"the touchpoint never processed entry {seq}: {tp.entries()}"
    row = page.inner_text(f"tr[data-subscriber={ok['id']}]")
    assert "CRM 会员中心" in row and "acknowledged" in row and "HTTP 200" in row
    assert page.get_attribute(f"tr[data-subscriber={down['id']}]", "data-status") == "pending"
    report = site.api("GET", f"{_base(site)}/consent/entries/{seq}/propagation")
    told = {t["subscriber_id"]: t["status"] for t in report["told"]}
    assert told == {ok["id"]: "delivered", down["id"]: "pending"}
    assert page.get_attribute("#propagation [data-complete]", "data-complete") == "no"
    shot(page, "consent-propagation")

    page.click(f"a[href$='/consent/people/{person}']")
    cell = page.inner_text("td[data-state='default.marketing|sms']")
    assert "withdrawn" in cell and f"#{seq}" in cell
    assert page.is_visible(f"#history tr[data-seq='{seq}']")
    after = site.api("GET", f"{_base(site)}/profiles/{person}/consent")
    assert len(after["history"]) == len(before) + 1 and after["history"][0]["seq"] == seq
    shot(page, "consent-person")


def test_purposes_with_notice_versions_in_chinese(page: Any, site: ConsoleSite) -> None:
    site.api("POST", f"{_base(site)}/consent/purposes/default.marketing/notices",
             json={"version": "2026-01", "text": "我们会通过短信向您推送会员活动。"})  # fmt: skip
    sign_in(page, "admin")
    page.click("a.lang:has-text('中文')")
    page.goto(f"/console/t/{site.tenant_id}/consent")
    rows = page.eval_on_selector_all("tr[data-purpose]", "els => els.map(e => e.dataset.purpose)")
    assert set(rows) >= {"default.marketing", "default.ads_targeting", "default.service",
                         "default.analysis"}  # fmt: skip
    ads = page.inner_text("tr[data-purpose='default.ads_targeting']")
    assert "广告定向投放" in ads and "单独同意" in ads
    page.click("tr[data-purpose='default.marketing'] details summary")
    page.wait_for_selector("tr[data-purpose='default.marketing'] .notice-text")
    assert "推送会员活动" in page.inner_text("tr[data-purpose='default.marketing'] .notice-body")
    shot(page, "consent-zh")


def test_the_pipl_queue_lists_a_request(page: Any, site: ConsoleSite) -> None:
    person = a_person(site, skip=1)
    made = site.api("POST", f"{_base(site)}/privacy/requests",
                    json={"kind": "access", "subject": {"profile": person},
                          "detail": "console test: access by phone call"})  # fmt: skip
    sign_in(page, "auditor")
    page.goto(f"/console/t/{site.tenant_id}/consent")
    row = page.locator(f"#pipl tr[data-request={made['id']}]")
    text = row.inner_text()
    assert person in text and "access" in text and "completed" in text
    assert made["due_at"][:10] in text  # the deadline, 15 days after it came in
    assert "overdue" not in (row.get_attribute("class") or "")
    shot(page, "consent-overview")


def test_an_analyst_may_read_but_not_record(page: Any, site: ConsoleSite) -> None:
    person = a_person(site, skip=2)
    sign_in(page, "analyst")
    page.goto(f"/console/t/{site.tenant_id}/consent/people/{person}")
    assert page.is_visible("#read-only")
    assert page.locator("#record-decision").count() == 0
    assert page.locator("form[action$='/decisions']").count() == 0
    before = site.api("GET", f"{_base(site)}/profiles/{person}/consent")["history"]
    with session_client(site, "analyst") as c:
        token = csrf_of(c.get(f"/console/t/{site.tenant_id}/consent/people/{person}").text)
        refused = c.post(
            f"/console/t/{site.tenant_id}/consent/people/{person}/decisions",
            data={"csrf_token": token, "purpose": "default.marketing", "channel": "sms",
                  "status": "withdrawn"},
        )  # fmt: skip
        assert refused.status_code == 403, refused.text[:300]
        assert "consent:write" in refused.text
    assert site.api("GET", f"{_base(site)}/profiles/{person}/consent")["history"] == before
    # a lookup that finds nobody says so on the page, and so does a OneID nobody has
    missing = page.goto(f"/console/t/{site.tenant_id}/consent/lookup?kind=unionid&value=o6_nobody")
    assert missing is not None and missing.status == 404
    assert "No person has the unionid" in page.inner_text("#lookup [role=alert]")
    gone = page.goto(f"/console/t/{site.tenant_id}/consent/people/P987654321")
    assert gone is not None and gone.status == 404 and "no person P987654321" in page.content()
