"""SQL of the profiles capability: reads of the identity tables and events. Runs nothing.

A profile's events are those whose identifier (``event_nodes.node_id``) belongs to
the profile (``id_nodes.profile_id``); the ``mine`` CTE below lists them once each.
Neither column is indexed, so every profile read scans the tenant's ``id_nodes`` and
``event_nodes`` once per statement (DuckDB zone maps prune other tenants' row groups
only where rows are clustered by tenant).
"""

from __future__ import annotations

from quanyu.engine import statement

#: The (source_id, message_id) of a profile's events. Binds: tenant, profile number.
_MINE = (
    "WITH mine AS (SELECT DISTINCT en.source_id, en.message_id FROM event_nodes AS en"
    " JOIN id_nodes AS n ON n.tenant_id = en.tenant_id AND n.node_id = en.node_id"
    " WHERE en.tenant_id = ? AND n.profile_id = ?)"
)
#: Events of the profile, with their source. Binds: tenant (after ``_MINE``'s).
_PROFILE_EVENTS = (
    " FROM events AS e JOIN mine AS m ON m.source_id = e.source_id AND m.message_id = e.message_id"
    " LEFT JOIN sources AS s ON s.id = e.source_id AND s.tenant_id = e.tenant_id"
    " WHERE e.tenant_id = ?"
)

#: The event columns the timeline returns, named as ``quanyu.ingest.models.Event`` fields.
EVENT_FIELDS = (
    "message_id",
    "type",
    "event",
    "name",
    "user_id",
    "anonymous_id",
    "group_id",
    "previous_id",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "source_id",
    "brand_id",
    "properties",
    "traits",
    "context",
    "integrations",
    "identifiers",
)
#: Of those, the JSON text columns.
JSON_FIELDS = frozenset({"properties", "traits", "context", "integrations", "identifiers"})
_EVENT_VIEW = ", ".join(f"e.{c}" for c in EVENT_FIELDS)

#: The identifiers of a profile, oldest first. Binds: tenant, profile.
PROFILE_NODES = statement(
    "profiles.profile_nodes",
    "SELECT node_id, id_type, scope, value, masked, source_id, first_seen FROM id_nodes"
    " WHERE tenant_id = ? AND profile_id = ? ORDER BY first_seen, node_id",
)
#: Whether a profile number exists. Binds: tenant, profile.
PROFILE_EXISTS = statement(
    "profiles.profile_exists",
    "SELECT count(*) FROM id_nodes WHERE tenant_id = ? AND profile_id = ?",
)
#: The profile a vanished profile number went into by its latest merge. Binds: tenant, number.
MERGED_INTO = statement(
    "profiles.merged_into",
    "SELECT profile_id, changed_at FROM profile_changes"
    " WHERE tenant_id = ? AND other_profile_id = ? AND kind = 'merge'"
    " ORDER BY changed_at DESC, change_id DESC LIMIT 1",
)
#: A brand of the tenant, to refuse a brand view of another tenant's brand. Binds: tenant, brand.
BRAND_EXISTS = statement(
    "profiles.brand_exists", "SELECT count(*) FROM brands WHERE tenant_id = ? AND id = ?"
)

#: Events that can carry traits: identify (``traits``) and track, page and screen
#: (``context.traits``, Segment's place for traits on other calls); the JSON is read in
#: Python. Group calls carry the traits of a company, not of the person. Binds: tenant,
#: profile, tenant.
TRAIT_EVENTS = statement(
    "profiles.trait_events",
    f"{_MINE} SELECT e.type, e.traits, e.context, e.source_id, s.kind,"
    " coalesce(e.brand_id, s.brand_id) AS brand_id, e.timestamp"
    f"{_PROFILE_EVENTS}"
    " AND ((e.type = 'identify' AND e.traits IS NOT NULL)"
    " OR (e.type IN ('track', 'page', 'screen') AND e.context LIKE '%\"traits\"%'))"
    " ORDER BY e.timestamp, e.source_id, e.message_id",
)

#: A page of the profile's events, newest first; ``NULL`` filters match everything and
#: the cursor is the (timestamp, message_id, source_id) of the previous page's last row.
#: Binds: tenant, profile, tenant, type x2, event name x3, brand x2, source x2,
#: cursor timestamp x3, cursor message id x2, cursor source id, limit.
TIMELINE = statement(
    "profiles.timeline",
    f"{_MINE} SELECT {_EVENT_VIEW}"
    f"{_PROFILE_EVENTS}"
    " AND (CAST(? AS VARCHAR) IS NULL OR e.type = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR e.event = ? OR e.name = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR coalesce(e.brand_id, s.brand_id) = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR e.source_id = ?)"
    " AND (CAST(? AS TIMESTAMP) IS NULL OR e.timestamp < ?"
    " OR (e.timestamp = ? AND (e.message_id < ?"
    " OR (e.message_id = ? AND e.source_id < ?))))"
    " ORDER BY e.timestamp DESC, e.message_id DESC, e.source_id DESC LIMIT ?",
)

