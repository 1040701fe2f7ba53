"""Tables of the codes capability (one item, one code).

``codes`` holds one row per printed code — bottles, boxes, cases and pallets alike —
and is the table the scans, rewards, anomaly and EPCIS work reads and updates:

- identity: ``code`` (16 Crockford characters, the public outer code without its tag)
  and ``code_key`` (its first 64 bits as a signed BIGINT). Codes of one generation
  call are inserted sorted by ``code_key``, so DuckDB's per-row-group min/max lets a
  point lookup ``WHERE tenant_id = ? AND code_key = ? AND code = ?`` skip all but one
  row group per batch (about 1 ms on 10 million rows, no index to slow the bulk load).
  Uniqueness per tenant is enforced by the generator (anti-join, redraw), not a key.
- provenance: ``order_id`` (→ ``code_orders``: line, lot, quantity), ``product_id``
  (→ ``code_products``: GTIN, brand), ``seq`` (1-based print position in the order),
  ``level`` (item, box, case, pallet) and, for pallets, ``sscc`` (18 digits).
- lifecycle: ``state`` (issued, printed, activated, aggregated, shipped, received,
  voided, recalled, destroyed; see ``lifecycle.py``) and ``state_at``; ``replaces``
  names the rejected code an activated spare took over from.
- aggregation: ``parent_code`` is the box, case or pallet it was packed into;
  descendants are found level by level (at most three).
- distribution: ``dealer_id`` and ``region`` (the dealer's authorised region at
  shipping time, → ``code_dealers``), ``shipped_at``; ``store_id`` and ``received_at``
  (→ ``code_stores``), copied down to every descendant when a unit ships or arrives.
- inner code: ``inner_key`` (first 64 bits, as BIGINT) and ``inner_hash`` (16 bytes):
  a keyed hash of the under-the-cap code; the code itself is never stored.
  ``redeemed_at`` is for the rewards work (one redemption per inner code).
- scans: ``scan_count``, ``first_scan_at``, ``last_scan_at`` — counters kept by the
  scans work; lifecycle never touches them.

``code_events`` is append-only: one row per bulk lifecycle call with the canonical
JSON ``leaf`` (RFC 8785 subset: sorted keys, no spaces; no personal data) and its
SHA-256 ``leaf_hash``; ``code_event_items`` lists the codes each event touched.
"""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS: list[Migration] = [
    Migration(
        "codes",
        1,
        """
        CREATE TABLE code_brands (
            tenant_id VARCHAR NOT NULL,
            brand_id VARCHAR NOT NULL,
            short_domain VARCHAR NOT NULL,
            company_prefix VARCHAR,
            uppercase BOOLEAN NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, brand_id)
        );
        CREATE TABLE code_products (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            gtin VARCHAR NOT NULL,
            brand_id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, id),
            UNIQUE (tenant_id, gtin)
        );
        CREATE TABLE code_orders (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            product_id VARCHAR NOT NULL,
            level VARCHAR NOT NULL,
            quantity BIGINT NOT NULL,
            generated BIGINT NOT NULL,
            line VARCHAR NOT NULL,
            lot VARCHAR NOT NULL,
            inner_codes BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );
        CREATE TABLE code_dealers (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            region VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );
        CREATE TABLE code_stores (
            tenant_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            dealer_id VARCHAR,
            city VARCHAR,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );
        CREATE TABLE codes (
            tenant_id VARCHAR NOT NULL,
            code_key BIGINT NOT NULL,
            code VARCHAR NOT NULL,
            order_id VARCHAR NOT NULL,
            product_id VARCHAR NOT NULL,
            seq BIGINT NOT NULL,
            level VARCHAR NOT NULL,
            sscc VARCHAR,
            state VARCHAR NOT NULL,
            state_at TIMESTAMP NOT NULL,
            replaces VARCHAR,
            parent_code VARCHAR,
            dealer_id VARCHAR,
            region VARCHAR,
            shipped_at TIMESTAMP,
            store_id VARCHAR,
            received_at TIMESTAMP,
            inner_key BIGINT,
            inner_hash BLOB,
            redeemed_at TIMESTAMP,
            scan_count INTEGER NOT NULL DEFAULT 0,
            first_scan_at TIMESTAMP,
            last_scan_at TIMESTAMP
        );
        CREATE TABLE code_events (
            tenant_id VARCHAR NOT NULL,
            id BIGINT NOT NULL,
            action VARCHAR NOT NULL,
            occurred_at TIMESTAMP NOT NULL,
            actor VARCHAR NOT NULL,
            count BIGINT NOT NULL,
            leaf VARCHAR NOT NULL,
            leaf_hash BLOB NOT NULL,
            PRIMARY KEY (tenant_id, id)
        );
        CREATE TABLE code_event_items (
            tenant_id VARCHAR NOT NULL,
            event_id BIGINT NOT NULL,
            code VARCHAR NOT NULL
        );
        """,
    ),
]
