"""Tables of the profiles capability (it reads the identity tables; it keeps its settings)."""

from __future__ import annotations

from quanyu.store.migrations import Migration

MIGRATIONS = [
    Migration(
        "profiles",
        1,
        """
        -- Per tenant: the trait survivorship rules (JSON of TraitRules).
        CREATE TABLE profile_settings (
            tenant_id VARCHAR PRIMARY KEY,
            trait_rules VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        """,
    ),
]
