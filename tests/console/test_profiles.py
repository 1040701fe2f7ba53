"""The profiles pages in a browser: find a demo customer by phone, read the 360 view, split a
person, and the roles that may not split."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tests.console.conftest import ConsoleSite, csrf_of, session_client, shot, sign_in

TIMELINE_PAGE = 20  # rows per timeline page (quanyu.console.pages.profiles)


def _spelled(phone: str) -> str:
    """A Chinese mobile as someone else would type it: "+86 138-0013-8000"."""
    digits = re.sub(r"\D", "", phone)[-11:]
    return f"+86 {digits[:3]}-{digits[3:7]}-{digits[7:]}"


def _by_identifier(site: ConsoleSite, type_: str, value: str, scope: str = "") -> Any:
    params = {"type": type_, "value": value, "scope": scope}
    return site.api("GET", f"/v1/tenants/{site.tenant_id}/profiles/by-identifier", params=params)


def demo_phone(site: ConsoleSite) -> str:
    """A phone of a demo member record (as the member file spells it)."""
    records = pq.read_table(site.server.data_dir / "demo" / "profiles.parquet")
    phones = records.column("phone").to_pylist()
    good = [p for p in phones if p and re.sub(r"\D", "", p)[-11:] not in ("13800000000",)]
    assert good, "the demo's member records carry no phone"
    return str(good[len(good) // 2])


@dataclass
class Person:
    """A person made for one test through two write keys: two user ids joined by a phone."""

    phone: str
    users: tuple[str, str]
    sources: tuple[str, str]
    oneid: str
    tag: str


def make_person(site: ConsoleSite, events: int = 0) -> Person:
    """Two people from two touchpoints (a member of the mini-program with ``events`` orders
    who scanned a code, a counter customer), then the counter learns the member's phone:
    they merge into one person. Waits for identity resolution at each step."""
    tag = uuid.uuid4().hex[:8]
    phone = f"199{int(tag, 16) % 10**8:08d}"
    users = (f"pf-{tag}-a", f"pf-{tag}-b")
    keys = site.keys["write_keys"]
    mp, pos = keys["lumi_mini_program"], keys["hanami_pos"]
    sources = (mp["source_id"], pos["source_id"])
    now = datetime.now(UTC)

    def at(hours: float) -> str:
        return (now - timedelta(hours=hours)).isoformat()

    unionid = f"oPF{tag}unionid"
    member = [
        {"type": "identify", "userId": users[0], "messageId": f"{users[0]}-id", "timestamp": at(72),
         "traits": {"name": f"测试 {tag}", "city": "杭州", "phone": phone, "unionid": unionid}},
        *({"type": "track", "event": "Order Completed", "userId": users[0],
           "messageId": f"{users[0]}-o{n}", "properties": {"order_id": f"o{n}", "revenue": n},
           "timestamp": at(n + 1)} for n in range(events)),
    ]  # fmt: skip
    visit = [{"type": "track", "event": "Store Visited", "userId": users[1],
              "messageId": f"{users[1]}-v", "timestamp": at(48)}]  # fmt: skip
    learnt = [{"type": "identify", "userId": users[1], "messageId": f"{users[1]}-id",
               "timestamp": at(24), "traits": {"phone": _spelled(phone)}}]  # fmt: skip
    scanned = {"serial": f"SN{tag}", "gtin": "06901234567892", "city": "杭州", "verdict": "genuine"}
    scan = [{"type": "track", "event": "Product Scanned", "anonymousId": f"dev-{tag}",
             "messageId": f"scan-{tag}", "timestamp": at(60), "properties": scanned,
             "context": {"traits": {"unionid": unionid}}}]  # fmt: skip
    _send(site, mp["write_key"], member)
    _send(site, keys["hanami_qr"]["write_key"], scan)
    _send(site, pos["write_key"], visit)
    _wait(site, lambda f: f[0] is not None and f[1] is not None and f[0] != f[1], users, sources)
    _send(site, pos["write_key"], learnt)
    found = _wait(site, lambda f: f[0] is not None and f[0] == f[1], users, sources)
    return Person(phone, users, sources, str(found[0]), tag)


def _send(site: ConsoleSite, write_key: str, batch: list[dict[str, Any]]) -> None:
    r = httpx.post(f"{site.url}/v1/batch", json={"batch": batch}, auth=(write_key, ""))
    assert r.status_code == 200, r.text


def _wait(
    site: ConsoleSite, done: Any, users: tuple[str, str], sources: tuple[str, str]
) -> list[str | None]:
    """The OneIDs of ``users`` once ``done`` says they are as expected (within 15 s)."""
    deadline = time.monotonic() + 15
    while True:
        found = [_lookup(site, u, s) for u, s in zip(users, sources, strict=True)]
        if done(found):
            return found
        assert time.monotonic() < deadline, f"{users} did not resolve as expected: {found}"
        time.sleep(0.2)


def settled(page: Any, site: ConsoleSite | None = None) -> None:
    """Scroll to the timeline (it loads when it comes into view) and wait until the parts
    of the 360 view that arrive with htmx are in."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # Parts loading above the timeline can push its first row out of view after a scroll,
    # and it loads only when seen: scroll it back into view until everything is in.
    deadline = time.monotonic() + 30  # a loaded two-core machine: resolution runs beside
    while True:
        page.locator("#timeline").scroll_into_view_if_needed()
        try:
            page.wait_for_function(
                "!document.querySelector('.loading, .htmx-request')", timeout=2_000
            )
            return
        except PlaywrightTimeout:
            if time.monotonic() < deadline:
                continue
        stuck = page.eval_on_selector_all(
            ".loading, .htmx-request",
            "els => els.map(e => { const p = e.closest('[hx-get]');"
            " return [e.className, p && p.id, p && p.getAttribute('hx-get')].join(' '); })",
        )
        log = site.server.log_tail() if site is not None else ""
        raise AssertionError(f"parts of the 360 view never loaded: {stuck}\n{log}") from None


