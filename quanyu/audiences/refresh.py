"""The refresher inside ``quanyu serve``: keeps tags and audiences fresh.

Every ``interval`` seconds, for each tenant:

1. tags whose full refresh is due (``refresh_seconds`` since they were last computed,
   or never computed) are computed for every person;
2. otherwise, if events were resolved or persons merged or split since the last
   fold, the live tags are computed incrementally for just those persons;
3. an audience is materialised again when its last snapshot is older than its
   ``refresh_seconds``, or when a tag it uses changed in a run since that snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from quanyu.audiences import service as audiences
from quanyu.background import Periodic
from quanyu.engine import Engine, Session
from quanyu.ids import utcnow
from quanyu.tags import jsonform
from quanyu.tags import rules as r
from quanyu.tags import service as tags
from quanyu.tenancy.service import list_tenants

log = logging.getLogger("quanyu.refresh")


@dataclass
class Pass:
    """What one pass did, for logs and tests."""

    full: dict[str, list[str]] = field(default_factory=dict)
    incremental: list[str] = field(default_factory=list)
    materialised: list[str] = field(default_factory=list)


def due_tags(db: Session, *, tenant: str, now: datetime) -> list[str]:
    """Live tags whose full recomputation is due."""
    return [
        t.key
        for t in tags.list_tags(db, tenant=tenant)
        if t.status == "live"
        and (t.computed_at is None or t.computed_at + timedelta(seconds=t.refresh_seconds) <= now)
    ]


def refresh_tenant(db: Session, *, tenant: str, now: datetime | None = None, done: Pass) -> None:
    """One refresh of one tenant (see the module docstring)."""
    now = now or utcnow()
    live = [t for t in tags.list_tags(db, tenant=tenant) if t.status == "live"]
    runs_before = {x.run_id for x in tags.list_runs(db, tenant=tenant, limit=1)}
    due = due_tags(db, tenant=tenant, now=now)
    if due:
        tags.compute_tags(db, tenant=tenant, keys=due, now=now)
        done.full[tenant] = due
    elif live and tags.pending(db, tenant=tenant):
        run = tags.compute_tags(db, tenant=tenant, incremental=True, now=now)
        if run.profiles:
            done.incremental.append(tenant)
    changed = _changed_tags(db, tenant, runs_before)
    for aud in audiences.list_audiences(db, tenant=tenant):
        last = audiences.snapshots(db, tenant=tenant, audience_id=aud.id, limit=1)
        uses = r.tag_refs(jsonform.from_json(aud.rule))
        stale = not last or last[0].created_at + timedelta(seconds=aud.refresh_seconds) <= now
        edited = bool(last) and last[0].definition_hash != audiences.definition_hash(aud)
        if stale or edited or uses & changed:
            reason = "schedule" if stale else "edited" if edited else "tags_changed"
            audiences.materialise(db, tenant=tenant, audience_id=aud.id, reason=reason)
            done.materialised.append(f"{tenant}/{aud.id}")


def _changed_tags(db: Session, tenant: str, before: set[int]) -> set[str]:
    newest = max(before) if before else 0
    changed: set[str] = set()
    for run in tags.list_runs(db, tenant=tenant, limit=20):
        if run.run_id > newest and run.status == "done" and (run.added or run.removed):
            changed |= set(run.tags)
    return changed


class Refresher(Periodic):
    """A daemon thread running :func:`refresh_tenant` for every tenant on a period."""

    failure = "refreshing tags and audiences failed; retrying on the next pass"

    def __init__(self, engine: Engine, *, interval: float = 30.0) -> None:
        super().__init__(interval=interval, name="quanyu-refresh")
        self._engine = engine

    def run_once(self) -> Pass:
        """One pass over every tenant; a failing tenant is logged and the others go on."""
        done = Pass()
        with self._engine.connect() as db:
            for tenant in list_tenants(db):
                try:
                    refresh_tenant(db, tenant=tenant.id, done=done)
                except Exception:  # noqa: BLE001 - one tenant's failure must not stop the rest
                    log.exception("refreshing tags and audiences of tenant %s failed", tenant.id)
        self.passes += 1
        return done
