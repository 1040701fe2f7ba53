"""Signing in and out, roles, tenants in URLs and CSRF: the console's access rules."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import (
    PASSWORD,
    ConsoleSite,
    csrf_of,
    session_client,
    shot,
    sign_in,
)


def test_sign_in_in_a_browser_and_out_again(page: Any, site: ConsoleSite) -> None:
    page.goto("/console/")
    assert "/console/sign-in" in page.url  # not signed in: sent to the form
    shot(page, "sign-in")
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "Wrong login or password" in page.inner_text("[role=alert]")
    sign_in(page, "admin")
    assert page.url.endswith(f"/console/t/{site.tenant_id}/")
    nav = page.eval_on_selector_all("nav.side a", "els => els.map(e => e.dataset.nav)")
    assert nav == ["home", "sources", "profiles", "tags", "audiences", "consent", "codes", "audit"]
    page.click("header button:has-text('Sign out')")
    page.wait_for_url(re.compile(r".*/console/sign-in$"))
    page.goto(f"/console/t/{site.tenant_id}/")
    assert "/console/sign-in" in page.url


def test_language_switch_shows_chinese(page: Any, site: ConsoleSite) -> None:
    sign_in(page, "analyst")
    page.click("a.lang:has-text('中文')")
    page.wait_for_load_state()
    assert "首页" in page.inner_text("nav.side")
    page.click("a.lang:has-text('EN')")
    page.wait_for_load_state()
    assert "Home" in page.inner_text("nav.side")


def test_roles_see_only_their_pages(site: ConsoleSite) -> None:
    with session_client(site, "marketer") as c:
        home = c.get(f"/console/t/{site.tenant_id}/")
        assert home.status_code == 200
        assert 'data-nav="sources"' not in home.text and 'data-nav="audit"' not in home.text
        assert 'data-nav="audiences"' in home.text


def test_a_tenant_user_cannot_open_another_tenant_by_editing_the_url(
    page: Any, site: ConsoleSite
) -> None:
    sign_in(page, "admin")
    response = page.goto(f"/console/t/{site.other_tenant_id}/")
    assert response is not None and response.status == 404
    assert "No tenant has id" in page.inner_text("[role=alert]")
    assert "Another brand group" not in page.content()
    shot(page, "other-tenant-refused")
    with session_client(site, "other-admin") as c:
        assert c.get(f"/console/t/{site.other_tenant_id}/").status_code == 200
        assert c.get(f"/console/t/{site.tenant_id}/").status_code == 404


def test_forms_without_the_csrf_token_are_refused(site: ConsoleSite) -> None:
    with session_client(site, "admin") as c:
        token = csrf_of(c.get(f"/console/t/{site.tenant_id}/").text)
        refused = c.post("/console/sign-out", data={})
        assert refused.status_code == 403 and "CSRF" in refused.text
        wrong = c.post("/console/sign-out", data={"csrf_token": token[:-2] + "xx"})
        assert wrong.status_code == 403
        assert c.get(f"/console/t/{site.tenant_id}/").status_code == 200  # still signed in
        done = c.post("/console/sign-out", data={"csrf_token": token})
        assert done.status_code == 303
    with session_client(site, "admin") as other:
        assert other.post("/console/sign-out", data={"csrf_token": token}).status_code == 403


def test_an_isv_user_switches_between_its_tenants(page: Any, site: ConsoleSite) -> None:
    isv = site.server.call("POST", "/v1/isvs", json={"name": "Console ISV"})
    first = site.server.call(
        "POST", "/v1/tenants", json={"name": "ISV brand A", "isv_id": isv["id"]}
    )
    second = site.server.call(
        "POST", "/v1/tenants", json={"name": "ISV brand B", "isv_id": isv["id"]}
    )
    site.server.call(
        "POST",
        f"/v1/isvs/{isv['id']}/users",
        json={"login": "isv-ops", "password": PASSWORD, "role": "analyst"},
    )
    sign_in(page, "isv-ops")
    assert page.url.endswith(f"/console/t/{first['id']}/")
    page.select_option("#tenant-switch", second["id"])
    page.wait_for_url(re.compile(rf".*/console/t/{second['id']}/$"))
    options = page.eval_on_selector_all("#tenant-switch option", "els => els.map(e => e.value)")
    assert options == [first["id"], second["id"]]
    response = page.goto(f"/console/t/{site.tenant_id}/")  # not delivered by this ISV
    assert response is not None and response.status == 404


def test_a_disabled_user_is_signed_out_at_the_next_request(site: ConsoleSite) -> None:
    user = site.api(
        "POST",
        f"/v1/tenants/{site.tenant_id}/users",
        json={"login": "leaver", "password": PASSWORD, "role": "analyst"},
    )
    with session_client(site, "leaver") as c:
        assert c.get(f"/console/t/{site.tenant_id}/").status_code == 200
        site.api("POST", f"/v1/users/{user['id']}/disable")
        gone = c.get(f"/console/t/{site.tenant_id}/")
        assert gone.status_code == 303 and "/console/sign-in" in gone.headers["location"]
