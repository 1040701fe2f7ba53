"""Tables of the ledger capability (the tenant's RFC 9162 Merkle log)."""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS: list[Migration] = []
