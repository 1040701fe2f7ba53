"""Ledger figures: appending leaves in batches, and proofs in a ten-million-leaf log.

One tenant's log in a fresh DuckDB file grows to ``--leaves`` leaves in batches of
``--batch``, each batch appended and committed in its own transaction (leaf hashes are
made before the clock starts: producers hash their own canonical JSON). Baseline: the
same batches inserted into the leaf table alone, without the tree's tiles.

Then inclusion proofs at the full size: right after a restart (the tile cache emptied
before each proof), of random leaves never proven before, and of a warm working set. Each proof is
verified against the root (not timed). Also a consistency proof and a signed checkpoint.
Run: python benchmarks/bench_ledger.py [--leaves 10000000] [--batch 100000] [--proofs 200]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from quanyu.config import Settings  # noqa: E402
from quanyu.ledger import merkle, service, tiles  # noqa: E402
from quanyu.ledger.log import Leaf  # noqa: E402
from quanyu.store import open_store  # noqa: E402

TENANT = "ten_bench"
APPEND_TARGET = 100_000  # leaves/s
PROOF_TARGET_MS = 5.0


def batch_leaves(start: int, n: int) -> list[Leaf]:
    return [Leaf("code", f"code:{i}", hashlib.sha256(b"\x00%d" % i).digest())
            for i in range(start, start + n)]  # fmt: skip


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leaves", type=int, default=10_000_000)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--proofs", type=int, default=200)
    ap.add_argument("--data-dir", type=Path, help="keep the database here; reuse its log")
    args = ap.parse_args()
    print(f"# {machine()}; {args.leaves:,} leaves in batches of {args.batch:,}")
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(Settings(data_dir=args.data_dir or Path(tmp) / "data"))
        spent = base_spent = 0.0
        base_n = 0
        with engine.connect() as db:
            done = service.size(db, TENANT)
            for start in range(done, args.leaves, args.batch):
                leaves = batch_leaves(start, min(args.batch, args.leaves - start))
                t = time.perf_counter()
                service.append_committed(db, TENANT, leaves)
                spent += time.perf_counter() - t
                if start < done + 10 * args.batch:  # baseline on the first ten batches
                    base_spent += _plain_insert(db, start, leaves)
                    base_n += len(leaves)
            if spent:
                rate, base_rate = (args.leaves - done) / spent, base_n / base_spent
                print(f"ledger_append_leaves_per_s={rate:.0f} (target >= {APPEND_TARGET}:"
                      f" x{rate / APPEND_TARGET:.2f}; baseline leaf rows only {base_rate:.0f}/s,"
                      f" ratio {rate / base_rate:.2f})")  # fmt: skip
            n = service.size(db, TENANT)
            root = service.root(db, TENANT, n)
            rnd = random.Random(1)
            # restart: the first proof with the cache empty (not warmed up: the worst case);
            # random: leaves never asked before (their leaf tile read from the database);
            # warm: a working set of 20 leaves asked again and again (recent scans)
            tiles.clear()
            t = time.perf_counter()
            service.warm(db, TENANT)  # what `quanyu serve` does at start
            print(f"ledger_tile_warm_up_ms={(time.perf_counter() - t) * 1000:.1f}")
            for label in ("restart", "random", "warm"):
                times = []
                picks = [rnd.randrange(n) for _ in range(args.proofs)]
                if label == "warm":
                    picks = [picks[i % 20] for i in range(args.proofs)]
                for i in picks[: 20 if label == "restart" else None]:
                    if label == "restart":
                        tiles.clear()
                    t = time.perf_counter()
                    proof = service.inclusion_proof(db, TENANT, i, n)
                    times.append((time.perf_counter() - t) * 1000)
                    leaf = hashlib.sha256(b"\x00%d" % i).digest()
                    merkle.verify_inclusion(leaf, i, n, proof, root)
                p50, p99 = statistics.median(times), pct(times, 99)
                print(f"ledger_inclusion_proof_{label}_ms p50={p50:.2f} p99={p99:.2f}"
                      f" (n={n:,}, {len(proof)} nodes, {len(times)} proofs; target <="
                      f" {PROOF_TARGET_MS} ms: p50 x{PROOF_TARGET_MS / p50:.2f})")  # fmt: skip
            tiles.clear()
            t = time.perf_counter()
            old = n // 3 + 12_345
            proof = service.consistency_proof(db, TENANT, old, n)
            cons_ms = (time.perf_counter() - t) * 1000
            merkle.verify_consistency(old, n, service.root(db, TENANT, old), root, proof)
            print(f"ledger_consistency_proof_cold_ms={cons_ms:.2f} ({old:,} -> {n:,})")
            t = time.perf_counter()
            with db.transaction():
                service.checkpoint(db, TENANT, bytes(range(32)))
            print(f"ledger_checkpoint_sign_ms={(time.perf_counter() - t) * 1000:.2f}")
        engine.close()


def _plain_insert(db, start: int, leaves: list[Leaf]) -> float:  # type: ignore[no-untyped-def]
    """Seconds to insert the same leaf rows under another tenant, without tiles."""
    import pyarrow as pa

    from quanyu.ids import utcnow
    from quanyu.ledger import sql as q

    now = utcnow()
    t = time.perf_counter()
    table = pa.table({
        "tenant_id": pa.array(["ten_baseline"] * len(leaves), pa.string()),
        "idx": pa.array(range(start, start + len(leaves)), pa.int64()),
        "kind": pa.array([x.kind for x in leaves], pa.string()),
        "ref": pa.array([x.ref for x in leaves], pa.string()),
        "leaf_hash": pa.array([x.leaf_hash for x in leaves], pa.binary()),
        "data": pa.nulls(len(leaves), pa.string()),
        "recorded_at": pa.array([now] * len(leaves), pa.timestamp("us")),
    })  # fmt: skip
    with db.transaction():
        db.with_table("staged_ledger_leaves", table, q.INSERT_LEAVES)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
