"""SQL of tracking plans and the data-quality report. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import Capability, statement

GET_PLAN = statement(
    "ingest.get_tracking_plan",
    "SELECT mode, block_invalid, plan, updated_at FROM tracking_plans"
    " WHERE tenant_id = ? AND source_id = ?",
)
DELETE_PLAN = statement(
    "ingest.delete_tracking_plan",
    "DELETE FROM tracking_plans WHERE tenant_id = ? AND source_id = ?",
    requires=(Capability.ROW_UPDATES,),
)
INSERT_PLAN = statement(
    "ingest.insert_tracking_plan",
    "INSERT INTO tracking_plans (tenant_id, source_id, mode, block_invalid, plan, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?)",
)

#: Identifier types the report measures, in the order of QUALITY_DAILY's fill columns.
FILL_TYPES = ("phone", "email", "unionid", "openid", "member_id", "device_id")

_FILLS = ",\n".join(
    f"    sum(CASE WHEN list_contains(kinds, '{kind}') THEN 1 ELSE 0 END) AS with_{kind}"
    for kind in FILL_TYPES  # constants of this module, never user input
)
_FILL_OUT = ", ".join(f"coalesce(s.with_{kind}, 0)" for kind in FILL_TYPES)
_RANGE = "(CAST(? AS VARCHAR) IS NULL OR source_id = ?) AND {col} >= ? AND {col} < ?"

#: Figures per (source, day) from three tables, each filtered on the tenant.
#: Parameters: (tenant, source, source, start, end) three times.
QUALITY_DAILY = statement(
    "ingest.quality_daily",
    f"""
WITH ev AS (
  SELECT source_id, CAST(received_at AS DATE) AS day, user_id, anonymous_id, timestamp,
    received_at, CAST(json_extract_string(identifiers, '$[*].type') AS VARCHAR[]) AS kinds
  FROM events
  WHERE tenant_id = ? AND {_RANGE.format(col="received_at")}
), stored AS (
  SELECT source_id, day, count(*) AS accepted,
    sum(CASE WHEN timestamp < received_at - INTERVAL 1 DAY THEN 1 ELSE 0 END) AS late,
    sum(CASE WHEN timestamp > received_at + INTERVAL 5 MINUTE THEN 1 ELSE 0 END) AS future,
    sum(CASE WHEN user_id IS NOT NULL THEN 1 ELSE 0 END) AS with_user_id,
    sum(CASE WHEN anonymous_id IS NOT NULL THEN 1 ELSE 0 END) AS with_anonymous_id,
{_FILLS}
  FROM ev GROUP BY source_id, day
), dead AS (
  SELECT source_id, CAST(received_at AS DATE) AS day,
    sum(CASE WHEN disposition = 'rejected' THEN 1 ELSE 0 END) AS rejected,
    sum(CASE WHEN disposition = 'flagged' THEN 1 ELSE 0 END) AS flagged
  FROM dead_letters
  WHERE tenant_id = ? AND {_RANGE.format(col="received_at")}
  GROUP BY source_id, CAST(received_at AS DATE)
), commits AS (
  SELECT source_id, CAST(committed_at AS DATE) AS day, sum(received) AS received,
    sum(inserted) AS inserted
  FROM ingest_commits
  WHERE tenant_id = ? AND {_RANGE.format(col="committed_at")}
  GROUP BY source_id, CAST(committed_at AS DATE)
), days AS (
  SELECT source_id, day FROM stored
  UNION SELECT source_id, day FROM dead
  UNION SELECT source_id, day FROM commits
)
SELECT d.source_id, d.day, coalesce(c.received, 0), coalesce(c.inserted, 0),
  coalesce(s.accepted, 0), coalesce(x.rejected, 0), coalesce(x.flagged, 0),
  coalesce(s.late, 0), coalesce(s.future, 0), coalesce(s.with_user_id, 0),
  coalesce(s.with_anonymous_id, 0), {_FILL_OUT}
FROM days AS d
LEFT JOIN stored AS s ON s.source_id = d.source_id AND s.day = d.day
LEFT JOIN dead AS x ON x.source_id = d.source_id AND x.day = d.day
LEFT JOIN commits AS c ON c.source_id = d.source_id AND c.day = d.day
ORDER BY d.day, d.source_id
""",
)

#: Dead letters per (source, day, rule); a letter naming several rules counts under each.
#: Parameters: tenant, source, source, start, end.
QUALITY_RULES = statement(
    "ingest.quality_rules",
    f"""
SELECT source_id, day, rule, count(*) AS n
FROM (
  SELECT source_id, CAST(received_at AS DATE) AS day,
    unnest(string_split(coalesce(rule, code), ', ')) AS rule
  FROM dead_letters
  WHERE tenant_id = ? AND {_RANGE.format(col="received_at")}
) AS broken
GROUP BY source_id, day, rule
ORDER BY day, source_id, n DESC, rule
""",
)
