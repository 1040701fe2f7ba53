"""The codes overview on a real database file: codes per state for the tenant and per
recent order, and consumer scans per city in a period (dealer scans and other tenants
left out)."""

from __future__ import annotations

from datetime import timedelta

from quanyu.codes import lifecycle, overview, scans
from quanyu.codes.models import Selector
from quanyu.codes.scans import ScanRow
from quanyu.ids import utcnow
from tests.codes.conftest import ACTOR, Plant


def _scan(tenant: str, city: str | None, verdict: str, days_ago: float,
          role: str = "consumer") -> ScanRow:  # fmt: skip
    return ScanRow(tenant, "C" * 16 if verdict != "forged" else None, None, False, verdict,
                   None, None, utcnow() - timedelta(days=days_ago), city, None, None, None,
                   None, role, None, None, None)  # fmt: skip


def test_state_counts_per_tenant_and_order(plant: Plant) -> None:
    p = plant
    first, second = p.order(5), p.order(3)
    sel = Selector(order_id=first, seq_from=1, seq_to=2)
    lifecycle.print_codes(p.db, p.keys, tenant=p.tenant, sel=sel, actor=ACTOR, reason="")
    assert overview.state_counts(p.db, tenant=p.tenant) == {"issued": 6, "printed": 2}
    per = overview.order_state_counts(p.db, tenant=p.tenant)
    assert per == {first: {"issued": 3, "printed": 2}, second: {"issued": 3}}
    assert set(overview.order_state_counts(p.db, tenant=p.tenant, limit=1)) == {second}
    assert overview.ordered({"voided": 1, "zeta": 2, "printed": 3, "issued": 4}) == [
        ("issued", 4), ("printed", 3), ("voided", 1), ("zeta", 2)]  # fmt: skip
    assert overview.state_counts(p.db, tenant=p.tenant + "x") == {}


def test_scans_by_city_in_a_period(plant: Plant) -> None:
    p = plant
    scans.record(p.db, [
        _scan(p.tenant, "成都", "genuine", 1), _scan(p.tenant, "成都", "forged", 2),
        _scan(p.tenant, "成都", "genuine", 3), _scan(p.tenant, "上海", "genuine", 1),
        _scan(p.tenant, None, "genuine", 1), _scan(p.tenant, "上海", "genuine", 40),
        _scan(p.tenant, "北京", "genuine", 1, role="store"),
        _scan(p.tenant + "x", "北京", "genuine", 1),
    ])  # fmt: skip
    got = overview.scans_by_city(p.db, tenant=p.tenant, since=utcnow() - timedelta(days=30))
    assert [(c.city, c.scans, c.genuine) for c in got] == [
        ("成都", 3, 2), ("上海", 1, 1), (None, 1, 1)]  # fmt: skip
    assert got[0].codes == 1  # the forged scan names no code
    top = overview.scans_by_city(p.db, tenant=p.tenant, since=utcnow() - timedelta(days=30),
                                 limit=1)  # fmt: skip
    assert [c.city for c in top] == ["成都"]
