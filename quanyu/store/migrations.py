"""Versioned schema migrations, owned by each capability and applied at start."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One step of one capability's schema, identified by ``(capability, version)``."""

    capability: str
    version: int
    sql: str


def collect() -> list[Migration]:
    """Every capability's migrations, in the order they must run."""
    from quanyu.audiences import schema as audiences_schema
    from quanyu.codes import scan_schema
    from quanyu.codes import schema as codes_schema
    from quanyu.consent import schema as consent_schema
    from quanyu.delivery import schema as delivery_schema
    from quanyu.identity import schema as identity_schema
    from quanyu.ingest import schema as ingest_schema
    from quanyu.ledger import schema as ledger_schema
    from quanyu.profiles import schema as profiles_schema
    from quanyu.tags import schema as tags_schema
    from quanyu.tenancy import schema as tenancy_schema

    migrations = [
        *tenancy_schema.MIGRATIONS,
        *ingest_schema.MIGRATIONS,
        *identity_schema.MIGRATIONS,
        *profiles_schema.MIGRATIONS,
        *tags_schema.MIGRATIONS,
        *audiences_schema.MIGRATIONS,
        *delivery_schema.MIGRATIONS,
        *consent_schema.MIGRATIONS,
        *ledger_schema.MIGRATIONS,
        *codes_schema.MIGRATIONS,
        *scan_schema.MIGRATIONS,
    ]
    seen: set[tuple[str, int]] = set()
    for m in migrations:
        key = (m.capability, m.version)
        if key in seen:
            raise ValueError(f"migration {m.capability} v{m.version} is declared twice")
        seen.add(key)
    return migrations
