"""Tables of the ledger capability (the tenant's RFC 9162 Merkle log).

A log is its leaves (``ledger_leaves``: the 32-byte leaf hash, what kind of record it
stands for, a reference to that record, when it was appended, and the leaf's canonical
JSON only when its producer said it holds no personal data) plus the hashes of complete
subtrees at levels 8, 16, 24, … (``ledger_nodes``; the C2SP tlog-tiles layout: every
proof node is rebuilt from at most two 256-wide tiles per 8 levels). ``ledger_state``
holds each tenant's size: appends update that one row, so concurrent appends conflict
there and never leave a gap. ``ledger_checkpoints`` keeps every signed checkpoint.
"""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS: list[Migration] = [
    Migration(
        "ledger",
        1,
        """
        CREATE TABLE ledger_state (
            tenant_id VARCHAR PRIMARY KEY,
            size BIGINT NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        -- idx is dense per tenant from 0; rows are written in idx order, so range reads
        -- of a tile prune by zone maps.
        CREATE TABLE ledger_leaves (
            tenant_id VARCHAR NOT NULL,
            idx BIGINT NOT NULL,
            kind VARCHAR NOT NULL,
            ref VARCHAR NOT NULL,
            leaf_hash BLOB NOT NULL,
            data VARCHAR,
            recorded_at TIMESTAMP NOT NULL
        );
        -- The hash of the complete subtree of 2**level leaves starting at idx << level,
        -- for levels that are positive multiples of 8.
        CREATE TABLE ledger_nodes (
            tenant_id VARCHAR NOT NULL,
            level INTEGER NOT NULL,
            idx BIGINT NOT NULL,
            hash BLOB NOT NULL
        );
        CREATE TABLE ledger_checkpoints (
            tenant_id VARCHAR NOT NULL,
            size BIGINT NOT NULL,
            root_hash BLOB NOT NULL,
            note VARCHAR NOT NULL,
            signed_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, size)
        );
        """,
    )
]
