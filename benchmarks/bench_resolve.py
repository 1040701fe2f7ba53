"""Identity graph full rebuild: 10M identifiers, 10M edges, limits and junk hubs.

The generator is seeded and heavy-tailed: most people have 1-3 identifiers, a few have
dozens; family tablets and store demo phones are shared between people (the limits
must refuse those links); three junk identifiers (phone 13800000000, an all-zero device
id, test@test.com) are each linked to 100k people (at 10M), and the blocked values rule
must drop them before the graph. The rebuild (blocked filter + ``resolve``)
and scipy's connected components alone on the same filtered edges each run in a child
process that measures its own peak RSS; the same run prints both and their ratio.
The online ``IncrementalGraph`` is timed on a 1M/1M graph fed in batches of 1,000.
Run: python benchmarks/bench_resolve.py [--ids 10000000] [--edges 10000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from quanyu.identity.components import IncrementalGraph, resolve, without_blocked  # noqa: E402

BUCKETS = ["phone", "unionid", "device_id", "anonymous_id", "openid", "email"]
BUCKETS += [f"member_id@brand{b}" for b in range(8)]
PHONE, UNIONID, DEVICE, ANON, OPENID, EMAIL, MEMBER = range(7)
LIMITS = np.array([2, 1, 0, 0, 0, 0] + [1] * 8, np.int32)
# a person's identifiers by position; positions >= 7 cycle device, anonymous, openid, member
PATTERN = np.array([UNIONID, PHONE, MEMBER, OPENID, DEVICE, ANON, PHONE])
CYCLE = np.array([DEVICE, ANON, OPENID, MEMBER])
TIMEOUT_S = 900


def generate(n_ids: int, n_edges: int, seed: int = 11) -> dict[str, np.ndarray]:
    """Edges in arrival order, per-node buckets and the blocked mask (see module doc)."""
    rng = np.random.default_rng(seed)
    n_tablets, n_demo, n_hubs = n_ids // 400, n_ids // 2000, 3
    n_person = n_ids - n_tablets - n_demo - n_hubs
    est = n_person // 2 + 1000
    sizes = np.where(
        rng.random(est) < 0.03,
        np.minimum(4 + (rng.pareto(1.2, est) * 4).astype(np.int64), 80),
        rng.choice([1, 2, 3], est, p=[0.45, 0.35, 0.2]),
    )
    cum = np.cumsum(sizes)
    last = int(np.searchsorted(cum, n_person))
    sizes = sizes[: last + 1]
    sizes[-1] -= cum[last] - n_person
    sizes = sizes[sizes > 0]
    first = np.cumsum(sizes) - sizes
    start, size = np.repeat(first, sizes), np.repeat(sizes, sizes)
    pos = np.arange(n_person) - start

    bucket = np.where(pos < 7, PATTERN[np.minimum(pos, 6)], CYCLE[(pos - 7) % 4])
    k = np.where(pos == 2, 0, (pos - 7) // 4 + 1)
    brand = (np.repeat(rng.integers(0, 8, len(sizes)), sizes) + k) % 8
    bucket = np.where(bucket == MEMBER, np.where(k < 8, MEMBER + brand, OPENID), bucket)
    single = size == 1
    bucket[single] = rng.choice(
        [ANON, PHONE, DEVICE, OPENID], int(single.sum()), p=[0.5, 0.2, 0.15, 0.15]
    )
    bucket = np.concatenate(
        [bucket, [DEVICE] * n_tablets, [PHONE] * n_demo, [PHONE, DEVICE, EMAIL]]
    )

    def someone(count: int) -> np.ndarray:
        """A random identifier of a random person with two or more identifiers."""
        multi = np.flatnonzero(sizes > 1)
        who = multi[rng.integers(0, len(multi), count)]
        return first[who] + (rng.random(count) * sizes[who]).astype(np.int64)

    def shared(owner0: int, n_shared: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        fan = rng.integers(lo, hi + 1, n_shared)
        return np.repeat(np.arange(owner0, owner0 + n_shared), fan), someone(int(fan.sum()))

    linked = np.flatnonzero(pos > 0)
    parts = [(linked, start[linked] + (rng.random(len(linked)) * pos[linked]).astype(np.int64))]
    parts.append(shared(n_person, n_tablets, 2, 4))
    parts.append(shared(n_person + n_tablets, n_demo, 2, 3))
    hub0 = n_person + n_tablets + n_demo
    parts.append(shared(hub0, n_hubs, n_ids // 100, n_ids // 100))
    extra = n_edges - sum(len(a) for a, _ in parts)
    again = linked[rng.integers(0, len(linked), max(extra, 0))]
    parts.append((again, start[again] + (rng.random(len(again)) * pos[again]).astype(np.int64)))
    a = np.concatenate([p[0] for p in parts])[:n_edges]
    b = np.concatenate([p[1] for p in parts])[:n_edges]

    perm = rng.permutation(n_ids)  # ids in arrival order interleave people
    order = rng.permutation(len(a))
    flip = rng.random(len(a)) < 0.5
    src, dst = np.where(flip, b, a)[order], np.where(flip, a, b)[order]
    node_bucket = np.empty(n_ids, np.int32)
    node_bucket[perm] = bucket
    blocked = np.zeros(n_ids, bool)
    blocked[perm[hub0:]] = True
    return {"src": perm[src], "dst": perm[dst], "bucket": node_bucket, "blocked": blocked}


def peak_rss_mib() -> float:
    """This process's peak RSS. VmHWM where Linux has it: ru_maxrss of an exec'd child
    starts from the parent's peak, which here holds the generator's arrays."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_resolve(folder: Path) -> dict[str, float]:
    """The rebuild as the server would run it over loaded columns."""
    g = {k: np.load(folder / f"{k}.npy") for k in ("src", "dst", "bucket", "blocked")}
    loaded = peak_rss_mib()
    t0 = time.perf_counter()
    src, dst, _ = without_blocked(g["src"], g["dst"], g["blocked"])
    t1 = time.perf_counter()
    res = resolve(len(g["bucket"]), src, dst, g["bucket"], LIMITS)
    t2 = time.perf_counter()
    peak = peak_rss_mib()
    _, sizes = np.unique(res.labels, return_counts=True)
    refused = np.bincount(res.refused_bucket, minlength=len(LIMITS))
    t3 = time.perf_counter()
    IncrementalGraph.from_resolution(res, g["bucket"], LIMITS)
    return {
        "rebuild_seconds": t2 - t0,
        "blocked_filter_seconds": t1 - t0,
        "resolve_seconds": t2 - t1,
        "edges_after_blocking": len(src),
        "peak_rss_mib": peak,
        "rss_after_loading_mib": loaded,
        "components": len(sizes),
        "largest_component": int(sizes.max()),
        "refused_edges": len(res.refused),
        **{f"refused_{BUCKETS[b]}": int(refused[b]) for b in np.flatnonzero(refused)},
        "sequential_edges": res.sequential_edges,
        "restart_from_labels_seconds": time.perf_counter() - t3,
    }


