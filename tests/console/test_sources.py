"""Sources and keys in the browser: create, rotate (the old key stops at once), revoke,
secret keys with scopes, snippets that really send; roles that may only look, or not."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx

from tests.console.conftest import PASSWORD, ConsoleSite, csrf_of, session_client, shot, sign_in
from tests.console.test_home import batch

TRACK = [{"type": "track", "userId": "sources-test", "event": "Key Tested"}]


def create_source_in_the_page(page: Any, site: ConsoleSite, name: str, kind: str = "web") -> str:
    """Fill in the new-source form; return the write key the answer shows once."""
    page.goto(f"/console/t/{site.tenant_id}/sources")
    page.fill("#new-source input[name=name]", name)
    page.select_option("#new-source select[name=kind]", kind)
    page.click("#new-source button[type=submit]")
    page.wait_for_selector("[data-fresh-key]")
    return str(page.input_value("#fresh-secret"))


def events_of(site: ConsoleSite, source_id: str, want: int) -> list[dict[str, Any]]:
    """The source's stored events, once there are ``want`` (waits a little)."""
    deadline = time.monotonic() + 15
    while True:
        found = site.api(
            "GET", f"/v1/tenants/{site.tenant_id}/events", params={"source": source_id}
        )["items"]
        if len(found) >= want or time.monotonic() > deadline:
            return list(found)
        time.sleep(0.3)


def test_create_a_source_rotate_its_key_and_send_with_both(page: Any, site: ConsoleSite) -> None:
    page.on("dialog", lambda d: d.accept())  # the "revokes at once" confirmation
    sign_in(page, "admin")
    name = f"Sources test {uuid.uuid4().hex[:8]}"
    first = create_source_in_the_page(page, site, name)
    assert first.startswith("wk_")
    assert "shown this once" in page.inner_text("[data-fresh-key]")
    assert page.url.endswith("/sources")  # a reload asks for the page, not the form again
    shot(page, "sources-new-source")
    assert batch(site, first, TRACK).status_code == 200

    row = f"tr[data-source-name='{name}']"
    source_id = page.get_attribute(row, "data-source")
    old_key = page.get_attribute(f"{row} li.active", "data-key")
    page.click(f"{row} li.active button[data-action=rotate]")
    page.wait_for_selector("[data-fresh-key]")
    second = page.input_value("#fresh-secret")
    assert second.startswith("wk_") and second != first
    notice = page.inner_text("[data-fresh-key]")
    assert first[:9] in notice and "revoked" in notice
    assert second in page.text_content("[data-snippet=python]")  # the snippets carry it
    shot(page, "sources-rotated")

    assert batch(site, second, TRACK).status_code == 200
    refused = batch(site, first, TRACK)
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    assert len(events_of(site, str(source_id), 2)) == 2

    page.reload()
    assert page.query_selector("[data-fresh-key]") is None  # shown once, never again
    assert second not in page.content()
    assert "revoked" in (page.get_attribute(f"#key-{old_key}", "class") or "")
    shot(page, "sources")


