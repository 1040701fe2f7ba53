"""A tenant with a brand, link settings, a product, a dealer and a store, on a real DuckDB
file; ``plant.order(n)`` generates an order's codes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from quanyu.codes import generate, service
from quanyu.codes.models import (
    BrandCodesSettings,
    DealerCreate,
    Level,
    OrderCreate,
    ProductCreate,
    StoreCreate,
)
from quanyu.codes.serials import CodeKeys
from quanyu.engine import Session
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import BrandCreate, TenantCreate

GTIN = "6901234567892"
ACTOR = "test"


@dataclass
class Plant:
    engine: DuckDBEngine
    db: Session
    tenant: str
    brand: str
    product: str
    keys: CodeKeys
    master: bytes

    def order(self, n: int, level: Level = "item", *, inner: bool = True) -> str:
        body = OrderCreate(product_id=self.product, quantity=n, line="L1", lot="B2026",
                           level=level, inner_codes=inner)  # fmt: skip
        order = service.create_order(self.db, body, tenant=self.tenant)
        generate.generate(self.db, self.keys, tenant=self.tenant, order_id=order.id)
        return order.id

    def codes(self, order_id: str) -> list[str]:
        from quanyu.codes import sql as q

        rows = self.db.execute(q.ORDER_CODES, [self.tenant, order_id, 1, 10**9])
        return [r[1] for r in rows]


def make_plant(engine: DuckDBEngine, db: Session, master: bytes) -> Plant:
    tenant = tenancy.create_tenant(db, TenantCreate(name="Guizhou"), actor=ACTOR).id
    brand = tenancy.create_brand(db, BrandCreate(name="Gui"), tenant=tenant, actor=ACTOR).id
    settings = BrandCodesSettings(short_domain="t.brand.cn", company_prefix="6901234")
    service.set_brand(db, settings, tenant=tenant, brand_id=brand)
    product = service.create_product(
        db, ProductCreate(gtin=GTIN, brand_id=brand, name="Gui 53%"), tenant=tenant
    ).id
    service.create_dealer(db, DealerCreate(id="d-gz", name="GZ Wine", region="CN-GZ"),
                          tenant=tenant)  # fmt: skip
    service.create_store(db, StoreCreate(id="s-1", name="Store 1", dealer_id="d-gz",
                                         city="Guiyang"), tenant=tenant)  # fmt: skip
    return Plant(engine, db, tenant, brand, product, CodeKeys.derive(master, tenant), master)


@pytest.fixture
def plant(engine: DuckDBEngine) -> Iterator[Plant]:
    with engine.connect() as db:
        yield make_plant(engine, db, os.urandom(32))
