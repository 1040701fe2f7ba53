"""Tables of the tenancy capability."""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS = [
    Migration(
        "tenancy",
        1,
        """
        CREATE TABLE isvs (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE tenants (
            id VARCHAR PRIMARY KEY,
            isv_id VARCHAR,
            name VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE brands (
            id VARCHAR PRIMARY KEY,
            tenant_id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE sources (
            id VARCHAR PRIMARY KEY,
            tenant_id VARCHAR NOT NULL,
            brand_id VARCHAR,
            name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            rate_limit INTEGER,
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE api_keys (
            id VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            prefix VARCHAR NOT NULL,
            key_hash VARCHAR NOT NULL UNIQUE,
            isv_id VARCHAR,
            tenant_id VARCHAR,
            source_id VARCHAR,
            scopes VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            revoked_at TIMESTAMP,
            last_used_at TIMESTAMP
        );
        CREATE TABLE audit_log (
            id VARCHAR PRIMARY KEY,
            occurred_at TIMESTAMP NOT NULL,
            actor VARCHAR NOT NULL,
            isv_id VARCHAR,
            tenant_id VARCHAR,
            action VARCHAR NOT NULL,
            target_type VARCHAR NOT NULL,
            target_id VARCHAR NOT NULL,
            before JSON,
            after JSON,
            request_id VARCHAR
        );
        """,
    ),
    Migration(
        "tenancy",
        2,
        """
        CREATE TABLE console_users (
            id VARCHAR PRIMARY KEY,
            login VARCHAR NOT NULL UNIQUE,
            name VARCHAR NOT NULL,
            password_hash VARCHAR NOT NULL,
            role VARCHAR NOT NULL,
            isv_id VARCHAR,
            tenant_id VARCHAR,
            created_at TIMESTAMP NOT NULL,
            disabled_at TIMESTAMP,
            last_sign_in_at TIMESTAMP
        );
        """,
    ),
]
