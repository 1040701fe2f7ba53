"""Tables of the consent capability: legal entities and their purposes, the append-only
consent ledger, who is told of each change, every enforcement decision, canaries and
privacy (PIPL) requests.

No table here holds personal data in the clear. A ledger entry names its subject by the
identifier's graph key (a keyed hash for PII, :mod:`quanyu.identity.secrets`), so the
ledger survives the erasure of the person it speaks of.
"""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS = [
    Migration(
        "consent",
        1,
        """
        -- Legal entities (the companies of a brand group; PIPL's 个人信息处理者) and the
        -- brand -> entity map. A purpose belongs to one entity: consent given to one
        -- entity never covers another, sister brands included.
        CREATE TABLE consent_entities (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            credit_code VARCHAR,
            is_default BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );
        CREATE TABLE consent_brand_entities (
            tenant_id VARCHAR NOT NULL,
            brand_id VARCHAR NOT NULL,
            entity_id VARCHAR NOT NULL,
            PRIMARY KEY (tenant_id, brand_id)
        );
        -- A purpose: legal basis (consent needs a grant; other bases do not), whether a
        -- grant must be separate consent (单独同意), how long a grant stays valid
        -- (valid_days; NULL: until withdrawn), how long data is kept (retention_days),
        -- the destinations it may reach (JSON list of destination ids; NULL: any), what
        -- happens to events collected after a withdrawal (on_withdrawal: 'exclude' keeps
        -- them unused, 'drop' deletes them) and the Segment consent categories that
        -- speak for it (JSON list, matched case-insensitively); collects: collecting
        -- behaviour events rests on it; marketing: the tenant's minimum marketing age
        -- applies to it.
        CREATE TABLE consent_purposes (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            entity_id VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            name_zh VARCHAR NOT NULL,
            name_en VARCHAR NOT NULL,
            legal_basis VARCHAR NOT NULL,
            separate_consent BOOLEAN NOT NULL,
            valid_days INTEGER,
            retention_days INTEGER,
            destinations VARCHAR,
            on_withdrawal VARCHAR NOT NULL,
            categories VARCHAR NOT NULL,
            collects BOOLEAN NOT NULL,
            marketing BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );
        -- The notice text of each version of a purpose, as shown to people.
        CREATE TABLE consent_notices (
            tenant_id VARCHAR NOT NULL,
            purpose_id VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, purpose_id, version)
        );
        -- Per tenant: the age below which a guardian must consent (NULL: no gate), the
        -- age below which nobody is marketed to (NULL: none; liquor brands use 18), and
        -- the ledger's counters: entries are numbered densely per tenant (seq), and
        -- events up to commit captured_seq have had their consent read.
        CREATE TABLE consent_state (
            tenant_id VARCHAR PRIMARY KEY,
            guardian_under INTEGER,
            marketing_min_age INTEGER,
            next_seq BIGINT NOT NULL,
            captured_seq BIGINT NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        -- The ledger: append-only, one row per decision. The subject is the identifier
        -- it was given through (its graph key and type) and the OneID it belonged to
        -- then; channel '*' speaks for every channel. decided_at orders decisions (a
        -- late-arriving older decision does not override a newer one); leaf_hash is
        -- SHA-256 of the entry's canonical JSON (RFC 8785), the leaf the tenant's Merkle
        -- log takes.
        CREATE TABLE consent_ledger (
            tenant_id VARCHAR NOT NULL,
            seq BIGINT NOT NULL,
            id VARCHAR NOT NULL,
            purpose_id VARCHAR NOT NULL,
            channel VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            separate BOOLEAN NOT NULL,
            notice_version VARCHAR,
            decided_at TIMESTAMP NOT NULL,
            recorded_at TIMESTAMP NOT NULL,
            surface VARCHAR NOT NULL,
            actor VARCHAR NOT NULL,
            evidence VARCHAR,
            subject_key VARCHAR NOT NULL,
            subject_type VARCHAR NOT NULL,
            profile_id BIGINT,
            origin VARCHAR NOT NULL,
            source_id VARCHAR,
            message_id VARCHAR,
            recorded_by VARCHAR NOT NULL,
            leaf_hash VARCHAR NOT NULL,
            PRIMARY KEY (tenant_id, seq)
        );
        -- Which identifiers each entry covers: every identifier of the subject's person
        -- when it was recorded. A person's state is read through these rows, so a merge
        -- joins two histories without rewriting either and a split gives each side back
        -- its own (quanyu.consent.ledger explains the rule).
        CREATE TABLE consent_subjects (
            tenant_id VARCHAR NOT NULL,
            seq BIGINT NOT NULL,
            key VARCHAR NOT NULL
        );
        CREATE INDEX consent_subjects_key ON consent_subjects (key);
        -- Touchpoints that want to hear of consent changes: a delivery destination (URL
        -- and signing secret live there), and the purposes and brands they care about
        -- (JSON lists of purpose ids and brand ids; NULL: all).
        CREATE TABLE consent_subscribers (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            destination_id VARCHAR NOT NULL,
            purposes VARCHAR,
            brands VARCHAR,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );
        -- Who was told of each ledger entry: the outbox message written for each
        -- subscriber in the entry's own transaction.
        CREATE TABLE consent_propagation (
            tenant_id VARCHAR NOT NULL,
            seq BIGINT NOT NULL,
            subscriber_id VARCHAR NOT NULL,
            message_id VARCHAR NOT NULL
        );
        -- Every allow and block: who, for which purpose and channel, where to (a
        -- destination id, 'download', 'snapshot' ...), the act (export, push, send,
        -- collect), the decision, why, and the ledger entry it rested on (NULL: none).
        CREATE TABLE consent_decisions (
            tenant_id VARCHAR NOT NULL,
            decided_at TIMESTAMP NOT NULL,
            act VARCHAR NOT NULL,
            act_id VARCHAR NOT NULL,
            profile_id BIGINT NOT NULL,
            purpose_id VARCHAR NOT NULL,
            channel VARCHAR NOT NULL,
            destination VARCHAR NOT NULL,
            decision VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            entry_seq BIGINT
        );
        -- Synthetic people seeded opted out of everything: any send to one is a bug.
        CREATE TABLE consent_canaries (
            tenant_id VARCHAR NOT NULL,
            user_id VARCHAR NOT NULL,
            subject_key VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, user_id)
        );
        -- PIPL requests of data subjects: access (a copy), correction, deletion; each
        -- with the deadline the law gives and what came of it. The subject is named by
        -- the OneID and identifier key it was resolved to, never by the raw value.
        CREATE TABLE privacy_requests (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            subject_key VARCHAR NOT NULL,
            subject_type VARCHAR NOT NULL,
            profile_id BIGINT,
            status VARCHAR NOT NULL,
            received_at TIMESTAMP NOT NULL,
            due_at TIMESTAMP NOT NULL,
            completed_at TIMESTAMP,
            actor VARCHAR NOT NULL,
            detail VARCHAR,
            outcome VARCHAR,
            PRIMARY KEY (tenant_id, id)
        );
        """,
    ),
    Migration(
        "consent",
        2,
        """
        -- Bumped by every change enforcement reads besides the ledger (purposes, legal
        -- entities and their brands, age gates, canaries): one cheap read tells whether a
        -- cached enforcement context still holds.
        ALTER TABLE consent_state ADD COLUMN config_version BIGINT DEFAULT 0;
        """,
    ),
]
