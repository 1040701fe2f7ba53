"""Searching a tenant's audit log: each filter, paging, tenants apart, and the changes."""

from __future__ import annotations

from datetime import timedelta

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.ids import utcnow
from quanyu.tenancy import audit_search, service
from quanyu.tenancy.audit_search import AuditFilter
from quanyu.tenancy.models import AuditEntry, BrandCreate, KeyCreate, SourceCreate, TenantCreate


def test_filters_pages_and_changes(engine: DuckDBEngine) -> None:
    start = utcnow() - timedelta(seconds=1)
    with engine.connect() as db:
        t = service.create_tenant(db, TenantCreate(name="A"), actor="key:root").id
        other = service.create_tenant(db, TenantCreate(name="B"), actor="key:root").id
        service.create_brand(db, BrandCreate(name="b"), tenant=t, actor="user:alice")
        for i in range(3):
            service.create_source(db, SourceCreate(name=f"s{i}"), tenant=t, actor="user:alice")
        key = service.create_key(db, KeyCreate(name="k", scopes=["ingest:read"]),
                                 actor="user:Bob", tenant=t)  # fmt: skip
        service.revoke_key(db, key_id=key.id, actor="user:bob", tenant=t)
        service.create_brand(db, BrandCreate(name="b"), tenant=other, actor="user:alice")

        everything = audit_search.search(db, tenant=t).items
        assert len(everything) == 1 + 1 + 3 * 2 + 2  # tenant, brand, sources+keys, key twice
        assert [e.id for e in everything] == sorted((e.id for e in everything), reverse=True)

        def ids(**kw: object) -> list[str]:
            found = audit_search.search(db, tenant=t, where=AuditFilter.model_validate(kw))
            return [e.action for e in found.items]

        assert ids(action="source.create") == ["source.create"] * 3
        assert ids(actor="BOB") == ["key.revoke", "key.create"]  # contains, any case
        assert ids(target_type="brand") == ["brand.create"]
        assert ids(action="key.create", actor="alice") == ["key.create"] * 3
        assert ids(since=utcnow() + timedelta(seconds=1)) == []
        assert len(ids(since=start, until=utcnow() + timedelta(seconds=1))) == len(everything)
        assert ids(until=start) == []

        first = audit_search.search(db, tenant=t, limit=4)
        second = audit_search.search(db, tenant=t, before=first.next_before, limit=4)
        third = audit_search.search(db, tenant=t, before=second.next_before, limit=4)
        assert first.next_before and second.next_before and third.next_before is None
        assert [e.id for e in first.items + second.items + third.items] == [
            e.id for e in everything
        ]

        facets = audit_search.facets(db, tenant=t)
        assert facets.actions == ["brand.create", "key.create", "key.revoke", "source.create",
                                  "tenant.create"]  # fmt: skip
        assert facets.actors == ["key:root", "user:Bob", "user:alice", "user:bob"]
        assert "brand" in facets.target_types and "key" in facets.target_types

        revoked = next(e for e in everything if e.action == "key.revoke")
        (change,) = audit_search.changes(revoked)
        assert change.field == "revoked_at" and change.before is None and change.after
        created = next(e for e in everything if e.action == "brand.create")
        fields = {c.field: c for c in audit_search.changes(created)}
        assert fields["name"].after == "b" and fields["name"].kind == "set"


def test_changes_follow_nested_objects() -> None:
    entry = AuditEntry(
        id="aud_1", occurred_at=utcnow(), actor="user:a", isv_id=None, tenant_id="t",
        action="identity.rules.update", target_type="identity_rules", target_id="t",
        before={"rules": {"types": {"user_id": {"limit": 1, "scope": "source"}}, "old": 1}},
        after={"rules": {"types": {"user_id": {"limit": 3, "scope": "source"}}, "new": 2}},
        request_id=None,
    )  # fmt: skip
    got = [(c.field, c.before, c.after, c.kind) for c in audit_search.changes(entry)]
    assert got == [
        ("rules.types.user_id.limit", 1, 3, "changed"),
        ("rules.old", 1, None, "removed"),
        ("rules.new", None, 2, "changed"),
    ]
