"""SQL of the ledger capability. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

GET_SIZE = statement("ledger.get_size", "SELECT size FROM ledger_state WHERE tenant_id = ?")
INSERT_STATE = statement(
    "ledger.insert_state",
    "INSERT INTO ledger_state (tenant_id, size, updated_at) VALUES (?, ?, ?)",
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
INSERT_NODES = statement(
    "ledger.insert_nodes",
    "INSERT INTO ledger_nodes (tenant_id, level, idx, hash)"
    " SELECT tenant_id, level, idx, hash FROM staged_ledger_nodes",
)
LEAF_HASHES = statement(
    "ledger.leaf_hashes",
    "SELECT idx, leaf_hash FROM ledger_leaves"
    " WHERE tenant_id = ? AND idx >= ? AND idx < ? ORDER BY idx",
)
NODE_HASHES = statement(
    "ledger.node_hashes",
    "SELECT idx, hash FROM ledger_nodes"
    " WHERE tenant_id = ? AND level = ? AND idx >= ? AND idx < ? ORDER BY idx",
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
