"""Tables of scans, rewards and anomalies (the consumer side of one item, one code).

Scans keep coarse places (a city) always and precise coordinates only when the person
said yes to sharing them; no scan row holds an identifier of the person who scanned —
those go to ingest as a "Product Scanned" event, where identity and consent govern them.
"""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS: list[Migration] = [
    Migration(
        "scans",
        1,
        """
        -- One row per scan, forged ones included (code NULL, the presented text cut to
        -- 40 characters). role: consumer, dealer or store; party_id names the dealer or
        -- store for authenticated scans. dealer_id/region: where the code was shipped,
        -- copied at scan time so diversion reports need no join to the codes tables.
        CREATE TABLE code_scans (
            id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            code VARCHAR,
            presented VARCHAR,
            inner_code BOOLEAN NOT NULL,
            verdict VARCHAR NOT NULL,
            state VARCHAR,
            gtin VARCHAR,
            scanned_at TIMESTAMP NOT NULL,
            city VARCHAR,
            lat DOUBLE,
            lon DOUBLE,
            ip VARCHAR,
            device_id VARCHAR,
            role VARCHAR NOT NULL,
            party_id VARCHAR,
            dealer_id VARCHAR,
            region VARCHAR
        );
        -- A reward campaign: a pool with a budget in prizes (budget_count) and/or money
        -- (budget_cents), the odds of a win, the prize and how many wins one person may
        -- take. issued_*: what the pool has paid so far.
        CREATE TABLE reward_campaigns (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            gtin VARCHAR,
            odds DOUBLE NOT NULL,
            prize_cents BIGINT NOT NULL,
            budget_count BIGINT,
            budget_cents BIGINT,
            per_person_cap INTEGER,
            issued_count BIGINT NOT NULL,
            issued_cents BIGINT NOT NULL,
            active BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );
        -- One row per redeemed inner code: the primary key is what makes a second
        -- redemption of the same cap impossible, whichever transaction commits first.
        CREATE TABLE reward_redemptions (
            tenant_id VARCHAR NOT NULL,
            inner_hash VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            campaign_id VARCHAR NOT NULL,
            code VARCHAR NOT NULL,
            person VARCHAR NOT NULL,
            won BOOLEAN NOT NULL,
            prize_cents BIGINT NOT NULL,
            redeemed_at TIMESTAMP NOT NULL,
            ledger_index BIGINT,
            PRIMARY KEY (tenant_id, inner_hash)
        );
        -- Counterfeit and diversion alerts: one per (kind, subject), evidence as JSON.
        CREATE TABLE scan_alerts (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            subject VARCHAR NOT NULL,
            dealer_id VARCHAR,
            gtin VARCHAR,
            severity VARCHAR NOT NULL,
            summary VARCHAR NOT NULL,
            evidence VARCHAR NOT NULL,
            first_at TIMESTAMP,
            last_at TIMESTAMP,
            detected_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, kind, subject)
        );
        """,
    ),
    Migration(
        "scans",
        2,
        """
        -- How far the scan journal (scans made durable on disk before they are
        -- answered) is folded into code_scans and ingest: the segment and the byte
        -- offset after the last folded record. One row, moved in the transaction that
        -- inserts the records it covers.
        CREATE TABLE scan_journal (
            id INTEGER NOT NULL PRIMARY KEY,
            segment BIGINT NOT NULL,
            byte_offset BIGINT NOT NULL
        );
        INSERT INTO scan_journal VALUES (1, 1, 0);
        """,
    ),
]
