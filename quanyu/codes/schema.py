"""Tables of the codes capability (one item, one code)."""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS: list[Migration] = []
