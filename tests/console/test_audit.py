"""The audit log in the browser: a key rotation made in the console shows up with its
actor and what changed; the filters narrow the table in place; pages go back in time."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.console.conftest import ConsoleSite, csrf_of, session_client, shot, sign_in


def rotate_in_the_console(site: ConsoleSite) -> tuple[str, str]:
    """As the admin user: a source created and its key rotated; (old key id, source id)."""
    base = f"/console/t/{site.tenant_id}"
    with session_client(site, "admin") as c:
        token = csrf_of(c.get(f"{base}/sources").text)
        made = c.post(
            f"{base}/sources", data={"name": f"Audit {uuid.uuid4()}", "csrf_token": token}
        )
        assert made.status_code == 201, made.text[:500]
        source_id = re.findall(r'data-source="(src_[0-9a-f]+)"', made.text)[-1]
        key_id = re.search(rf"/sources/{source_id}/keys/(key_[0-9a-f]+)/rotate", made.text)
        assert key_id, "the new source has no rotate button"
        rotated = c.post(
            f"{base}/sources/{source_id}/keys/{key_id.group(1)}/rotate",
            data={"csrf_token": token},
        )
        assert rotated.status_code == 201, rotated.text[:500]
    return key_id.group(1), source_id


def test_the_audit_log_shows_the_rotation_and_filters(page: Any, site: ConsoleSite) -> None:
    old_key, source_id = rotate_in_the_console(site)
    sign_in(page, "auditor")
    page.click("nav.side a[data-nav=audit]")
    page.wait_for_selector("tr[data-audit]")
    actions = page.eval_on_selector_all("tr[data-audit]", "els => els.map(e => e.dataset.action)")
    assert actions[:4] == ["key.revoke", "key.create", "key.create", "source.create"]
    revoke = page.locator("tr[data-action='key.revoke']").first
    text = revoke.inner_text()
    assert "user:admin" in text and old_key in text and "revoked_at" in text
    assert source_id in page.locator("tr[data-action='source.create']").first.inner_text()
    shot(page, "audit")

    # filter by action: htmx swaps the table and the URL follows
    page.select_option("#audit-filters select[name=action]", "key.revoke")
    page.wait_for_url(re.compile(r".*/audit\?.*action=key\.revoke.*"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('tr[data-audit]')]"
        ".every(r => r.dataset.action === 'key.revoke')"
    )
    assert old_key in page.inner_text("#audit-results")
    assert page.query_selector("#audit-filters") is not None  # the form stayed
    shot(page, "audit-filtered")

    page.fill("#audit-filters input[name=actor]", "no-such-actor")
    page.press("#audit-filters input[name=actor]", "Enter")
    page.wait_for_selector("text=No entry matches these filters.")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    page.goto(f"/console/t/{site.tenant_id}/audit?since={tomorrow}")
    assert "No entry matches" in page.inner_text("#audit-results")
    page.goto(f"/console/t/{site.tenant_id}/audit?since=yesterday")
    assert "is not a date" in page.inner_text("[role=alert]")


def test_pages_go_back_in_time(site: ConsoleSite) -> None:
    total = len(site.api("GET", f"/v1/tenants/{site.tenant_id}/audit", params={"limit": 1000}))
    for i in range(max(0, 51 - total)):
        site.api(
            "POST", f"/v1/tenants/{site.tenant_id}/brands", json={"name": f"B{i}-{uuid.uuid4()}"}
        )
    base = f"/console/t/{site.tenant_id}/audit"
    with session_client(site, "admin") as c:
        first = c.get(base).text
        ids = re.findall(r'data-audit="(aud_[0-9a-f]+)"', first)
        assert len(ids) == 50
        older = re.search(r'href="([^"]*before=[^"]+)" hx-get', first)
        assert older, "no link to older entries"
        second = c.get(older.group(1).replace("&amp;", "&"))
        assert second.status_code == 200
        more = re.findall(r'data-audit="(aud_[0-9a-f]+)"', second.text)
        assert more and max(more) < min(ids) and "← Newest" in second.text
        fragment = c.get(base, params={"action": "brand.create"}, headers={"HX-Request": "true"})
        assert "<html" not in fragment.text and 'data-action="brand.create"' in fragment.text
        assert 'data-action="key.create"' not in fragment.text
    with session_client(site, "marketer") as c:
        assert c.get(base).status_code == 403
