"""Ledger API: the tenant's Merkle log, signed checkpoints, inclusion and consistency
proofs, and a public endpoint anyone can use to verify a proof against a checkpoint."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from quanyu.api.deps import DbDep, MasterKeyDep, tenant_access
from quanyu.errors import NotFound
from quanyu.ledger import service
from quanyu.ledger.checkpoint import origin
from quanyu.ledger.verify import BundleError, verify

router = APIRouter(tags=["ledger"])

Read = Annotated[str, tenant_access("ledger", "read")]
Write = Annotated[str, tenant_access("ledger", "write")]
Hex = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]


class CheckpointOut(BaseModel):
    tree_size: int
    root: str = Field(description="root hash, hex")
    note: str = Field(description="the C2SP signed checkpoint text")
    signed_at: str


class LedgerStatus(BaseModel):
    origin: str
    size: int
    root: str = Field(description="root hash of the log as it is now, hex")
    verifier_key: str = Field(description="C2SP signed-note verifier key of the checkpoints")
    latest_checkpoint: CheckpointOut | None


class LeafOut(BaseModel):
    index: int
    kind: str
    ref: str
    leaf_hash: str
    leaf_data: str | None
    recorded_at: str


class VerifyRequest(BaseModel):
    checkpoint: str = Field(max_length=4096, description="signed checkpoint text")
    verifier_key: str = Field(max_length=512)
    type: Literal["inclusion", "consistency"] = "inclusion"
    index: int | None = Field(default=None, ge=0)
    leaf_hash: Hex | None = None
    leaf_data: str | None = Field(default=None, max_length=65536)
    old_size: int | None = Field(default=None, ge=0)
    old_root: Hex | None = None
    old_checkpoint: str | None = Field(default=None, max_length=4096)
    proof: list[Hex] = Field(default_factory=list, max_length=128)


class VerifyResult(BaseModel):
    ok: bool
    reason: str | None = None
    origin: str | None = None
    tree_size: int | None = None
    root: str | None = None
    statement: str | None = None


def _checkpoint(cp: service.SignedCheckpoint) -> CheckpointOut:
    return CheckpointOut(
        tree_size=cp.tree_size, root=cp.root.hex(), note=cp.note, signed_at=cp.signed_at.isoformat()
    )


@router.get("/v1/tenants/{tenant_id}/ledger")
def status(tenant_id: Read, db: DbDep, master_key: MasterKeyDep) -> LedgerStatus:
    """The log's size, current root, verifier key and latest signed checkpoint."""
    size = service.size(db, tenant_id)
    latest = service.latest_checkpoint(db, tenant_id)
    return LedgerStatus(
        origin=origin(tenant_id),
        size=size,
        root=service.root(db, tenant_id, size).hex(),
        verifier_key=service.verifier_key(master_key, tenant_id),
        latest_checkpoint=_checkpoint(latest) if latest else None,
    )


@router.post("/v1/tenants/{tenant_id}/ledger/checkpoints", status_code=201)
def sign_checkpoint(tenant_id: Write, db: DbDep, master_key: MasterKeyDep) -> CheckpointOut:
    """Sign a checkpoint of the log now (returns the existing one if the log has not grown)."""
    with db.transaction():
        return _checkpoint(service.checkpoint(db, tenant_id, master_key))


@router.get("/v1/tenants/{tenant_id}/ledger/checkpoints/latest")
def latest_checkpoint(tenant_id: Read, db: DbDep) -> Response:
    """The latest signed checkpoint as text/plain, as tlog clients fetch it."""
    latest = service.latest_checkpoint(db, tenant_id)
    if latest is None:
        raise NotFound(
            f"the ledger of tenant {tenant_id} has no checkpoint yet: sign one with"
            f" POST /v1/tenants/{tenant_id}/ledger/checkpoints"
        )
    return Response(latest.note, media_type="text/plain; charset=utf-8")


@router.get("/v1/tenants/{tenant_id}/ledger/proofs/inclusion")
def inclusion(
    tenant_id: Read,
    db: DbDep,
    index: Annotated[int, Query(ge=0)],
    size: Annotated[int | None, Query(ge=1, description="default: latest checkpoint")] = None,
) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of leaf ``index`` as a verifiable bundle."""
    return service.inclusion_bundle(db, tenant_id, index, size)


@router.get("/v1/tenants/{tenant_id}/ledger/proofs/consistency")
def consistency(
    tenant_id: Read,
    db: DbDep,
    old: Annotated[int, Query(ge=0)],
    new: Annotated[int, Query(ge=0)],
) -> dict[str, Any]:
    """An RFC 9162 consistency proof from tree size ``old`` to ``new`` as a bundle."""
    return service.consistency_bundle(db, tenant_id, old, new)


@router.get("/v1/tenants/{tenant_id}/ledger/leaves/{index}")
def leaf(tenant_id: Read, index: int, db: DbDep) -> LeafOut:
    """One leaf: its kind, record reference, hash and (if it holds no personal data) its
    canonical JSON."""
    got = service.get_leaf(db, tenant_id, index)
    return LeafOut(
        index=got.index,
        kind=got.kind,
        ref=got.ref,
        leaf_hash=got.leaf_hash.hex(),
        leaf_data=got.data.decode() if got.data is not None else None,
        recorded_at=got.recorded_at.isoformat(),
    )


@router.post("/v1/ledger/verify")
def verify_proof(body: VerifyRequest) -> VerifyResult:
    """Verify a proof against a signed checkpoint and a verifier key. Public: needs no key
    and reads no data, so anyone can check a claim without trusting this server's answer
    more than their own copy of the verifier key."""
    try:
        done = verify(body.model_dump(exclude_none=True), body.checkpoint, body.verifier_key)
    except BundleError as e:
        return VerifyResult(ok=False, reason=str(e))
    return VerifyResult(
        ok=True,
        origin=done.origin,
        tree_size=done.tree_size,
        root=done.root,
        statement=done.statement,
    )
