"""Tenancy services on a real database file: keys, scopes, isolation, audit."""

from __future__ import annotations

import pytest

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import Conflict, Forbidden, NotFound, Unauthorized
from quanyu.tenancy import keys, service
from quanyu.tenancy.models import (
    BrandCreate,
    IsvCreate,
    KeyCreate,
    SourceCreate,
    TenantCreate,
    check_scope,
)

ACTOR = "key:test"


def test_keys_are_stored_hashed_and_shown_once(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        t = service.create_tenant(db, TenantCreate(name="Kao-like"), actor=ACTOR)
        created = service.create_key(
            db, KeyCreate(name="ops", scopes=["ingest:read"]), actor=ACTOR, tenant=t.id
        )
        stored = db._con.execute(
            "SELECT key_hash, prefix FROM api_keys WHERE id = ?",  # type: ignore[attr-defined]
            [created.id],
        ).fetchone()
        assert stored[0] == keys.digest(created.secret) != created.secret
        assert created.secret.startswith(stored[1])
        listed = service.list_keys(db, tenant=t.id)
        assert all("secret" not in k.model_dump() for k in listed)
        p = service.authenticate_secret(db, created.secret)
        assert p.level == "tenant" and p.tenant_id == t.id
        assert p.allows("ingest", "read") and not p.allows("ingest", "write")
        assert service.get_key(db, key_id=created.id).last_used_at is not None


def test_revoked_and_unknown_keys_are_refused_with_reasons(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        t = service.create_tenant(db, TenantCreate(name="T"), actor=ACTOR)
        src = service.create_source(
            db, SourceCreate(name="POS", kind="pos"), tenant=t.id, actor=ACTOR
        )
        auth = service.authenticate_write_key(db, src.write_key)
        assert (auth.tenant_id, auth.source_id) == (t.id, src.id)
        with pytest.raises(Unauthorized, match="Unknown write key"):
            service.authenticate_write_key(db, "wk_nope")
        with pytest.raises(Unauthorized, match="management API takes a secret key"):
            service.authenticate_secret(db, src.write_key)
        service.revoke_key(db, key_id=auth.key_id, actor=ACTOR, tenant=t.id)
        with pytest.raises(Unauthorized, match="revoked"):
            service.authenticate_write_key(db, src.write_key)


def test_isv_sees_only_its_tenants(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        isv = service.create_isv(db, IsvCreate(name="Partner A"), actor=ACTOR)
        mine = service.create_tenant(db, TenantCreate(name="Mine", isv_id=isv.id), actor=ACTOR)
        other = service.create_tenant(db, TenantCreate(name="Other"), actor=ACTOR)
        key = service.create_key(
            db, KeyCreate(name="isv", scopes=["admin"]), actor=ACTOR, isv=isv.id
        )
        p = service.authenticate_secret(db, key.secret)
        service.authorize(db, p, tenant=mine.id, capability="tenancy", access="write")
        with pytest.raises(NotFound):
            service.authorize(db, p, tenant=other.id, capability="tenancy", access="read")
        assert [t.id for t in service.list_tenants(db, isv=isv.id)] == [mine.id]


def test_tenant_key_cannot_reach_another_tenant_and_scopes_bind(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        a = service.create_tenant(db, TenantCreate(name="A"), actor=ACTOR)
        b = service.create_tenant(db, TenantCreate(name="B"), actor=ACTOR)
        key = service.create_key(
            db, KeyCreate(name="r", scopes=["tenancy:read"]), actor=ACTOR, tenant=a.id
        )
        p = service.authenticate_secret(db, key.secret)
        service.authorize(db, p, tenant=a.id, capability="tenancy", access="read")
        with pytest.raises(Forbidden, match="tenancy:write"):
            service.authorize(db, p, tenant=a.id, capability="tenancy", access="write")
        with pytest.raises(NotFound):
            service.authorize(db, p, tenant=b.id, capability="tenancy", access="read")


def test_audit_log_records_every_change_with_before_and_after(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        t = service.create_tenant(db, TenantCreate(name="T"), actor=ACTOR)
        brand = service.create_brand(db, BrandCreate(name="Lumi"), tenant=t.id, actor=ACTOR)
        src = service.create_source(
            db,
            SourceCreate(name="MP", kind="mini_program", brand_id=brand.id),
            tenant=t.id,
            actor=ACTOR,
        )
        auth = service.authenticate_write_key(db, src.write_key)
        service.revoke_key(db, key_id=auth.key_id, actor="key:admin", tenant=t.id)
        log = service.list_audit(db, tenant=t.id)
        assert [e.action for e in log] == [
            "key.revoke",
            "key.create",
            "source.create",
            "brand.create",
            "tenant.create",
        ]
        revoke = log[0]
        assert revoke.actor == "key:admin"
        assert revoke.before and revoke.before["revoked_at"] is None
        assert revoke.after and revoke.after["revoked_at"] is not None
        assert all("secret" not in (e.after or {}) for e in log)


def test_duplicate_names_and_unknown_brand(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        t = service.create_tenant(db, TenantCreate(name="T"), actor=ACTOR)
        service.create_brand(db, BrandCreate(name="Lumi"), tenant=t.id, actor=ACTOR)
        with pytest.raises(Conflict):
            service.create_brand(db, BrandCreate(name="Lumi"), tenant=t.id, actor=ACTOR)
        with pytest.raises(NotFound, match="no brand"):
            service.create_source(
                db, SourceCreate(name="S", brand_id="brd_x"), tenant=t.id, actor=ACTOR
            )


def test_scope_validation() -> None:
    assert check_scope("ingest:write") == "ingest:write"
    for bad in ("ingest", "nothing:read", "ingest:delete", ""):
        with pytest.raises(ValueError, match="unknown scope"):
            check_scope(bad)
