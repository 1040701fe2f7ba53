"""SQL of the tenancy capability. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

INSERT_ISV = statement(
    "tenancy.insert_isv",
    "INSERT INTO isvs (id, name, created_at) VALUES (?, ?, ?)",
    tenant_scoped=False,
)
LIST_ISVS = statement(
    "tenancy.list_isvs",
    "SELECT id, name, created_at FROM isvs ORDER BY created_at, id",
    tenant_scoped=False,
)
GET_ISV = statement(
    "tenancy.get_isv", "SELECT id, name, created_at FROM isvs WHERE id = ?", tenant_scoped=False
)
ISV_BY_NAME = statement(
    "tenancy.isv_by_name", "SELECT id FROM isvs WHERE name = ?", tenant_scoped=False
)

INSERT_TENANT = statement(
    "tenancy.insert_tenant",
    "INSERT INTO tenants (id, isv_id, name, created_at) VALUES (?, ?, ?, ?)",
    tenant_scoped=False,  # the registry of tenants itself: its id is the tenant
)
LIST_TENANTS = statement(
    "tenancy.list_tenants",
    "SELECT id, isv_id, name, created_at FROM tenants"
    " WHERE (CAST(? AS VARCHAR) IS NULL OR isv_id = ?) ORDER BY created_at, id",
    tenant_scoped=False,
)
GET_TENANT = statement(
    "tenancy.get_tenant",
    "SELECT id, isv_id, name, created_at FROM tenants WHERE id = ?",
    tenant_scoped=False,
)

INSERT_BRAND = statement(
    "tenancy.insert_brand",
    "INSERT INTO brands (id, tenant_id, name, created_at) VALUES (?, ?, ?, ?)",
)
LIST_BRANDS = statement(
    "tenancy.list_brands",
    "SELECT id, tenant_id, name, created_at FROM brands WHERE tenant_id = ?"
    " ORDER BY created_at, id",
)
GET_BRAND = statement(
    "tenancy.get_brand",
    "SELECT id, tenant_id, name, created_at FROM brands WHERE tenant_id = ? AND id = ?",
)
BRAND_BY_NAME = statement(
    "tenancy.brand_by_name", "SELECT id FROM brands WHERE tenant_id = ? AND name = ?"
)

_SOURCE_COLUMNS = "id, tenant_id, brand_id, name, kind, rate_limit, created_at"
INSERT_SOURCE = statement(
    "tenancy.insert_source",
    f"INSERT INTO sources ({_SOURCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
)
LIST_SOURCES = statement(
    "tenancy.list_sources",
    f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE tenant_id = ? ORDER BY created_at, id",
)
GET_SOURCE = statement(
    "tenancy.get_source",
    f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE tenant_id = ? AND id = ?",
)
SOURCE_BY_NAME = statement(
    "tenancy.source_by_name", "SELECT id FROM sources WHERE tenant_id = ? AND name = ?"
)

_KEY_COLUMNS = (
    "id, kind, name, prefix, isv_id, tenant_id, source_id, scopes, created_at, revoked_at,"
    " last_used_at"
)
INSERT_KEY = statement(
    "tenancy.insert_key",
    "INSERT INTO api_keys (id, kind, name, prefix, key_hash, isv_id, tenant_id, source_id,"
    " scopes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
LIST_TENANT_KEYS = statement(
    "tenancy.list_tenant_keys",
    f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id",
)
LIST_ISV_KEYS = statement(
    "tenancy.list_isv_keys",
    f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE isv_id = ? AND tenant_id IS NULL"
    " ORDER BY created_at, id",
    tenant_scoped=False,
)
LIST_PLATFORM_KEYS = statement(
    "tenancy.list_platform_keys",
    f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE isv_id IS NULL AND tenant_id IS NULL"
    " ORDER BY created_at, id",
    tenant_scoped=False,
)
GET_KEY = statement(
    "tenancy.get_key", f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", tenant_scoped=False
)
KEY_BY_HASH = statement(
    "tenancy.key_by_hash",
    "SELECT k.id, k.kind, k.isv_id, k.tenant_id, k.source_id, k.scopes, k.revoked_at,"
    " s.brand_id, s.rate_limit FROM api_keys k LEFT JOIN sources s ON s.id = k.source_id"
    " WHERE k.key_hash = ?",
    tenant_scoped=False,
)
REVOKE_KEY = statement(
    "tenancy.revoke_key",
    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
    requires=(),
    tenant_scoped=False,
)
TOUCH_KEY = statement(
    "tenancy.touch_key",
    "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
    tenant_scoped=False,
)

_AUDIT_COLUMNS = (
    "id, occurred_at, actor, isv_id, tenant_id, action, target_type, target_id, before, after,"
    " request_id"
)
INSERT_AUDIT = statement(
    "tenancy.insert_audit",
    f"INSERT INTO audit_log ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
LIST_AUDIT = statement(
    "tenancy.list_audit",
    f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE tenant_id = ?"
    " AND (CAST(? AS VARCHAR) IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
)
LIST_ISV_AUDIT = statement(
    "tenancy.list_isv_audit",
    f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE isv_id = ?"
    " AND (CAST(? AS VARCHAR) IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
    tenant_scoped=False,
)
LIST_ALL_AUDIT = statement(
    "tenancy.list_all_audit",
    f"SELECT {_AUDIT_COLUMNS} FROM audit_log"
    " WHERE (CAST(? AS VARCHAR) IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
    tenant_scoped=False,
)
