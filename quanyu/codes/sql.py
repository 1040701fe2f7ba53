"""SQL of the codes capability: brands, products, orders, partners and code generation.
Builds statements; runs nothing. Lifecycle statements are in ``lifecycle_sql.py``."""

from __future__ import annotations

from quanyu.engine import statement

DELETE_BRAND = statement(
    "codes.delete_brand", "DELETE FROM code_brands WHERE tenant_id = ? AND brand_id = ?"
)
INSERT_BRAND = statement(
    "codes.insert_brand",
    "INSERT INTO code_brands (tenant_id, brand_id, short_domain, company_prefix, uppercase,"
    " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
)
GET_BRAND = statement(
    "codes.get_brand",
    "SELECT brand_id, short_domain, company_prefix, uppercase, updated_at FROM code_brands"
    " WHERE tenant_id = ? AND brand_id = ?",
)

_PRODUCT = "id, gtin, brand_id, name, created_at"
INSERT_PRODUCT = statement(
    "codes.insert_product",
    f"INSERT INTO code_products (tenant_id, {_PRODUCT}) VALUES (?, ?, ?, ?, ?, ?)",
)
GET_PRODUCT = statement(
    "codes.get_product",
    f"SELECT {_PRODUCT} FROM code_products WHERE tenant_id = ? AND id = ?",
)
PRODUCT_BY_GTIN = statement(
    "codes.product_by_gtin",
    f"SELECT {_PRODUCT} FROM code_products WHERE tenant_id = ? AND gtin = ?",
)
LIST_PRODUCTS = statement(
    "codes.list_products",
    f"SELECT {_PRODUCT} FROM code_products WHERE tenant_id = ? ORDER BY id",
)

_ORDER = "id, product_id, level, quantity, generated, line, lot, inner_codes, created_at"
INSERT_ORDER = statement(
    "codes.insert_order",
    f"INSERT INTO code_orders (tenant_id, {_ORDER}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
GET_ORDER = statement(
    "codes.get_order", f"SELECT {_ORDER} FROM code_orders WHERE tenant_id = ? AND id = ?"
)
LIST_ORDERS = statement(
    "codes.list_orders",
    f"SELECT {_ORDER} FROM code_orders WHERE tenant_id = ? ORDER BY created_at DESC, id LIMIT ?",
)
SET_GENERATED = statement(
    "codes.set_generated",
    "UPDATE code_orders SET generated = ? WHERE tenant_id = ? AND id = ?",
)

INSERT_DEALER = statement(
    "codes.insert_dealer",
    "INSERT INTO code_dealers (tenant_id, id, name, region, created_at) VALUES (?, ?, ?, ?, ?)",
)
GET_DEALER = statement(
    "codes.get_dealer",
    "SELECT id, name, region, created_at FROM code_dealers WHERE tenant_id = ? AND id = ?",
)
LIST_DEALERS = statement(
    "codes.list_dealers",
    "SELECT id, name, region, created_at FROM code_dealers WHERE tenant_id = ? ORDER BY id",
)
INSERT_STORE = statement(
    "codes.insert_store",
    "INSERT INTO code_stores (tenant_id, id, name, dealer_id, city, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)",
)
GET_STORE = statement(
    "codes.get_store",
    "SELECT id, name, dealer_id, city, created_at FROM code_stores WHERE tenant_id = ? AND id = ?",
)
LIST_STORES = statement(
    "codes.list_stores",
    "SELECT id, name, dealer_id, city, created_at FROM code_stores WHERE tenant_id = ? ORDER BY id",
)

# --- generation: the batch is registered as staged_codes (code_key, code, seq, sscc,
# inner_key, inner_hash), sorted by code_key so zone maps serve point lookups.
EXISTING = statement(
    "codes.existing",
    "SELECT s.code FROM staged_codes s WHERE s.code IN"
    " (SELECT c.code FROM codes c WHERE c.tenant_id = ? AND c.code_key IN"
    " (SELECT code_key FROM staged_codes))",
)
INSERT_CODES = statement(
    "codes.insert_codes",
    "INSERT INTO codes (tenant_id, code_key, code, order_id, product_id, seq, level, sscc,"
    " state, state_at, inner_key, inner_hash, scan_count)"
    " SELECT ?, code_key, code, ?, ?, seq, ?, sscc, 'issued', ?, inner_key, inner_hash, 0"
    " FROM staged_codes",
)
LAST_SSCC = statement(
    "codes.last_sscc",
    "SELECT max(sscc) FROM codes WHERE tenant_id = ? AND sscc LIKE ?",
)

# --- reading codes
_INFO = (
    "c.code, c.state, c.level, c.order_id, c.product_id, p.gtin, c.seq, c.sscc,"
    " c.parent_code, c.dealer_id, c.region, c.store_id, c.state_at, p.brand_id"
)
GET_CODE = statement(
    "codes.get_code",
    f"SELECT {_INFO} FROM codes c JOIN code_products p"
    " ON p.tenant_id = c.tenant_id AND p.id = c.product_id"
    " WHERE c.tenant_id = ? AND c.code_key = ? AND c.code = ?",
)
ORDER_CODES = statement(
    "codes.order_codes",
    "SELECT seq, code, inner_key IS NOT NULL AS has_inner FROM codes"
    " WHERE tenant_id = ? AND order_id = ? AND seq >= ? AND seq <= ? ORDER BY seq",
)
COUNT_STATES = statement(
    "codes.count_states",
    "SELECT state, count(*) FROM codes WHERE tenant_id = ? AND order_id = ?"
    " GROUP BY state ORDER BY state",
)
