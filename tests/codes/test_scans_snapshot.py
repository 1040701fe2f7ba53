"""The in-memory code snapshot behind the scan hot path: it answers like the database,
sees lifecycle changes made through the codes core within its poll interval, and falls
back to the database for codes it does not hold."""

from __future__ import annotations

import time
from pathlib import Path

from quanyu.codes import generate, lifecycle, scans
from quanyu.codes import service as codes
from quanyu.codes import sql as cq
from quanyu.codes.models import BrandCodesSettings, OrderCreate, ProductCreate, Selector
from quanyu.codes.scans import CoreDirectory, MemoryDirectory, ScanHistory
from quanyu.codes.serials import CodeKeys
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.identity.secrets import load_master_key
from quanyu.ids import utcnow
from quanyu.observability import REGISTRY
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import BrandCreate, TenantCreate
from tests.codes.test_scans import make_code, product

GTIN = "06901234567892"


def test_snapshot_follows_the_lifecycle(engine: DuckDBEngine, tmp_path: Path) -> None:
    with engine.connect() as db:
        tenant = tenancy.create_tenant(db, TenantCreate(name="snap"), actor="t").id
        brand = tenancy.create_brand(db, BrandCreate(name="b"), tenant=tenant, actor="t").id
        codes.set_brand(
            db, BrandCodesSettings(short_domain="t.b.cn"), tenant=tenant, brand_id=brand
        )
        keys = CodeKeys.derive(load_master_key(tmp_path), tenant)
        pid = codes.create_product(
            db, ProductCreate(gtin=GTIN, brand_id=brand, name="x"), tenant=tenant
        ).id
        order = codes.create_order(
            db, OrderCreate(product_id=pid, quantity=5, line="L", lot="A"), tenant=tenant
        ).id
        generate.generate(db, keys, tenant=tenant, order_id=order)
        all5 = [r[1] for r in db.execute(cq.ORDER_CODES, [tenant, order, 1, 5])]
        lifecycle.print_codes(db, keys, tenant=tenant, sel=Selector(codes=all5), actor="t")
        lifecycle.activate(db, keys, tenant=tenant, sel=Selector(codes=all5), actor="t")
    memory = MemoryDirectory(engine, poll=0.05)
    try:
        memory.load(tenant)
        assert memory.ready(tenant)
        with engine.connect() as db:
            for c in all5:
                assert memory.get(db, tenant, c) == CoreDirectory().get(db, tenant, c)
            got = memory.get(db, tenant, all5[0])
            assert got is not None and got.state == "activated" and got.gtin == GTIN
            lifecycle.recall(db, keys, tenant=tenant, sel=Selector(codes=all5[:2]), actor="t")
        deadline = time.monotonic() + 5
        with engine.connect() as db:
            while time.monotonic() < deadline:
                got = memory.get(db, tenant, all5[0])
                if got is not None and got.recalled:
                    break
                time.sleep(0.02)
            assert got is not None and got.state == "recalled" and got.recalled
            other = memory.get(db, tenant, all5[4])
            assert other is not None and other.state == "activated"
            # a code the snapshot never saw is found in the database
            late = make_code(db, keys, tenant, product(db, tenant, "06901234567885"), "printed")
            found = memory.get(db, tenant, late.code)
            assert found is not None and found.state == "printed"
            assert memory.get(db, tenant, "0" * 16) is None
    finally:
        memory.stop()


def test_a_server_warms_the_snapshots_of_tenants_with_codes(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    with engine.connect() as db:
        tenant = tenancy.create_tenant(db, TenantCreate(name="warm"), actor="t").id
        tenancy.create_tenant(db, TenantCreate(name="no codes"), actor="t")
        keys = CodeKeys.derive(load_master_key(tmp_path), tenant)
        pid = product(db, tenant, GTIN)
        made = [make_code(db, keys, tenant, pid, "activated") for _ in range(3)]
        assert scans.tenants_with_codes(db) == [tenant]
    memory = MemoryDirectory(engine, poll=0.05)
    try:
        memory.warm([tenant])
        memory.warm([tenant])  # asked again while loading: one load
        deadline = time.monotonic() + 10
        while not memory.ready(tenant) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert memory.ready(tenant)  # without a single lookup
        gauge = REGISTRY.get_sample_value("quanyu_code_snapshot_codes", {"tenant": tenant})
        assert gauge == len(made)
        with engine.connect() as db:
            got = memory.get(db, tenant, made[0].code)
        assert got is not None and got.state == "activated"
    finally:
        memory.stop()


def test_history_counts_and_forgets(engine: DuckDBEngine) -> None:
    h = ScanHistory(engine)
    at = utcnow()
    assert h.observe("t1", "C" * 16, at, "成都") == (0, None, None)
    assert h.observe("t1", "C" * 16, at, "北京") == (1, at, "成都")
    assert h.peek("t1", "C" * 16) == (2, at, "成都")
    h.forget("t1", "C" * 16)
    h.forget("t1", "C" * 16)
    assert h.peek("t1", "C" * 16) == (0, None, None)
    assert h.peek("t2", "C" * 16) == (0, None, None)  # tenants apart


def test_history_starts_from_the_stored_scans(engine: DuckDBEngine) -> None:
    from quanyu.codes.scans import ScanRow, record

    first = utcnow()
    rows = [
        ScanRow(
            "t3",
            "D" * 16,
            None,
            False,
            "genuine",
            "activated",
            GTIN,
            first,
            "遵义",
            None,
            None,
            None,
            None,
            "consumer",
            None,
            None,
            None,
        ),
        ScanRow(
            "t3",
            "D" * 16,
            None,
            True,
            "genuine",
            "activated",
            GTIN,
            first,
            None,
            None,
            None,
            None,
            None,
            "consumer",
            None,
            None,
            None,
        ),  # a cap, not the bottle
        ScanRow(
            "t3",
            "D" * 16,
            None,
            False,
            "genuine",
            "shipped",
            GTIN,
            first,
            "广州",
            None,
            None,
            None,
            None,
            "store",
            "S1",
            "D1",
            "四川",
        ),  # a store's scan
    ]
    with engine.connect() as db:
        record(db, rows)
    h = ScanHistory(engine)
    assert h.observe("t3", "D" * 16, utcnow(), "贵阳") == (1, first, "遵义")
