"""SQL of the audit log search (filters the console offers). Runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

_COLUMNS = (
    "id, occurred_at, actor, isv_id, tenant_id, action, target_type, target_id, before, after,"
    " request_id"
)
#: A tenant's entries, newest first, each filter skipped when its parameter is NULL:
#: action (exact), actor (contains, any case), target type (exact), occurred in [?, ?),
#: older than the entry id ? (ids are time-ordered: the page cursor).
SEARCH_AUDIT = statement(
    "tenancy.search_audit",
    f"SELECT {_COLUMNS} FROM audit_log WHERE tenant_id = ?"
    " AND (CAST(? AS VARCHAR) IS NULL OR action = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR strpos(lower(actor), lower(?)) > 0)"
    " AND (CAST(? AS VARCHAR) IS NULL OR target_type = ?)"
    " AND (CAST(? AS TIMESTAMP) IS NULL OR occurred_at >= ?)"
    " AND (CAST(? AS TIMESTAMP) IS NULL OR occurred_at < ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR id < ?)"
    " ORDER BY id DESC LIMIT ?",
)
#: The values a filter can take: (kind, value) for kind action, actor and target_type.
AUDIT_FACETS = statement(
    "tenancy.audit_facets",
    "SELECT DISTINCT 'action', action FROM audit_log WHERE tenant_id = ?"
    " UNION SELECT DISTINCT 'actor', actor FROM audit_log WHERE tenant_id = ?"
    " UNION SELECT DISTINCT 'target_type', target_type FROM audit_log WHERE tenant_id = ?",
)
