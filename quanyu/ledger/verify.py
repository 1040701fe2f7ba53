"""Offline verification of proof bundles against a signed checkpoint. Pure: no I/O.

A *bundle* is the JSON ``quanyu ledger prove`` writes and the API serves: an inclusion
proof (``{"type": "inclusion", "index", "tree_size", "leaf_hash" or "leaf_data",
"proof": [hex, …]}``) or a consistency proof (``{"type": "consistency", "old_size",
"old_root", "tree_size", "proof"}``, optionally with the signed ``old_checkpoint``),
hashes in lower-case hex. Either is checked against a checkpoint signed by the log's
key, so trusting the verifier key is all it takes: the checkpoint's size and root come
from the signed text, never from the bundle.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

from quanyu.ledger import merkle
from quanyu.ledger.checkpoint import Checkpoint, CheckpointError, open_signed


class BundleError(ValueError):
    """A bundle is malformed or does not verify; the message says why."""


@dataclass(frozen=True)
class Verified:
    """What a successful verification established."""

    origin: str
    tree_size: int
    root: str
    statement: str


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"{what} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as e:
        raise BundleError(f"{what} is not hex: {value[:20]!r}") from e


def _int(bundle: dict[str, Any], key: str) -> int:
    value = bundle.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BundleError(f"the bundle's {key!r} must be a non-negative integer")
    return value


def leaf_of(bundle: dict[str, Any]) -> bytes:
    """The leaf hash a bundle proves: its ``leaf_hash``, or the hash of its ``leaf_data``
    (the leaf's canonical JSON, as text) — both given must agree."""
    data = bundle.get("leaf_data")
    given = _hex(bundle["leaf_hash"], "leaf_hash") if bundle.get("leaf_hash") is not None else None
    if data is None and given is None:
        raise BundleError("the bundle names no leaf: give leaf_hash (hex) or leaf_data")
    if data is not None:
        if not isinstance(data, str):
            raise BundleError("leaf_data must be the leaf's canonical JSON as a string")
        computed = merkle.leaf_hash(data.encode())
        if given is not None and given != computed:
            raise BundleError("leaf_hash is not SHA-256(0x00 || leaf_data): the leaf was altered")
        return computed
    assert given is not None
    return given


def verify(bundle: dict[str, Any], checkpoint_text: str, verifier_key: str) -> Verified:
    """Check a bundle against a checkpoint signed by ``verifier_key``.

    Raises:
        BundleError: the checkpoint, the key or the proof fails, with the reason.
    """
    try:
        cp = open_signed(checkpoint_text, verifier_key)
    except CheckpointError as e:
        raise BundleError(f"checkpoint: {e}") from e
    kind = bundle.get("type", "inclusion")
    try:
        proof = [_hex(h, f"proof node {i}") for i, h in enumerate(bundle.get("proof") or [])]
        if kind == "inclusion":
            return _inclusion(bundle, cp, proof)
        if kind == "consistency":
            return _consistency(bundle, cp, proof, verifier_key)
    except (KeyError, binascii.Error) as e:
        raise BundleError(f"the bundle lacks {e}") from e
    except merkle.ProofError as e:
        raise BundleError(str(e)) from e
    raise BundleError(f"bundle type {kind!r} is neither 'inclusion' nor 'consistency'")


def _size(bundle: dict[str, Any], cp: Checkpoint) -> None:
    size = bundle.get("tree_size", cp.size)
    if size != cp.size:
        raise BundleError(
            f"the proof is for a tree of {size} leaves but the checkpoint is for {cp.size}:"
            " ask for a proof at the checkpoint's size"
        )


def _inclusion(bundle: dict[str, Any], cp: Checkpoint, proof: list[bytes]) -> Verified:
    _size(bundle, cp)
    index = _int(bundle, "index")
    leaf = leaf_of(bundle)
    merkle.verify_inclusion(leaf, index, cp.size, proof, cp.root)
    return Verified(cp.origin, cp.size, cp.root.hex(),
                    f"leaf {index} ({leaf.hex()}) is in the log of {cp.size} leaves")  # fmt: skip


def _consistency(bundle: dict[str, Any], cp: Checkpoint, proof: list[bytes], key: str) -> Verified:
    _size(bundle, cp)
    old = _int(bundle, "old_size")
    old_root = _hex(bundle["old_root"], "old_root")
    if bundle.get("old_checkpoint") is not None:  # the old root is then signed too
        try:
            before = open_signed(str(bundle["old_checkpoint"]), key)
        except CheckpointError as e:
            raise BundleError(f"old checkpoint: {e}") from e
        if (before.origin, before.size, before.root) != (cp.origin, old, old_root):
            raise BundleError("old_size and old_root differ from the old checkpoint's")
    merkle.verify_consistency(old, cp.size, old_root, cp.root, proof)
    return Verified(cp.origin, cp.size, cp.root.hex(),
                    f"the log of {old} leaves ({old_root.hex()}) is a prefix of the log of"
                    f" {cp.size} leaves")  # fmt: skip
