"""The console's audience summaries: the newest snapshot of each audience, and pushes."""

from __future__ import annotations

from pathlib import Path

from quanyu.audiences import export, service, stats
from quanyu.audiences.models import AudienceCreate, PushRequest
from quanyu.delivery.models import DestinationCreate
from quanyu.identity.secrets import load_master_key
from tests.audiences.test_service import RULE, shop  # noqa: F401
from tests.tags.test_compute import ACTOR, World, world  # noqa: F401


def test_latest_snapshots_and_pushes(shop: World, tmp_path: Path) -> None:  # noqa: F811
    w = shop
    with w.engine.connect() as db:
        for aid, rule in (("gold", RULE), ("buyers", 'tag("buyer")')):
            body = AudienceCreate(id=aid, name=aid, rule=rule, channel="email")
            service.create_audience(db, body, tenant=w.tenant, actor=ACTOR)
        assert stats.latest_snapshots(db, tenant=w.tenant) == {}
        service.materialise(db, tenant=w.tenant, audience_id="gold")
        newest = service.materialise(db, tenant=w.tenant, audience_id="gold")
        buyers = service.materialise(db, tenant=w.tenant, audience_id="buyers")
        assert stats.latest_snapshots(db, tenant=w.tenant) == {"gold": newest, "buyers": buyers}
        assert stats.latest_snapshots(db, tenant="ten_other") == {}  # tenant-scoped

        assert stats.pushes(db, tenant=w.tenant, audience_id="gold") == []
        made = DestinationCreate(name="crm", url="http://127.0.0.1:9/hooks")  # type: ignore[arg-type]
        key = load_master_key(tmp_path)
        dest = export.add_destination(
            db, made, tenant=w.tenant, master_key=key, actor=ACTOR, allow_private=True
        )
        pushed = [
            export.push(
                db,
                w.resolver,
                PushRequest(destination_id=dest.id, batch_size=1),
                tenant=w.tenant,
                audience_id="gold",
                actor=ACTOR,
            )  # fmt: skip
            for _ in range(2)
        ]
        found = stats.pushes(db, tenant=w.tenant, audience_id="gold", limit=5)
        assert [p.push_id for p in found] == [p.push_id for p in reversed(pushed)]
        assert (found[0].snapshot_id, found[0].records, found[0].batches) == (
            newest.snapshot_id, pushed[1].records, pushed[1].batches,
        )  # fmt: skip
        assert found[0].records == newest.size > 0
        assert stats.pushes(db, tenant=w.tenant, audience_id="gold", limit=1) == found[:1]
        assert stats.pushes(db, tenant=w.tenant, audience_id="buyers") == []
