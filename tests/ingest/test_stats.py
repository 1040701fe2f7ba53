"""Arrival statistics and dead letters by reason, on a real database file, from events
written by the writer exactly as the tracking API writes them."""

from __future__ import annotations

import calendar
import json
from datetime import datetime, timedelta

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.ingest import stats
from quanyu.ingest.normalize import normalize
from quanyu.ingest.writer import Chunk, write_chunks
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import SourceCreate, TenantCreate

NOW = datetime(2026, 11, 26, 12, 30, 20)


def _tenant(engine: DuckDBEngine, name: str, *sources: str) -> tuple[str, list[str]]:
    with engine.connect() as db:
        t = tenancy.create_tenant(db, TenantCreate(name=name), actor="test").id
        ids = [
            tenancy.create_source(db, SourceCreate(name=s), tenant=t, actor="test").id
            for s in sources
        ]
    return t, ids


def _send(
    engine: DuckDBEngine, tenant: str, source: str, at: datetime, ids: list[str], bad: int = 0
) -> None:
    """Events with these messageIds (and ``bad`` invalid ones) received at ``at``."""
    items = [json.dumps({"type": "track", "event": "E", "userId": "u", "messageId": i}).encode()
             for i in ids]  # fmt: skip
    items += [json.dumps({"type": "track", "userId": "u"}).encode()] * bad  # no event name
    norm = normalize(items, received_at=at)
    chunk = Chunk.normalized(norm, tenant_id=tenant, source_id=source, brand_id=None,
                             received_at=at)  # fmt: skip
    write_chunks(engine, [chunk])


def test_arrivals_per_minute_day_and_source(engine: DuckDBEngine) -> None:
    t, (web, pos) = _tenant(engine, "A", "web", "pos")
    other, (elsewhere,) = _tenant(engine, "B", "x")
    _send(engine, t, web, NOW - timedelta(seconds=10), ["a1", "a2", "a3"])
    _send(engine, t, web, NOW - timedelta(minutes=2), ["a4"])
    _send(engine, t, web, NOW - timedelta(seconds=5), ["a1", "a2", "a5"])  # two repeats
    _send(engine, t, pos, NOW - timedelta(hours=2), ["p1", "p2"])
    _send(engine, t, pos, NOW - timedelta(hours=5), ["p3"])  # outside the 3 hours
    _send(engine, t, pos, NOW - timedelta(days=1, hours=1), ["p4", "p5", "p6", "p7"])
    _send(engine, t, pos, NOW - timedelta(days=40), ["p8"])  # outside the 30 days
    _send(engine, other, elsewhere, NOW, ["o1"])
    with engine.connect() as db:
        minutes = stats.per_minute(db, tenant=t, minutes=180, now=NOW)
        assert len(minutes.x) == 180
        assert minutes.x[-1] == calendar.timegm(datetime(2026, 11, 26, 12, 30).timetuple())
        assert minutes.by_source[web][-1] == 4  # a1 a2 a3 + a5; the repeats count once
        assert minutes.by_source[web][-3] == 1
        assert sum(minutes.by_source[pos]) == 2 and minutes.by_source[pos][-121] == 2
        assert minutes.total() == 7 and elsewhere not in minutes.by_source

        days = stats.per_day(db, tenant=t, days=30, now=NOW)
        assert len(days.x) == 30
        assert days.by_source[web][-1] == 5 and days.by_source[pos][-1] == 3
        assert days.by_source[pos][-2] == 4 and days.total() == 12

        by = {s.source_id: s for s in stats.by_source(db, tenant=t, now=NOW)}
        assert set(by) == {web, pos}
        assert (by[web].today, by[web].last_hour, by[web].last_5_minutes) == (5, 5, 5)
        assert (by[pos].today, by[pos].last_hour, by[pos].last_5_minutes) == (3, 0, 0)
        assert by[web].last_at == NOW - timedelta(seconds=5)
        assert [s.source_id for s in stats.by_source(db, tenant=other, now=NOW)] == [elsewhere]


def test_the_last_hour_reaches_into_yesterday_but_today_does_not(engine: DuckDBEngine) -> None:
    t, (web,) = _tenant(engine, "A", "web")
    midnight = datetime(2026, 11, 26)
    _send(engine, t, web, midnight - timedelta(minutes=20), ["y1", "y2"])
    _send(engine, t, web, midnight + timedelta(minutes=5), ["t1"])
    with engine.connect() as db:
        (s,) = stats.by_source(db, tenant=t, now=midnight + timedelta(minutes=10))
        assert (s.today, s.last_hour, s.last_5_minutes) == (1, 3, 1)


def test_dead_letters_by_reason(engine: DuckDBEngine) -> None:
    t, (web,) = _tenant(engine, "A", "web")
    other, (elsewhere,) = _tenant(engine, "B", "x")
    _send(engine, t, web, NOW - timedelta(days=10), ["ok0"], bad=5)  # before the window
    _send(engine, t, web, NOW - timedelta(hours=1), ["ok1"], bad=2)
    _send(engine, t, web, NOW, ["ok2"], bad=1)
    _send(engine, other, elsewhere, NOW, ["ok3"], bad=4)
    with engine.connect() as db:
        (reason,) = stats.dead_letter_reasons(db, tenant=t, since=NOW - timedelta(days=7))
        assert (reason.code, reason.disposition, reason.count) == ("missing_field", "rejected", 3)
        assert reason.latest_at == NOW and "event" in reason.latest_reason
        assert stats.dead_letter_reasons(db, tenant=t, since=NOW + timedelta(seconds=1)) == []
