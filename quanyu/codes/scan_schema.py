"""Tables of scans, rewards and anomalies (the consumer side of one item, one code)."""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS: list[Migration] = []
