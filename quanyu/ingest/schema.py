"""Tables of the ingest capability."""

from __future__ import annotations

from quanyu.store.migrations import Migration

#: Column order of the events table; the writer builds Arrow tables in this order.
EVENT_COLUMNS = (
    "tenant_id",
    "source_id",
    "brand_id",
    "message_id",
    "type",
    "event",
    "name",
    "user_id",
    "anonymous_id",
    "group_id",
    "previous_id",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "properties",
    "traits",
    "context",
    "integrations",
    "identifiers",
)

MIGRATIONS = [
    Migration(
        "ingest",
        1,
        """
        -- Events are appended in arrival order, so the table is clustered by receive time;
        -- DuckDB's zone maps prune on tenant_id and timestamp. The key makes
        -- (source, messageId) unique for good: retries add nothing, however late.
        -- JSON columns are VARCHAR holding JSON text: ingest writes only text it encoded
        -- itself, and the JSON type would parse every value again on insert (and Spark
        -- has no such type). JSON functions read them as they are.
        CREATE TABLE events (
            tenant_id VARCHAR NOT NULL,
            source_id VARCHAR NOT NULL,
            brand_id VARCHAR,
            message_id VARCHAR NOT NULL,
            type VARCHAR NOT NULL,
            event VARCHAR,
            name VARCHAR,
            user_id VARCHAR,
            anonymous_id VARCHAR,
            group_id VARCHAR,
            previous_id VARCHAR,
            timestamp TIMESTAMP NOT NULL,
            original_timestamp TIMESTAMP,
            sent_at TIMESTAMP,
            received_at TIMESTAMP NOT NULL,
            properties VARCHAR,
            traits VARCHAR,
            context VARCHAR,
            integrations VARCHAR,
            identifiers VARCHAR,
            PRIMARY KEY (source_id, message_id)
        );
        CREATE TABLE dead_letters (
            id VARCHAR PRIMARY KEY,
            tenant_id VARCHAR NOT NULL,
            source_id VARCHAR NOT NULL,
            received_at TIMESTAMP NOT NULL,
            message_id VARCHAR,
            event_type VARCHAR,
            event VARCHAR,
            code VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            rule VARCHAR,
            disposition VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            payload VARCHAR NOT NULL,
            resolved_at TIMESTAMP
        );
        CREATE TABLE ingest_commits (
            tenant_id VARCHAR NOT NULL,
            source_id VARCHAR NOT NULL,
            committed_at TIMESTAMP NOT NULL,
            received BIGINT NOT NULL,
            inserted BIGINT NOT NULL
        );
        CREATE TABLE tracking_plans (
            tenant_id VARCHAR NOT NULL,
            source_id VARCHAR NOT NULL,
            mode VARCHAR NOT NULL,
            block_invalid BOOLEAN NOT NULL,
            plan JSON NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (source_id)
        );
        """,
    ),
    Migration(
        "ingest",
        2,
        """
        -- The number of the group commit that stored each event, increasing with commit
        -- order: later capabilities (identity resolution) follow the table by it and
        -- never miss an event that committed late.
        ALTER TABLE events ADD COLUMN commit_seq BIGINT;
        """,
    ),
    Migration(
        "ingest",
        3,
        """
        -- Deduplication moves from the events table's (source_id, message_id) key to a
        -- table of 128-bit hashes of it: keeping a key of two strings cost DuckDB more
        -- than the rest of an insert, and the hashes can be let go after the dedup
        -- window (QUANYU_DEDUP_WINDOW_HOURS) while the events stay. ``commit_seq`` is
        -- the group commit that claimed the key. A hash never holds personal data, so
        -- an erased event's key stays: a late retry of it adds nothing.
        CREATE TABLE event_keys (
            key UHUGEINT PRIMARY KEY,
            commit_seq BIGINT NOT NULL,
            received_at TIMESTAMP NOT NULL
        );
        INSERT INTO event_keys
            SELECT md5_number(source_id || chr(31) || message_id), coalesce(commit_seq, 0),
                received_at
            FROM events;
        CREATE TABLE events_unkeyed (
            tenant_id VARCHAR NOT NULL,
            source_id VARCHAR NOT NULL,
            brand_id VARCHAR,
            message_id VARCHAR NOT NULL,
            type VARCHAR NOT NULL,
            event VARCHAR,
            name VARCHAR,
            user_id VARCHAR,
            anonymous_id VARCHAR,
            group_id VARCHAR,
            previous_id VARCHAR,
            timestamp TIMESTAMP NOT NULL,
            original_timestamp TIMESTAMP,
            sent_at TIMESTAMP,
            received_at TIMESTAMP NOT NULL,
            properties VARCHAR,
            traits VARCHAR,
            context VARCHAR,
            integrations VARCHAR,
            identifiers VARCHAR,
            commit_seq BIGINT
        );
        INSERT INTO events_unkeyed SELECT * FROM events;
        DROP TABLE events;
        ALTER TABLE events_unkeyed RENAME TO events;
        """,
    ),
    Migration(
        "ingest",
        4,
        """
        -- The JSON columns are stored ZSTD-compressed rather than with DuckDB's own pick
        -- (dictionary + FSST, whose analysis cost more than the rest of an insert of
        -- Segment-shaped events): bulk inserts take half the time, the file a half to a
        -- third of the room, and JSON functions read them as fast. Spark has no such
        -- clause; its table format picks the codec (DESIGN's engine boundary).
        CREATE TABLE events_zstd (
            tenant_id VARCHAR NOT NULL,
            source_id VARCHAR NOT NULL,
            brand_id VARCHAR,
            message_id VARCHAR NOT NULL,
            type VARCHAR NOT NULL,
            event VARCHAR,
            name VARCHAR,
            user_id VARCHAR,
            anonymous_id VARCHAR,
            group_id VARCHAR,
            previous_id VARCHAR,
            timestamp TIMESTAMP NOT NULL,
            original_timestamp TIMESTAMP,
            sent_at TIMESTAMP,
            received_at TIMESTAMP NOT NULL,
            properties VARCHAR USING COMPRESSION ZSTD,
            traits VARCHAR USING COMPRESSION ZSTD,
            context VARCHAR USING COMPRESSION ZSTD,
            integrations VARCHAR USING COMPRESSION ZSTD,
            identifiers VARCHAR,
            commit_seq BIGINT
        );
        INSERT INTO events_zstd SELECT * FROM events;
        DROP TABLE events;
        ALTER TABLE events_zstd RENAME TO events;
        """,
    ),
    Migration(
        "ingest",
        5,
        """
        -- The runs of journal records (quanyu/ingest/journal.py) each group commit
        -- stored: a record the table does not name is committed again at start.
        CREATE TABLE ingest_journal (
            first_record BIGINT NOT NULL,
            last_record BIGINT NOT NULL,
            commit_seq BIGINT NOT NULL
        );
        """,
    ),
]
