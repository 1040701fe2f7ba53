"""SQL of the ingest statistics (arrivals over time, dead letters by reason). Runs nothing.

Arrivals are read from ``ingest_commits``, the writer's row per group commit and source,
never from ``events``: it holds at most one row per request (an SDK batch is one), is
appended in commit order so a time bound prunes it, and counts exactly the new events
each commit stored (``inserted``: duplicates excluded).
"""

from __future__ import annotations

from quanyu.engine import statement

#: New events per source and minute, committed in [?, ?).
ARRIVALS_PER_MINUTE = statement(
    "ingest.arrivals_per_minute",
    "SELECT source_id, date_trunc('minute', committed_at) AS minute, sum(inserted)"
    " FROM ingest_commits WHERE tenant_id = ? AND committed_at >= ? AND committed_at < ?"
    " GROUP BY source_id, minute ORDER BY minute",
)
#: New events per source and UTC day, committed in [?, ?).
ARRIVALS_PER_DAY = statement(
    "ingest.arrivals_per_day",
    "SELECT source_id, CAST(committed_at AS DATE) AS day, sum(inserted)"
    " FROM ingest_commits WHERE tenant_id = ? AND committed_at >= ? AND committed_at < ?"
    " GROUP BY source_id, day ORDER BY day",
)
#: Per source: new events since ? (the start of the day), since ? (an hour ago), since ?
#: (five minutes ago), and the last commit; rows committed since ? (the earliest of those).
ARRIVALS_BY_SOURCE = statement(
    "ingest.arrivals_by_source",
    "SELECT source_id, sum(CASE WHEN committed_at >= ? THEN inserted ELSE 0 END),"
    " sum(CASE WHEN committed_at >= ? THEN inserted ELSE 0 END),"
    " sum(CASE WHEN committed_at >= ? THEN inserted ELSE 0 END), max(committed_at)"
    " FROM ingest_commits WHERE tenant_id = ? AND committed_at >= ? GROUP BY source_id",
)
#: Dead letters received since ? by reason code and disposition: how many, the latest
#: time and the latest reason text (the text names the field at fault).
DEAD_LETTERS_BY_REASON = statement(
    "ingest.dead_letters_by_reason",
    "SELECT code, disposition, count(*), max(received_at), arg_max(reason, received_at)"
    " FROM dead_letters WHERE tenant_id = ? AND received_at >= ?"
    " GROUP BY code, disposition ORDER BY count(*) DESC, code LIMIT ?",
)
