"""How much a tenant's sources sent, and what was turned away: figures for a dashboard.

Arrivals count the events each source had stored (a retried ``messageId`` counts once), by
the time they were received, from the writer's commit statistics (:mod:`stats_sql` says
why not from the events table). Days are UTC days. Every read is bounded by time, so a
dashboard polling these stays cheap however many events a tenant holds.
"""

from __future__ import annotations

import calendar
from datetime import datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, Field

from quanyu.engine import Session
from quanyu.ids import utcnow
from quanyu.ingest import stats_sql as q


class Series(BaseModel):
    """Counts per time bucket and source; every bucket present, empty ones 0."""

    x: list[int] = Field(description="Start of each bucket, Unix seconds (UTC).")
    by_source: dict[str, list[int]] = Field(description="Source id → count per bucket.")

    def total(self) -> int:
        return sum(sum(v) for v in self.by_source.values())


class SourceArrivals(BaseModel):
    """One source's events stored today, lately, and when it last sent."""

    source_id: str
    today: int
    last_hour: int
    last_5_minutes: int
    last_at: datetime | None


class ReasonCount(BaseModel):
    """Dead letters of one reason: how many, and the latest one's time and wording."""

    code: str
    disposition: str
    count: int
    latest_at: datetime
    latest_reason: str


def _unix(t: datetime) -> int:
    return calendar.timegm(t.timetuple())


def day_start(now: datetime) -> datetime:
    """Midnight (UTC) of the day ``now`` falls in."""
    return datetime.combine(now.date(), time())


def _series(rows: list[tuple[Any, ...]], buckets: list[datetime]) -> Series:
    x = [_unix(b) for b in buckets]
    index = {t: i for i, t in enumerate(x)}
    by_source: dict[str, list[int]] = {}
    for source_id, bucket, n in rows:
        start = bucket if isinstance(bucket, datetime) else datetime.combine(bucket, time())
        i = index.get(_unix(start))
        if i is not None:
            by_source.setdefault(str(source_id), [0] * len(x))[i] += int(n)
    return Series(x=x, by_source=dict(sorted(by_source.items())))


def per_minute(
    db: Session, *, tenant: str, minutes: int = 180, now: datetime | None = None
) -> Series:
    """New events per source and minute over the last ``minutes`` (the current one last)."""
    last = (now or utcnow()).replace(second=0, microsecond=0)
    buckets = [last - timedelta(minutes=minutes - 1 - i) for i in range(minutes)]
    rows = db.execute(q.ARRIVALS_PER_MINUTE, [tenant, buckets[0], last + timedelta(minutes=1)])
    return _series(rows, buckets)


def per_day(db: Session, *, tenant: str, days: int = 30, now: datetime | None = None) -> Series:
    """New events per source and UTC day over the last ``days`` (today last)."""
    today = day_start(now or utcnow())
    buckets = [today - timedelta(days=days - 1 - i) for i in range(days)]
    rows = db.execute(q.ARRIVALS_PER_DAY, [tenant, buckets[0], today + timedelta(days=1)])
    return _series(rows, buckets)


def by_source(db: Session, *, tenant: str, now: datetime | None = None) -> list[SourceArrivals]:
    """Per source that sent today or in the last hour: its new events today, in the last
    hour and in the last 5 minutes, and when it last sent (busiest today first)."""
    now = now or utcnow()
    hour, five = now - timedelta(hours=1), now - timedelta(minutes=5)
    since = min(day_start(now), hour)
    rows = db.execute(q.ARRIVALS_BY_SOURCE, [day_start(now), hour, five, tenant, since])
    return sorted(
        (
            SourceArrivals(
                source_id=r[0],
                today=int(r[1]),
                last_hour=int(r[2]),
                last_5_minutes=int(r[3]),
                last_at=r[4],
            )
            for r in rows
        ),
        key=lambda s: (-s.today, s.source_id),
    )


def dead_letter_reasons(
    db: Session, *, tenant: str, since: datetime, limit: int = 20
) -> list[ReasonCount]:
    """Dead letters received since ``since``, counted by reason code, most frequent first."""
    return [
        ReasonCount(
            code=r[0], disposition=r[1], count=int(r[2]), latest_at=r[3], latest_reason=r[4]
        )
        for r in db.execute(q.DEAD_LETTERS_BY_REASON, [tenant, since, limit])
    ]
