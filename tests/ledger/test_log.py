"""The tenant's log in a real DuckDB file, checked against an independent verifier.

The verifier here is written straight from the definitions of RFC 9162 §2.1 (MTH,
PATH, PROOF/SUBPROOF) by recursion over leaf lists and proof lists — it shares no code
with :mod:`quanyu.ledger.merkle`, which implements the RFC's iterative algorithms.
"""

from __future__ import annotations

import hashlib
import random
import threading

import pytest

from quanyu.engine import DuplicateKey, WriteConflict
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import NotFound, ValidationFailed
from quanyu.ledger import merkle, service, tiles
from quanyu.ledger.log import Leaf

T = "ten_ledger"


def H(data: bytes) -> bytes:  # noqa: N802 - the RFC's name
    return hashlib.sha256(data).digest()


def k_of(n: int) -> int:
    """The largest power of two smaller than n (RFC 9162 §2.1.1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf *data*, recursively, as the RFC defines it."""
    if not d:
        return H(b"")
    if len(d) == 1:
        return H(b"\x00" + d[0])
    k = k_of(len(d))
    return H(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (RFC 9162 §2.1.3.1)."""
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (RFC 9162 §2.1.4.1)."""
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = k_of(len(d))
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_root_from_path(m: int, n: int, leaf: bytes, path: list[bytes]) -> bytes:
    """Undo PATH: the root a path leads to, following the definition's recursion."""
    if n == 1:
        assert not path, "a path in a one-leaf tree is empty"
        return leaf
    assert path, "the path ended too soon"
    k = k_of(n)
    if m < k:
        return H(b"\x01" + ref_root_from_path(m, k, leaf, path[:-1]) + path[-1])
    return H(b"\x01" + path[-1] + ref_root_from_path(m - k, n - k, leaf, path[:-1]))


def ref_roots_from_subproof(
    m: int, n: int, b: bool, proof: list[bytes], old_root: bytes
) -> tuple[bytes, bytes]:
    """Undo SUBPROOF: (the old root, the new root) the proof leads to."""
    if m == n:
        if b:
            assert not proof
            return old_root, old_root
        assert len(proof) == 1
        return proof[0], proof[0]
    assert proof, "the proof ended too soon"
    k = k_of(n)
    if m <= k:
        old, new = ref_roots_from_subproof(m, k, b, proof[:-1], old_root)
        return old, H(b"\x01" + new + proof[-1])
    old, new = ref_roots_from_subproof(m - k, n - k, False, proof[:-1], old_root)
    return H(b"\x01" + proof[-1] + old), H(b"\x01" + proof[-1] + new)


def data(i: int) -> bytes:
    return b'{"i":%d}' % i


def fill(engine: DuckDBEngine, n: int, seed: int = 7, tenant: str = T) -> list[bytes]:
    """Append n leaves in batches of random sizes; their data."""
    rnd, out = random.Random(seed), []
    with engine.connect() as db:
        while len(out) < n:
            batch = [data(len(out) + j) for j in range(min(rnd.choice([1, 2, 3, 7, 300]),
                                                           n - len(out)))]  # fmt: skip
            leaves = [Leaf("test", f"t:{len(out) + j}", merkle.leaf_hash(x), x)
                      for j, x in enumerate(batch)]  # fmt: skip
            assert service.append_committed(db, tenant, leaves) == list(
                range(len(out), len(out) + len(batch))
            )
            out += batch
    return out


def test_every_proof_of_trees_up_to_64_matches_the_rfc_definitions(engine: DuckDBEngine) -> None:
    d = fill(engine, 64)
    with engine.connect() as db:
        for n in range(1, 65):
            root = service.root(db, T, n)
            assert root == ref_mth(d[:n])
            for m in range(n):
                proof = service.inclusion_proof(db, T, m, n)
                assert proof == ref_path(m, d[:n])
                leaf = merkle.leaf_hash(d[m])
                assert ref_root_from_path(m, n, leaf, proof) == root
                merkle.verify_inclusion(leaf, m, n, proof, root)
            for m in range(1, n + 1):
                proof = service.consistency_proof(db, T, m, n)
                old = ref_mth(d[:m])
                assert proof == (ref_subproof(m, d[:n], True) if m < n else [])
                assert ref_roots_from_subproof(m, n, True, proof, old) == (old, root)
                merkle.verify_consistency(m, n, old, root, proof)


@pytest.mark.slow
def test_proofs_across_tile_levels(engine: DuckDBEngine) -> None:
    """Past 65,536 leaves proofs are rebuilt from tiles of three levels; appends of every
    size, with and without the tile cache, still give the RFC's proofs."""
    hashes = [merkle.leaf_hash(data(i)) for i in range(70_000)]
    rnd = random.Random(3)
    with engine.connect() as db:
        n = 0
        while n < len(hashes):
            b = min(rnd.choice([1, 255, 256, 257, 5000, 20_000]), len(hashes) - n)
            service.append_committed(db, T, [Leaf("test", f"t:{i}", hashes[i])
                                             for i in range(n, n + b)])  # fmt: skip
            n += b
            if rnd.random() < 0.3:
                tiles.clear()
            size = rnd.randrange(1, n + 1)
            root = merkle.mth(hashes[:size])
            assert service.root(db, T, size) == root
            i = rnd.randrange(size)
            merkle.verify_inclusion(hashes[i], i, size, service.inclusion_proof(db, T, i, size),
                                    root)  # fmt: skip
            old = rnd.randrange(size + 1)
            proof = service.consistency_proof(db, T, old, size)
            merkle.verify_consistency(old, size, merkle.mth(hashes[:old]), root, proof)


def test_logs_are_per_tenant_and_empty_at_first(engine: DuckDBEngine) -> None:
    fill(engine, 5, tenant="ten_a")
    fill(engine, 3, tenant="ten_b")
    with engine.connect() as db:
        assert service.size(db, "ten_a") == 5 and service.size(db, "ten_b") == 3
        assert service.root(db, "ten_c", 0) == merkle.EMPTY_ROOT
        assert service.root(db, "ten_b", 3) == ref_mth([data(i) for i in range(3)])
        with pytest.raises(NotFound, match="has 3 leaves"):
            service.inclusion_proof(db, "ten_b", 0, 4)
        with pytest.raises(NotFound, match="below 3"):
            service.inclusion_proof(db, "ten_b", 3, 3)
        assert service.get_leaf(db, "ten_a", 4).data == data(4)
        with pytest.raises(NotFound):
            service.get_leaf(db, "ten_b", 4)


def test_bad_leaves_are_refused(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        with pytest.raises(ValidationFailed, match="kind 'bottle'"):
            service.append_committed(db, T, [Leaf("bottle", "x", merkle.leaf_hash(b"x"))])
        with pytest.raises(ValidationFailed, match="32-byte"):
            service.append_committed(db, T, [Leaf("code", "x", b"short")])
        with pytest.raises(ValidationFailed, match="not SHA-256"):
            service.append_committed(db, T, [Leaf("code", "x", merkle.leaf_hash(b"x"), b"y")])
        assert service.size(db, T) == 0


def test_an_append_rolled_back_leaves_no_trace(engine: DuckDBEngine) -> None:
    d = fill(engine, 300)
    with engine.connect() as db:
        with pytest.raises(RuntimeError), db.transaction():
            service.append(db, T, [Leaf("test", "gone", merkle.leaf_hash(b"gone"))] * 200)
            assert service.root(db, T, 500) != ref_mth(d)  # read (and cached) in the txn
            raise RuntimeError("the caller's transaction fails")
        assert service.size(db, T) == 300
        service.append_committed(db, T, [Leaf("test", "x", merkle.leaf_hash(data(300 + i)))
                                         for i in range(200)])  # fmt: skip
        d += [data(300 + i) for i in range(200)]
        assert service.root(db, T, 500) == ref_mth(d)


def test_concurrent_appends_are_dense(engine: DuckDBEngine) -> None:
    got: list[list[int]] = []
    conflicts: list[int] = []
    lock = threading.Lock()
    with engine.connect() as db:  # the log exists; the race is on its size
        service.append_committed(db, T, [Leaf("test", "first", merkle.leaf_hash(b"0"))])

    def worker(w: int) -> None:
        with engine.connect() as db:
            for b in range(10):
                leaves = [Leaf("test", f"w{w}:{b}:{j}", merkle.leaf_hash(b"w%d:%d:%d" % (w, b, j)))
                          for j in range(1 + (w + b) % 5)]  # fmt: skip
                if w % 2:  # through the per-log queue
                    idx = service.append_committed(db, T, leaves)
                else:  # in the caller's own transaction: races surface as conflicts
                    while True:
                        try:
                            with db.transaction():
                                idx = service.append(db, T, leaves)
                            break
                        except (WriteConflict, DuplicateKey):
                            with lock:
                                conflicts.append(w)
                with lock:
                    got.append(idx)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = sorted(i for idx in got for i in idx)
    assert every == list(range(1, len(every) + 1))
    assert all(idx == list(range(idx[0], idx[0] + len(idx))) for idx in got)
    with engine.connect() as db:
        n = service.size(db, T)
        assert n == len(every) + 1
        stored = [service.get_leaf(db, T, i).leaf_hash for i in range(n)]
        assert service.root(db, T, n) == merkle.mth(stored)
