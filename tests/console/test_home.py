"""The home page: its figures move by exactly what a source sent, live, and the dead
letters, scans and consent changes of the day show up."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx

from tests.console.conftest import ConsoleSite, session_client, shot, sign_in

FIGURES = ("events-today", "people", "consent-today", "scans-today", "dead-letters")


def figures(page: Any) -> dict[str, int]:
    """The page's headline numbers ("3,228" → 3228)."""
    return {
        name: int(page.inner_text(f"[data-figure={name}] .value").replace(",", ""))
        for name in FIGURES
    }


def batch(site: ConsoleSite, write_key: str, messages: list[dict[str, Any]]) -> httpx.Response:
    """POST /v1/batch with the write key as HTTP basic auth user, as Segment SDKs do."""
    return httpx.post(
        f"{site.url}/v1/batch", json={"batch": messages}, auth=(write_key, ""), timeout=30
    )


def new_source(site: ConsoleSite, name: str) -> dict[str, Any]:
    return dict(
        site.api(
            "POST", f"/v1/tenants/{site.tenant_id}/sources", json={"name": name, "kind": "web"}
        )
    )


def wait_for(check: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.3)


def test_home_figures_move_by_exactly_what_was_sent(page: Any, site: ConsoleSite) -> None:
    tag = uuid.uuid4().hex[:8]
    src = new_source(site, f"Home test {tag}")
    sign_in(page, "analyst")
    assert page.url.endswith(f"/console/t/{site.tenant_id}/")
    before = figures(page)
    assert before["events-today"] > 0  # the demo's import arrived today

    user = f"home-{tag}"
    sent = [{"type": "identify", "userId": user, "traits": {"name": "Home Test"}}]
    sent += [{"type": "track", "userId": user, "event": f"Viewed {i}"} for i in range(6)]
    answer = batch(site, src["write_key"], sent)
    assert answer.status_code == 200 and answer.json()["accepted"] == 7, answer.text

    # the live fragment polls every 5 s: the figure changes without reloading the page
    assert page.get_attribute("#home-live", "hx-trigger") == "every 5s"
    page.wait_for_function(
        "n => document.querySelector('[data-figure=events-today] .value')"
        ".textContent.replace(/,/g, '') === String(n)",
        arg=before["events-today"] + 7,
        timeout=15_000,
    )
    row = f"tr[data-source={src['id']}]"
    assert page.inner_text(f"{row} [data-col=today]") == "7"
    assert page.inner_text(f"{row} [data-col=last-5]") == "7"
    assert page.inner_text(f"{row} [data-col=last-hour]") == "7"
    spec = json.loads(page.get_attribute("[data-chart-name=per-minute] .chart", "data-chart"))
    (line,) = [s for s in spec["series"] if s["label"] == src["name"]]
    assert sum(line["values"]) == 7 and sum(line["values"][-2:]) == 7  # this or last minute
    assert len(spec["x"]) == 180 and spec["x"][-1] <= time.time()
    days = json.loads(page.get_attribute("[data-chart-name=per-day] .chart", "data-chart"))
    assert len(days["x"]) == 30

    def one_more_person() -> bool:
        page.reload()
        return figures(page)["people"] >= before["people"] + 1

    wait_for(one_more_person, "the new person's resolution")
    now = figures(page)
    assert now["people"] == before["people"] + 1
    assert now["events-today"] == before["events-today"] + 7

    bad = batch(site, src["write_key"], [{"type": "track", "userId": user}])  # no event name
    assert bad.status_code == 400 and bad.json()["code"] == "validation_failed", bad.text
    page.reload()
    after = figures(page)
    assert after["dead-letters"] == before["dead-letters"] + 1
    assert after["events-today"] == before["events-today"] + 7
    latest = page.inner_text(".home-latest tbody tr:first-child")
    assert src["name"] in latest and "missing_field" in latest and "event" in latest
    assert int(page.inner_text("tr[data-reason=missing_field] [data-col=count]")) >= 1
    page.wait_for_timeout(300)  # the charts draw after load
    shot(page, "home")


def test_scans_and_consent_changes_of_the_day(page: Any, site: ConsoleSite) -> None:
    sign_in(page, "admin")
    before = figures(page)
    scanned = httpx.post(
        f"{site.url}/v1/public/tenants/{site.tenant_id}/scans",
        json={"code": f"NOT-A-CODE-{uuid.uuid4().hex[:6]}", "city": "上海"},
        timeout=30,
    )
    assert scanned.status_code == 200 and scanned.json()["verdict"] == "forged", scanned.text
    purposes = site.api("GET", f"/v1/tenants/{site.tenant_id}/consent/purposes")
    source_id = next(iter(site.keys["write_keys"].values()))["source_id"]
    person = {"type": "user_id", "value": f"home-{uuid.uuid4().hex[:6]}", "scope": source_id}
    decision = {
        "subject": person,
        "purpose": purposes[0]["id"],
        "status": "withdrawn",
    }
    site.api(
        "POST", f"/v1/tenants/{site.tenant_id}/consent/decisions", json={"decisions": [decision]}
    )
    page.reload()
    after = figures(page)
    assert after["scans-today"] == before["scans-today"] + 1
    assert after["consent-today"] == before["consent-today"] + 1
    assert re.search(r"\d+ forged", page.inner_text("[data-figure=scans-today]"))
    assert "withdrawn" in page.inner_text("[data-figure=consent-today]")


def test_the_live_fragment_is_a_fragment_and_roles_see_their_figures(site: ConsoleSite) -> None:
    with session_client(site, "marketer") as c:
        live = c.get(f"/console/t/{site.tenant_id}/home/live")
        assert live.status_code == 200
        assert "<html" not in live.text and 'data-figure="events-today"' in live.text
        assert 'data-figure="people"' in live.text
    with session_client(site, "admin") as c:
        other = c.get(f"/console/t/{site.other_tenant_id}/home/live")
        assert other.status_code == 404
