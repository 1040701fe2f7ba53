"""SQL of the audiences capability. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

_COLS = (
    "id, name, description, rule, brands, purpose, channel, refresh_seconds, created_at, updated_at"
)
INSERT_AUDIENCE = statement(
    "audiences.insert",
    f"INSERT INTO audiences (tenant_id, {_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
DELETE_AUDIENCE = statement(
    "audiences.delete", "DELETE FROM audiences WHERE tenant_id = ? AND id = ?"
)
UPDATE_AUDIENCE = statement(
    "audiences.update",
    "UPDATE audiences SET name = ?, description = ?, rule = ?, brands = ?, purpose = ?,"
    " channel = ?, refresh_seconds = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
)
#: A deleted audience's snapshots go with it: they are lists of people.
DELETE_SNAPSHOTS = statement(
    "audiences.delete_snapshots",
    "DELETE FROM audience_snapshots WHERE tenant_id = ? AND audience_id = ?",
)
LIST_AUDIENCES = statement(
    "audiences.list", f"SELECT {_COLS} FROM audiences WHERE tenant_id = ? ORDER BY id"
)
GET_AUDIENCE = statement(
    "audiences.get", f"SELECT {_COLS} FROM audiences WHERE tenant_id = ? AND id = ?"
)
_SNAP = "snapshot_id, audience_id, definition_hash, size, matched, excluded, reason, created_at"
NEXT_SNAPSHOT = statement(
    "audiences.next_snapshot",
    "SELECT coalesce(max(snapshot_id), 0) + 1 FROM audience_snapshots WHERE tenant_id = ?",
)
INSERT_SNAPSHOT = statement(
    "audiences.insert_snapshot",
    f"INSERT INTO audience_snapshots (tenant_id, {_SNAP}, members)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
LIST_SNAPSHOTS = statement(
    "audiences.list_snapshots",
    f"SELECT {_SNAP} FROM audience_snapshots WHERE tenant_id = ? AND audience_id = ?"
    " ORDER BY snapshot_id DESC LIMIT ?",
)
#: The newest snapshot of each audience of a tenant, without its members.
LATEST_SNAPSHOTS = statement(
    "audiences.latest_snapshots",
    f"SELECT {_SNAP} FROM audience_snapshots WHERE tenant_id = ? AND snapshot_id IN"
    " (SELECT max(snapshot_id) FROM audience_snapshots WHERE tenant_id = ?"
    " GROUP BY audience_id)",
)
SNAPSHOT_MEMBERS = statement(
    "audiences.snapshot_members",
    f"SELECT {_SNAP}, members FROM audience_snapshots WHERE tenant_id = ? AND snapshot_id = ?",
)
INSERT_PUSH = statement(
    "audiences.insert_push",
    "INSERT INTO audience_pushes (tenant_id, push_id, audience_id, snapshot_id, destination_id,"
    " identifier, records, batches, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
