"""SQL of scan activity over a time window. Runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

#: Scans since ?, per verdict (forged ones included). Scans are appended in time order,
#: so the bound on scanned_at skips the older part of the table.
SCANS_SINCE = statement(
    "scans.scans_since",
    "SELECT verdict, count(*) FROM code_scans WHERE tenant_id = ? AND scanned_at >= ?"
    " GROUP BY verdict ORDER BY verdict",
)
