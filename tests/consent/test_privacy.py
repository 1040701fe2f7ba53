"""PIPL requests on a real database file: the request log and its deadline, an access
export holding one person and nobody else, a correction the profile shows, and a deletion
after which no byte of the person's phone, name or identifiers is left in the file."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from quanyu.audiences import service as audiences
from quanyu.audiences.models import AudienceCreate
from quanyu.consent import privacy
from quanyu.consent import service as consent
from quanyu.consent.ledger import NewEntry, leaf_data, leaf_hash
from quanyu.consent.models import Decision, Subject
from quanyu.engine import Statement
from quanyu.engine.duckdb import DuckDBSession
from quanyu.errors import Conflict, NotFound, ValidationFailed
from quanyu.identity.models import format_oneid
from quanyu.ingest.writer import write_chunks
from quanyu.profiles.service import get_profile
from quanyu.tags import service as tags
from tests.tags.test_compute import ACTOR, NOW, World, identify, order, tag, world  # noqa: F401

#: Two people whose every value is unique in the file, so a byte scan means something.
ZHANG = {"user": "zhangsan-uid-7731", "openid": "oWxZhangSanOpen7731",
         "phone": "13812347731", "e164": "+8613812347731", "name": "张三丰测试甲"}  # fmt: skip
LI = {"user": "lisi-uid-8842", "openid": "oWxLiSiOpen8842",
      "phone": "13912348842", "e164": "+8613912348842", "name": "李四光测试乙"}  # fmt: skip


def person_events(p: dict[str, str], n: str) -> list[dict[str, Any]]:
    ident = identify(p["user"], f"i{n}", name=p["name"], phone=p["phone"], openid=p["openid"],
                     app_id="wxapp1", tier="gold")  # fmt: skip
    return [ident, order(p["user"], 100, 3, f"o{n}")]


def by_phone(p: dict[str, str]) -> Subject:
    return Subject(type="phone", value=p["phone"])


@pytest.fixture
def shop(world: World) -> World:  # noqa: F811
    w = world
    w.send("mp", [*person_events(ZHANG, "1"), *person_events(LI, "2")])
    with w.engine.connect() as db:
        decisions = [
            Decision(subject=by_phone(p), purpose="marketing", status="granted",
                     decided_at=NOW - timedelta(days=1))
            for p in (ZHANG, LI)
        ]  # fmt: skip
        consent.record(db, w.resolver, decisions, tenant=w.tenant, actor=ACTOR)
        tags.create_tag(db, tag("buyer", 'count(event = "Order Completed") >= 1'),
                        tenant=w.tenant, actor=ACTOR)  # fmt: skip
        tags.compute_tags(db, tenant=w.tenant, now=NOW)
        body = AudienceCreate(id="buyers", name="Buyers", rule='tag("buyer")', channel="wechat")
        audiences.create_audience(db, body, tenant=w.tenant, actor=ACTOR)
        snap = audiences.materialise(db, tenant=w.tenant, audience_id="buyers")
        assert snap.size == 2
    return w


def request(w: World, kind: str, p: dict[str, str]) -> privacy.PrivacyRequest:
    with w.engine.connect() as db:
        return privacy.create_request(db, w.resolver, tenant=w.tenant, kind=kind,  # type: ignore[arg-type]
                                      subject=by_phone(p), actor=ACTOR)  # fmt: skip


def test_request_log_deadline_and_errors(shop: World) -> None:
    w = shop
    with w.engine.connect() as db:
        zhang = w.person(db, ZHANG["user"])
        made = privacy.create_request(
            db, w.resolver, tenant=w.tenant, kind="access", subject=by_phone(ZHANG), actor=ACTOR,
            now=NOW.replace(tzinfo=None) - timedelta(days=20),
        )  # fmt: skip
        assert made.profile == format_oneid(zhang) and made.status == "received"
        assert made.due_at - made.received_at == timedelta(days=privacy.DUE_DAYS)
        assert made.overdue  # received 20 days ago, not done
        assert [r.id for r in privacy.list_requests(db, tenant=w.tenant)] == [made.id]
        done = privacy.run(db, w.resolver, tenant=w.tenant, request_id=made.id, actor=ACTOR)
        assert done.status == "completed" and not done.overdue
        assert done.outcome is not None and done.outcome["events"] == 2
        # the log names the subject by keyed hash only
        row = db.execute(Statement("t.req", "SELECT subject_key FROM privacy_requests"
                                   " WHERE tenant_id = ?"), [w.tenant])  # fmt: skip
        assert ":h:" in row[0][0] and ZHANG["phone"] not in row[0][0]
        with pytest.raises(NotFound, match="no phone identifier"):
            privacy.create_request(db, w.resolver, tenant=w.tenant, kind="delete",
                                   subject=Subject(type="phone", value="13700001111"),
                                   actor=ACTOR)  # fmt: skip
        with pytest.raises(ValidationFailed, match="kind 'erase' is unknown"):
            privacy.create_request(db, w.resolver, tenant=w.tenant, kind="erase",  # type: ignore[arg-type]
                                   subject=by_phone(ZHANG), actor=ACTOR)  # fmt: skip
        with pytest.raises(NotFound, match="no privacy request 'prq_nope'"):
            privacy.get_request(db, tenant=w.tenant, request_id="prq_nope")
        with pytest.raises(NotFound):
            privacy.get_request(db, tenant=w.other, request_id=made.id)


def test_access_export_holds_the_person_and_nobody_else(shop: World) -> None:
    w = shop
    req = request(w, "access", ZHANG)
    with w.engine.connect() as db:
        blob = privacy.export(db, w.resolver, tenant=w.tenant, request_id=req.id)
    z = zipfile.ZipFile(io.BytesIO(blob))
    tables = {"identities", "events", "consent_history", "tags", "audiences", "traits",
              "code_scans"}  # fmt: skip
    assert {"export.json", *(f"{t}.csv" for t in tables)} <= set(z.namelist())
    data = json.loads(z.read("export.json"))
    values = {(i["type"], i["value"]) for i in data["identities"]}
    assert {("user_id", ZHANG["user"]), ("openid", ZHANG["openid"]),
            ("phone", ZHANG["e164"])} <= values  # fmt: skip
    assert sorted(e["message_id"] for e in data["events"]) == ["i1", "o1"]
    assert [e["status"] for e in data["consent_history"]] == ["granted"]
    assert [a["audience_id"] for a in data["audiences"]] == ["buyers"]
    assert [t["key"] for t in data["tags"]] == ["buyer"]
    assert {t["key"]: t["value"] for t in data["traits"]}["name"] == ZHANG["name"]
    assert data["code_scans"] == []
    everything = blob + z.read("export.json") + b"".join(z.read(n) for n in z.namelist())
    for value in LI.values():
        assert value.encode() not in everything, value
    assert ZHANG["phone"] in z.read("events.csv").decode()
    with w.engine.connect() as db, pytest.raises(Conflict, match="only access requests"):
        privacy.export(db, w.resolver, tenant=w.tenant, request_id=request(w, "delete", LI).id)


def test_correction_shows_in_the_profile(shop: World) -> None:
    w = shop
    req = request(w, "correct", ZHANG)
    with w.engine.connect() as db:
        with pytest.raises(ValidationFailed, match="give the traits"):
            privacy.run(db, w.resolver, tenant=w.tenant, request_id=req.id, actor=ACTOR)
        done = privacy.run(
            db, w.resolver, tenant=w.tenant, request_id=req.id, actor=ACTOR,
            traits={"name": "张三丰改", "tier": "silver"},
            commit=lambda chunk: write_chunks(w.engine, [chunk]),
        )  # fmt: skip
        assert done.status == "completed"
        assert done.outcome is not None and done.outcome["traits"] == ["name", "tier"]
        view = get_profile(db, tenant=w.tenant, profile_id=w.person(db, ZHANG["user"]))
        assert view.traits["name"].value == "张三丰改"
        assert view.traits["tier"].value == "silver"
        other = get_profile(db, tenant=w.tenant, profile_id=w.person(db, LI["user"]))
        assert other.traits["name"].value == LI["name"]


def file_bytes(w: World, *, close: bool = True) -> bytes:
    """The raw database file and its write-ahead log, after the engine closed (or, with
    ``close=False``, checkpointed)."""
    with w.engine.connect() as db:
        assert isinstance(db, DuckDBSession)
        path = Path(db.raw("SELECT path FROM duckdb_databases() WHERE database_name ="
                           " current_database()")[0][0])  # fmt: skip
    if close:
        w.engine.close()
    else:
        w.engine.checkpoint()
    wal = path.with_name(path.name + ".wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


@pytest.mark.slow
def test_deletion_leaves_no_byte_of_the_person(shop: World) -> None:
    w = shop
    with w.engine.connect() as db:
        zhang, li = w.person(db, ZHANG["user"]), w.person(db, LI["user"])
        entries = db.execute(Statement("t.ledger", "SELECT * FROM consent_ledger WHERE"
                                       " tenant_id = ? ORDER BY seq"), [w.tenant])  # fmt: skip
    before = file_bytes(w, close=False)
    # the scan means something: the values were in the file (the E.164 form is encrypted)
    for p in (ZHANG, LI):
        assert all(v.encode() in before for k, v in p.items() if k != "e164"), p
    req = request(w, "delete", ZHANG)
    with w.engine.connect() as db:
        done = privacy.run(db, w.resolver, tenant=w.tenant, request_id=req.id, actor=ACTOR)
        assert done.status == "completed" and done.outcome is not None
        assert done.outcome["events"] == 2 and done.outcome["snapshots"] == 1
        # idempotent: a second deletion of the same person finds nothing
        again = privacy.delete(db, w.resolver, tenant=w.tenant, profile_id=zhang, actor=ACTOR)
        assert again["events"] == 0 and again["identifiers"] == 0
        _, members = audiences.latest_members(db, tenant=w.tenant, audience_id="buyers")
        assert list(members) == [li]
        fresh = audiences.materialise(db, tenant=w.tenant, audience_id="buyers")
        assert fresh.size == 1
        assert get_profile(db, tenant=w.tenant, profile_id=li).traits["name"].value == LI["name"]
        # the tombstone: the request (keyed hash only) and the ledger, leaves intact
        assert privacy.get_request(db, tenant=w.tenant, request_id=req.id).kind == "delete"
        kept = db.execute(Statement("t.ledger", "SELECT * FROM consent_ledger WHERE"
                                    " tenant_id = ? ORDER BY seq"), [w.tenant])  # fmt: skip
        assert kept == entries and len(kept) == 2
        for r in kept:
            e = NewEntry(purpose_id=r[3], channel=r[4], status=r[5], separate=r[6],
                         notice_version=r[7], decided_at=r[8], surface=r[10], actor=r[11],
                         evidence=r[12], subject_key=r[13], subject_type=r[14],
                         profile_id=r[15], origin=r[16], recorded_by=r[19])  # fmt: skip
            assert leaf_hash(leaf_data(w.tenant, r[1], e, r[2], r[9])) == r[20]
    raw = file_bytes(w)
    for value in ZHANG.values():
        assert value.encode() not in raw, f"{value} is still in the database file"
    assert all(v.encode() in raw for k, v in LI.items() if k != "e164")


@pytest.mark.slow
def test_deletion_of_a_person_whose_consent_names_their_user_id(world: World) -> None:  # noqa: F811
    w = world
    w.send("mp", person_events(ZHANG, "1"))
    with w.engine.connect() as db:
        zhang = w.person(db, ZHANG["user"])
        d = Decision(subject=Subject(profile=format_oneid(zhang)), purpose="marketing",
                     status="granted")  # fmt: skip
        consent.record(db, w.resolver, [d], tenant=w.tenant, actor=ACTOR)
        privacy.delete(db, w.resolver, tenant=w.tenant, profile_id=zhang, actor=ACTOR)
    assert ZHANG["user"].encode() not in file_bytes(w)


def test_requests_through_the_api(tmp_path: Path) -> None:
    """The routes on an in-process app with its background workers running: log and run
    each kind, list them, download the export."""
    import time
    import warnings

    from quanyu.api import privacy as privacy_api
    from quanyu.api.app import create_app
    from quanyu.config import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    app = create_app(Settings(data_dir=tmp_path), local_token="t")
    if not any(getattr(r, "path", "").startswith("/v1/tenants/{tenant_id}/privacy")
               for r in app.routes):  # fmt: skip
        app.include_router(privacy_api.router)
    admin = {"Authorization": "Bearer t"}
    with TestClient(app, base_url="http://quanyu.test") as c:
        tenant = c.post("/v1/tenants", json={"name": "Kao"}, headers=admin).json()["id"]
        source = c.post(f"/v1/tenants/{tenant}/sources", json={"name": "mp"},
                        headers=admin).json()  # fmt: skip
        sent = c.post("/v1/batch", json={"batch": person_events(ZHANG, "1")},
                      auth=(source["write_key"], ""))  # fmt: skip
        assert sent.status_code == 200, sent.text
        base = f"/v1/tenants/{tenant}/privacy/requests"
        subject = {"type": "user_id", "scope": source["id"], "value": ZHANG["user"]}
        for _ in range(100):  # resolution runs in the background
            made = c.post(base, json={"kind": "access", "subject": subject}, headers=admin)
            if made.status_code != 404:
                break
            time.sleep(0.1)
        assert made.status_code == 201, made.text
        assert made.json()["status"] == "completed"
        got = c.get(f"{base}/{made.json()['id']}/export", headers=admin)
        assert got.headers["content-type"] == "application/zip"
        data = json.loads(zipfile.ZipFile(io.BytesIO(got.content)).read("export.json"))
        assert ("phone", ZHANG["e164"]) in {(i["type"], i["value"]) for i in data["identities"]}
        fixed = c.post(base, json={"kind": "correct", "subject": subject,
                                   "traits": {"tier": "silver"}}, headers=admin)  # fmt: skip
        assert fixed.status_code == 201 and fixed.json()["status"] == "completed", fixed.text
        bad = c.post(base, json={"kind": "correct", "subject": subject}, headers=admin)
        assert bad.status_code == 400 and "needs traits" in bad.json()["message"]
        gone = c.post(base, json={"kind": "delete", "subject": subject}, headers=admin)
        assert gone.status_code == 201 and gone.json()["status"] == "completed", gone.text
        listed = c.get(base, headers=admin).json()
        assert {r["kind"]: r["status"] for r in listed} == {
            "access": "completed", "correct": "completed", "delete": "completed"
        } and len(listed) == 3  # fmt: skip
        missing = c.post(base, json={"kind": "access", "subject": subject}, headers=admin)
        assert missing.status_code == 404
        assert c.get(base, headers={"Authorization": "Bearer nope"}).status_code == 401