def _lookup(site: ConsoleSite, user: str, source: str) -> str | None:
    with site.server.api(site.admin_key) as c:
        r = c.get(
            f"/v1/tenants/{site.tenant_id}/identity/lookup",
            params={"type": "user_id", "value": user, "scope": source},
        )
    return str(r.json()["profile"]) if r.status_code == 200 else None


def test_look_a_demo_customer_up_by_phone_and_read_the_360_view(
    page: Any, site: ConsoleSite
) -> None:
    phone = demo_phone(site)
    typed = _spelled(phone)
    expected = _by_identifier(site, "phone", phone)  # what the API says
    sign_in(page, "analyst")
    page.goto(site.page_url("profiles"))
    page.fill("#pf-q", typed)  # no submit: htmx fetches results while typing
    hit = page.locator("tr.pf-hit").first
    hit.wait_for()
    assert page.locator("tr.pf-hit").count() == 1
    assert expected["oneid"] in hit.inner_text()
    assert "phone" in hit.inner_text() and "****" in hit.inner_text()  # masked, like the API
    assert page.locator(".pf-results").get_attribute("data-kind") == "phone"
    assert "q=" in page.url  # the address bar follows the search
    shot(page, "profiles-search")

    started = time.monotonic()
    hit.locator("a").first.click()
    page.wait_for_url(re.compile(rf".*/profiles/{expected['oneid']}$"))
    opened_s = time.monotonic() - started
    settled(page, site)
    assert page.inner_text("#pf-oneid") == expected["oneid"]
    ids = page.locator("#identities tbody tr")
    assert ids.count() == len(expected["identities"])
    phone_row = page.locator('#identities tr[data-type="phone"]').first
    masked = re.sub(r"\D", "", phone)[-4:]
    assert phone_row.inner_text().count("****") == 1 and masked in phone_row.inner_text()
    assert re.sub(r"\D", "", phone)[-11:] not in page.content()  # never the whole number
    traits = {r.get_attribute("data-trait") for r in page.locator("#traits tr[data-trait]").all()}
    assert set(expected["traits"]) == traits
    assert page.locator("#timeline tr.pf-event").count() == min(
        TIMELINE_PAGE, expected["basics"]["events"]
    )
    assert page.locator('#consent tr[data-channel="*"]').count() >= 1
    assert page.locator("a.pf-split").count() == 0  # an analyst may not split
    assert opened_s < 5, f"the 360 view took {opened_s:.1f} s"
    shot(page, "profiles-360")
    page.goto(f"{site.url}/console/lang/zh?next=/console/t/{site.tenant_id}/profiles/"
              f"{expected['oneid']}")  # fmt: skip
    settled(page, site)
    assert "身份标识" in page.inner_text("#identities h2")
    assert "授权同意" in page.inner_text("#consent h2")
    shot(page, "profiles-360-zh")


