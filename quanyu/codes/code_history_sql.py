"""SQL of one code's history (lifecycle events and scans). Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

_EVENT = "id, action, occurred_at, actor, count, leaf, leaf_hash"
#: The lifecycle events that touched a code (every event but generation lists its codes).
CODE_EVENTS = statement(
    "code_history.code_events",
    f"SELECT {_EVENT} FROM code_events WHERE tenant_id = ? AND id IN"
    " (SELECT event_id FROM code_event_items WHERE tenant_id = ? AND code = ?) ORDER BY id",
)
#: Generation events of one order (their leaves name the order and the seq range made);
#: the pattern narrows the read, the caller checks the range in the leaf.
ISSUE_EVENTS = statement(
    "code_history.issue_events",
    f"SELECT {_EVENT} FROM code_events WHERE tenant_id = ? AND action = 'issue'"
    " AND leaf LIKE ? ORDER BY id",
)
#: A code's scans, newest first: who (role, party), where (city) and what they were told.
CODE_SCANS = statement(
    "code_history.code_scans",
    "SELECT scanned_at, role, party_id, city, verdict, state, inner_code,"
    " lat IS NOT NULL AND lon IS NOT NULL FROM code_scans WHERE tenant_id = ? AND code = ?"
    " ORDER BY scanned_at DESC LIMIT ?",
)
CODE_SCAN_COUNT = statement(
    "code_history.code_scan_count",
    "SELECT count(*) FROM code_scans WHERE tenant_id = ? AND code = ?",
)
