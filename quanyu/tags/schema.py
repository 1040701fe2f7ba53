"""Tables of the tags capability: the taxonomy, each tag's values over time, and the
per-person facts tag rules and audiences read."""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS = [
    Migration(
        "tags",
        1,
        """
        -- The taxonomy tree (标签体系): categories nest through parent_id.
        CREATE TABLE tag_categories (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            parent_id VARCHAR,
            name_zh VARCHAR NOT NULL,
            name_en VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );
        -- A tag: its rule (JSON of quanyu.tags.rules) or expert SQL, its value type and
        -- allowed values, who owns it (the group, or a brand id), how often it is
        -- recomputed in full (refresh_seconds) and its status (draft, live, retired).
        CREATE TABLE tags (
            tenant_id VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            category_id VARCHAR,
            name_zh VARCHAR NOT NULL,
            name_en VARCHAR NOT NULL,
            description VARCHAR NOT NULL,
            owner VARCHAR NOT NULL,
            value_type VARCHAR NOT NULL,
            allowed_values VARCHAR,
            rule VARCHAR,
            sql VARCHAR,
            template VARCHAR,
            refresh_seconds INTEGER NOT NULL,
            status VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            computed_at TIMESTAMP,
            PRIMARY KEY (tenant_id, key)
        );
        -- Every value every person has had of every tag: a row holds from valid_from
        -- until valid_to (NULL: it holds now), so a person's current tags are the open
        -- rows and "how many people had this tag on a day" is a count of the rows open
        -- that day. A false boolean tag is no row. `num` is the value as a number (number
        -- tags, and date tags as epoch seconds).
        CREATE TABLE tag_history (
            tenant_id VARCHAR NOT NULL,
            tag_key VARCHAR NOT NULL,
            profile_id BIGINT NOT NULL,
            value VARCHAR NOT NULL,
            num DOUBLE,
            valid_from TIMESTAMP NOT NULL,
            valid_to TIMESTAMP,
            run_from BIGINT NOT NULL,
            run_to BIGINT
        );
        -- One row per computation of a set of tags: what it did and what it found.
        CREATE TABLE tag_runs (
            tenant_id VARCHAR NOT NULL,
            run_id BIGINT NOT NULL,
            mode VARCHAR NOT NULL,
            tags VARCHAR NOT NULL,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            profiles BIGINT,
            added BIGINT,
            removed BIGINT,
            status VARCHAR NOT NULL,
            error VARCHAR,
            PRIMARY KEY (tenant_id, run_id)
        );
        -- The events of each person, as tag rules read them: one narrow row per event
        -- with its person (profile_id follows merges and splits), typed columns for what
        -- rules filter on, the money figure (`amount`) and the JSON properties and
        -- traits. Folded from ingest and identity in commit order (tag_state.folded_seq).
        CREATE TABLE event_facts (
            tenant_id VARCHAR NOT NULL,
            profile_id BIGINT NOT NULL,
            node_id BIGINT NOT NULL,
            commit_seq BIGINT NOT NULL,
            ts TIMESTAMP NOT NULL,
            type VARCHAR NOT NULL,
            event VARCHAR,
            name VARCHAR,
            brand_id VARCHAR,
            source_id VARCHAR NOT NULL,
            channel VARCHAR,
            amount DOUBLE,
            properties VARCHAR,
            traits VARCHAR
        );
        -- Per tenant: how far facts are folded (events commit and identity change).
        CREATE TABLE tag_state (
            tenant_id VARCHAR PRIMARY KEY,
            folded_seq BIGINT NOT NULL,
            folded_change BIGINT NOT NULL,
            next_run BIGINT NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        """,
    ),
]
