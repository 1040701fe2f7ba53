"""SQL of consent capture and collection enforcement. Builds statements; runs nothing.

Capture reads the events identity has resolved (``event_nodes``) and the identifiers
they hang on (``id_nodes``); the drop policy deletes the events of people who withdrew
the purpose collection rests on. The ingest and identity capabilities own those tables;
these statements only read them, or delete rows the consent policy says must go.
"""

from __future__ import annotations

from quanyu.engine import statement

#: Tenants whose identity resolution is ahead of consent capture: tenant, resolved
#: commit, captured commit.
BEHIND = statement(
    "consent.capture_behind",
    "SELECT i.tenant_id, i.resolved_seq, coalesce(c.captured_seq, 0)"
    " FROM identity_state AS i LEFT JOIN consent_state AS c ON c.tenant_id = i.tenant_id"
    " WHERE i.resolved_seq > coalesce(c.captured_seq, 0) ORDER BY i.tenant_id",
    tenant_scoped=False,
)
#: How far identity has resolved a tenant's events, and how far capture has read them.
PROGRESS = statement(
    "consent.capture_progress",
    "SELECT (SELECT max(resolved_seq) FROM identity_state WHERE tenant_id = ?),"
    " (SELECT max(captured_seq) FROM consent_state WHERE tenant_id = ?)",
)
SET_CAPTURED = statement(
    "consent.set_captured",
    "UPDATE consent_state SET captured_seq = ?, updated_at = ? WHERE tenant_id = ?",
)
#: The same, only if the cursor is still where the pass read it (a compare-and-set).
MOVE_CAPTURED = statement(
    "consent.move_captured",
    "UPDATE consent_state SET captured_seq = ?, updated_at = ?"
    " WHERE tenant_id = ? AND captured_seq = ?",
)
_CARRIES_CONSENT = (
    "((e.type = 'track' AND e.event = 'Consent Updated') OR e.context LIKE '%categoryPreferences%')"
)
#: Whether any event of commits (?, ?] may carry a consent decision; most passes under
#: steady ingest find none and stop here. Parameters: tenant, after, upto.
ANY_CARRYING = statement(
    "consent.capture_any_carrying",
    "SELECT 1 FROM events AS e WHERE e.tenant_id = ? AND e.commit_seq > ?"
    f" AND e.commit_seq <= ? AND {_CARRIES_CONSENT} LIMIT 1",
)
#: The identifier nodes of the events of commits (?, ?] that may carry a consent decision.
#: Parameters: tenant, after, upto, tenant, after, upto.
CANDIDATE_NODES = statement(
    "consent.capture_candidate_nodes",
    "SELECT DISTINCT n.node_id FROM events AS e JOIN event_nodes AS n ON n.tenant_id = ?"
    " AND n.source_id = e.source_id AND n.message_id = e.message_id"
    " AND n.commit_seq > ? AND n.commit_seq <= ? AND n.node_id >= 0"
    f" WHERE e.tenant_id = ? AND e.commit_seq > ? AND e.commit_seq <= ? AND {_CARRIES_CONSENT}",
)
#: Resolved events of commits (?, ?] that carry a consent decision: every ``Consent
#: Updated`` track call, and each event whose Segment ``categoryPreferences`` (as JSON
#: text) differ from those of the person's previous such event in the range (SDKs repeat
#: them on every call: only a change can say something new). With the identifier each
#: hangs on (node -1 or NULL: none), its person and the kind of source it came through.
#: The range bounds both events and event_nodes (an event's node rows carry its commit),
#: and identifiers are read for the nodes of :data:`CANDIDATE_NODES` only, so a pass reads
#: the new rows, never a hash table of the tenant's whole identity graph.
#: Parameters: tenant, after, upto, tenant, node ids, tenant x2, after, upto (after >= 0).
_CANDIDATES = """
    WITH found AS (
        SELECT e.source_id, e.message_id, coalesce(e.commit_seq, 0) AS commit_seq,
            e.timestamp, e.type, e.event, e.properties,
            CASE WHEN e.type = 'track' AND e.event = 'Consent Updated' THEN NULL
                ELSE CAST(json_extract(e.context, '$.consent.categoryPreferences') AS VARCHAR)
            END AS prefs,
            n.node_id, d.key, d.id_type, d.profile_id, s.kind
        FROM events AS e
        LEFT JOIN event_nodes AS n ON n.tenant_id = ? AND n.source_id = e.source_id
            AND n.message_id = e.message_id {in_range}
        LEFT JOIN (
            SELECT node_id, key, id_type, profile_id FROM id_nodes
            WHERE tenant_id = ? {nodes}
        ) AS d ON d.node_id = n.node_id
        LEFT JOIN sources AS s ON s.tenant_id = ? AND s.id = e.source_id
        WHERE e.tenant_id = ? AND e.commit_seq > ? AND e.commit_seq <= ?
            AND {carries}
    ), ordered AS (
        SELECT *, lag(prefs) OVER (PARTITION BY profile_id
            ORDER BY commit_seq, timestamp, source_id, message_id) AS previous
        FROM found
        WHERE prefs IS NOT NULL OR (type = 'track' AND event = 'Consent Updated')
    )
    SELECT source_id, message_id, commit_seq, timestamp, type, event, properties, prefs,
        node_id, key, id_type, profile_id, kind
    FROM ordered
    WHERE prefs IS NULL OR previous IS NULL OR previous <> prefs
    ORDER BY commit_seq, timestamp, source_id, message_id
    """
