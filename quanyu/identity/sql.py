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
#: A tenant's committed events after its cursor: how many, the newest commit holding one,
#: and when the oldest arrived. Parameters: tenant, cursor.
PENDING_STATUS = statement(
    "identity.pending_status",
    "SELECT count(*), max(commit_seq), min(received_at) FROM events"
    " WHERE tenant_id = ? AND commit_seq > ?",
)
#: Events per commit after a tenant's cursor, to cut the work into batches.
PENDING_COMMITS = statement(
    "identity.pending_commits",
    "SELECT coalesce(commit_seq, 0) AS seq, count(*) FROM events"
    " WHERE tenant_id = ? AND coalesce(commit_seq, 0) > ? GROUP BY 1 ORDER BY 1",
)
#: The events of commits (after, upto], in the order their links are numbered: commit
#: order, then event time within a commit.
EVENTS_TO_RESOLVE = statement(
    "identity.events_to_resolve",
    "SELECT source_id, message_id, brand_id, user_id, anonymous_id, identifiers, timestamp,"
    " coalesce(commit_seq, 0) AS commit_seq, type, event, name"
    " FROM events WHERE tenant_id = ? AND coalesce(commit_seq, 0) > ?"
    " AND coalesce(commit_seq, 0) <= ?"
    " ORDER BY coalesce(commit_seq, 0), timestamp, source_id, message_id",
)

LOAD_NODES = statement(
    "identity.load_nodes",
    "SELECT node_id, id_type, scope, key, profile_id, first_seen FROM id_nodes"
    " WHERE tenant_id = ? ORDER BY node_id",
)
#: What a rebuild needs of every node (no keys), by node number.
LOAD_NODE_BUCKETS = statement(
    "identity.load_node_buckets",
    "SELECT id_type, scope, profile_id, first_seen FROM id_nodes WHERE tenant_id = ?"
    " ORDER BY node_id",
)
#: Every stored link, in arrival order: removed ones stay out of the graph but are
#: remembered so the same link arriving again does not undo a split.
LOAD_EDGES = statement(
    "identity.load_edges",
    "SELECT edge_id, a, b, status, kind, seen_at FROM id_edges WHERE tenant_id = ?"
    " ORDER BY edge_id",
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
    "INSERT INTO event_nodes (tenant_id, source_id, message_id, node_id, resolved_at,"
    " commit_seq, timestamp, type, event, name, brand_id) SELECT ?, source_id, message_id,"
    " node_id, resolved_at, commit_seq, timestamp, type, event, name, brand_id"
    " FROM staged_event_nodes",
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

#: By key alone: DuckDB answers ``key = ?`` from the index only when nothing else is in
#: the filter (with ``tenant_id = ?`` beside it, or even kept apart in a CTE, a lookup
#: costs three times as much), so the caller keeps the rows of its tenant (a key may
#: recur across tenants: the same unionid in two of them). Params: key.
FIND_NODE = statement(
    "identity.find_node",
    "SELECT tenant_id, node_id, profile_id, id_type, masked FROM id_nodes WHERE key = ?",
    tenant_scoped=False,
)
LIST_CONFLICTS = statement(
    "identity.list_conflicts",
    "SELECT e.edge_id, e.bucket, e.source_id, e.message_id, e.seen_at, e.review, e.reviewed_at,"
    " na.id_type, na.masked, na.profile_id, nb.id_type, nb.masked, nb.profile_id"
    " FROM id_edges AS e"
    " JOIN id_nodes AS na ON na.tenant_id = e.tenant_id AND na.node_id = e.a"
    " JOIN id_nodes AS nb ON nb.tenant_id = e.tenant_id AND nb.node_id = e.b"
    " WHERE e.tenant_id = ? AND e.status = 'refused'"
    " AND (CAST(? AS BOOLEAN) OR e.reviewed_at IS NULL) AND e.edge_id < ?"
    " ORDER BY e.edge_id DESC LIMIT ?",
)
REVIEW_CONFLICT = statement(
    "identity.review_conflict",
    "UPDATE id_edges SET review = ?, reviewed_at = ? WHERE tenant_id = ? AND edge_id = ?"
    " AND status = 'refused'",
    requires=(Capability.ROW_UPDATES,),
)
#: Pairwise agreement of the partition with a ground truth (record_id, person_id) staged
#: as ``staged_truth``: pairs in both, pairs we made, true pairs, records matched.
EVALUATE = statement(
    "identity.evaluate",
    "WITH m AS ("
    "  SELECT t.person_id, n.profile_id FROM staged_truth AS t"
    "  JOIN event_nodes AS e ON e.tenant_id = ? AND e.message_id = t.record_id"
    "  JOIN id_nodes AS n ON n.tenant_id = ? AND n.node_id = e.node_id),"
    " cell AS (SELECT person_id, profile_id, count(*) AS c FROM m GROUP BY person_id, profile_id),"
    " ours AS (SELECT sum(c) AS x FROM cell GROUP BY profile_id),"
    " truth AS (SELECT sum(c) AS x FROM cell GROUP BY person_id)"
    " SELECT (SELECT sum(c * (c - 1) / 2) FROM cell), (SELECT sum(x * (x - 1) / 2) FROM ours),"
    " (SELECT sum(x * (x - 1) / 2) FROM truth), (SELECT count(*) FROM m),"
    " (SELECT count(*) FROM ours), (SELECT count(*) FROM truth)",
)

#: Every person of a tenant (audiences: the universe).
PERSONS = statement(
    "identity.persons",
    "SELECT DISTINCT profile_id FROM id_nodes WHERE tenant_id = ?",
)
#: Which kinds of identifier each person has (audiences: identifier(...) tests).
PERSON_ID_TYPES = statement(
    "identity.person_id_types",
    "SELECT DISTINCT profile_id, id_type, scope FROM id_nodes WHERE tenant_id = ?",
)
#: The identifiers of one type (and scope) of the staged persons, for exports.
IDENTIFIERS_OF = statement(
    "identity.identifiers_of",
    "SELECT n.profile_id, n.key, n.value, n.value_enc, n.first_seen FROM id_nodes AS n"
    " WHERE n.tenant_id = ? AND n.id_type = ? AND (? IS NULL OR n.scope = ?)"
    " AND n.profile_id IN (SELECT profile_id FROM export_persons)"
    " ORDER BY n.profile_id, n.first_seen DESC",
)
