"""One-item-one-code generation: 10 million codes for one order, generated and stored.

A real DuckDB file in a temporary data dir, one tenant with 1 million codes already
stored (so the uniqueness anti-join has something to check against), then
``generate.generate`` for a 10-million-code order with inner codes: draw from
os.urandom, Crockford-encode, tags and inner-code hashes by AES, anti-join, and insert.
Target (issue 6): ≤ 30 s on 2 cores.

Baseline: a bare ``INSERT … SELECT`` of an Arrow table of the same shape (the codes
already encoded and sorted, no checks) into the same table — what the database alone costs; the
ratio says how much the generator adds on top.
Run: python benchmarks/bench_codes.py [--codes 10000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from quanyu.codes import generate, serials, service  # noqa: E402
from quanyu.codes import sql as q  # noqa: E402
from quanyu.codes.models import (  # noqa: E402
    BrandCodesSettings,
    OrderCreate,
    ProductCreate,
)
from quanyu.config import Settings  # noqa: E402
from quanyu.identity.secrets import load_master_key  # noqa: E402
from quanyu.ids import utcnow  # noqa: E402
from quanyu.store import open_store  # noqa: E402
from quanyu.tenancy import service as tenancy  # noqa: E402
from quanyu.tenancy.models import BrandCreate, TenantCreate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--codes", type=int, default=10_000_000)
    ap.add_argument("--existing", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        engine = open_store(settings)
        master = load_master_key(settings.data_dir)
        with engine.connect() as db:
            tenant = tenancy.create_tenant(db, TenantCreate(name="Bench"), actor="bench").id
            brand = tenancy.create_brand(db, BrandCreate(name="B"), tenant=tenant, actor="b").id
            service.set_brand(db, BrandCodesSettings(short_domain="t.brand.cn"),
                              tenant=tenant, brand_id=brand)  # fmt: skip
            product = service.create_product(
                db, ProductCreate(gtin="6901234567892", brand_id=brand, name="P"), tenant=tenant
            ).id
            keys = serials.CodeKeys.derive(master, tenant)

            def order(n: int) -> str:
                body = OrderCreate(product_id=product, quantity=n, line="L1", lot="1")
                return service.create_order(db, body, tenant=tenant).id

            generate.generate(db, keys, tenant=tenant, order_id=order(args.existing))
            big = order(args.codes)
            t0 = time.perf_counter()
            done = generate.generate(db, keys, tenant=tenant, order_id=big)
            took = time.perf_counter() - t0
            assert done.added == args.codes

            # baseline: the same rows, already encoded, inserted with no checks
            raw, _ = generate._unique_sorted(serials.draw(args.codes))
            table = generate._table(
                keys, generate._Batch(raw, serials.encode(raw), 0), 1, None, True
            )
            base = order(args.codes)
            t0 = time.perf_counter()
            with db.transaction():
                db.with_table("staged_codes", table, q.INSERT_CODES,
                              [tenant, base, product, "item", utcnow()])  # fmt: skip
            bare = time.perf_counter() - t0
        engine.close()
    print(f"machine: {machine()}")
    print(
        f"generate {args.codes:,} codes (with inner codes, {args.existing:,} already stored):"
        f" {took:.1f} s, {args.codes / took:,.0f} codes/s (target ≤ 30 s for 10M);"
        f" redrawn {done.redrawn}"
    )
    print(
        f"baseline bare DuckDB insert of the same Arrow rows: {bare:.1f} s;"
        f" generator / bare insert = {took / bare:.2f}x"
    )


if __name__ == "__main__":
    main()
