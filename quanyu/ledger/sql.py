"""SQL of the ledger capability. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import Capability, statement

GET_SIZE = statement("ledger.get_size", "SELECT size FROM ledger_state WHERE tenant_id = ?")
INSERT_STATE = statement(
    "ledger.insert_state",
    "INSERT INTO ledger_state (tenant_id, size, updated_at) VALUES (?, ?, ?)",
)
ENSURE_STATE = statement(
    "ledger.ensure_state",
    "INSERT INTO ledger_state (tenant_id, size, updated_at) VALUES (?, 0, ?)"
    " ON CONFLICT DO NOTHING",
    requires=(Capability.INSERT_IGNORE,),
)
SET_SIZE = statement(
    "ledger.set_size",
    "UPDATE ledger_state SET size = ?, updated_at = ? WHERE tenant_id = ? AND size = ?",
)
LIST_LOGS = statement(
    "ledger.list_logs",
    "SELECT tenant_id, size FROM ledger_state ORDER BY tenant_id",
    tenant_scoped=False,
)
INSERT_LEAVES = statement(
    "ledger.insert_leaves",
    "INSERT INTO ledger_leaves (tenant_id, idx, kind, ref, leaf_hash, data, recorded_at)"
    " SELECT tenant_id, idx, kind, ref, leaf_hash, data, recorded_at FROM staged_ledger_leaves",
)
INSERT_TILES = statement(
    "ledger.insert_tiles",
    "INSERT INTO ledger_tiles (tile, tenant_id, level, idx, hashes)"
    " SELECT tile, tenant_id, level, idx, hashes FROM staged_ledger_tiles",
)
DELETE_EDGE = statement(
    "ledger.delete_edge", "DELETE FROM ledger_edge WHERE tenant_id = ? AND level = ?"
)
INSERT_EDGE = statement(
    "ledger.insert_edge",
    "INSERT INTO ledger_edge (tenant_id, level, idx, hashes) VALUES (?, ?, ?, ?)",
)
GET_FULL_TILE = statement(
    "ledger.get_full_tile",
    "SELECT hashes FROM ledger_tiles WHERE tile = ? AND tenant_id = ?",
)
GET_TILE = statement(
    "ledger.get_tile",
    "SELECT hashes FROM ledger_tiles WHERE tile = ? AND tenant_id = ?"
    " UNION ALL"
    " SELECT hashes FROM ledger_edge WHERE tenant_id = ? AND level = ? AND idx = ?",
)
UPPER_TILES = statement(
    "ledger.upper_tiles",
    "SELECT level, idx, hashes FROM ledger_tiles WHERE tenant_id = ? AND level > 0"
    " UNION ALL SELECT level, idx, hashes FROM ledger_edge WHERE tenant_id = ?"
    " ORDER BY level DESC, idx DESC LIMIT ?",
)
GET_LEAF = statement(
    "ledger.get_leaf",
    "SELECT idx, kind, ref, leaf_hash, data, recorded_at FROM ledger_leaves"
    " WHERE tenant_id = ? AND idx = ?",
)
FIND_LEAF = statement(
    "ledger.find_leaf",
    "SELECT idx, kind, ref, leaf_hash, data, recorded_at FROM ledger_leaves"
    " WHERE tenant_id = ? AND ref = ? ORDER BY idx",
)
INSERT_CHECKPOINT = statement(
    "ledger.insert_checkpoint",
    "INSERT INTO ledger_checkpoints (tenant_id, size, root_hash, note, signed_at)"
    " VALUES (?, ?, ?, ?, ?)",
)
GET_CHECKPOINT = statement(
    "ledger.get_checkpoint",
    "SELECT size, root_hash, note, signed_at FROM ledger_checkpoints"
    " WHERE tenant_id = ? AND size = ?",
)
LATEST_CHECKPOINT = statement(
    "ledger.latest_checkpoint",
    "SELECT size, root_hash, note, signed_at FROM ledger_checkpoints"
    " WHERE tenant_id = ? ORDER BY size DESC LIMIT 1",
)
