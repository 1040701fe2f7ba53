"""SQL of the profiles capability: reads of the identity tables and events. Runs nothing.

A profile's events are the ``event_nodes`` rows whose identifier (``node_id``) belongs
to the profile (``id_nodes.profile_id``). ``event_nodes`` keeps what the figures and
the timeline order need (commit, time, type, event name, brand), so those reads scan
that narrow table once and never join the wide ``events`` table.

The few events a page shows (or whose traits a profile needs) are then fetched from
``events`` by key, staged as ``profile_keys`` (source_id, message_id, commit_seq).
Joining alone reads too much on DuckDB (2.0): join filters and IN lists only prune row
groups by their zone maps, and every row of the surviving row groups is then read
whole, all JSON columns included (about 0.2 s for a page). So the statement also binds
:data:`WINDOWS` ranges of commits, of event times and of message ids that together
cover the keys (:func:`key_windows`). An OR of ranges on one column is applied inside
the scan: only rows inside a range of each kind are read beyond those three columns,
and since the events table is appended in commit order, the commit ranges also skip
the row groups of other commits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from quanyu.engine import statement
from quanyu.ingest.models import Event

#: The event columns the timeline returns: ``quanyu.ingest.models.Event``'s fields.
EVENT_FIELDS = tuple(Event.model_fields)
#: Of those, the JSON text columns.
JSON_FIELDS = frozenset({"properties", "traits", "context", "integrations", "identifiers"})
_EVENT_VIEW = ", ".join(f"e.{c}" for c in EVENT_FIELDS)

#: How many ranges of each kind a fetch by key binds (unused ones are bound to NULL).
#: More ranges fit scattered keys closer but cost a comparison each per scanned row:
#: 8 measured best on the 3-million-event demo.
WINDOWS = 8
#: The name under which a fetch's keys are staged.
KEYS_TABLE = "profile_keys"


def _ranges(column: str, upper: str) -> str:
    return "(" + " OR ".join([f"(e.{column} >= ? AND e.{column} {upper} ?)"] * WINDOWS) + ")"


#: Events by the staged keys, inside the bound windows. Binds: tenant, ``key_windows``.
_BY_KEY = (
    f" FROM events AS e JOIN {KEYS_TABLE} AS k ON k.commit_seq = e.commit_seq"
    " AND k.source_id = e.source_id AND k.message_id = e.message_id"
    " LEFT JOIN sources AS s ON s.id = e.source_id AND s.tenant_id = e.tenant_id"
    f" WHERE e.tenant_id = ? AND {_ranges('commit_seq', '<')}"
    f" AND {_ranges('timestamp', '<')} AND {_ranges('message_id', '<=')}"
)


def _split(gaps: npt.NDArray[Any]) -> list[tuple[int, int]]:
    """At most WINDOWS (first, last) index ranges of sorted distinct values, cut at the
    widest of the ``gaps`` between neighbours (the earliest of equal ones)."""
    cuts = sorted((np.argsort(-gaps, kind="stable")[: WINDOWS - 1] + 1).tolist())
    bounds = [0, *cuts, len(gaps) + 1]
    return [(a, b - 1) for a, b in zip(bounds, bounds[1:], strict=False)]


def _id_gaps(ids: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Minus the length of the prefix each sorted id shares with the next: ids that share
    less are further apart."""
    if len(ids) < 2:
        return np.zeros(0, np.int64)
    codes = ids.astype(str).view(np.uint32).reshape(len(ids), -1)
    shared: npt.NDArray[np.int64] = np.argmax(codes[1:] != codes[:-1], axis=1).astype(np.int64)
    return -shared