def test_split_a_person_in_the_browser_and_see_the_history(page: Any, site: ConsoleSite) -> None:
    person = make_person(site, events=TIMELINE_PAGE + 5)
    sign_in(page, "operator")
    page.goto(site.page_url("profiles"))
    page.select_option("#pf-kind", "phone")
    page.fill("#pf-q", _spelled(person.phone))
    page.locator("tr.pf-hit a").first.click()
    page.wait_for_url(re.compile(rf".*/profiles/{person.oneid}$"))
    settled(page, site)
    # two user ids, the phone, and the unionid and device of the scan
    assert page.locator("#identities tbody tr").count() == 5
    assert f"SN{person.tag}" in page.inner_text("#scans tr.pf-scan")
    assert page.locator('#history tr.pf-change[data-kind="merge"]').count() >= 1
    assert "测试" in page.inner_text("#pf-name")

    rows = page.locator("#timeline tr.pf-event")
    assert rows.count() == TIMELINE_PAGE
    page.click("#timeline tr.more button")  # htmx "load more"
    page.wait_for_function(
        f"document.querySelectorAll('#timeline tr.pf-event').length > {TIMELINE_PAGE}"
    )
    assert rows.count() == TIMELINE_PAGE + 5 + 4  # orders, scan, visit, two identify calls
    assert page.locator("#timeline tr.more").count() == 0

    page.click('#identities tr[data-type="phone"] a.pf-split')
    page.wait_for_url(re.compile(r".*/split\?node=\d+$"))
    assert "199" in page.inner_text("main")  # the masked phone to be unlinked is named
    shot(page, "profiles-split-confirm")
    page.fill("textarea[name=reason]", "two people share one phone")
    page.click("#pf-split-form button[type=submit]")
    page.wait_for_selector("#pf-split-result")
    pieces = page.locator("#pf-split-result tr.pf-piece")
    assert pieces.count() == 3  # the member (with the scan), the counter customer, the phone
    assert person.oneid in page.inner_text("#pf-split-result")
    assert page.locator('#history tr.pf-change[data-kind="split"]').count() >= 1
    shot(page, "profiles-split-done")

    a, b = (_lookup(site, u, s) for u, s in zip(person.users, person.sources, strict=True))
    assert a != b, "the API still sees one person after the split"
    page.goto(site.page_url(f"profiles/{person.oneid}"))
    settled(page, site)
    split = page.locator('#history tr.pf-change[data-kind="split"]').first
    assert "two people share one phone" in split.inner_text()
    audit = site.api("GET", f"/v1/tenants/{site.tenant_id}/audit", params={"limit": 50})
    unlinks = [e for e in audit if e["action"] == "identity.unlink"]
    assert unlinks and unlinks[0]["actor"].startswith("user:")
    assert unlinks[0]["target_id"].startswith("phone:+86 199****")
    assert len(unlinks[0]["after"]["profiles"]) == 3


def test_an_analyst_sees_no_split_button_and_a_post_is_refused(site: ConsoleSite) -> None:
    person = make_person(site)
    view = site.page_url(f"profiles/{person.oneid}").removeprefix(site.url)
    with session_client(site, "operator") as c:
        page = c.get(view)
        assert page.status_code == 200 and "pf-split" in page.text
        node = re.search(r"split\?node=(\d+)", page.text)
        assert node
    for role in ("analyst", "marketer"):
        with session_client(site, role) as c:
            page = c.get(view)
            assert page.status_code == 200 and "pf-split" not in page.text
            assert c.get(f"{view}/split", params={"node": node.group(1)}).status_code == 403
            refused = c.post(
                f"{view}/split", data={"node": node.group(1), "csrf_token": csrf_of(page.text)}
            )
            assert refused.status_code == 403 and "identity:write" in refused.text
    a, b = (_lookup(site, u, s) for u, s in zip(person.users, person.sources, strict=True))
    assert a == b == person.oneid  # still one person


def test_search_by_id_prefix_name_and_what_finds_no_one(site: ConsoleSite) -> None:
    records = pq.read_table(site.server.data_dir / "demo" / "profiles.parquet")
    named = records.filter(pc.is_valid(records.column("unionid")))
    member, name, unionid = (
        str(named.column(c)[0]) for c in ("member_id", "name", "unionid")
    )  # fmt: skip
    results = f"/console/t/{site.tenant_id}/profiles/results"
    with session_client(site, "analyst") as c:
        for q, kind, field in (
            (member[:6], "auto", "member_id"),
            (member, "member_id", "member_id"),
            (unionid[:10], "unionid", "unionid"),
            (name, "name", "name"),
        ):
            r = c.get(results, params={"q": q, "type": kind}, headers={"HX-Request": "true"})
            assert r.status_code == 200, r.text
            assert "pf-hit" in r.text, f"{kind} {q!r} found no one"
            assert f'<span class="muted">{field}</span>' in r.text
            assert r.headers["HX-Replace-Url"].endswith(f"type={kind}")
        nobody = c.get(results, params={"q": "+86 199 0000 0000"})
        assert "No person has this phone" in nobody.text and "pf-hit" not in nobody.text
        bogus = c.get(results, params={"q": "x", "type": "passport"})
        assert (
            bogus.status_code == 200 and "search type &#39;passport&#39; is unknown" in bogus.text
        )
        not_oneid = c.get(results, params={"q": "abc", "type": "oneid"})
        assert "This is not a valid oneid" in not_oneid.text
        partial = c.get(results, params={"q": "zzz-no-such"})
        assert "type the whole number or address" in partial.text
        page = c.get(f"/console/t/{site.tenant_id}/profiles", params={"q": member})
        assert page.status_code == 200 and "pf-hit" in page.text  # without htmx too
        bad = c.get(f"/console/t/{site.tenant_id}/profiles/P99999999")
        assert bad.status_code == 404 and "does not exist" in bad.text
