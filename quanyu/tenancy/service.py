"""Tenancy services: ISVs, tenants, brands, sources, keys and the audit log.

Every change writes an audit entry in the same transaction.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel

from quanyu.engine import Session, WriteConflict
from quanyu.errors import Conflict, Forbidden, NotFound, Unauthorized
from quanyu.ids import new_id, utcnow
from quanyu.tenancy import keys
from quanyu.tenancy import sql as q
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
    WriteKeyAuth,
)


def audit(
    db: Session,
    *,
    actor: str,
    action: str,
    target: BaseModel | None,
    target_type: str,
    target_id: str,
    tenant: str | None = None,
    isv: str | None = None,
    before: BaseModel | None = None,
    request_id: str | None = None,
) -> None:
    """Record one administrative change (call inside the change's transaction)."""

    def dump(model: BaseModel | None) -> str | None:
        return orjson.dumps(model.model_dump(mode="json")).decode() if model else None

    db.execute(
        q.INSERT_AUDIT,
        [
            new_id("aud"),
            utcnow(),
            actor,
            isv,
            tenant,
            action,
            target_type,
            target_id,
            dump(before),
            dump(target),
            request_id,
        ],
    )


# --- ISVs and tenants -------------------------------------------------------------------


def create_isv(db: Session, body: IsvCreate, *, actor: str) -> Isv:
    """Create an ISV (a service provider delivering Quanyu to brand groups)."""
    with db.transaction():
        if db.one(q.ISV_BY_NAME, [body.name]):
            raise Conflict(f"An ISV named {body.name!r} exists already; choose another name.")
        isv = Isv(id=new_id("isv"), name=body.name, created_at=utcnow())
        db.execute(q.INSERT_ISV, [isv.id, isv.name, isv.created_at])
        audit(
            db,
            actor=actor,
            action="isv.create",
            target=isv,
            target_type="isv",
            target_id=isv.id,
            isv=isv.id,
        )
    return isv


def list_isvs(db: Session) -> list[Isv]:
    """Every ISV."""
    return [Isv(id=r[0], name=r[1], created_at=r[2]) for r in db.execute(q.LIST_ISVS)]


def get_isv(db: Session, *, isv: str) -> Isv:
    """One ISV by id. Raises NotFound."""
    row = db.one(q.GET_ISV, [isv])
    if row is None:
        raise NotFound(f"No ISV has id {isv!r}; list them with GET /v1/admin/isvs.")
    return Isv(id=row[0], name=row[1], created_at=row[2])


def _tenant(row: tuple[Any, ...]) -> Tenant:
    return Tenant(id=row[0], isv_id=row[1], name=row[2], created_at=row[3])


def create_tenant(db: Session, body: TenantCreate, *, actor: str) -> Tenant:
    """Create a tenant (a brand group), optionally delivered by an ISV."""
    with db.transaction():
        if body.isv_id is not None:
            get_isv(db, isv=body.isv_id)
        tenant = Tenant(id=new_id("ten"), isv_id=body.isv_id, name=body.name, created_at=utcnow())
        db.execute(q.INSERT_TENANT, [tenant.id, tenant.isv_id, tenant.name, tenant.created_at])
        audit(
            db,
            actor=actor,
            action="tenant.create",
            target=tenant,
            target_type="tenant",
            target_id=tenant.id,
            tenant=tenant.id,
            isv=tenant.isv_id,
        )
    return tenant


def list_tenants(db: Session, *, isv: str | None = None) -> list[Tenant]:
    """Tenants, all of them or those one ISV delivers for."""
    return [_tenant(r) for r in db.execute(q.LIST_TENANTS, [isv, isv])]


def get_tenant(db: Session, *, tenant: str) -> Tenant:
    """One tenant by id. Raises NotFound."""
    row = db.one(q.GET_TENANT, [tenant])
    if row is None:
        raise NotFound(f"No tenant has id {tenant!r}; list yours with GET /v1/tenants.")
    return _tenant(row)


# --- brands and sources -----------------------------------------------------------------


def create_brand(db: Session, body: BrandCreate, *, tenant: str, actor: str) -> Brand:
    """Add a brand to a tenant."""
    with db.transaction():
        if db.one(q.BRAND_BY_NAME, [tenant, body.name]):
            raise Conflict(f"Tenant {tenant} has a brand named {body.name!r} already.")
        brand = Brand(id=new_id("brd"), tenant_id=tenant, name=body.name, created_at=utcnow())
        db.execute(q.INSERT_BRAND, [brand.id, tenant, brand.name, brand.created_at])
        audit(
            db,
            actor=actor,
            action="brand.create",
            target=brand,
            target_type="brand",
            target_id=brand.id,
            tenant=tenant,
        )
    return brand


def list_brands(db: Session, *, tenant: str) -> list[Brand]:
    """A tenant's brands."""
    return [
        Brand(id=r[0], tenant_id=r[1], name=r[2], created_at=r[3])
        for r in db.execute(q.LIST_BRANDS, [tenant])
    ]


def _source(row: tuple[Any, ...]) -> Source:
    return Source(
        id=row[0],
        tenant_id=row[1],
        brand_id=row[2],
        name=row[3],
        kind=row[4],
        rate_limit=row[5],
        created_at=row[6],
    )


def create_source(db: Session, body: SourceCreate, *, tenant: str, actor: str) -> SourceCreated:
    """Add a source (one touchpoint) with its first write key, returned once."""
    with db.transaction():
        if body.brand_id is not None and not db.one(q.GET_BRAND, [tenant, body.brand_id]):
            raise NotFound(
                f"Tenant {tenant} has no brand {body.brand_id!r}; create it first or omit brand_id."
            )
        if db.one(q.SOURCE_BY_NAME, [tenant, body.name]):
            raise Conflict(f"Tenant {tenant} has a source named {body.name!r} already.")
        source = Source(
            id=new_id("src"), tenant_id=tenant, created_at=utcnow(), **body.model_dump()
        )
        db.execute(
            q.INSERT_SOURCE,
            [
                source.id,
                tenant,
                source.brand_id,
                source.name,
                source.kind.value,
                source.rate_limit,
                source.created_at,
            ],
        )
        audit(
            db,
            actor=actor,
            action="source.create",
            target=source,
            target_type="source",
            target_id=source.id,
            tenant=tenant,
        )
        key = _insert_key(
            db,
            kind="write",
            name=f"{source.name} write key",
            scopes=["ingest:write"],
            isv=None,
            tenant=tenant,
            source=source.id,
            actor=actor,
        )
    return SourceCreated(**source.model_dump(), write_key=key.secret)


def list_sources(db: Session, *, tenant: str) -> list[Source]:
    """A tenant's sources."""
    return [_source(r) for r in db.execute(q.LIST_SOURCES, [tenant])]


def get_source(db: Session, *, tenant: str, source: str) -> Source:
    """One source of a tenant. Raises NotFound."""
    row = db.one(q.GET_SOURCE, [tenant, source])
    if row is None:
        raise NotFound(f"Tenant {tenant} has no source {source!r}; list them with GET .../sources.")
    return _source(row)


# --- keys -------------------------------------------------------------------------------


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(
        id=row[0],
        kind=row[1],
        name=row[2],
        prefix=row[3],
        isv_id=row[4],
        tenant_id=row[5],
        source_id=row[6],
        scopes=row[7].split(",") if row[7] else [],
        created_at=row[8],
        revoked_at=row[9],
        last_used_at=row[10],
    )


def _insert_key(
    db: Session,
    *,
    kind: Literal["secret", "write"],
    name: str,
    scopes: list[str],
    isv: str | None,
    tenant: str | None,
    source: str | None,
    actor: str,
) -> ApiKeyCreated:
    plain = keys.generate(keys.WRITE_PREFIX if kind == "write" else keys.SECRET_PREFIX)
    created = ApiKeyCreated(
        id=new_id("key"),
        kind=kind,
        name=name,
        prefix=keys.display_prefix(plain),
        isv_id=isv,
        tenant_id=tenant,
        source_id=source,
        scopes=scopes,
        created_at=utcnow(),
        revoked_at=None,
        last_used_at=None,
        secret=plain,
    )
    db.execute(
        q.INSERT_KEY,
        [
            created.id,
            kind,
            name,
            created.prefix,
            keys.digest(plain),
            isv,
            tenant,
            source,
            ",".join(scopes),
            created.created_at,
        ],
    )
    shown = ApiKey(**created.model_dump(exclude={"secret"}))
    audit(
        db,
        actor=actor,
        action="key.create",
        target=shown,
        target_type="key",
        target_id=created.id,
        tenant=tenant,
        isv=isv,
    )
    return created


def create_key(
    db: Session,
    body: KeyCreate,
    *,
    actor: str,
    tenant: str | None = None,
    isv: str | None = None,
) -> ApiKeyCreated:
    """Create a secret key for the management API: platform-wide, for an ISV, or a tenant.

    The plain key is in the result and nowhere else.
    """
    with db.transaction():
        return _insert_key(
            db,
            kind="secret",
            name=body.name,
            scopes=body.scopes,
            isv=isv,
            tenant=tenant,
            source=None,
            actor=actor,
        )


def create_write_key(db: Session, *, tenant: str, source: str, actor: str) -> ApiKeyCreated:
    """Add a write key to a source (rotate: create the new one, then revoke the old)."""
    with db.transaction():
        src = get_source(db, tenant=tenant, source=source)
        return _insert_key(
            db,
            kind="write",
            name=f"{src.name} write key",
            scopes=["ingest:write"],
            isv=None,
            tenant=tenant,
            source=source,
            actor=actor,
        )


def list_keys(db: Session, *, tenant: str | None = None, isv: str | None = None) -> list[ApiKey]:
    """Keys of a tenant, of an ISV (its own, not its tenants'), or the platform's."""
    if tenant is not None:
        rows = db.execute(q.LIST_TENANT_KEYS, [tenant])
    elif isv is not None:
        rows = db.execute(q.LIST_ISV_KEYS, [isv])
    else:
        rows = db.execute(q.LIST_PLATFORM_KEYS)
    return [_key(r) for r in rows]


def get_key(db: Session, *, key_id: str, tenant: str | None = None) -> ApiKey:
    """One key by id, if it belongs to ``tenant`` (when given). Raises NotFound."""
    row = db.one(q.GET_KEY, [key_id])
    if row is None or (tenant is not None and row[5] != tenant):
        raise NotFound(f"No key {key_id!r} here; list keys with GET .../keys.")
    return _key(row)


def revoke_key(db: Session, *, key_id: str, actor: str, tenant: str | None = None) -> ApiKey:
    """Revoke a key at once. Revoking twice is harmless."""
    _principals.clear()
    with db.transaction():
        before = get_key(db, key_id=key_id, tenant=tenant)
        db.execute(q.REVOKE_KEY, [utcnow(), key_id])
        after = get_key(db, key_id=key_id)
        audit(
            db,
            actor=actor,
            action="key.revoke",
            target=after,
            before=before,
            target_type="key",
            target_id=key_id,
            tenant=after.tenant_id,
            isv=after.isv_id,
        )
    return after


#: Secret keys' last recorded use in this process (monotonic seconds), so a busy key is
#: written at most every TOUCH_EVERY seconds rather than on every request.
_touched: dict[str, float] = {}
TOUCH_EVERY = 10.0


def touch_key(db: Session, *, key_id: str, at: datetime) -> None:
    """Record when a key was last used."""
    db.execute(q.TOUCH_KEY, [at, key_id])


def _note_use(db: Session, key_id: str) -> None:
    """Record a secret key's use, at most every TOUCH_EVERY seconds per key.

    Concurrent requests with one key may race to write the time; the loser's write is
    void (the winner's time is as good) and its request goes on.
    """
    now = time.monotonic()
    if now - _touched.get(key_id, -TOUCH_EVERY) < TOUCH_EVERY:
        return
    _touched[key_id] = now
    try:
        touch_key(db, key_id=key_id, at=utcnow())
    except WriteConflict:
        return  # another request recorded this key's use at the same moment


# --- authentication ---------------------------------------------------------------------


#: Principals of recently used secret keys (by key digest) with the time they were read:
#: a busy key costs one database read every PRINCIPAL_TTL seconds, not one per request.
#: Every revocation goes through this process (the server owns the database) and empties
#: it, so a revoked key stops working at once.
_principals: dict[str, tuple[float, Principal]] = {}
PRINCIPAL_TTL = 2.0


def authenticate_secret(db: Session, secret: str) -> Principal:
    """The principal a management-API secret key stands for.

    Raises:
        Unauthorized: the key is unknown, revoked, or a write key.
    """
    digest = keys.digest(secret)
    now = time.monotonic()
    hit = _principals.get(digest)
    if hit is not None and now - hit[0] < PRINCIPAL_TTL:
        _note_use(db, hit[1].key_id)
        return hit[1]
    principal = _authenticate(db, digest)
    _principals[digest] = (now, principal)
    return principal


def _authenticate(db: Session, digest: str) -> Principal:
    row = db.one(q.KEY_BY_HASH, [digest])
    if row is None:
        raise Unauthorized(
            "Unknown API key: pass a secret key as 'Authorization: Bearer sk_...';"
            " create one with 'quanyu keys create'."
        )
    key_id, kind, isv, tenant, _source, scopes, revoked_at, _brand, _limit = row
    if revoked_at is not None:
        raise Unauthorized(f"API key {key_id} was revoked at {revoked_at:%Y-%m-%d %H:%M:%S}Z.")
    if kind != "secret":
        raise Unauthorized("That is a source write key; the management API takes a secret key.")
    _note_use(db, key_id)
    level: Literal["platform", "isv", "tenant"] = (
        "tenant" if tenant else "isv" if isv else "platform"
    )
    return Principal(
        key_id=key_id,
        level=level,
        isv_id=isv,
        tenant_id=tenant,
        scopes=frozenset(scopes.split(",")),
    )


def authenticate_write_key(db: Session, write_key: str) -> WriteKeyAuth:
    """The source a write key sends for.

    Raises:
        Unauthorized: the write key is unknown or revoked.
    """
    row = db.one(q.KEY_BY_HASH, [keys.digest(write_key)])
    if row is None or row[1] != "write":
        raise Unauthorized(
            "Unknown write key: use the write key shown when the source was created"
            " (quanyu sources create), sent as HTTP basic auth user 'writeKey:'."
        )
    key_id, _kind, _isv, tenant, source, _scopes, revoked_at, brand, limit = row
    if revoked_at is not None:
        raise Unauthorized(
            f"Write key {key_id} was revoked at {revoked_at:%Y-%m-%d %H:%M:%S}Z;"
            " create a new one with 'quanyu sources rotate-key'."
        )
    return WriteKeyAuth(
        key_id=key_id, tenant_id=tenant, source_id=source, brand_id=brand, rate_limit=limit
    )


def authorize(
    db: Session,
    principal: Principal,
    *,
    tenant: str | None,
    capability: str,
    access: Literal["read", "write"],
) -> None:
    """Check the principal may ``access`` ``capability`` on ``tenant`` (None: platform level).

    A tenant that is not the caller's looks the same as one that does not exist.

    Raises:
        Forbidden: the scope is missing. NotFound: the tenant is out of reach.
    """
    if not principal.allows(capability, access):
        if principal.kind == "user":
            raise Forbidden(
                f"User {principal.key_id}'s role lacks '{capability}:{access}';"
                " ask an admin of the tenant for a role that has it."
            )
        raise Forbidden(
            f"Key {principal.key_id} lacks scope '{capability}:{access}'; create a key with it."
        )
    if tenant is None:
        return
    if principal.level == "tenant":
        if principal.tenant_id != tenant:
            raise NotFound(f"No tenant has id {tenant!r}; list yours with GET /v1/tenants.")
        return  # the key's own tenant: it exists
    found = get_tenant(db, tenant=tenant)
    if principal.level == "isv" and found.isv_id != principal.isv_id:
        raise NotFound(f"No tenant has id {tenant!r}; list yours with GET /v1/tenants.")


def audit_entry(r: tuple[Any, ...]) -> AuditEntry:
    """An audit entry from a row of ``audit_log`` in its table's column order."""
    return AuditEntry(
        id=r[0], occurred_at=r[1], actor=r[2], isv_id=r[3], tenant_id=r[4], action=r[5],
        target_type=r[6], target_id=r[7], before=orjson.loads(r[8]) if r[8] else None,
        after=orjson.loads(r[9]) if r[9] else None, request_id=r[10],
    )  # fmt: skip


def list_audit(
    db: Session,
    *,
    tenant: str | None = None,
    isv: str | None = None,
    before: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Audit entries, newest first, for a tenant, an ISV, or everything (platform)."""
    if tenant is not None:
        rows = db.execute(q.LIST_AUDIT, [tenant, before, before, limit])
    elif isv is not None:
        rows = db.execute(q.LIST_ISV_AUDIT, [isv, before, before, limit])
    else:
        rows = db.execute(q.LIST_ALL_AUDIT, [before, before, limit])
    return [audit_entry(r) for r in rows]
