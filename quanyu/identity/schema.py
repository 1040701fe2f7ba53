"""Tables of the identity capability: the identity graph and the history of every OneID."""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS = [
    Migration(
        "identity",
        1,
        """
        -- Per-tenant identifier rules (JSON of quanyu.identity.types.IdentityRules) and the
        -- counters of the tenant's graph: node and edge numbers are dense per tenant so the
        -- graph is a set of numpy arrays; events up to commit `resolved_seq` are resolved.
        CREATE TABLE identity_state (
            tenant_id VARCHAR PRIMARY KEY,
            rules VARCHAR,
            next_node BIGINT NOT NULL,
            next_edge BIGINT NOT NULL,
            next_change BIGINT NOT NULL,
            resolved_seq BIGINT NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        -- One row per identifier (a node of the graph). `key` is the matching key: the
        -- canonical value, or for PII a keyed hash (quanyu.identity.secrets); the raw PII
        -- value is only ever stored encrypted, in `value_enc`. `profile_id` is the OneID:
        -- the smallest node number in the node's person, so it is the same whichever way
        -- it was computed and the older person's number survives a merge.
        CREATE TABLE id_nodes (
            tenant_id VARCHAR NOT NULL,
            node_id BIGINT NOT NULL,
            id_type VARCHAR NOT NULL,
            scope VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            value VARCHAR,
            value_enc BLOB,
            masked VARCHAR NOT NULL,
            profile_id BIGINT NOT NULL,
            source_id VARCHAR,
            first_seen TIMESTAMP NOT NULL
        );
        CREATE INDEX id_nodes_key ON id_nodes (tenant_id, key);
        -- One row per distinct link between two identifiers, in arrival order (`edge_id`).
        -- status: active (it links, or would have: inside one person), refused (a limit
        -- stopped the merge; `bucket` names the limit: a conflict for review), removed (a
        -- person unlinked it: a split). kind 'probable' with a score is the place for
        -- probabilistic matches; only 'same' edges merge today.
        CREATE TABLE id_edges (
            tenant_id VARCHAR NOT NULL,
            edge_id BIGINT NOT NULL,
            a BIGINT NOT NULL,
            b BIGINT NOT NULL,
            kind VARCHAR NOT NULL,
            score DOUBLE,
            status VARCHAR NOT NULL,
            bucket VARCHAR,
            source_id VARCHAR,
            message_id VARCHAR,
            seen_at TIMESTAMP NOT NULL,
            reviewed_at TIMESTAMP,
            review VARCHAR
        );
        -- Every change of a OneID: merge (other_profile_id went into profile_id through
        -- edge_id), split (profile_id lost other_profile_id when node_id was unlinked),
        -- rebuild (a full rebuild moved nodes).
        CREATE TABLE profile_changes (
            tenant_id VARCHAR NOT NULL,
            change_id BIGINT NOT NULL,
            changed_at TIMESTAMP NOT NULL,
            kind VARCHAR NOT NULL,
            profile_id BIGINT NOT NULL,
            other_profile_id BIGINT,
            edge_id BIGINT,
            node_id BIGINT,
            source_id VARCHAR,
            message_id VARCHAR,
            actor VARCHAR,
            detail VARCHAR
        );
        -- The identifier each event hangs on (its strongest one; -1 when it carried no
        -- usable identifier): events follow their identifiers through merges and splits.
        CREATE TABLE event_nodes (
            tenant_id VARCHAR NOT NULL,
            source_id VARCHAR NOT NULL,
            message_id VARCHAR NOT NULL,
            node_id BIGINT NOT NULL,
            resolved_at TIMESTAMP NOT NULL
        );
        """,
    ),
    Migration(
        "identity",
        2,
        """
        -- DuckDB answers `tenant_id = ? AND key = ?` from an index on key alone (the
        -- two-column index was not used: every lookup scanned the table).
        DROP INDEX id_nodes_key;
        CREATE INDEX id_nodes_key ON id_nodes (key);
        """,
    ),
    Migration(
        "identity",
        3,
        """
        -- What the 360 view needs of each event, beside its identifier, so a person's
        -- figures and timeline page come from this table alone; `commit_seq` finds the
        -- event itself (the events table is in commit order: zone maps prune on it).
        ALTER TABLE event_nodes ADD COLUMN commit_seq BIGINT;
        ALTER TABLE event_nodes ADD COLUMN timestamp TIMESTAMP;
        ALTER TABLE event_nodes ADD COLUMN type VARCHAR;
        ALTER TABLE event_nodes ADD COLUMN event VARCHAR;
        ALTER TABLE event_nodes ADD COLUMN brand_id VARCHAR;
        """,
    ),
    Migration(
        "identity",
        4,
        """
        -- Page and screen names, so the timeline's name filter reads event_nodes alone;
        -- rows written before migration 3 get their event's commit, time, type and brand.
        ALTER TABLE event_nodes ADD COLUMN name VARCHAR;
        UPDATE event_nodes SET commit_seq = coalesce(e.commit_seq, 0), timestamp = e.timestamp,
            type = e.type, event = e.event, brand_id = e.brand_id, name = e.name
        FROM events AS e WHERE e.tenant_id = event_nodes.tenant_id
            AND e.source_id = event_nodes.source_id AND e.message_id = event_nodes.message_id
            AND (event_nodes.commit_seq IS NULL OR e.name IS NOT NULL);
        """,
    ),
]
