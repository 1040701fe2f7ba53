"""The tenant's Merkle log in the database: appending leaves, reading subtree hashes.

Leaf hashes are stored one row per leaf; the hashes of complete subtrees at levels 8, 16,
24, … are stored as they complete (the C2SP tlog-tiles layout with 256-wide tiles). Any
complete subtree's hash is rebuilt from one tile: the ≤ 256 hashes under it at the
nearest stored level, so a proof over ten million leaves reads a handful of short,
zone-map-pruned ranges and hashes a few hundred nodes — it never walks the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from quanyu.engine import Session
from quanyu.errors import NotFound, ValidationFailed
from quanyu.ids import utcnow
from quanyu.ledger import merkle, tiles
from quanyu.ledger import sql as q

KINDS = frozenset({"consent", "code", "redemption", "collectible", "test"})


@dataclass(frozen=True)
class Leaf:
    """A record to log: its kind, a reference to it (``consent:17``, a code event id) and
    its RFC 9162 leaf hash, SHA-256(0x00 || canonical JSON). ``data`` is that canonical
    JSON, given only when it holds no personal data: it is then stored and served, so
    anyone can recompute the hash; otherwise only the hash is kept."""

    kind: str
    ref: str
    leaf_hash: bytes
    data: bytes | None = None


@dataclass(frozen=True)
class StoredLeaf:
    """A leaf as the log holds it."""

    index: int
    kind: str
    ref: str
    leaf_hash: bytes
    data: bytes | None
    recorded_at: datetime


def _check(leaves: Sequence[Leaf]) -> None:
    unknown = {leaf.kind for leaf in leaves} - KINDS
    if unknown:
        raise ValidationFailed(
            f"leaf kind {sorted(unknown)[0]!r} is unknown; use one of {', '.join(sorted(KINDS))}"
        )
    for i, leaf in enumerate(leaves):
        if len(leaf.leaf_hash) != merkle.HASH_SIZE:
            raise ValidationFailed(
                f"leaf {i} ({leaf.ref}) has a {len(leaf.leaf_hash)}-byte hash; an RFC 9162"
                " leaf hash is the 32-byte SHA-256(0x00 || data)"
            )
        if leaf.data is not None and merkle.leaf_hash(leaf.data) != leaf.leaf_hash:
            raise ValidationFailed(
                f"leaf {i} ({leaf.ref}): its hash is not SHA-256(0x00 || data); pass the hash"
                " of exactly the data given"
            )


def size(db: Session, tenant: str) -> int:
    """How many leaves the tenant's log holds."""
    row = db.one(q.GET_SIZE, [tenant])
    return int(row[0]) if row else 0


def append(db: Session, tenant: str, leaves: Sequence[Leaf]) -> list[int]:
    """Append ``leaves`` in the caller's transaction and return their indices.

    Indices are dense per tenant. The tenant's ``ledger_state`` row is read and updated
    first, so a concurrent append in another transaction fails with
    :class:`~quanyu.engine.WriteConflict` (or, for a tenant's very first leaves, fails to
    commit) rather than leave a gap. In one process, hold
    :func:`quanyu.ledger.service.log_lock` around the transaction to queue instead;
    :func:`quanyu.ledger.service.append_committed` does both.

    Raises:
        ValidationFailed: a leaf has an unknown kind or a hash that is not 32 bytes.
    """
    if not leaves:
        return []
    _check(leaves)
    now = utcnow()
    row = db.one(q.GET_SIZE, [tenant])
    n0 = int(row[0]) if row else 0
    n = n0 + len(leaves)
    if row is None:
        db.execute(q.INSERT_STATE, [tenant, n, now])
    else:
        db.execute(q.SET_SIZE, [n, now, tenant, n0])
    hashes = [leaf.leaf_hash for leaf in leaves]
    table = pa.table(
        {
            "tenant_id": pa.array([tenant] * len(leaves), pa.string()),
            "idx": pa.array(range(n0, n), pa.int64()),
            "kind": pa.array([leaf.kind for leaf in leaves], pa.string()),
            "ref": pa.array([leaf.ref for leaf in leaves], pa.string()),
            "leaf_hash": pa.array(hashes, pa.binary()),
            "data": pa.array(
                [leaf.data.decode() if leaf.data is not None else None for leaf in leaves],
                pa.string(),
            ),
            "recorded_at": pa.array([now] * len(leaves), pa.timestamp("us")),
        }
    )
    db.with_table("staged_ledger_leaves", table, q.INSERT_LEAVES)
    tiles.write(db, tenant, n0, hashes)
    return list(range(n0, n))


def _range_hashes(
    db: Session, tenant: str, ranges: Sequence[merkle.Range], tree_size: int
) -> list[bytes]:
    """The hash of each leaf range (each a run of complete subtrees)."""
    parts = [merkle.pieces(lo, hi) for lo, hi in ranges]
    got = tiles.hashes(db, tenant, {p for ps in parts for p in ps}, tree_size)
    return [merkle.fold([got[p] for p in ps]) for ps in parts]


def _within(db: Session, tenant: str, tree_size: int) -> None:
    current = size(db, tenant)
    if not 0 <= tree_size <= current:
        raise NotFound(
            f"the ledger of tenant {tenant} has {current} leaves, not {tree_size}:"
            f" ask for a tree size from 0 to {current}"
        )


def root(db: Session, tenant: str, tree_size: int) -> bytes:
    """The root hash of the log when it had ``tree_size`` leaves.

    Raises:
        NotFound: the log never had that many leaves.
    """
    _within(db, tenant, tree_size)
    return merkle.fold(_range_hashes(db, tenant, [(0, tree_size)], tree_size))


def inclusion_proof(db: Session, tenant: str, index: int, tree_size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``tree_size``.

    Raises:
        NotFound: the tree size is beyond the log, or the index beyond the tree.
    """
    _within(db, tenant, tree_size)
    if not 0 <= index < tree_size:
        raise NotFound(
            f"leaf {index} is not in the tree of {tree_size} leaves of tenant {tenant}:"
            f" ask for an index below {tree_size}"
        )
    return _range_hashes(db, tenant, merkle.inclusion_ranges(index, tree_size), tree_size)


def consistency_proof(db: Session, tenant: str, old: int, new: int) -> list[bytes]:
    """The RFC 9162 consistency proof that the tree of ``old`` leaves is a prefix of the
    tree of ``new`` leaves.

    Raises:
        NotFound: ``new`` is beyond the log. ValidationFailed: ``old`` > ``new``.
    """
    _within(db, tenant, new)
    if not 0 <= old <= new:
        raise ValidationFailed(f"old tree size {old} must be from 0 to the new size {new}")
    return _range_hashes(db, tenant, merkle.consistency_ranges(old, new), new)


def get_leaf(db: Session, tenant: str, index: int) -> StoredLeaf:
    """One leaf by its index.

    Raises:
        NotFound: the log has no such leaf.
    """
    row = db.one(q.GET_LEAF, [tenant, index])
    if row is None:
        raise NotFound(
            f"the ledger of tenant {tenant} has no leaf {index}; it has {size(db, tenant)}"
        )
    return _leaf(row)


def find_leaves(db: Session, tenant: str, ref: str) -> list[StoredLeaf]:
    """The leaves logged for one record reference, oldest first."""
    return [_leaf(r) for r in db.execute(q.FIND_LEAF, [tenant, ref])]


def _leaf(r: tuple[Any, ...]) -> StoredLeaf:
    data = r[4].encode() if r[4] is not None else None
    return StoredLeaf(int(r[0]), r[1], r[2], bytes(r[3]), data, r[5])