#: Per (brand, channel) of the profile's events: count, first time and the last event.
#: The channel is the source's kind. Totals per brand and per channel are folded from
#: these few rows in Python. Binds: tenant, profile, tenant.
ACTIVITY = statement(
    "profiles.activity",
    f"{_MINE}, ev AS (SELECT coalesce(e.brand_id, s.brand_id) AS brand_id,"
    " coalesce(s.kind, 'unknown') AS channel, e.source_id, e.type, e.event, e.name,"
    f" e.message_id, e.timestamp AS event_at{_PROFILE_EVENTS}),"
    " ranked AS (SELECT brand_id, channel, source_id, type, event, name, message_id, event_at,"
    " count(*) OVER (PARTITION BY brand_id, channel) AS n,"
    " min(event_at) OVER (PARTITION BY brand_id, channel) AS first_at,"
    " row_number() OVER (PARTITION BY brand_id, channel"
    " ORDER BY event_at DESC, message_id DESC, source_id DESC) AS rn FROM ev)"
    " SELECT brand_id, channel, n, first_at, source_id, type, event, name, message_id, event_at"
    " FROM ranked WHERE rn = 1",
)
#: The profile's event counts per (type, track event name). Binds: tenant, profile, tenant.
EVENT_COUNTS = statement(
    "profiles.event_counts",
    f"{_MINE} SELECT e.type, e.event, count(*){_PROFILE_EVENTS} GROUP BY e.type, e.event",
)

#: Merges, splits and rebuilds that touched a profile, newest first, paged by the
#: (changed_at, change_id) of the previous page's last row. Binds: tenant, profile x2,
#: cursor time x3, cursor change id, limit.
HISTORY = statement(
    "profiles.history",
    "SELECT change_id, changed_at, kind, profile_id, other_profile_id, edge_id, node_id,"
    " source_id, message_id, actor, detail FROM profile_changes"
    " WHERE tenant_id = ? AND (profile_id = ? OR other_profile_id = ?)"
    " AND (CAST(? AS TIMESTAMP) IS NULL OR changed_at < ?"
    " OR (changed_at = ? AND change_id < ?))"
    " ORDER BY changed_at DESC, change_id DESC LIMIT ?",
)

#: Identifiers whose stored value starts with a prefix (a LIKE pattern escaped with
#: ``!``). PII identifiers store no value (only a keyed hash and ciphertext), so they
#: never match; ``quanyu.identity.admin.find`` looks them up exactly. Binds: tenant, pattern,
#: type x2, limit.
SEARCH_IDENTIFIERS = statement(
    "profiles.search_identifiers",
    "SELECT profile_id, id_type, masked FROM id_nodes"
    " WHERE tenant_id = ? AND value LIKE ? ESCAPE '!'"
    " AND (CAST(? AS VARCHAR) IS NULL OR id_type = ?)"
    " ORDER BY value, node_id LIMIT ?",
)
#: The profile of one identifier by its graph key (``quanyu.identity.secrets.identifier_key``:
#: the keyed hash for PII); uses the ``id_nodes_key`` index. Binds: tenant, key.
#: Identify events whose lower-cased traits text matches either of two LIKE patterns
#: (compact JSON, and JSON with a space after the colon, as imported text may be), with
#: the profile each hangs on. A full scan of the tenant's identify events (no index can
#: serve a substring of JSON text): cost grows with the tenant's identify events, about
#: a scan of the traits column per query. Binds: tenant, pattern x2, limit.
SEARCH_TRAITS = statement(
    "profiles.search_traits",
    # the matching events first, then their profiles: joining before the filter costs
    # about ten times as much on DuckDB
    "WITH hits AS (SELECT e.tenant_id, e.source_id, e.message_id, e.traits, e.timestamp"
    " FROM events AS e WHERE e.tenant_id = ? AND e.type = 'identify'"
    " AND (lower(e.traits) LIKE ? ESCAPE '!' OR lower(e.traits) LIKE ? ESCAPE '!')"
    " ORDER BY e.timestamp DESC, e.message_id DESC LIMIT ?)"
    " SELECT n.profile_id, h.traits FROM hits AS h"
    " JOIN event_nodes AS en ON en.tenant_id = h.tenant_id AND en.source_id = h.source_id"
    " AND en.message_id = h.message_id"
    " JOIN id_nodes AS n ON n.tenant_id = en.tenant_id AND n.node_id = en.node_id"
    " ORDER BY h.timestamp DESC, h.message_id DESC",
)
