"""Pydantic models of the tenancy capability."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, field_validator

#: Capabilities a scope may name; ``<capability>:read`` or ``<capability>:write``.
CAPABILITIES = (
    "tenancy",
    "ingest",
    "identity",
    "profiles",
    "tags",
    "audiences",
    "consent",
    "codes",
    "ledger",
    "campaigns",
    "analytics",
)
_SCOPE = re.compile(r"^(admin|(?P<cap>[a-z]+):(read|write))$")


def check_scope(scope: str) -> str:
    """Return ``scope`` if well formed, else raise ValueError naming the allowed forms."""
    m = _SCOPE.match(scope)
    if not m or (m.group("cap") and m.group("cap") not in CAPABILITIES):
        raise ValueError(
            f"unknown scope {scope!r}: use 'admin' or '<capability>:read|write' with a capability"
            f" among {', '.join(CAPABILITIES)}"
        )
    return scope


class SourceKind(StrEnum):
    """The touchpoint a source stands for."""

    mini_program = "mini_program"
    official_account = "official_account"
    ecommerce = "ecommerce"
    tmall = "tmall"
    pos = "pos"
    qr = "qr"
    web = "web"
    app = "app"
    server = "server"
    flash_store = "flash_store"


Name = Field(min_length=1, max_length=200)


class IsvCreate(BaseModel):
    name: str = Name


class Isv(IsvCreate):
    id: str
    created_at: datetime


class TenantCreate(BaseModel):
    name: str = Name
    isv_id: str | None = Field(
        default=None, description="The ISV delivering for this tenant (an ISV key sets its own)."
    )


class Tenant(TenantCreate):
    id: str
    created_at: datetime


class BrandCreate(BaseModel):
    name: str = Name


class Brand(BrandCreate):
    id: str
    tenant_id: str
    created_at: datetime


class SourceCreate(BaseModel):
    name: str = Name
    kind: SourceKind = SourceKind.server
    brand_id: str | None = None
    rate_limit: int | None = Field(
        default=None, gt=0, description="Events per second; the server default when unset."
    )


class Source(SourceCreate):
    id: str
    tenant_id: str
    created_at: datetime


class SourceCreated(Source):
    write_key: str = Field(description="Shown once: store it now.")


class KeyCreate(BaseModel):
    name: str = Name
    scopes: list[str] = Field(min_length=1, examples=[["ingest:read", "tenancy:write"]])

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, scopes: list[str]) -> list[str]:
        return [check_scope(s) for s in scopes]


class ApiKey(BaseModel):
    id: str
    kind: Literal["secret", "write"]
    name: str
    prefix: str
    isv_id: str | None
    tenant_id: str | None
    source_id: str | None
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKey):
    secret: str = Field(description="Shown once: store it now.")


class AuditEntry(BaseModel):
    id: str
    occurred_at: datetime
    actor: str
    isv_id: str | None
    tenant_id: str | None
    action: str
    target_type: str
    target_id: str
    before: dict[str, object] | None
    after: dict[str, object] | None
    request_id: str | None


class Principal(BaseModel):
    """Who is calling: a platform operator, an ISV or a tenant, with scopes."""

    key_id: str
    level: Literal["platform", "isv", "tenant"]
    isv_id: str | None = None
    tenant_id: str | None = None
    scopes: frozenset[str]
    kind: Literal["key", "user"] = "key"

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.key_id}"

    def allows(self, capability: str, access: Literal["read", "write"]) -> bool:
        """Whether the scopes grant ``access`` to ``capability`` (write implies read)."""
        if "admin" in self.scopes or f"{capability}:write" in self.scopes:
            return True
        return access == "read" and f"{capability}:read" in self.scopes


class WriteKeyAuth(BaseModel):
    """What a write key unlocks: one source of one tenant."""

    key_id: str
    tenant_id: str
    source_id: str
    brand_id: str | None
    rate_limit: int | None
