"""Management API for ISVs, tenants, brands, sources, keys and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from quanyu.api.deps import DbDep, IngestorDep, PrincipalDep, platform_access, tenant_access
from quanyu.errors import Forbidden, NotFound
from quanyu.tenancy import service
from quanyu.tenancy.models import (
    ApiKey,
    ApiKeyCreated,
    AuditEntry,
    Brand,
    BrandCreate,
    Isv,
    IsvCreate,
    KeyCreate,
    Principal,
    Source,
    SourceCreate,
    SourceCreated,
    Tenant,
    TenantCreate,
)

router = APIRouter(tags=["tenancy"])

TenantRead = Annotated[str, tenant_access("tenancy", "read")]
TenantWrite = Annotated[str, tenant_access("tenancy", "write")]
TenancyRead = Annotated[Principal, platform_access("tenancy", "read")]
TenancyWrite = Annotated[Principal, platform_access("tenancy", "write")]


def _platform_only(principal: Principal, what: str) -> None:
    if principal.level != "platform":
        raise Forbidden(f"Only a platform key may {what}; this key belongs to an ISV or tenant.")


@router.post("/v1/isvs", status_code=201)
def create_isv(body: IsvCreate, db: DbDep, principal: TenancyWrite) -> Isv:
    """Register an ISV (platform keys only)."""
    _platform_only(principal, "create ISVs")
    return service.create_isv(db, body, actor=principal.actor)


@router.get("/v1/isvs")
def list_isvs(db: DbDep, principal: TenancyRead) -> list[Isv]:
    """ISVs: all for a platform key, its own for an ISV key."""
    if principal.level == "platform":
        return service.list_isvs(db)
    if principal.isv_id:
        return [service.get_isv(db, isv=principal.isv_id)]
    return []


@router.post("/v1/isvs/{isv_id}/keys", status_code=201)
def create_isv_key(
    isv_id: str, body: KeyCreate, db: DbDep, principal: TenancyWrite
) -> ApiKeyCreated:
    """A secret key for an ISV: it manages the tenants it delivers for (platform keys only)."""
    _platform_only(principal, "create ISV keys")
    service.get_isv(db, isv=isv_id)
    return service.create_key(db, body, actor=principal.actor, isv=isv_id)


@router.post("/v1/tenants", status_code=201)
def create_tenant(body: TenantCreate, db: DbDep, principal: TenancyWrite) -> Tenant:
    """Create a tenant (brand group). An ISV key creates it under its own ISV."""
    if principal.level == "tenant":
        raise Forbidden("A tenant key cannot create tenants; use an ISV or platform key.")
    if principal.level == "isv":
        body = body.model_copy(update={"isv_id": principal.isv_id})
    return service.create_tenant(db, body, actor=principal.actor)


@router.get("/v1/tenants")
def list_tenants(db: DbDep, principal: TenancyRead) -> list[Tenant]:
    """The tenants this key can see."""
    if principal.level == "tenant" and principal.tenant_id:
        return [service.get_tenant(db, tenant=principal.tenant_id)]
    return service.list_tenants(db, isv=principal.isv_id if principal.level == "isv" else None)


@router.get("/v1/tenants/{tenant_id}")
def get_tenant(tenant_id: TenantRead, db: DbDep) -> Tenant:
    """One tenant."""
    return service.get_tenant(db, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/brands", status_code=201)
def create_brand(tenant_id: TenantWrite, body: BrandCreate, db: DbDep, p: PrincipalDep) -> Brand:
    """Add a brand to the tenant."""
    return service.create_brand(db, body, tenant=tenant_id, actor=p.actor)


@router.get("/v1/tenants/{tenant_id}/brands")
def list_brands(tenant_id: TenantRead, db: DbDep) -> list[Brand]:
    """The tenant's brands."""
    return service.list_brands(db, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/sources", status_code=201)
def create_source(
    tenant_id: TenantWrite, body: SourceCreate, db: DbDep, p: PrincipalDep
) -> SourceCreated:
    """Add a source (touchpoint). Its write key is in the answer, and only there."""
    return service.create_source(db, body, tenant=tenant_id, actor=p.actor)


@router.get("/v1/tenants/{tenant_id}/sources")
def list_sources(tenant_id: TenantRead, db: DbDep) -> list[Source]:
    """The tenant's sources."""
    return service.list_sources(db, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/sources/{source_id}/write-keys", status_code=201)
def create_write_key(
    tenant_id: TenantWrite, source_id: str, db: DbDep, p: PrincipalDep
) -> ApiKeyCreated:
    """Another write key for a source (to rotate: create, deploy, revoke the old one)."""
    return service.create_write_key(db, tenant=tenant_id, source=source_id, actor=p.actor)


@router.post("/v1/tenants/{tenant_id}/keys", status_code=201)
def create_tenant_key(
    tenant_id: TenantWrite, body: KeyCreate, db: DbDep, p: PrincipalDep
) -> ApiKeyCreated:
    """A secret key limited to this tenant; the secret is shown once."""
    if p.level == "tenant" and "admin" not in p.scopes:
        raise Forbidden("Only an admin tenant key may create keys.")
    return service.create_key(db, body, actor=p.actor, tenant=tenant_id)


@router.get("/v1/tenants/{tenant_id}/keys")
def list_tenant_keys(tenant_id: TenantRead, db: DbDep) -> list[ApiKey]:
    """The tenant's keys (secret and write), never their secrets."""
    return service.list_keys(db, tenant=tenant_id)


@router.delete("/v1/tenants/{tenant_id}/keys/{key_id}")
def revoke_tenant_key(
    tenant_id: TenantWrite, key_id: str, db: DbDep, p: PrincipalDep, ingestor: IngestorDep
) -> ApiKey:
    """Revoke a key of the tenant; it stops working at once."""
    key = service.revoke_key(db, key_id=key_id, actor=p.actor, tenant=tenant_id)
    ingestor.forget_keys()
    return key


@router.post("/v1/keys", status_code=201)
def create_key(body: KeyCreate, db: DbDep, principal: TenancyWrite) -> ApiKeyCreated:
    """A platform key (platform callers) or another key of the caller's ISV."""
    if principal.level == "tenant":
        raise Forbidden("Tenant keys create keys under /v1/tenants/{tenant_id}/keys.")
    return service.create_key(db, body, actor=principal.actor, isv=principal.isv_id)


@router.get("/v1/keys")
def list_keys(db: DbDep, principal: TenancyRead) -> list[ApiKey]:
    """The platform's keys, or the calling ISV's own."""
    if principal.level == "tenant":
        return service.list_keys(db, tenant=principal.tenant_id)
    return service.list_keys(db, isv=principal.isv_id)


@router.delete("/v1/keys/{key_id}")
def revoke_key(key_id: str, db: DbDep, principal: TenancyWrite, ingestor: IngestorDep) -> ApiKey:
    """Revoke a platform or ISV key (a tenant's keys: use the tenant path)."""
    key = service.get_key(db, key_id=key_id)
    if principal.level == "tenant":
        visible = key.tenant_id == principal.tenant_id
    elif principal.level == "isv":
        visible = key.tenant_id is None and key.isv_id == principal.isv_id
    else:
        visible = True
    if not visible:  # someone else's key answers like one that does not exist
        raise NotFound(f"No key {key_id!r} here; list keys with GET /v1/keys.")
    if key.tenant_id is not None:
        raise Forbidden(
            f"Key {key_id} belongs to tenant {key.tenant_id}: revoke it with"
            f" DELETE /v1/tenants/{key.tenant_id}/keys/{key_id}."
        )
    revoked = service.revoke_key(db, key_id=key_id, actor=principal.actor)
    ingestor.forget_keys()
    return revoked


@router.get("/v1/tenants/{tenant_id}/audit")
def tenant_audit(
    tenant_id: TenantRead,
    db: DbDep,
    before: Annotated[str | None, Query(description="Page: entries older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntry]:
    """Administrative changes to the tenant, newest first."""
    return service.list_audit(db, tenant=tenant_id, before=before, limit=limit)


@router.get("/v1/audit")
def audit(
    db: DbDep,
    principal: TenancyRead,
    request: Request,
    before: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntry]:
    """Every change the caller may see: everything (platform) or an ISV's own actions."""
    if principal.level == "tenant":
        return service.list_audit(db, tenant=principal.tenant_id, before=before, limit=limit)
    return service.list_audit(db, isv=principal.isv_id, before=before, limit=limit)
