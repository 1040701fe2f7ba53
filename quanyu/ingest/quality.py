"""The data-quality report: per source and day, what came in and how good it was.

Two set-based statements do the work (:mod:`quanyu.ingest.plans_sql`): one folds the
events, dead letters and commit statistics of a date range into one row per source
and day, the other counts dead letters per rule. Python only divides and groups
those few aggregate rows.

A day is the UTC date a message was received. ``volume`` is valid messages received
(``ingest_commits.received``, duplicates included) plus rejected ones; ``duplicates``
is received minus inserted. A dead letter replayed later stays counted as rejected on
its day, and its replay counts as received on the replay's day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from quanyu.engine import Session
from quanyu.errors import InvalidRequest
from quanyu.ingest import plans_sql as q
from quanyu.ingest.plan_models import QualityReport, QualityRow, RuleCount
from quanyu.tenancy import service as tenancy

MAX_DAYS = 366
DEFAULT_DAYS = 7
FILL_FIELDS = ("user_id", "anonymous_id", *q.FILL_TYPES)


def _rate(n: int, of: int) -> float:
    return round(n / of, 6) if of else 0.0


def _row(r: tuple[Any, ...], rules: list[RuleCount]) -> QualityRow:
    source, day, received, inserted, accepted, rejected, flagged, late, future = r[:9]
    fills = [int(v) for v in r[9:]]
    volume = int(received) + int(rejected)
    duplicates = max(int(received) - int(inserted), 0)
    return QualityRow(
        source_id=source,
        day=day,
        volume=volume,
        received=int(received),
        accepted=int(accepted),
        rejected=int(rejected),
        flagged=int(flagged),
        duplicates=duplicates,
        duplicate_rate=_rate(duplicates, int(received)),
        violation_rate=_rate(int(rejected) + int(flagged), volume),
        late=int(late),
        future=int(future),
        fill_rates={k: _rate(n, int(accepted)) for k, n in zip(FILL_FIELDS, fills, strict=True)},
        violations=[rc.model_copy(update={"rate": _rate(rc.count, volume)}) for rc in rules],
    )


def report(
    db: Session,
    *,
    tenant: str,
    source: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> QualityReport:
    """Data-quality figures per source and day, from ``since`` to ``until`` (both included).

    Args:
        source: one source of the tenant, or None for all of them.
        since, until: UTC dates; default the seven days up to today.

    Raises:
        NotFound: the tenant has no such source.
        InvalidRequest: the range is reversed or longer than 366 days.
    """
    if source is not None:
        tenancy.get_source(db, tenant=tenant, source=source)
    until = until or datetime.now(UTC).date()
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise InvalidRequest(f"since ({since}) is after until ({until}): swap them.")
    if (until - since).days >= MAX_DAYS:
        raise InvalidRequest(
            f"The range {since}..{until} spans over {MAX_DAYS} days: ask for a shorter one."
        )
    start = datetime.combine(since, time())
    end = datetime.combine(until + timedelta(days=1), time())
    window = [tenant, source, source, start, end]
    by_day: dict[tuple[str, date], list[RuleCount]] = defaultdict(list)
    for src, day, rule, n in db.execute(q.QUALITY_RULES, window):
        by_day[(src, day)].append(RuleCount(rule=rule, count=int(n), rate=0.0))
    rows = db.execute(q.QUALITY_DAILY, window * 3)
    return QualityReport(
        tenant_id=tenant,
        source_id=source,
        since=since,
        until=until,
        rows=[_row(r, by_day.get((r[0], r[1]), [])) for r in rows],
    )
