"""Dependencies: a database session per request, the calling principal, tenant access."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from quanyu.engine import Engine, Session
from quanyu.errors import Unauthorized
from quanyu.identity.service import Resolver
from quanyu.ingest.service import Ingestor
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import Principal

_bearer = HTTPBearer(auto_error=False, description="A secret key: Authorization: Bearer sk_...")


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_ingestor(request: Request) -> Ingestor:
    ingestor: Ingestor = request.app.state.ingestor
    return ingestor


async def get_resolver(request: Request) -> Resolver:
    resolver: Resolver = request.app.state.resolver
    return resolver


def get_db(request: Request, engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    # A read sees every scan answered before it: they wait in the scan log's journal
    # for a fold (a few times a second) until then.
    scanner = getattr(request.app.state, "scanner", None)
    if scanner is not None:
        scanner.flush()
    with engine.connect() as db:
        yield db


EngineDep = Annotated[Engine, Depends(get_engine)]
IngestorDep = Annotated[Ingestor, Depends(get_ingestor)]


async def get_master_key(request: Request) -> bytes:
    key: bytes = request.app.state.master_key
    return key


async def get_allow_private(request: Request) -> bool:
    """Whether webhook destinations may be on private networks (a server setting)."""
    return bool(request.app.state.settings.webhook_allow_private_networks)


ResolverDep = Annotated[Resolver, Depends(get_resolver)]
AllowPrivateDep = Annotated[bool, Depends(get_allow_private)]
MasterKeyDep = Annotated[bytes, Depends(get_master_key)]
DbDep = Annotated[Session, Depends(get_db)]


def get_principal(
    request: Request,
    db: DbDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    local = request.app.state.local_token
    if credentials is not None and local and secrets.compare_digest(credentials.credentials, local):
        return Principal(key_id="local-cli", level="platform", scopes=frozenset({"admin"}))
    if credentials is None:
        raise Unauthorized(
            "No API key: send 'Authorization: Bearer sk_...' with a secret key"
            " (create one with 'quanyu keys create')."
        )
    return tenancy.authenticate_secret(db, credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def tenant_access(capability: str, access: Literal["read", "write"]) -> object:
    """A dependency checking the caller may ``access`` ``capability`` on the path's tenant."""

    def check(tenant_id: str, db: DbDep, principal: PrincipalDep) -> str:
        tenancy.authorize(db, principal, tenant=tenant_id, capability=capability, access=access)
        return tenant_id

    return Depends(check)


def platform_access(capability: str, access: Literal["read", "write"]) -> object:
    """A dependency checking the caller's scope for a non-tenant action."""

    def check(db: DbDep, principal: PrincipalDep) -> Principal:
        tenancy.authorize(db, principal, tenant=None, capability=capability, access=access)
        return principal

    return Depends(check)
