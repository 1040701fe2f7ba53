"""Anomaly detection on constructed scan histories: forged bursts, one code in distant
cities within a day, scans of voided, never-printed and unknown codes, recycled caps,
and channel diversion judged per dealer and product on dealer and store scans only."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from quanyu.codes import anomalies, rewards
from quanyu.codes.anomalies import distance_km, in_region, place
from quanyu.codes.scan_models import CampaignCreate, RedeemRequest
from quanyu.codes.scans import CoreDirectory, ScanRow, record
from quanyu.codes.serials import CodeKeys
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.identity.secrets import load_master_key
from quanyu.ids import new_id, utcnow
from tests.codes.test_scans import GTIN, make_code, product

T0 = datetime(2026, 11, 20, 8)
SINCE = T0 - timedelta(days=1)


def row(
    tenant: str,
    code: str | None,
    at: datetime,
    city: str | None,
    *,
    verdict: str = "genuine",
    state: str | None = "activated",
    role: str = "consumer",
    party: str | None = None,
    dealer: str | None = None,
    region: str | None = None,
    ip: str | None = None,
    inner: bool = False,
    gtin: str | None = GTIN,
) -> ScanRow:
    return ScanRow(
        tenant,
        code,
        "BOGUS" if code is None else None,
        inner,
        verdict,
        state,
        gtin,
        at,
        city,
        None,
        None,
        ip,
        None,
        role,
        party,
        dealer,
        region,
    )


def put(engine: DuckDBEngine, rows: list[ScanRow]) -> None:
    with engine.connect() as db:
        record(db, rows)


def test_places_regions_and_distances() -> None:
    assert place("Chengdu") == "成都" and place("四川省") == "四川" and place("成都市") == "成都"
    assert in_region("成都", "四川") is True and in_region("Guangzhou", "四川, 重庆") is False
    assert in_region("绵阳", "成都,绵阳") is True and in_region("某县", "四川") is None
    assert in_region(None, "四川") is None
    d = distance_km("北京", "上海")
    assert d is not None and 1000 < d < 1150
    assert (distance_km("成都", "绵阳") or 0) < 150 and distance_km("成都", "火星") is None


def test_counterfeit_signals(engine: DuckDBEngine) -> None:
    t = new_id("ten")
    h = timedelta(hours=1)
    rows = [
        row(t, None, T0 + i * h, "广州", verdict="forged", state=None, ip="1.1.1.1", gtin=None)
        for i in range(6)
    ]
    rows += [row(t, None, T0, "北京", verdict="forged", state=None, ip="2.2.2.2", gtin=None)]
    # a copied label: Beijing, Shanghai and Chengdu within ten hours
    rows += [
        row(t, "COPIED0000000000", T0 + k * 5 * h, c)
        for k, c in enumerate(["北京", "上海", "成都"])
    ]
    # travelling slowly, or close cities: not alerts
    rows += [
        row(t, "SLOW000000000000", T0 + k * 30 * h, c)
        for k, c in enumerate(["北京", "上海", "成都"])
    ]
    rows += [
        row(t, "NEAR000000000000", T0 + k * h, c) for k, c in enumerate(["成都", "绵阳", "宜宾"])
    ]
    rows += [
        row(t, "VOID000000000000", T0, "深圳", verdict="voided", state="voided"),
        row(t, "ISSU000000000000", T0, "深圳", verdict="not_released", state="issued"),
        row(t, "PRNT000000000000", T0, "深圳", verdict="not_released", state="printed"),
        row(t, "GONE000000000000", T0, "深圳", verdict="unknown", state=None, gtin=None),
        row(t, "CAPS000000000000", T0, None, verdict="recalled", state="recalled", inner=True),
        row(t, "OUTR000000000000", T0, None, verdict="recalled", state="recalled"),
    ]
    put(engine, rows)
    with engine.connect() as db:
        got = anomalies.detect(db, tenant=t, since=SINCE)
        alerts = {(a.kind, a.subject): a for a in anomalies.list_alerts(db, tenant=t)}
        again = anomalies.detect(db, tenant=t, since=SINCE)
    assert set(alerts) == {
        ("forged_burst", "1.1.1.1|广州"),
        ("distant_cities", "COPIED0000000000"),
        ("voided_scan", "VOID000000000000"),
        ("unprinted_scan", "ISSU000000000000"),
        ("unknown_code", "GONE000000000000"),
        ("recycled_cap", "CAPS000000000000"),
    }
    assert got.new_alerts == 6 and again.new_alerts == 0
    burst = alerts[("forged_burst", "1.1.1.1|广州")]
    assert burst.evidence["count"] == 6 and burst.evidence["samples"] == ["BOGUS"] * 5
    copied = alerts[("distant_cities", "COPIED0000000000")]
    assert copied.evidence["cities"] == ["北京", "上海", "成都"] and copied.gtin == GTIN
    assert copied.first_at == T0 and copied.last_at == T0 + 10 * h


def test_other_tenants_scans_raise_nothing(engine: DuckDBEngine) -> None:
    t, other = new_id("ten"), new_id("ten")
    put(engine, [row(other, None, T0, "广州", verdict="forged", state=None, ip="1.1.1.1")] * 9)
    with engine.connect() as db:
        assert anomalies.detect(db, tenant=t, since=SINCE).new_alerts == 0


def test_recycled_cap_from_a_real_redemption(engine: DuckDBEngine, tmp_path: Path) -> None:
    t = new_id("ten")
    keys = CodeKeys.derive(load_master_key(tmp_path), t)
    with engine.connect() as db:
        made = make_code(db, keys, t, product(db, t), "recalled")
        camp = rewards.create_campaign(
            db, CampaignCreate(name="c", odds=1, prize_cents=1, budget_count=5), tenant=t
        )
        got = rewards.redeem(
            db,
            keys,
            CoreDirectory(),
            RedeemRequest(code=made.inner_serial, campaign_id=camp.id, person="o"),
            tenant=t,
        )
        assert got.outcome == "recalled"
        anomalies.detect(db, tenant=t, since=utcnow() - timedelta(hours=1))
        kinds = {(a.kind, a.subject) for a in anomalies.list_alerts(db, tenant=t)}
    assert kinds == {("recycled_cap", made.code)}


@pytest.fixture
def diverted(engine: DuckDBEngine) -> str:
    t = new_id("ten")
    h = timedelta(hours=1)
    rows = []
    # dealer D1 may sell in Sichuan; its stores scan 5 cases in Chengdu, 4 in Guangzhou
    rows += [
        row(
            t,
            f"D1IN{i:012d}",
            T0 + i * h,
            "成都",
            role="store",
            party="S1",
            dealer="D1",
            region="四川",
        )
        for i in range(5)
    ]
    rows += [
        row(
            t,
            f"D1OUT{i:011d}",
            T0 + i * h,
            "广州",
            role="store",
            party="S9",
            dealer="D1",
            region="四川",
        )
        for i in range(4)
    ]
    # dealer D2's goods are drunk all over China (consumer scans) but stocked at home
    rows += [
        row(t, f"D2C{i:013d}", T0 + i * h, c, dealer="D2", region="成都,绵阳")
        for i, c in enumerate(["北京", "上海", "广州", "深圳", "武汉"])
    ]
    rows += [
        row(
            t,
            f"D2S{i:013d}",
            T0 + i * h,
            "绵阳",
            role="dealer",
            party="D2",
            dealer="D2",
            region="成都,绵阳",
        )
        for i in range(6)
    ]
    # one stray case of D2 in Xi'an: below the thresholds
    rows += [
        row(
            t,
            "D2X0000000000000",
            T0,
            "西安",
            role="store",
            party="S7",
            dealer="D2",
            region="成都,绵阳",
        )
    ]
    put(engine, rows)
    return t


def test_diversion_per_dealer_and_product(engine: DuckDBEngine, diverted: str) -> None:
    with engine.connect() as db:
        got = anomalies.detect(db, tenant=diverted, since=SINCE)
        alerts = anomalies.list_alerts(db, tenant=diverted, kind="diversion")
        d1 = anomalies.dealer_report(db, tenant=diverted, dealer="D1", since=SINCE)
        d2 = anomalies.dealer_report(db, tenant=diverted, dealer="D2", since=SINCE)
    assert got.by_kind == {"diversion": 1}
    assert [(a.subject, a.dealer_id, a.gtin) for a in alerts] == [(f"D1|{GTIN}", "D1", GTIN)]
    assert alerts[0].evidence["outside_cities"] == {"广州": 4}
    assert "4 of 9" in alerts[0].summary
    (r1,) = d1.rows
    assert (r1.scans, r1.outside, r1.flagged, r1.region) == (9, 4, True, "四川")
    assert [a.kind for a in d1.alerts] == ["diversion"]
    (r2,) = d2.rows
    assert (r2.scans, r2.outside, r2.flagged) == (7, 1, False)  # consumer scans not counted
    assert d2.alerts == []
