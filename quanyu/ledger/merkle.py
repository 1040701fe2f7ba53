"""RFC 9162 Merkle tree hashing, proofs and their verification. Pure: no I/O.

Hashes follow RFC 9162 §2.1.1 exactly (SHA-256; a leaf is ``H(0x00 || data)``, an
interior node ``H(0x01 || left || right)``; a tree of ``n`` leaves splits at the largest
power of two smaller than ``n``), so any RFC 6962/9162 verifier — the Go
``transparency-dev/merkle`` package, Trillian, a CT monitor — accepts our proofs.

A proof is a list of hashes of subtrees. Every subtree a proof (or a root) names is a
range ``[lo, hi)`` of leaves where ``lo`` is a multiple of a power of two at least
``hi - lo``; such a range is a run of *complete* subtrees (perfect, aligned) of
decreasing size, named ``(level, index)``: the ``2**level`` leaves from
``index * 2**level``. The store keeps complete subtrees, so :func:`inclusion_ranges`,
:func:`consistency_ranges` and :func:`pieces` tell it what to read and :func:`fold`
puts the pieces back together; the verifiers only ever see hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) — the root of the empty tree (RFC 9162 §2.1.1)."""

Node = tuple[int, int]
"""A complete subtree ``(level, index)``: leaves ``[index << level, (index + 1) << level)``."""
Range = tuple[int, int]
"""Leaves ``[lo, hi)``."""


class ProofError(ValueError):
    """A proof does not verify; the message says which check failed."""


def leaf_hash(data: bytes) -> bytes:
    """The leaf hash of ``data``: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node's hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def level_up(hashes: Sequence[bytes]) -> list[bytes]:
    """The parents of consecutive pairs of sibling hashes (an odd last one is dropped)."""
    buf = b"".join(hashes[: len(hashes) & ~1])
    prefix = hashlib.sha256(b"\x01")
    out: list[bytes] = []
    for i in range(0, len(buf), 2 * HASH_SIZE):
        h = prefix.copy()
        h.update(buf[i : i + 2 * HASH_SIZE])
        out.append(h.digest())
    return out


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree from its 2**k leaf (or node) hashes."""
    level = list(hashes)
    while len(level) > 1:
        level = level_up(level)
    return level[0]


def mth(hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes, of any length (the empty list included)."""
    if not hashes:
        return EMPTY_ROOT
    return fold([perfect_root(hashes[lo:hi]) for lo, hi in _piece_ranges(0, len(hashes))])


def _piece_ranges(lo: int, hi: int) -> list[Range]:
    out = []
    while lo < hi:
        size = 1 << (hi - lo).bit_length() - 1
        while lo % size:
            size >>= 1
        out.append((lo, lo + size))
        lo += size
    return out


def pieces(lo: int, hi: int) -> list[Node]:
    """The complete subtrees making up leaves ``[lo, hi)``, left to right."""
    return [(((b - a).bit_length() - 1), a >> ((b - a).bit_length() - 1))
            for a, b in _piece_ranges(lo, hi)]  # fmt: skip


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its pieces' hashes (:func:`pieces` order): the RFC's
    split puts the largest piece on the left, so the pieces fold from the right."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def root_pieces(size: int) -> list[Node]:
    """The complete subtrees whose fold is the root of a tree of ``size`` leaves."""
    return pieces(0, size)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees of PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    lo, hi, out = 0, size, []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    return out[::-1]


def consistency_ranges(old: int, new: int) -> list[Range]:
    """The subtrees of PROOF(old, D[new]) (RFC 9162 §2.1.4.1), deepest first; empty
    when ``old`` is 0 or equals ``new``."""
    if not 0 <= old <= new:
        raise ValueError(f"cannot prove a tree of {old} leaves is a prefix of one of {new}")
    if old in (0, new):
        return []
    lo, hi, m, whole, out = 0, new, old, True, []
    while True:
        if m == hi - lo:
            if not whole:
                out.append((lo, hi))
            break
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    return out[::-1]


def _check_hash(name: str, h: bytes) -> None:
    if len(h) != HASH_SIZE:
        raise ProofError(f"{name} is {len(h)} bytes long; a SHA-256 hash is {HASH_SIZE}")


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1-4).

    Raises:
        ProofError: the index is outside the tree or the proof has the wrong length.
    """
    _check_hash("the leaf hash", leaf)
    if index >= size or index < 0:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for i, p in enumerate(proof):
        _check_hash(f"proof node {i}", p)
        if sn == 0:
            raise ProofError(f"the proof is too long: {len(proof)} nodes, node {i} is extra")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"the proof is too short: {len(proof)} nodes for index {index}"
                         f" in a tree of {size}")  # fmt: skip
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is leaf ``index`` of the tree of ``size`` with ``root``
    (RFC 9162 §2.1.3.2).

    Raises:
        ProofError: it is not, with the reason.
    """
    _check_hash("the root hash", root)
    if root_from_inclusion(leaf, index, size, proof) != root:
        raise ProofError(f"the inclusion proof of leaf {index} does not lead to the root of"
                         f" the tree of {size}: leaf, proof or root was altered")  # fmt: skip


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``old`` leaves with ``old_root`` is a prefix of the tree of
    ``new`` leaves with ``new_root`` (RFC 9162 §2.1.4.2). As in RFC 9162 and
    transparency-dev/merkle, equal sizes need an empty proof and equal roots, and the
    empty tree is a prefix of every tree (empty proof).

    Raises:
        ProofError: it is not, with the reason.
    """
    _check_hash("the old root hash", old_root)
    _check_hash("the new root hash", new_root)
    if not 0 <= old <= new:
        raise ProofError(f"tree size {old} is larger than {new}: a log never shrinks")
    if old == new or old == 0:
        if proof:
            raise ProofError(f"a consistency proof from {old} to {new} must be empty,"
                             f" got {len(proof)} nodes")  # fmt: skip
        if old == new and old_root != new_root:
            raise ProofError(f"two trees of {old} leaves have different roots: a fork")
        return
    if not proof:  # step 1
        raise ProofError(f"the consistency proof from {old} to {new} is empty")
    for i, p in enumerate(proof):
        _check_hash(f"proof node {i}", p)
    path = list(proof)
    if old & (old - 1) == 0:  # step 2: old is a power of two
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ProofError(f"the consistency proof from {old} to {new} is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # step 7
        raise ProofError(f"the consistency proof from {old} to {new} is too short")
    if fr != old_root:
        raise ProofError(f"the consistency proof does not lead to the old root of {old}")
    if sr != new_root:
        raise ProofError(f"the consistency proof does not lead to the new root of {new}")