def child_scipy(folder: Path) -> dict[str, float]:
    """scipy's connected components alone on the same filtered edges (matrix build included)."""
    g = {k: np.load(folder / f"{k}.npy") for k in ("src", "dst", "bucket", "blocked")}
    src, dst, _ = without_blocked(g["src"], g["dst"], g["blocked"])
    n = len(g["bucket"])
    t0 = time.perf_counter()
    graph = sp.coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
    n_comp, _ = connected_components(graph, directed=False)
    return {
        "scipy_seconds": time.perf_counter() - t0,
        "scipy_peak_rss_mib": peak_rss_mib(),
        "scipy_components": n_comp,
    }


#: Generator bucket -> (identifier type, scope) as the store keeps them.
STORED_TYPES = [
    ("phone", ""),
    ("unionid", ""),
    ("device_id", ""),
    ("anonymous_id", "src_bench"),
    ("openid", "wx_bench"),
    ("email", ""),
] + [("member_id", f"brand{b}") for b in range(8)]
TENANT = "ten_bench"


def _populate(folder: Path) -> Path:
    """A store holding the graph as the resolver would have left it, before any person
    was formed (every node its own profile): blocked values never become linked."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from quanyu.config import Settings
    from quanyu.identity.types import IdentityRules
    from quanyu.store import open_store

    g = {k: np.load(folder / f"{k}.npy") for k in ("src", "dst", "bucket", "blocked")}
    src, dst, _ = without_blocked(g["src"], g["dst"], g["blocked"])
    n, m = len(g["bucket"]), len(src)
    types = pa.array([t for t, _ in STORED_TYPES]).take(pa.array(g["bucket"]))
    scopes = pa.array([s for _, s in STORED_TYPES]).take(pa.array(g["bucket"]))
    ids = pa.array(np.arange(n))
    keys = pc.binary_join_element_wise(types, scopes, pc.cast(ids, pa.string()), ":")
    stamp = pa.scalar(np.datetime64("2026-01-01T00:00:00", "us"))
    nodes = pa.table(
        {
            "tenant_id": pa.array([TENANT] * n),
            "node_id": ids,
            "id_type": types,
            "scope": scopes,
            "key": keys,
            "masked": keys,
            "profile_id": ids,
            "first_seen": pa.array(np.full(n, stamp.value), pa.timestamp("us")),
        }
    )
    edges = pa.table(
        {
            "tenant_id": pa.array([TENANT] * m),
            "edge_id": pa.array(np.arange(m)),
            "a": pa.array(src),
            "b": pa.array(dst),
            "kind": pa.array(["same"] * m),
            "status": pa.array(["active"] * m),
            "seen_at": pa.array(np.full(m, stamp.value), pa.timestamp("us")),
        }
    )
    data = folder / "store"
    engine = open_store(Settings(data_dir=data))
    rules = json.dumps(IdentityRules.default().to_dict())
    with engine.connect() as db:
        con = db.raw  # type: ignore[attr-defined]
        db.register("n", nodes)
        con(
            "INSERT INTO id_nodes (tenant_id, node_id, id_type, scope, key, masked, profile_id,"
            " first_seen) SELECT * FROM n"
        )
        db.register("e", edges)
        con(
            "INSERT INTO id_edges (tenant_id, edge_id, a, b, kind, status, seen_at) SELECT * FROM e"
        )
        con(
            "INSERT INTO identity_state VALUES (?, ?, ?, ?, 0, 0, now()::TIMESTAMP)",
            [TENANT, rules, n, m],
        )
    engine.close()
    return data


def child_store(folder: Path) -> dict[str, float]:
    """``Resolver.rebuild`` on a store: read nodes and links, resolve, write what moved."""
    from quanyu.config import Settings
    from quanyu.identity.secrets import load_master_key
    from quanyu.identity.service import Resolver
    from quanyu.store import open_store

    data = folder / "store"
    engine = open_store(Settings(data_dir=data))
    resolver = Resolver(engine, load_master_key(data))
    t0 = time.perf_counter()
    first = resolver.rebuild(TENANT)
    t1 = time.perf_counter()
    again = resolver.rebuild(TENANT)
    t2 = time.perf_counter()
    engine.close()
    return {
        "store_first_rebuild_seconds": t1 - t0,
        "store_first_rebuild_moved": first.moved,
        "store_rebuild_seconds": t2 - t1,
        "store_rebuild_moved": again.moved,
        "store_profiles": again.profiles,
        "store_peak_rss_mib": peak_rss_mib(),
    }


def in_child(kind: str, folder: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(folder)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    return json.loads(out.stdout)


def incremental_rate(n: int) -> tuple[float, int, float]:
    """Edges/s of ``IncrementalGraph.add_edges`` in batches of 1,000 (checked against
    resolve), and calls/s with one edge per call (an event at a time) on 50,000 edges."""
    g = generate(n, n, seed=12)
    src, dst, _ = without_blocked(g["src"], g["dst"], g["blocked"])
    graph = IncrementalGraph(g["bucket"], LIMITS)
    t0 = time.perf_counter()
    for lo in range(0, len(src), 1000):
        graph.add_edges(src[lo : lo + 1000], dst[lo : lo + 1000])
    rate = len(src) / (time.perf_counter() - t0)
    if not np.array_equal(graph.labels(), resolve(n, src, dst, g["bucket"], LIMITS).labels):
        raise SystemExit("IncrementalGraph and resolve disagree")
    single = IncrementalGraph(g["bucket"], LIMITS)
    calls = min(50_000, len(src))
    t0 = time.perf_counter()
    for i in range(calls):
        single.add_edges(src[i : i + 1], dst[i : i + 1])
    return rate, len(src), calls / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ids", type=int, default=10_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--incremental", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder = args.child
        child = {"resolve": child_resolve, "scipy": child_scipy, "store": child_store}[kind]
        result = child(Path(folder))
        print(json.dumps(result))
        return

    print(f"# {machine()}; {args.ids} identifiers, {args.edges} edges", flush=True)
    t0 = time.perf_counter()
    g = generate(args.ids, args.edges)
    print(f"generate_seconds={time.perf_counter() - t0:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, values in g.items():
            np.save(folder / f"{name}.npy", values)
        del g
        ours = in_child("resolve", folder)
        for key, value in ours.items():
            print(
                f"{key}={value:.2f}" if isinstance(value, float) else f"{key}={value}", flush=True
            )
        base = in_child("scipy", folder)
        for key, value in base.items():
            print(
                f"{key}={value:.2f}" if isinstance(value, float) else f"{key}={value}", flush=True
            )
        t0 = time.perf_counter()
        _populate(folder)
        print(f"store_populate_seconds={time.perf_counter() - t0:.1f}", flush=True)
        for key, value in in_child("store", folder).items():
            print(
                f"{key}={value:.2f}" if isinstance(value, float) else f"{key}={value}", flush=True
            )
    print(f"ratio_scipy_over_rebuild={base['scipy_seconds'] / ours['rebuild_seconds']:.2f}")
    print(f"ratio_scipy_over_resolve={base['scipy_seconds'] / ours['resolve_seconds']:.2f}")
    rate, n_edges, calls = incremental_rate(args.incremental)
    print(f"incremental_edges_per_s={rate:.0f} ({n_edges} edges, batches of 1000)")
    print(f"incremental_single_edge_calls_per_s={calls:.0f}")


if __name__ == "__main__":
    main()
