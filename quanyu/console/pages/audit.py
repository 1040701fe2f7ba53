"""The console's audit log: every administrative change to the tenant, filterable.

Filters are GET parameters, so a filtered view is a link one can share; the filter form
swaps only the table in (htmx) and keeps the URL in step. Pages go back in time with
``before`` (the last entry's id: ids are time-ordered).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from quanyu.console import i18n
from quanyu.console.deps import Ctx, tenant_page
from quanyu.console.render import render
from quanyu.tenancy import audit_search
from quanyu.tenancy.audit_search import AuditFilter, Change
from quanyu.tenancy.models import AuditEntry

router = APIRouter()

Reader = Annotated[Ctx, tenant_page("tenancy", "read")]
PAGE_SIZE = 50

i18n.register(
    {
        "audit.title": ("审计日志", "Audit log"),
        "audit.action": ("操作", "Action"),
        "audit.actor": ("操作人", "Actor"),
        "audit.target": ("对象", "Target"),
        "audit.target_type": ("对象类型", "Target type"),
        "audit.any": ("全部", "Any"),
        "audit.since": ("起始日期", "From"),
        "audit.until": ("截止日期（含）", "To (inclusive)"),
        "audit.filter": ("筛选", "Filter"),
        "audit.clear": ("清除筛选", "Clear"),
        "audit.changes": ("变更内容", "What changed"),
        "audit.older": ("更早 →", "Older →"),
        "audit.newest": ("← 最新", "← Newest"),
        "audit.empty": ("没有符合条件的记录。", "No entry matches these filters."),
        "audit.actor_hint": ("包含此文字", "contains"),
        "audit.utc": ("时间为 UTC", "Times are UTC"),
        "audit.showing": ("本页 {n} 条", "Entries on this page: {n}"),
    }
)


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a date; use YYYY-MM-DD.") from None


#: Fields a new target's entry repeats from the entry itself (its id, tenant, time).
_OBVIOUS = frozenset({"id", "tenant_id", "isv_id", "created_at"})


def _compact(entry: AuditEntry) -> list[Change]:
    """The entry's changes, less what the row shows already."""
    found = audit_search.changes(entry)
    if entry.before is None:
        return [c for c in found if c.field not in _OBVIOUS]
    return found


def _short(value: object, limit: int = 80) -> str:
    """A value as compact JSON, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@router.get("/t/{tenant_id}/audit")
def audit_page(
    ctx: Reader,
    action: Annotated[str | None, Query()] = None,
    actor: Annotated[str | None, Query()] = None,
    target_type: Annotated[str | None, Query()] = None,
    since: Annotated[str | None, Query()] = None,
    until: Annotated[str | None, Query()] = None,
    before: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """The log, newest first; an htmx request gets only the table."""
    chosen = {
        "action": action or "",
        "actor": (actor or "").strip(),
        "target_type": target_type or "",
        "since": since or "",
        "until": until or "",
    }
    error = None
    items: list[Any] = []
    next_before = None
    try:
        first, last = _day(since, "From"), _day(until, "To")
        where = AuditFilter(
            action=chosen["action"] or None,
            actor=chosen["actor"] or None,
            target_type=chosen["target_type"] or None,
            since=datetime.combine(first, time()) if first else None,
            until=datetime.combine(last + timedelta(days=1), time()) if last else None,
        )
        found = audit_search.search(
            ctx.db, tenant=ctx.tenant_id, where=where, before=before or None, limit=PAGE_SIZE
        )
        items, next_before = found.items, found.next_before
    except ValueError as e:
        error = str(e)
    query = {k: v for k, v in chosen.items() if v}
    values: dict[str, Any] = {
        "entries": [(e, _compact(e)) for e in items],
        "chosen": chosen,
        "error": error,
        "older_url": ctx.url("audit") + "?" + urlencode({**query, "before": next_before})
        if next_before
        else None,
        "newest_url": (ctx.url("audit") + ("?" + urlencode(query) if query else ""))
        if before
        else None,
        "short": _short,
    }
    headers = ctx.request.headers
    if (
        headers.get("HX-Request")
        and not headers.get("HX-Boosted")
        and not headers.get("HX-History-Restore-Request")
    ):
        # 200 even for a bad filter: htmx swaps in only successful answers
        return render(ctx, "audit_table.html", **values)
    facets = audit_search.facets(ctx.db, tenant=ctx.tenant_id)
    return render(ctx, "audit.html", status=400 if error else 200, facets=facets, **values)
