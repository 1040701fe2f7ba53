"""Tables of the delivery capability: destinations and the outbox."""

from __future__ import annotations

from quanyu.store.migrations import Migration

#: Column order of the outbox; :func:`quanyu.delivery.service.enqueue` stages Arrow
#: tables in this order.
OUTBOX_COLUMNS = (
    "id",
    "seq",
    "tenant_id",
    "destination_id",
    "topic",
    "ordering_key",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)

MIGRATIONS = [
    Migration(
        "delivery",
        1,
        """
        -- The signing secret is stored AES-256-GCM encrypted under a key derived from the
        -- master key (see quanyu.delivery.signing.SecretBox): the database file alone
        -- does not let anyone forge webhooks to a tenant's receivers.
        CREATE TABLE delivery_destinations (
            id VARCHAR PRIMARY KEY,
            tenant_id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            url VARCHAR NOT NULL,
            secret_sealed BLOB NOT NULL,
            batch_size INTEGER NOT NULL,
            enabled BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        -- One row per request to send. ``id`` is the webhook-id receivers dedupe on;
        -- ``seq`` orders the messages of one (destination, ordering_key): only the
        -- oldest pending one of each is ever in flight. ``payload`` is the exact body
        -- sent (JSON text), so every attempt signs the same bytes.
        CREATE TABLE delivery_outbox (
            id VARCHAR PRIMARY KEY,
            seq BIGINT NOT NULL,
            tenant_id VARCHAR NOT NULL,
            destination_id VARCHAR NOT NULL,
            topic VARCHAR NOT NULL,
            ordering_key VARCHAR NOT NULL,
            payload VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at TIMESTAMP NOT NULL,
            last_attempt_at TIMESTAMP,
            last_error VARCHAR,
            last_status_code INTEGER,
            response VARCHAR,
            created_at TIMESTAMP NOT NULL,
            delivered_at TIMESTAMP
        );
        """,
    ),
]
