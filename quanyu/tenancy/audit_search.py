"""Searching a tenant's audit log: by action, actor, target type and time, page by page.

:func:`quanyu.tenancy.service.list_audit` pages through everything; this narrows it with
the filters a person reviewing changes needs, and says what each change changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from quanyu.engine import Session
from quanyu.tenancy import audit_search_sql as q
from quanyu.tenancy.models import AuditEntry
from quanyu.tenancy.service import audit_entry

MAX_LIMIT = 500


class AuditFilter(BaseModel):
    """What to look for; a field left None does not filter."""

    action: str | None = None
    actor: str | None = None
    target_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: str | None


class Facets(BaseModel):
    """The actions, actors and target types a tenant's log holds (for filter menus)."""

    actions: list[str]
    actors: list[str]
    target_types: list[str]


class Change(BaseModel):
    """One field of a target that a change set, altered or removed."""

    field: str
    before: Any = None
    after: Any = None
    kind: str  # "set" (no before), "changed", "removed"


def search(
    db: Session,
    *,
    tenant: str,
    where: AuditFilter | None = None,
    before: str | None = None,
    limit: int = 50,
) -> AuditPage:
    """Entries of ``tenant`` matching ``where``, newest first, older than entry ``before``."""
    w = where or AuditFilter()
    limit = max(1, min(limit, MAX_LIMIT))
    params = [
        tenant,
        w.action,
        w.action,
        w.actor,
        w.actor,
        w.target_type,
        w.target_type,
        w.since,
        w.since,
        w.until,
        w.until,
        before,
        before,
        limit + 1,
    ]
    rows = db.execute(q.SEARCH_AUDIT, params)
    items = [audit_entry(r) for r in rows[:limit]]
    return AuditPage(items=items, next_before=items[-1].id if len(rows) > limit else None)


def facets(db: Session, *, tenant: str) -> Facets:
    """The distinct actions, actors and target types in ``tenant``'s log, sorted."""
    found: dict[str, list[str]] = {"action": [], "actor": [], "target_type": []}
    for kind, value in db.execute(q.AUDIT_FACETS, [tenant, tenant, tenant]):
        found[str(kind)].append(str(value))
    return Facets(
        actions=sorted(found["action"]),
        actors=sorted(found["actor"]),
        target_types=sorted(found["target_type"]),
    )


def changes(entry: AuditEntry) -> list[Change]:
    """What ``entry`` changed, field by field: every field of a new target, and only the
    fields that differ between before and after for a changed one (nested objects are
    followed, so a deep change reads ``rules.types.user_id.limit: 1 → 3``)."""
    after = entry.after or {}
    if entry.before is None:
        return [Change(field=k, after=v, kind="set") for k, v in after.items() if v is not None]
    return _diff(entry.before, after, "")


def _diff(before: dict[str, Any], after: dict[str, Any], prefix: str) -> list[Change]:
    out = []
    for k in [*before, *(k for k in after if k not in before)]:
        name = f"{prefix}{k}"
        if k not in after:
            out.append(Change(field=name, before=before[k], kind="removed"))
        elif isinstance(before.get(k), dict) and isinstance(after[k], dict):
            out.extend(_diff(before[k], after[k], f"{name}."))
        elif before.get(k) != after[k]:
            out.append(Change(field=name, before=before.get(k), after=after[k], kind="changed"))
    return out
