"""SQL of the codes overview (the console's codes page). Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

#: Codes per lifecycle state over the whole tenant (one pass over one column).
STATE_COUNTS = statement(
    "codes_overview.state_counts",
    "SELECT state, count(*) FROM codes WHERE tenant_id = ? GROUP BY state",
)
#: Codes per state of the tenant's newest orders (the orders ``service.list_orders`` shows).
ORDER_STATE_COUNTS = statement(
    "codes_overview.order_state_counts",
    "SELECT order_id, state, count(*) FROM codes WHERE tenant_id = ? AND order_id IN"
    " (SELECT id FROM code_orders WHERE tenant_id = ? ORDER BY created_at DESC, id LIMIT ?)"
    " GROUP BY order_id, state",
)
#: Consumer scans per city since a time: all, genuine, and the codes they named.
SCANS_BY_CITY = statement(
    "codes_overview.scans_by_city",
    "SELECT city, count(*), sum(CASE WHEN verdict = 'genuine' THEN 1 ELSE 0 END),"
    " count(DISTINCT code) FROM code_scans"
    " WHERE tenant_id = ? AND role = 'consumer' AND scanned_at >= ?"
    " GROUP BY city ORDER BY 2 DESC, 1 LIMIT ?",
)
