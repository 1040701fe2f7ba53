"""Scans counted per verdict since a time, per tenant."""

from __future__ import annotations

from datetime import datetime, timedelta

from quanyu.codes import scan_activity, scans
from quanyu.engine.duckdb import DuckDBEngine

NOW = datetime(2026, 11, 26, 12)


def _scan(tenant: str, verdict: str, at: datetime) -> scans.ScanRow:
    return scans.ScanRow(
        tenant_id=tenant, code=None if verdict == "forged" else "c1", presented="x",
        inner_code=False, verdict=verdict, state=None, gtin=None, scanned_at=at, city="上海",
        lat=None, lon=None, ip=None, device_id=None, role="consumer", party_id=None,
        dealer_id=None, region=None,
    )  # fmt: skip


def test_scans_since_per_verdict_and_tenant(engine: DuckDBEngine) -> None:
    rows = [
        _scan("t1", "genuine", NOW - timedelta(days=1)),  # before the window
        _scan("t1", "genuine", NOW),
        _scan("t1", "genuine", NOW + timedelta(hours=1)),
        _scan("t1", "forged", NOW + timedelta(hours=2)),
        _scan("t2", "genuine", NOW),
    ]
    with engine.connect() as db:
        scans.record(db, rows)
        assert scan_activity.scans_since(db, tenant="t1", since=NOW) == {"forged": 1, "genuine": 2}
        assert scan_activity.scans_since(db, tenant="t2", since=NOW) == {"genuine": 1}
        assert scan_activity.scans_since(db, tenant="t3", since=NOW) == {}