def test_the_snippets_send_events(page: Any, site: ConsoleSite) -> None:
    """The analytics-python snippet runs as shown; the mini-program one runs in the
    browser against a stand-in for wx (wx.request → fetch)."""
    sign_in(page, "admin")
    name = f"Snippet test {uuid.uuid4().hex[:8]}"
    key = create_source_in_the_page(page, site, name, kind="mini_program")
    source_id = page.get_attribute(f"tr[data-source-name='{name}']", "data-source")
    python = page.text_content("[data-snippet=python] code")
    assert key in python and f'analytics.host = "{site.url}"' in python
    done = subprocess.run(
        [sys.executable, "-c", python], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    js = page.text_content("[data-snippet=analytics-js] code")
    assert f'writeKey: "{key}", cdnURL: "{site.url}"' in js
    wechat = page.text_content("[data-snippet=wechat] code")
    assert "wx.request" in wechat and "/v1/batch" in wechat
    sent = page.evaluate(
        """code => new Promise(resolve => {
          const wx = {
            arrayBufferToBase64: buf => btoa(String.fromCharCode(...new Uint8Array(buf))),
            request: o => fetch(o.url, {method: o.method, headers: o.header,
                                        body: JSON.stringify(o.data)})
              .then(r => r.json().then(data => o.success({statusCode: r.status, data})))
              .catch(e => o.fail(e)),
          };
          const module = {exports: {}};
          new Function("wx", "module", code)(wx, module);
          module.exports.send(
            [{type: "track", anonymousId: "openid-1", event: "Product Viewed"}],
            (ok, data) => resolve({ok, data}));
        })""",
        wechat,
    )
    assert sent["ok"] and sent["data"]["accepted"] == 1, sent
    stored = events_of(site, str(source_id), 3)
    assert sorted(e["type"] for e in stored) == ["identify", "track", "track"]
    assert {e["event"] for e in stored if e["type"] == "track"} == {
        "Order Completed",
        "Product Viewed",
    }


def test_secret_keys_with_scopes_and_revoking_them(page: Any, site: ConsoleSite) -> None:
    page.on("dialog", lambda d: d.accept())
    sign_in(page, "admin")
    page.goto(f"/console/t/{site.tenant_id}/sources")
    name = f"Reader {uuid.uuid4().hex[:8]}"
    page.fill("#new-secret-key input[name=name]", name)
    page.check("#new-secret-key input[value='ingest:read']")
    page.check("#new-secret-key input[value='profiles:read']")
    page.click("#new-secret-key button[type=submit]")
    page.wait_for_selector("[data-fresh-key]")
    secret = page.input_value("#fresh-secret")
    assert secret.startswith("sk_")
    base = f"{site.url}/v1/tenants/{site.tenant_id}"
    auth = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{base}/events?limit=1", headers=auth).status_code == 200
    assert httpx.get(f"{base}/keys", headers=auth).status_code == 403  # no tenancy scope
    row = page.locator("#secret-keys tr", has_text=name)
    assert row.locator(".src-scope").all_inner_texts() == ["ingest:read", "profiles:read"]
    row.locator("button[data-action=revoke]").click()
    page.wait_for_load_state()
    row = page.locator("#secret-keys tr", has_text=name)
    assert "revoked" in (row.get_attribute("class") or "")
    assert httpx.get(f"{base}/events?limit=1", headers=auth).status_code == 401

    # a form without a scope is answered on the page, nothing is created
    page.fill("#new-secret-key input[name=name]", "No scopes")
    page.click("#new-secret-key button[type=submit]")
    assert "Tick at least one scope" in page.inner_text("#secret-keys [role=alert]")
    assert page.query_selector("[data-fresh-key]") is None


def test_a_marketer_cannot_change_keys(page: Any, site: ConsoleSite) -> None:
    src = site.api(
        "POST", f"/v1/tenants/{site.tenant_id}/sources", json={"name": f"Guarded {uuid.uuid4()}"}
    )
    keys = site.api("GET", f"/v1/tenants/{site.tenant_id}/keys")
    (key,) = [k for k in keys if k["source_id"] == src["id"]]
    base = f"/console/t/{site.tenant_id}"
    writes = [
        (f"{base}/sources/{src['id']}/keys/{key['id']}/rotate", {}),
        (f"{base}/sources/{src['id']}/keys", {}),
        (f"{base}/keys/{key['id']}/revoke", {}),
        (f"{base}/sources", {"name": "Not allowed"}),
        (f"{base}/keys", {"name": "Not allowed", "scopes": "admin"}),
    ]
    for role in ("marketer", "auditor"):  # the analyst's rights here are the marketer's
        with session_client(site, role) as c:
            token = csrf_of(c.get(f"{base}/").text)
            shown = c.get(f"{base}/sources")
            if role == "marketer":
                assert shown.status_code == 403 and "tenancy:read" in shown.text
                assert 'data-nav="sources"' not in c.get(f"{base}/").text
            else:
                assert shown.status_code == 200 and "data-action" not in shown.text
            for url, form in writes:
                refused = c.post(url, data={**form, "csrf_token": token})
                assert refused.status_code == 403, f"{role} POST {url}: {refused.status_code}"
                assert "tenancy:write" in refused.text
    with session_client(site, "operator") as c:  # may run sources, not mint secret keys
        token = csrf_of(c.get(f"{base}/").text)
        refused = c.post(f"{base}/keys", data={"name": "x", "scopes": "admin", "csrf_token": token})
        assert refused.status_code == 403 and "admin role" in refused.text
        assert 'data-action="rotate"' in c.get(f"{base}/sources").text
    after = site.api("GET", f"/v1/tenants/{site.tenant_id}/keys")
    assert [k for k in after if k["source_id"] == src["id"]] == [key]  # untouched
    assert batch(site, src["write_key"], TRACK).status_code == 200

    sign_in(page, "auditor")
    page.goto(f"{base}/sources")
    assert page.query_selector("button[data-action]") is None
    assert page.query_selector("#new-source") is None
    assert page.query_selector("#new-secret-key") is None
    assert re.search(r"may look at sources", page.inner_text("[data-read-only]"))
    shot(page, "sources-read-only")


def test_no_key_gets_a_scope_its_creator_lacks(site: ConsoleSite) -> None:
    """An ISV operator may create a tenant's secret keys (as an ISV key may), within its own
    scopes: never admin, never a write it lacks."""
    tenant = site.api("GET", f"/v1/tenants/{site.tenant_id}")
    login = f"isv-operator-{uuid.uuid4().hex[:6]}"
    site.server.call(
        "POST",
        f"/v1/isvs/{tenant['isv_id']}/users",
        json={"login": login, "password": PASSWORD, "role": "operator"},
    )
    base = f"/console/t/{site.tenant_id}"
    with session_client(site, login) as c:
        token = csrf_of(c.get(f"{base}/sources").text)
        for scopes in (["admin"], ["tags:write", "ingest:read"]):
            refused = c.post(
                f"{base}/keys", data={"name": "Too much", "scopes": scopes, "csrf_token": token}
            )
            assert refused.status_code == 403, refused.text[:300]
            assert f"cannot grant {scopes[0]}" in refused.text
        made = c.post(
            f"{base}/keys",
            data={"name": "Enough", "scopes": ["codes:write", "ingest:read"], "csrf_token": token},
        )
        assert made.status_code == 201 and 'id="fresh-secret"' in made.text
    keys = site.api("GET", f"/v1/tenants/{site.tenant_id}/keys")
    assert [k["scopes"] for k in keys if k["name"] == "Enough"] == [["codes:write", "ingest:read"]]
    assert not [k for k in keys if k["name"] == "Too much"]
