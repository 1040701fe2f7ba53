"""SQL of the population count (how many people a tenant knows). Runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

#: People (OneIDs) of a tenant: every identifier node names its person.
COUNT_PEOPLE = statement(
    "profiles.count_people",
    "SELECT count(DISTINCT profile_id) FROM id_nodes WHERE tenant_id = ?",
)
