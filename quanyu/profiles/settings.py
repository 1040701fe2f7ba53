"""A tenant's trait survivorship rules: which value of each trait the 360 view keeps."""

from __future__ import annotations

from quanyu.engine import Session, statement
from quanyu.ids import utcnow
from quanyu.profiles.survivorship import TraitRules

GET_TRAIT_RULES = statement(
    "profiles.get_trait_rules", "SELECT trait_rules FROM profile_settings WHERE tenant_id = ?"
)
DELETE_TRAIT_RULES = statement(
    "profiles.delete_trait_rules", "DELETE FROM profile_settings WHERE tenant_id = ?"
)
INSERT_TRAIT_RULES = statement(
    "profiles.insert_trait_rules",
    "INSERT INTO profile_settings (tenant_id, trait_rules, updated_at) VALUES (?, ?, ?)",
)


def trait_rules(db: Session, *, tenant: str) -> TraitRules:
    """The tenant's rules (``latest`` for every trait until set)."""
    row = db.one(GET_TRAIT_RULES, [tenant])
    return TraitRules.from_json(str(row[0])) if row else TraitRules()


def set_trait_rules(db: Session, *, tenant: str, rules: TraitRules) -> TraitRules:
    """Replace the tenant's rules (in one transaction)."""
    with db.transaction():
        db.execute(DELETE_TRAIT_RULES, [tenant])
        db.execute(INSERT_TRAIT_RULES, [tenant, rules.to_json(), utcnow()])
    return rules
