"""SQL of the audiences' read-only summaries for the console (see ``stats.py``)."""

from __future__ import annotations

from quanyu.engine import statement

_SNAP = "snapshot_id, audience_id, definition_hash, size, matched, excluded, reason, created_at"
#: The newest snapshot of each audience of a tenant, without its members.
LATEST_SNAPSHOTS = statement(
    "audiences.stats.latest_snapshots",
    f"SELECT {_SNAP} FROM audience_snapshots WHERE tenant_id = ? AND snapshot_id IN"
    " (SELECT max(snapshot_id) FROM audience_snapshots WHERE tenant_id = ?"
    " GROUP BY audience_id)",
)
#: An audience's latest pushes, newest first.
PUSHES = statement(
    "audiences.stats.pushes",
    "SELECT push_id, audience_id, snapshot_id, destination_id, identifier, records, batches,"
    " created_at FROM audience_pushes WHERE tenant_id = ? AND audience_id = ?"
    " ORDER BY created_at DESC, push_id DESC LIMIT ?",
)
