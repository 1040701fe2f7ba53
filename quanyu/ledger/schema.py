"""Tables of the ledger capability (the tenant's RFC 9162 Merkle log).

A log is its leaves (``ledger_leaves``: the 32-byte leaf hash, what kind of record it
stands for, a reference to that record, when it was appended, and the leaf's canonical
JSON only when its producer said it holds no personal data) plus its hashes in the C2SP
tlog-tiles layout: a tile at level L holds, concatenated, the hashes of up to 256
consecutive complete subtrees of height 8·L (L = 0: leaf hashes), so every subtree a
proof needs is rebuilt from at most two tiles per 8 levels of the tree. Full tiles are in
``ledger_tiles``, each level's partial tile at the right edge in ``ledger_edge``.
``ledger_state`` holds each tenant's size: appends update that one row, so concurrent
appends conflict there and never leave a gap. ``ledger_checkpoints`` keeps every signed
checkpoint.
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
        -- Full tile idx of level L: the 32-byte hashes of the complete subtrees of height
        -- 8*L numbered idx*256 .. idx*256+255. Written once, never updated. tile is
        -- '<tenant>/<L>/<idx>': one indexed column, so a proof's read is an index lookup.
        CREATE TABLE ledger_tiles (
            tile VARCHAR PRIMARY KEY,
            tenant_id VARCHAR NOT NULL,
            level INTEGER NOT NULL,
            idx BIGINT NOT NULL,
            hashes BLOB NOT NULL
        );
        -- The partial tile at the log's right edge, one per level: it grows with every
        -- append until full, then moves to ledger_tiles. Kept apart so the big table is
        -- insert-only (rewriting a blob there would rewrite its whole row group).
        CREATE TABLE ledger_edge (
            tenant_id VARCHAR NOT NULL,
            level INTEGER NOT NULL,
            idx BIGINT NOT NULL,
            hashes BLOB NOT NULL
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
