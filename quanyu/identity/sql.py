"""SQL of the identity capability. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import Capability, statement

GET_STATE = statement(
    "identity.get_state",
    "SELECT rules, next_node, next_edge, next_change, resolved_seq FROM identity_state"
    " WHERE tenant_id = ?",
)
CREATE_STATE = statement(
    "identity.create_state",
    "INSERT INTO identity_state (tenant_id, rules, next_node, next_edge, next_change,"
    " resolved_seq, updated_at) VALUES (?, ?, 0, 0, 0, 0, ?)",
)
UPDATE_COUNTERS = statement(
    "identity.update_counters",
    "UPDATE identity_state SET next_node = ?, next_edge = ?, next_change = ?, resolved_seq = ?,"
    " updated_at = ? WHERE tenant_id = ?",
    requires=(Capability.ROW_UPDATES,),
)
UPDATE_RULES = statement(
    "identity.update_rules",
    "UPDATE identity_state SET rules = ?, updated_at = ? WHERE tenant_id = ?",
    requires=(Capability.ROW_UPDATES,),
)

#: Tenants with events committed after ``?`` and the last commit holding them.
PENDING_TENANTS = statement(
    "identity.pending_tenants",
    "SELECT tenant_id, max(commit_seq) FROM events WHERE commit_seq > ? GROUP BY tenant_id",
    tenant_scoped=False,
)
#: Events per commit after a tenant's cursor, to cut the work into batches.
PENDING_COMMITS = statement(
    "identity.pending_commits",
    "SELECT coalesce(commit_seq, 0) AS seq, count(*) FROM events"
    " WHERE tenant_id = ? AND coalesce(commit_seq, 0) > ? GROUP BY 1 ORDER BY 1",
)
#: The events of commits (after, upto], in the order their edges are numbered.
EVENTS_TO_RESOLVE = statement(
    "identity.events_to_resolve",
    "SELECT source_id, message_id, brand_id, user_id, anonymous_id, identifiers, timestamp"
    " FROM events WHERE tenant_id = ? AND coalesce(commit_seq, 0) > ?"
    " AND coalesce(commit_seq, 0) <= ?"
    " ORDER BY coalesce(commit_seq, 0), received_at, source_id, message_id",
)

LOAD_NODES = statement(
    "identity.load_nodes",
    "SELECT node_id, id_type, scope, key, profile_id FROM id_nodes WHERE tenant_id = ?"
    " ORDER BY node_id",
)
#: Every stored link, in arrival order: removed ones stay out of the graph but are
#: remembered so the same link arriving again does not undo a split.
LOAD_EDGES = statement(
    "identity.load_edges",
    "SELECT edge_id, a, b, status, kind FROM id_edges WHERE tenant_id = ? ORDER BY edge_id",
)

INSERT_NODES = statement(
    "identity.insert_nodes",
    "INSERT INTO id_nodes (tenant_id, node_id, id_type, scope, key, value, value_enc, masked,"
    " profile_id, source_id, first_seen) SELECT ?, node_id, id_type, scope, key, value,"
    " value_enc, masked, profile_id, source_id, first_seen FROM staged_nodes",
)
INSERT_EDGES = statement(
    "identity.insert_edges",
    "INSERT INTO id_edges (tenant_id, edge_id, a, b, kind, score, status, bucket, source_id,"
    " message_id, seen_at) SELECT ?, edge_id, a, b, kind, score, status, bucket, source_id,"
    " message_id, seen_at FROM staged_edges",
)
INSERT_CHANGES = statement(
    "identity.insert_changes",
    "INSERT INTO profile_changes (tenant_id, change_id, changed_at, kind, profile_id,"
    " other_profile_id, edge_id, node_id, source_id, message_id, actor, detail)"
    " SELECT ?, change_id, changed_at, kind, profile_id, other_profile_id, edge_id, node_id,"
    " source_id, message_id, actor, detail FROM staged_changes",
)
INSERT_EVENT_NODES = statement(
    "identity.insert_event_nodes",
    "INSERT INTO event_nodes (tenant_id, source_id, message_id, node_id, resolved_at)"
    " SELECT ?, source_id, message_id, node_id, resolved_at FROM staged_event_nodes",
)
#: After merges: every node of a person that was absorbed takes the survivor's number.
RELABEL_PROFILES = statement(
    "identity.relabel_profiles",
    "UPDATE id_nodes SET profile_id = m.new_label FROM staged_relabel AS m"
    " WHERE id_nodes.tenant_id = ? AND id_nodes.profile_id = m.old_label",
    requires=(Capability.ROW_UPDATES,),
)
#: After a rebuild or a split: the nodes whose person changed.
RELABEL_NODES = statement(
    "identity.relabel_nodes",
    "UPDATE id_nodes SET profile_id = m.label FROM staged_labels AS m"
    " WHERE id_nodes.tenant_id = ? AND id_nodes.node_id = m.node_id",
    requires=(Capability.ROW_UPDATES,),
)
SET_EDGE_STATUS = statement(
    "identity.set_edge_status",
    "UPDATE id_edges SET status = m.status, bucket = m.bucket FROM staged_status AS m"
    " WHERE id_edges.tenant_id = ? AND id_edges.edge_id = m.edge_id",
    requires=(Capability.ROW_UPDATES,),
)
REMOVE_LINKS = statement(
    "identity.remove_links",
    "UPDATE id_edges SET status = 'removed', reviewed_at = ?, review = ?"
    " WHERE tenant_id = ? AND (a = ? OR b = ?) AND status <> 'removed'",
    requires=(Capability.ROW_UPDATES,),
)
