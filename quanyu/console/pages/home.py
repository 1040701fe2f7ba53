"""The console's home page of a tenant: what arrives, what was turned away, and the day so far.

The live part (events per minute by source, today's counts, dead letters) is one htmx
fragment the page polls every five seconds; the thirty-day chart is drawn once per load.
Every figure is a bounded read: arrivals come from the writer's commit statistics, the
other counts from time-bounded queries (see :mod:`quanyu.ingest.stats`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from quanyu.codes import scan_activity
from quanyu.consent import activity as consent_activity
from quanyu.console import i18n
from quanyu.console.deps import Ctx, tenant_page
from quanyu.console.render import render
from quanyu.ids import utcnow
from quanyu.ingest import service as ingest
from quanyu.ingest import stats
from quanyu.profiles import population
from quanyu.tenancy import service as tenancy

router = APIRouter()

Reader = Annotated[Ctx, tenant_page("ingest")]

#: The live chart's window, in minutes, and how far back the dead-letter summary looks.
LIVE_MINUTES = 180
DEAD_LETTER_DAYS = 7
LATEST_DEAD_LETTERS = 5

i18n.register(
    {
        "home.events_today": ("今日事件", "Events today"),
        "home.people": ("用户（OneID）", "People (OneIDs)"),
        "home.consent_today": ("今日授权变更", "Consent changes today"),
        "home.scans_today": ("今日扫码", "Scans today"),
        "home.dead_recent": ("近 7 天死信", "Dead letters, 7 days"),
        "home.utc_note": ("按 UTC 日计", "UTC day"),
        "home.per_minute": (
            "每分钟事件（按数据源，近 3 小时）",
            "Events per minute by source, last 3 hours",
        ),
        "home.per_day": ("每日事件（近 30 天）", "Events per day, last 30 days"),
        "home.live": ("实时 · 更新于 {at}", "Live · updated {at}"),
        "home.no_events": ("这段时间没有收到事件。", "No events arrived in this period."),
        "home.source": ("数据源", "Source"),
        "home.today": ("今日", "Today"),
        "home.last_hour": ("近 1 小时", "Last hour"),
        "home.last_5": ("近 5 分钟", "Last 5 min"),
        "home.last_at": ("最近接收", "Last received"),
        "home.dead_letters": ("死信（被拒绝的事件）", "Dead letters (rejected events)"),
        "home.by_reason": ("按原因（近 7 天）", "By reason, last 7 days"),
        "home.latest": ("最新", "Latest"),
        "home.reason": ("原因", "Reason"),
        "home.kind": ("处理", "Disposition"),
        "home.message": ("说明", "Message"),
        "home.event": ("事件", "Event"),
        "home.no_dead": ("近 7 天没有死信。", "No dead letters in the last 7 days."),
        "home.forged": ("其中伪码 {n}", "{n} forged"),
        "home.withdrawn": ("其中撤回 {n}", "{n} withdrawn"),
        "home.received_note": (
            "按接收时间、UTC 日计；重复的 messageId 只计一次。",
            "By time received, UTC days; a repeated messageId counts once.",
        ),
    }
)


def _chart(series: stats.Series, names: dict[str, str]) -> dict[str, Any]:
    """A uPlot spec (console.js) with one line per source, named."""
    return {
        "x": series.x,
        "height": 220,
        "series": [
            {"label": names.get(sid, sid), "values": values}
            for sid, values in series.by_source.items()
        ],
    }


def _live(ctx: Ctx) -> dict[str, Any]:
    """The values of the live fragment."""
    db, tenant, now = ctx.db, ctx.tenant_id, utcnow()
    today = stats.day_start(now)
    known = tenancy.list_sources(db, tenant=tenant)
    names = {s.id: s.name for s in known}
    kinds = {s.id: s.kind.value for s in known}
    sources = stats.by_source(db, tenant=tenant, now=now)
    minutes = stats.per_minute(db, tenant=tenant, minutes=LIVE_MINUTES, now=now)
    week = now - timedelta(days=DEAD_LETTER_DAYS)
    reasons = stats.dead_letter_reasons(db, tenant=tenant, since=week)
    latest = ingest.list_dead_letters(db, tenant=tenant, limit=LATEST_DEAD_LETTERS).items
    values: dict[str, Any] = {
        "now": now,
        "names": names,
        "kinds": kinds,
        "sources": sources,
        "events_today": sum(s.today for s in sources),
        "minute_chart": _chart(minutes, names) if minutes.by_source else None,
        "reasons": reasons,
        "dead_total": sum(r.count for r in reasons),
        "latest_dead": latest,
        "people": None,
        "consent": None,
        "scans": None,
    }
    if ctx.allows("profiles"):
        values["people"] = population.count_people(db, tenant=tenant)
    if ctx.allows("consent"):
        values["consent"] = consent_activity.changes_since(db, tenant=tenant, since=today)
    if ctx.allows("codes"):
        values["scans"] = scan_activity.scans_since(db, tenant=tenant, since=today)
    return values


@router.get("/t/{tenant_id}/")
def home(ctx: Reader) -> HTMLResponse:
    """The tenant's dashboard."""
    values = _live(ctx)
    days = stats.per_day(ctx.db, tenant=ctx.tenant_id, days=30, now=values["now"])
    day_chart = _chart(days, values["names"]) if days.by_source else None
    return render(ctx, "home.html", day_chart=day_chart, **values)


@router.get("/t/{tenant_id}/home/live")
def live(ctx: Reader) -> HTMLResponse:
    """The live part of the dashboard (polled by the page)."""
    return render(ctx, "home_live.html", **_live(ctx))