CANDIDATES = statement(
    "consent.capture_candidates",
    _CANDIDATES.format(
        in_range="AND n.commit_seq > ? AND n.commit_seq <= ?",
        nodes="AND list_contains(?, node_id)",
        carries=_CARRIES_CONSENT,
    ),
)
#: :data:`CANDIDATES` for a large range (the demo's import, a backfill): every identifier
#: of the tenant at once, which beats looking up tens of thousands one by one.
#: Parameters: tenant x4, after, upto.
CANDIDATES_MANY = statement(
    "consent.capture_candidates_many",
    _CANDIDATES.format(in_range="", nodes="", carries=_CARRIES_CONSENT),
)
#: The keys of the staged persons' identifiers (what a decision of theirs covers).
PERSON_KEYS = statement(
    "consent.capture_person_keys",
    "SELECT profile_id, key FROM id_nodes WHERE tenant_id = ?"
    " AND profile_id IN (SELECT profile_id FROM consent_capture_persons) ORDER BY node_id",
)
#: Every entry covering the staged persons' identifiers, as each identifier sees it.
PERSON_COVERED = statement(
    "consent.capture_person_covered",
    """
    SELECT k.profile_id, s.key, l.seq, l.purpose_id, l.channel, l.status, l.separate,
        l.decided_at
    FROM id_nodes AS k
    JOIN consent_subjects AS s ON s.key = k.key AND s.tenant_id = ?
    JOIN consent_ledger AS l ON l.tenant_id = ? AND l.seq = s.seq
    WHERE k.tenant_id = ? AND k.profile_id IN (SELECT profile_id FROM consent_capture_persons)
    """,
)

# --- collection enforcement -----------------------------------------------------------------

#: When the entries (by seq) were decided.
DECIDED_AT = statement(
    "consent.decided_at",
    "SELECT seq, decided_at FROM consent_ledger WHERE tenant_id = ? AND list_contains(?, seq)",
)
#: Resolved events of the withheld persons (staged as ``consent_withheld``: profile_id,
#: since) that happened after they withdrew, except consent events themselves (they are
#: the evidence of later decisions). Parameters: tenant x2.
WITHHELD_EVENTS = statement(
    "consent.withheld_events",
    """
    SELECT n.source_id, n.message_id
    FROM event_nodes AS n
    JOIN id_nodes AS d ON d.tenant_id = ? AND d.node_id = n.node_id
    JOIN consent_withheld AS w ON w.profile_id = d.profile_id
    WHERE n.tenant_id = ? AND n.timestamp > w.since
        AND (n.event IS NULL OR n.event <> 'Consent Updated')
    """,
)
DROP_EVENTS = statement(
    "consent.drop_events",
    "DELETE FROM events WHERE tenant_id = ? AND EXISTS (SELECT 1 FROM consent_dropped AS x"
    " WHERE x.source_id = events.source_id AND x.message_id = events.message_id)",
)
DROP_EVENT_NODES = statement(
    "consent.drop_event_nodes",
    "DELETE FROM event_nodes WHERE tenant_id = ? AND EXISTS (SELECT 1 FROM consent_dropped AS x"
    " WHERE x.source_id = event_nodes.source_id AND x.message_id = event_nodes.message_id)",
)
