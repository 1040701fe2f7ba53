"""SQL of profile summaries: a few people at a glance, and where each identifier was seen.

Reads ``id_nodes``, ``id_edges`` and ``event_nodes`` only (never the wide ``events``
table: the few events whose traits a summary needs are fetched by key with
:data:`quanyu.profiles.sql.TRAITS_BY_KEY`). Runs nothing.
"""

from __future__ import annotations

from quanyu.engine import statement

#: The name under which the people of a summary are staged (one ``profile_id`` column).
PEOPLE_TABLE = "summary_people"
#: The name under which their identifiers are staged (``node_id``, ``profile_id``).
NODES_TABLE = "summary_nodes"

#: The identifiers of the staged people. Binds: tenant.
PEOPLE_NODES = statement(
    "profiles.summary_people_nodes",
    "SELECT n.profile_id, n.node_id, n.id_type, n.scope FROM id_nodes AS n"
    f" JOIN {PEOPLE_TABLE} AS p ON p.profile_id = n.profile_id WHERE n.tenant_id = ?",
)
#: Every event filed under the staged identifiers as ``event_nodes`` has it, with the
#: event's brand (or else its source's). Staging the identifiers (a few dozen rows)
#: rather than joining ``id_nodes`` keeps the join's build side small. Binds: tenant.
PEOPLE_EVENTS = statement(
    "profiles.summary_people_events",
    "SELECT DISTINCT n.profile_id, en.source_id, en.message_id, en.commit_seq, en.timestamp,"
    " en.type, coalesce(en.brand_id, s.brand_id) AS brand_id"
    f" FROM event_nodes AS en JOIN {NODES_TABLE} AS n ON n.node_id = en.node_id"
    " LEFT JOIN sources AS s ON s.id = en.source_id AND s.tenant_id = en.tenant_id"
    " WHERE en.tenant_id = ?",
)

#: Events filed under each identifier of a person, per source: how many, first and last.
#: Binds: tenant x2, profile.
NODE_EVENTS = statement(
    "profiles.summary_node_events",
    "SELECT en.node_id, en.source_id, count(*) AS events, min(en.timestamp) AS first_at,"
    " max(en.timestamp) AS last_at FROM event_nodes AS en WHERE en.tenant_id = ?"
    " AND en.node_id IN (SELECT node_id FROM id_nodes WHERE tenant_id = ? AND profile_id = ?)"
    " GROUP BY en.node_id, en.source_id",
)
#: The live links of a person's identifiers: which source linked them and when. A live
#: link joins two identifiers of one person, so its first end finds them all.
#: Binds: tenant x2, profile.
NODE_LINKS = statement(
    "profiles.summary_node_links",
    "SELECT e.a, e.b, e.source_id, min(e.seen_at) AS first_at, max(e.seen_at) AS last_at,"
    " count(*) AS links FROM id_edges AS e WHERE e.tenant_id = ? AND e.status = 'active'"
    " AND e.a IN (SELECT node_id FROM id_nodes WHERE tenant_id = ? AND profile_id = ?)"
    " GROUP BY e.a, e.b, e.source_id",
)
