"""SQL of PIPL requests: the request log, reading everything held about one person, and
erasing it. Statements that act on a person's identifiers read them from a staged table
``privacy_nodes`` (column ``node_id``); those that look for their values in free text read
``privacy_needles`` (column ``needle``)."""

from __future__ import annotations

from quanyu.engine import statement

_COLS = (
    "id, kind, subject_key, subject_type, profile_id, status, received_at, due_at,"
    " completed_at, actor, detail, outcome"
)
INSERT_REQUEST = statement(
    "privacy.insert_request",
    """
    INSERT INTO privacy_requests (tenant_id, id, kind, subject_key, subject_type, profile_id,
        status, received_at, due_at, completed_at, actor, detail, outcome)
    VALUES (?, ?, ?, ?, ?, ?, 'received', ?, ?, NULL, ?, ?, NULL)
    """,
)
LIST_REQUESTS = statement(
    "privacy.list_requests",
    f"SELECT {_COLS} FROM privacy_requests WHERE tenant_id = ?"
    " ORDER BY received_at DESC, id DESC LIMIT ?",
)
GET_REQUEST = statement(
    "privacy.get_request", f"SELECT {_COLS} FROM privacy_requests WHERE tenant_id = ? AND id = ?"
)
FINISH_REQUEST = statement(
    "privacy.finish_request",
    """
    UPDATE privacy_requests SET status = ?, completed_at = ?, outcome = ?
    WHERE tenant_id = ? AND id = ?
    """,
)

# --- reading one person ---------------------------------------------------------------------
PERSON_NODES = statement(
    "privacy.person_nodes",
    """
    SELECT node_id, id_type, scope, key, value, value_enc, masked, source_id, first_seen
    FROM id_nodes WHERE tenant_id = ? AND profile_id = ? AND NOT starts_with(key, 'erased:')
    ORDER BY node_id
    """,
)
PERSON_EVENTS = statement(
    "privacy.person_events",
    """
    SELECT e.source_id, e.brand_id, e.message_id, e.type, e.event, e.name, e.user_id,
        e.anonymous_id, e.timestamp, e.received_at, e.properties, e.traits, e.context
    FROM events AS e
    JOIN event_nodes AS n ON n.source_id = e.source_id AND n.message_id = e.message_id
    JOIN id_nodes AS i ON i.node_id = n.node_id AND i.tenant_id = ?
    WHERE e.tenant_id = ? AND n.tenant_id = ? AND i.profile_id = ?
    ORDER BY e.timestamp, e.message_id
    """,
)

# --- erasing --------------------------------------------------------------------------------
_MINE = "node_id IN (SELECT node_id FROM privacy_nodes)"
DELETE_EVENTS = statement(
    "privacy.delete_events",
    f"""
    DELETE FROM events WHERE tenant_id = ? AND EXISTS (
        SELECT 1 FROM event_nodes AS n
        WHERE n.tenant_id = ? AND n.{_MINE}
            AND n.source_id = events.source_id AND n.message_id = events.message_id
    )
    """,
)
DELETE_EVENT_NODES = statement(
    "privacy.delete_event_nodes", f"DELETE FROM event_nodes WHERE tenant_id = ? AND {_MINE}"
)
DELETE_FACTS = statement(
    "privacy.delete_facts",
    f"DELETE FROM event_facts WHERE tenant_id = ? AND (profile_id = ? OR {_MINE})",
)
DELETE_TAG_HISTORY = statement(
    "privacy.delete_tag_history", "DELETE FROM tag_history WHERE tenant_id = ? AND profile_id = ?"
)
DELETE_CHANGES = statement(
    "privacy.delete_changes",
    f"""
    DELETE FROM profile_changes WHERE tenant_id = ?
        AND (profile_id = ? OR other_profile_id = ? OR {_MINE})
    """,
)
#: Node numbers are dense per tenant (the graph is a set of arrays), so an erased
#: identifier keeps its row and number and loses everything that named it.
ERASE_NODES = statement(
    "privacy.erase_nodes",
    f"""
    UPDATE id_nodes SET key = 'erased:' || CAST(node_id AS VARCHAR), value = NULL,
        value_enc = NULL, masked = '', source_id = NULL
    WHERE tenant_id = ? AND {_MINE}
    """,
)
REMOVE_EDGES = statement(
    "privacy.remove_edges",
    """
    UPDATE id_edges SET status = 'removed', review = 'erased', message_id = NULL,
        reviewed_at = ?
    WHERE tenant_id = ? AND (a IN (SELECT node_id FROM privacy_nodes)
        OR b IN (SELECT node_id FROM privacy_nodes))
    """,
)
_NAMED = "EXISTS (SELECT 1 FROM privacy_needles AS p WHERE strpos({col}, p.needle) > 0)"
DELETE_DEAD_LETTERS = statement(
    "privacy.delete_dead_letters",
    f"DELETE FROM dead_letters WHERE tenant_id = ? AND {_NAMED.format(col='payload')}",
)
DELETE_OUTBOX = statement(
    "privacy.delete_outbox",
    f"DELETE FROM delivery_outbox WHERE tenant_id = ? AND {_NAMED.format(col='payload')}",
)
RENAME_CONSENT_KEY = statement(
    "privacy.rename_consent_key",
    "UPDATE consent_subjects SET key = ? WHERE tenant_id = ? AND key = ?",
)
SET_SNAPSHOT_MEMBERS = statement(
    "privacy.set_snapshot_members",
    "UPDATE audience_snapshots SET members = ?, size = ? WHERE tenant_id = ? AND snapshot_id = ?",
)