def key_windows(commits: npt.ArrayLike, times: npt.ArrayLike, ids: npt.ArrayLike) -> list[Any]:
    """The window binds of a fetch by key: ranges covering every key's commit, event
    time and message id, each kind cut at the widest gaps between the keys' values.

    Args:
        commits, times, ids: the keys' ``commit_seq``, ``timestamp`` and ``message_id``
            (at least one key).

    Returns:
        ``2 * WINDOWS`` values per kind (commit, time, id), ``None`` for unused ranges:
        commits and times as half-open ranges (bounded by the next integer or
        microsecond), ids as closed ones.
    """
    c = np.unique(np.asarray(commits, np.int64))
    t = np.unique(np.asarray(times, "datetime64[us]"))
    m = np.unique(np.asarray(ids, object))
    kinds = (
        [(int(c[a]), int(c[b]) + 1) for a, b in _split(np.diff(c))],
        [(t[a].item(), (t[b] + 1).item()) for a, b in _split(np.diff(t).astype(np.int64))],
        [(str(m[a]), str(m[b])) for a, b in _split(_id_gaps(m))],
    )
    out: list[Any] = []
    for ranges in kinds:
        out += [v for r in ranges for v in r] + [None, None] * (WINDOWS - len(ranges))
    return out


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

#: ``event_nodes`` rows of the profile's identifiers, with each event's source. An event
#: hangs on one identifier, but listed under two of the person's it still counts once.
_MINE = (
    " FROM event_nodes AS en"
    " LEFT JOIN sources AS s ON s.id = en.source_id AND s.tenant_id = en.tenant_id"
    " WHERE en.tenant_id = ?"
    " AND en.node_id IN (SELECT node_id FROM id_nodes WHERE tenant_id = ? AND profile_id = ?)"
)
#: Every event of the profile as ``event_nodes`` has it; the brand is the event's or else
#: its source's, the channel is the source's kind. Binds: tenant x2, profile.
PROFILE_EVENTS = statement(
    "profiles.profile_events",
    "SELECT DISTINCT en.source_id, en.message_id, en.commit_seq, en.timestamp, en.type,"
    " en.event, coalesce(en.brand_id, s.brand_id) AS brand_id,"
    f" coalesce(s.kind, 'unknown') AS channel{_MINE}",
)

#: The filters and cursor of a timeline page; ``NULL`` filters match everything.
_PAGE_FILTERS = (
    " AND (CAST(? AS VARCHAR) IS NULL OR en.type = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR coalesce(en.brand_id, s.brand_id) = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR en.source_id = ?)"
    " AND (CAST(? AS TIMESTAMP) IS NULL OR en.timestamp < ?"
    " OR (en.timestamp = ? AND (en.message_id < ?"
    " OR (en.message_id = ? AND en.source_id < ?))))"
    " ORDER BY en.timestamp DESC, en.message_id DESC, en.source_id DESC LIMIT ?"
)
_PAGE = f"SELECT DISTINCT en.source_id, en.message_id, en.commit_seq, en.timestamp{_MINE}"
#: The keys of a page of the profile's events, newest first; the cursor is the
#: (timestamp, message_id, source_id) of the previous page's last row. Binds: tenant x2,
#: profile, type x2, brand x2, source x2, cursor timestamp x3, message id x2, source id,
#: limit.
TIMELINE_PAGE = statement("profiles.timeline_page", f"{_PAGE}{_PAGE_FILTERS}")
#: The same, of events with an event name: a track event's or a page or screen name.
#: Binds: tenant x2, profile, event name x2, then as TIMELINE_PAGE from the type on.
TIMELINE_PAGE_NAMED = statement(
    "profiles.timeline_page_named",
    f"{_PAGE} AND (en.event = ? OR en.name = ?){_PAGE_FILTERS}",
)
#: The staged events, newest first, as the timeline shows them. Binds: tenant, windows.
EVENTS_BY_KEY = statement(
    "profiles.events_by_key",
    f"SELECT {_EVENT_VIEW}{_BY_KEY} ORDER BY e.timestamp DESC, e.message_id DESC, e.source_id DESC",
)
#: What the staged events say of the person, oldest first: identify calls carry traits
#: in ``traits``, track, page and screen calls in ``context.traits`` (Segment's place
#: for traits on other calls); the JSON is read in Python. Also each event's name (of
#: page and screen calls) for the activity figures. Binds: tenant, windows.
TRAITS_BY_KEY = statement(
    "profiles.traits_by_key",
    "SELECT e.source_id, e.message_id, e.type, e.name, e.traits, e.context, s.kind,"
    f" coalesce(e.brand_id, s.brand_id) AS brand_id, e.timestamp{_BY_KEY}"
    " ORDER BY e.timestamp, e.source_id, e.message_id",
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
