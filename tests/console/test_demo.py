"""`quanyu demo` makes a console user who can sign in, and product codes to look at."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import ConsoleSite, shot, sign_in


def test_the_demo_user_signs_in_with_the_printed_password(page: Any, site: ConsoleSite) -> None:
    console = site.keys["console"]
    sign_in(page, console["login"], console["password"])
    assert page.url.endswith(f"/console/t/{site.tenant_id}/")
    assert "Hanami Group (demo)" in page.inner_text("main")
    shot(page, "demo-home")


def test_the_demo_has_codes_scans_and_a_diversion_alert(site: ConsoleSite) -> None:
    base = f"/v1/tenants/{site.tenant_id}"
    products = site.api("GET", f"{base}/codes/products")
    assert len(products) == 3
    orders = site.api("GET", f"{base}/codes/orders")
    states = site.api("GET", f"{base}/codes/orders/{orders[0]['id']}/states")
    assert sum(states.values()) == 300 and states.get("activated", 0) < 300  # some shipped
    alerts = site.api("GET", f"{base}/scans/alerts")
    diversion = [a for a in alerts if a["kind"] == "diversion"]
    assert [a["subject"].split("|")[0] for a in diversion] == ["east-dealer"]
