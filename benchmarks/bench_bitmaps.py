"""Bitmap index: build and query 10M profiles in memory (``quanyu.audiences.bitmaps``).

Profiles are 10M ids drawn from range(30M). Columns: ``spend`` (lognormal, 70% present),
``tier`` (5 values, 90% present), ``brand`` (a set of 1-3 of 6 brands per profile) and two
boolean tags, ``vip`` (30% true) and ``churned`` (10% true). Each query kind runs 200 times
with random arguments (random quantiles, values and brand pairs), so the bucket bitmaps
it touches are not all hot in cache. Also prints memory against speed for other bucket
layouts of ``spend``, and the cost of ``to_bytes``/``from_bytes``.
Run: python benchmarks/bench_bitmaps.py [--profiles 10000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
from pyroaring import BitMap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from quanyu.audiences.bitmaps import Layout, ProfileIndex, build_numbers  # noqa: E402

TIERS = np.array(["bronze", "silver", "gold", "platinum", "diamond"], dtype=object)
BRANDS = np.array(["A", "B", "C", "D", "E", "F"], dtype=object)
T = TypeVar("T")


def timed(label: str, fn: Callable[[], T]) -> T:
    started = time.perf_counter()
    out = fn()
    print(f"bitmaps.build.{label} ms={(time.perf_counter() - started) * 1000:.0f}", flush=True)
    return out


def report(label: str, run: Callable[[int], BitMap], queries: int) -> None:
    """Run ``run(i)`` for i in range(queries); print wall p50/p99, CPU p50 and mean size.

    CPU time is printed beside wall time because a shared machine's neighbours inflate
    the wall clock (the process waits for a core) but not the CPU time.
    """
    times, cpu, sizes = [], [], []
    for i in range(queries):
        started, started_cpu = time.perf_counter(), time.process_time()
        found = run(i)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        sizes.append(len(found))
    print(
        f"bitmaps.query.{label} p50_ms={np.percentile(times, 50):.2f}"
        f" p99_ms={np.percentile(times, 99):.2f} max_ms={max(times):.2f}"
        f" cpu_p50_ms={np.percentile(cpu, 50):.2f} mean_len={np.mean(sizes):.0f}",
        flush=True,
    )


def compare_layout(
    layout: Layout, ids: np.ndarray, spend: np.ndarray, cuts: np.ndarray, pairs: np.ndarray
) -> None:
    """Build ``spend`` with another layout; print its bitmap memory and query times."""
    name = f"{layout.coarse}x{layout.fine}"
    started = time.perf_counter()
    col = build_numbers("spend", ids, spend, layout)
    built = (time.perf_counter() - started) * 1000
    mib = (col.memory_bytes() - col.values.nbytes - col.ids.nbytes) / 2**20
    print(f"bitmaps.layout.{name} build_ms={built:.0f} bitmaps_mib={mib:.1f}")
    gt = np.searchsorted(col.values, cuts, "right")
    report(f"layout_{name}.gt", lambda i: col.rows(int(gt[i]), len(col.ids)), len(cuts))
    lo = np.searchsorted(col.values, pairs[:, 0], "left")
    hi = np.searchsorted(col.values, pairs[:, 1], "right")
    report(f"layout_{name}.between", lambda i: col.rows(int(lo[i]), int(hi[i])), len(pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    n, q = args.profiles, args.queries
    print(f"# {machine()}; {n} profiles among ids < {3 * n}, {q} queries per kind")
    rng = np.random.default_rng(5)
    ids = rng.choice(3 * n, n, replace=False).astype(np.int64)
    has_spend = rng.random(n) < 0.7
    spend = np.round(rng.lognormal(5, 1.5, int(has_spend.sum())), 2)
    tiers = TIERS[rng.integers(0, 5, n)]
    tiers[rng.random(n) < 0.1] = None
    per = rng.integers(1, 4, n)
    first = np.repeat(rng.integers(0, 6, n), per)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(per) - per, per)
    brand_ids, brands = np.repeat(ids, per), BRANDS[(first + offset) % 6]
    vip, churned = rng.random(n) < 0.3, rng.random(n) < 0.1

    ix = timed("universe", lambda: ProfileIndex(ids))
    timed("spend_numbers", lambda: ix.add_numbers("spend", ids[has_spend], spend))
    timed("tier_values_object_array", lambda: ix.add_values("tier", ids, tiers))
    arrow_tiers = pa.array(tiers, from_pandas=True).dictionary_encode()
    timed("tier_values_arrow_dictionary", lambda: ix.add_values("tier", ids, arrow_tiers))
    timed(f"brand_set_{len(brands)}_rows", lambda: ix.add_set("brand", brand_ids, brands))
    timed("vip_bool", lambda: ix.add_values("vip", ids, vip))
    timed("churned_bool", lambda: ix.add_values("churned", ids, churned))
    for name, figures in ix.stats()["columns"].items():
        print(f"bitmaps.memory.{name} mib={figures['memory_bytes'] / 2**20:.1f}")
    print(f"bitmaps.memory.total mib={ix.memory_bytes() / 2**20:.1f}")

    cuts = np.quantile(spend, rng.random(q))
    report("compare_gt", lambda i: ix.compare("spend", ">", float(cuts[i])), q)
    report("compare_le", lambda i: ix.compare("spend", "<=", float(cuts[i])), q)
    pairs = np.sort(np.quantile(spend, rng.random((q, 2))), axis=1)
    report("between", lambda i: ix.between("spend", *map(float, pairs[i])), q)
    report("equals_number", lambda i: ix.equals("spend", float(rng.choice(spend[:1000]))), q)
    picks = rng.integers(0, 5, q)
    report("equals", lambda i: ix.equals("tier", str(TIERS[picks[i]])), q)
    report("not_equals", lambda i: ix.compare("tier", "!=", str(TIERS[picks[i]])), q)
    duos = [list(rng.choice(BRANDS, 2, replace=False)) for _ in range(q)]
    report("isin", lambda i: ix.isin("brand", duos[i]), q)
    highs = np.quantile(spend, 0.5 + rng.random(q) / 2)

    def combined(i: int) -> BitMap:
        tier = str(TIERS[picks[i]])
        found = ix.isin("brand", duos[i]) & ix.equals("tier", tier)
        found &= ix.compare("spend", ">", float(highs[i]))
        return (found & ix.equals("vip", True)) - ix.equals("churned", True)

    report("combined", combined, q)
    fixed = (
        ix.isin("brand", ["A", "B"])
        & ix.equals("tier", "gold")
        & ix.compare("spend", ">", 500)
        & ix.equals("vip", True)
    ) - ix.equals("churned", True)
    print(f"bitmaps.query.combined_fixed len={len(fixed)}")

    started = time.perf_counter()
    data = ix.to_bytes()
    dumped = time.perf_counter()
    back = ProfileIndex.from_bytes(data)
    loaded = time.perf_counter()
    assert back.compare("spend", ">", 500) == ix.compare("spend", ">", 500)
    print(
        f"bitmaps.bytes mib={len(data) / 2**20:.1f} to_bytes_ms={(dumped - started) * 1000:.0f}"
        f" from_bytes_ms={(loaded - dumped) * 1000:.0f}"
    )
    del data, back

    # memory against speed: other layouts of the same spend column
    spend_ids = ids[has_spend].astype(np.uint32)
    for layout in (Layout(1, 1, 1 << 17), Layout(4, 4), Layout(8, 8), Layout(16, 8)):
        compare_layout(layout, spend_ids, spend, cuts, pairs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bitmaps.peak_rss_mib={peak:.0f}")


if __name__ == "__main__":
    main()
