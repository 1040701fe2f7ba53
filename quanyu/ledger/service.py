"""The ledger's service functions: what the API, the CLI and other capabilities call.

Producers (code lifecycle, redemptions, consent) append leaves with :func:`append` in
the transaction that records the thing the leaf stands for, so a record and its leaf
commit together or not at all. Checkpoints are signed on demand and by the
:class:`~quanyu.ledger.checkpointer.Checkpointer` inside ``quanyu serve``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from quanyu.engine import DuplicateKey, Session, WriteConflict
from quanyu.errors import Conflict
from quanyu.ids import utcnow
from quanyu.ledger import checkpoint as cpt
from quanyu.ledger import log, tiles
from quanyu.ledger import sql as q
from quanyu.ledger.log import Leaf, StoredLeaf, consistency_proof, inclusion_proof, root, size

__all__ = [
    "Leaf", "StoredLeaf", "SignedCheckpoint", "append", "append_committed", "size", "root",
    "inclusion_proof", "consistency_proof", "checkpoint", "latest_checkpoint", "get_leaf",
    "inclusion_bundle", "consistency_bundle", "verifier_key", "logs", "log_lock", "warm",
]  # fmt: skip

RETRIES = 20
_creating = threading.Lock()
_appending: dict[str, threading.Lock] = {}


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint as stored: size, root and the signed note text."""

    tree_size: int
    root: bytes
    note: str
    signed_at: datetime


def append(db: Session, tenant: str, leaves: list[Leaf]) -> list[int]:
    """Append leaves in the caller's transaction; their indices (see :func:`log.append`)."""
    return log.append(db, tenant, leaves)


def append_committed(db: Session, tenant: str, leaves: list[Leaf]) -> list[int]:
    """Append leaves in a transaction of their own. Appends through here queue on a lock
    per log (one process owns the database), and one racing an append made in another
    caller's transaction is retried; the log stays dense either way.

    Raises:
        Conflict: the log stayed contended through every retry.
    """
    if leaves:
        _ensure_log(db, tenant)
    lock = log_lock(tenant)
    for attempt in range(RETRIES):
        try:
            with lock, db.transaction():
                return log.append(db, tenant, leaves)
        except (WriteConflict, DuplicateKey):
            time.sleep(0.005 * (attempt + 1))
    raise Conflict(
        f"appending to the ledger of tenant {tenant} lost {RETRIES} races in a row to"
        " concurrent appends; retry, or batch the leaves into fewer appends"
    )


def log_lock(tenant: str) -> threading.Lock:
    """The lock appends to ``tenant``'s log queue on in this process. Hold it around a
    transaction that calls :func:`append` (and commit before releasing it) so the
    transaction never races :func:`append_committed` for the log's size."""
    with _creating:
        return _appending.setdefault(tenant, threading.Lock())


def warm(db: Session, tenant: str) -> None:
    """Load the log's upper tiles now (``quanyu serve`` does at start), so the first
    proof a client asks for is as fast as the rest."""
    tiles.warm(db, tenant)


def appending(db: Session, tenant: str) -> threading.Lock:
    """Make ready for a transaction that appends to ``tenant``'s log: creates the log if
    it is new and returns the lock to hold around the transaction (commit inside it)."""
    _ensure_log(db, tenant)
    return log_lock(tenant)


def _ensure_log(db: Session, tenant: str) -> None:
    """Create the tenant's counter row on its own, before any append transaction: two
    first appends would otherwise both insert it and one would fail only at commit. One
    process owns the database, so a lock here is enough."""
    if db.one(q.GET_SIZE, [tenant]) is not None:
        return
    with _creating:
        db.execute(q.ENSURE_STATE, [tenant, utcnow()])


def get_leaf(db: Session, tenant: str, index: int) -> StoredLeaf:
    """One leaf (raises NotFound past the end)."""
    return log.get_leaf(db, tenant, index)


def logs(db: Session) -> list[tuple[str, int]]:
    """Every tenant that has a log, with its size."""
    return [(r[0], int(r[1])) for r in db.execute(q.LIST_LOGS)]


def verifier_key(master_key: bytes, tenant: str) -> str:
    """The published key that verifies the tenant's checkpoints."""
    return cpt.tenant_verifier_key(master_key, tenant)


def _stored(row: tuple[Any, ...]) -> SignedCheckpoint:
    return SignedCheckpoint(int(row[0]), bytes(row[1]), row[2], row[3])


def latest_checkpoint(db: Session, tenant: str) -> SignedCheckpoint | None:
    """The tenant's newest signed checkpoint, if any was signed."""
    row = db.one(q.LATEST_CHECKPOINT, [tenant])
    return _stored(row) if row else None


def checkpoint(db: Session, tenant: str, master_key: bytes) -> SignedCheckpoint:
    """Sign a checkpoint of the log as it is now (the empty log included) and keep it.
    A checkpoint of a size already signed is returned as it was (Ed25519 signatures are
    deterministic, so signing again would give the same text anyway)."""
    current = size(db, tenant)
    row = db.one(q.GET_CHECKPOINT, [tenant, current])
    if row:
        return _stored(row)
    head = root(db, tenant, current)
    name = cpt.origin(tenant)
    note = cpt.sign(cpt.Checkpoint(name, current, head), name, cpt.signing_key(master_key, tenant))
    now = utcnow()
    try:
        db.execute(q.INSERT_CHECKPOINT, [tenant, current, head, note, now])
    except (DuplicateKey, WriteConflict):  # a concurrent signer stored the same size first
        row = db.one(q.GET_CHECKPOINT, [tenant, current])
        if row is None:
            raise
        return _stored(row)
    return SignedCheckpoint(current, head, note, now)


def inclusion_bundle(
    db: Session, tenant: str, index: int, tree_size: int | None = None
) -> dict[str, Any]:
    """An inclusion proof as a bundle (:mod:`quanyu.ledger.verify`), at ``tree_size`` or,
    by default, at the latest checkpoint's size (the log's size if none is signed yet);
    the bundle carries that checkpoint when the sizes match."""
    latest = latest_checkpoint(db, tenant)
    if tree_size is None:
        tree_size = latest.tree_size if latest and latest.tree_size > index else size(db, tenant)
    proof = inclusion_proof(db, tenant, index, tree_size)
    leaf = log.get_leaf(db, tenant, index)
    return {
        "type": "inclusion",
        "origin": cpt.origin(tenant),
        "index": index,
        "tree_size": tree_size,
        "kind": leaf.kind,
        "ref": leaf.ref,
        "leaf_hash": leaf.leaf_hash.hex(),
        "leaf_data": leaf.data.decode() if leaf.data is not None else None,
        "proof": [h.hex() for h in proof],
        "checkpoint": _note_at(db, tenant, tree_size),
    }


def consistency_bundle(db: Session, tenant: str, old: int, new: int) -> dict[str, Any]:
    """A consistency proof as a bundle, with the checkpoints of both sizes when signed."""
    proof = consistency_proof(db, tenant, old, new)
    return {
        "type": "consistency",
        "origin": cpt.origin(tenant),
        "old_size": old,
        "old_root": root(db, tenant, old).hex(),
        "tree_size": new,
        "root": root(db, tenant, new).hex(),
        "proof": [h.hex() for h in proof],
        "old_checkpoint": _note_at(db, tenant, old),
        "checkpoint": _note_at(db, tenant, new),
    }


def _note_at(db: Session, tenant: str, tree_size: int) -> str | None:
    row = db.one(q.GET_CHECKPOINT, [tenant, tree_size])
    return str(row[2]) if row else None
