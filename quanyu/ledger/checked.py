"""A record's inclusion in the tenant's Merkle log, proved and checked, for people who
read it in the console rather than run ``quanyu ledger verify``.

:func:`check_ref` finds the leaf logged for a record (``code-event:12``, ``consent:7``),
asks for its inclusion proof at the latest signed checkpoint and verifies it with
:func:`quanyu.ledger.verify.verify` against that checkpoint and the tenant's verifier key:
the same check an outside verifier makes, so "verified" here means the signed root covers
the leaf. A leaf newer than every checkpoint is reported as waiting for one. Read-only.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from quanyu.engine import Session
from quanyu.ledger import log, service
from quanyu.ledger.verify import BundleError, verify


class CheckedLeaf(BaseModel):
    """What was proved about one record's leaf."""

    ref: str
    found: bool = Field(description="the log holds a leaf for the record")
    index: int | None = None
    leaf_hash: str | None = None
    tree_size: int | None = Field(default=None, description="the tree the proof is for")
    proof: list[str] = Field(default_factory=list, description="hex hashes, leaf to root")
    checkpoint: str | None = Field(default=None, description="the signed checkpoint text")
    root: str | None = None
    verified: bool = False
    pending: bool = Field(default=False, description="no signed checkpoint covers it yet")
    statement: str | None = Field(default=None, description="what the verification showed")
    reason: str | None = Field(default=None, description="why it did not verify")


def check_ref(
    db: Session, tenant: str, ref: str, *, master_key: bytes, leaf_data: str | None = None
) -> CheckedLeaf:
    """Prove and verify the (first) leaf logged for ``ref``.

    Args:
        leaf_data: the record's canonical JSON as its owner holds it; when given, the
            check also fails unless the log's leaf hash is the hash of exactly this.
    """
    leaves = log.find_leaves(db, tenant, ref)
    if not leaves:
        return CheckedLeaf(ref=ref, found=False, reason=f"the log holds no leaf for {ref}")
    leaf = leaves[0]
    out = CheckedLeaf(ref=ref, found=True, index=leaf.index, leaf_hash=leaf.leaf_hash.hex())
    latest = service.latest_checkpoint(db, tenant)
    if latest is None or latest.tree_size <= leaf.index:
        out.pending = True
        out.tree_size = service.size(db, tenant)
        return out
    bundle = service.inclusion_bundle(db, tenant, leaf.index, latest.tree_size)
    if leaf_data is not None:
        bundle["leaf_data"] = leaf_data
    out.tree_size, out.proof, out.checkpoint = latest.tree_size, bundle["proof"], latest.note
    try:
        done = verify(bundle, latest.note, service.verifier_key(master_key, tenant))
    except BundleError as e:
        out.reason = str(e)
        return out
    out.verified, out.root, out.statement = True, done.root, done.statement
    return out
