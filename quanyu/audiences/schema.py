"""Tables of the audiences capability: definitions and their materialised snapshots."""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS = [
    Migration(
        "audiences",
        1,
        """
        -- An audience (人群): a rule over tags, traits, identifiers and events (JSON of
        -- quanyu.tags.rules), the brands it is limited to, the purpose and channel it is
        -- for (consent is checked against them) and how often it is refreshed.
        CREATE TABLE audiences (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            description VARCHAR NOT NULL,
            rule VARCHAR NOT NULL,
            brands VARCHAR,
            purpose VARCHAR NOT NULL,
            channel VARCHAR NOT NULL,
            refresh_seconds INTEGER NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );
        -- A materialised audience: its members (a serialised roaring bitmap of OneID
        -- numbers, consent exclusions already applied), the hash of the definition it was
        -- made from, how many matched the rule and how many consent excluded.
        CREATE TABLE audience_snapshots (
            tenant_id VARCHAR NOT NULL,
            snapshot_id BIGINT NOT NULL,
            audience_id VARCHAR NOT NULL,
            definition_hash VARCHAR NOT NULL,
            size BIGINT NOT NULL,
            matched BIGINT NOT NULL,
            excluded BIGINT NOT NULL,
            reason VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            members BLOB NOT NULL,
            PRIMARY KEY (tenant_id, snapshot_id)
        );
        -- Pushes of snapshots to destinations (quanyu.delivery), with the identifier kind.
        CREATE TABLE audience_pushes (
            tenant_id VARCHAR NOT NULL,
            push_id VARCHAR NOT NULL,
            audience_id VARCHAR NOT NULL,
            snapshot_id BIGINT NOT NULL,
            destination_id VARCHAR NOT NULL,
            identifier VARCHAR NOT NULL,
            records BIGINT NOT NULL,
            batches BIGINT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, push_id)
        );
        """,
    ),
]
