"""Console users over HTTP: created by a tenant's admin, an ISV or the platform."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from quanyu.api.deps import DbDep, PrincipalDep, platform_access, tenant_access
from quanyu.errors import NotFound
from quanyu.tenancy import service
from quanyu.tenancy.models import Principal
from quanyu.tenancy.users import (
    ConsoleUser,
    ConsoleUserCreate,
    create_user,
    disable_user,
    get_user,
    list_users,
)

router = APIRouter(tags=["console users"])

TenantRead = Annotated[str, tenant_access("tenancy", "read")]
TenantWrite = Annotated[str, tenant_access("tenancy", "write")]
TenancyWrite = Annotated[Principal, platform_access("tenancy", "write")]
TenancyRead = Annotated[Principal, platform_access("tenancy", "read")]


def _own_isv(principal: Principal, isv_id: str) -> None:
    if principal.level == "tenant" or (principal.level == "isv" and principal.isv_id != isv_id):
        raise NotFound(f"No ISV has id {isv_id!r}; list yours with GET /v1/isvs.")


@router.post("/v1/tenants/{tenant_id}/users", status_code=201)
def create_tenant_user(
    tenant_id: TenantWrite, body: ConsoleUserCreate, db: DbDep, principal: PrincipalDep
) -> ConsoleUser:
    """A console user of this tenant."""
    return create_user(db, body, actor=principal.actor, tenant=tenant_id)


@router.get("/v1/tenants/{tenant_id}/users")
def list_tenant_users(tenant_id: TenantRead, db: DbDep) -> list[ConsoleUser]:
    return list_users(db, tenant=tenant_id)


@router.post("/v1/isvs/{isv_id}/users", status_code=201)
def create_isv_user(
    isv_id: str, body: ConsoleUserCreate, db: DbDep, principal: TenancyWrite
) -> ConsoleUser:
    """A console user of an ISV: they open every tenant the ISV delivers for."""
    _own_isv(principal, isv_id)
    return create_user(db, body, actor=principal.actor, isv=isv_id)


@router.get("/v1/isvs/{isv_id}/users")
def list_isv_users(isv_id: str, db: DbDep, principal: TenancyRead) -> list[ConsoleUser]:
    _own_isv(principal, isv_id)
    return list_users(db, isv=isv_id)


@router.post("/v1/users/{user_id}/disable")
def disable(user_id: str, db: DbDep, principal: TenancyWrite) -> ConsoleUser:
    """Disable a console user; their sessions end at their next request."""
    user = get_user(db, user_id)
    try:  # a user out of the caller's reach looks like one that does not exist
        if user.tenant_id is not None:
            service.authorize(
                db, principal, tenant=user.tenant_id, capability="tenancy", access="write"
            )
        else:
            _own_isv(principal, str(user.isv_id))
    except NotFound:
        raise NotFound(f"No console user has id {user_id!r}.") from None
    return disable_user(db, user_id, actor=principal.actor)
