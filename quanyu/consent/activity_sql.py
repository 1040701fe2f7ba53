"""SQL of consent activity over a time window. Runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

#: Ledger entries recorded since ?, per status. The ledger is appended in time order,
#: so the bound on recorded_at skips the older part of it.
CHANGES_SINCE = statement(
    "consent.changes_since",
    "SELECT status, count(*) FROM consent_ledger WHERE tenant_id = ? AND recorded_at >= ?"
    " GROUP BY status ORDER BY status",
)
