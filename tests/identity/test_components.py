"""The identity graph's components with limits, against an obviously correct reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components

from quanyu.identity.components import (
    MERGED,
    NOOP,
    REFUSED,
    IncrementalGraph,
    components_of,
    linked_nodes,
    resolve,
    without_blocked,
)


@dataclass
class Graph:
    n: int
    edges: list[tuple[int, int]]
    bucket: list[int]
    limit: list[int]

    @property
    def src(self) -> np.ndarray:
        return np.array([a for a, _ in self.edges], np.int64)

    @property
    def dst(self) -> np.ndarray:
        return np.array([b for _, b in self.edges], np.int64)


def reference(g: Graph) -> tuple[list[int], list[tuple[int, int]]]:
    """The sequential rule with sets: labels (min node id) and (edge index, bucket) refused."""
    comp = {i: frozenset([i]) for i in range(g.n)}
    refused = []
    for i, (a, b) in enumerate(g.edges):
        if comp[a] == comp[b]:
            continue
        union = comp[a] | comp[b]
        over = [
            k
            for k in range(len(g.limit))
            if g.limit[k] and sum(g.bucket[x] == k for x in union) > g.limit[k]
        ]
        if over:
            refused.append((i, min(over)))
            continue
        for x in union:
            comp[x] = union
    return [min(comp[i]) for i in range(g.n)], refused


@st.composite
def graphs(draw: st.DrawFn, limited: bool = True, max_nodes: int = 12) -> Graph:
    n = draw(st.integers(1, max_nodes))
    nb = draw(st.integers(1, 4))
    limits = st.integers(0, 2) if limited else st.just(0)
    limit = draw(st.lists(limits, min_size=nb, max_size=nb))
    bucket = draw(st.lists(st.integers(0, nb - 1), min_size=n, max_size=n))
    node = st.integers(0, n - 1)
    edges = draw(st.lists(st.tuples(node, node), max_size=3 * n))
    return Graph(n, edges, bucket, limit)


def run(g: Graph):  # noqa: ANN201 - a Resolution
    return resolve(g.n, g.src, g.dst, g.bucket, g.limit)


def refused_pairs(res) -> list[tuple[int, int]]:  # noqa: ANN001
    return list(zip(res.refused.tolist(), res.refused_bucket.tolist(), strict=True))


@settings(max_examples=300, deadline=None)
@given(graphs(limited=False), st.randoms(use_true_random=False))
def test_without_limits_any_order_gives_scipy_components(g: Graph, rnd) -> None:  # noqa: ANN001
    expected = scipy_labels(g.n, g.src, g.dst)
    assert run(g).labels.tolist() == expected
    shuffled = list(g.edges)
    rnd.shuffle(shuffled)
    res = run(Graph(g.n, shuffled, g.bucket, g.limit))
    assert res.labels.tolist() == expected
    assert len(res.refused) == 0


def scipy_labels(n: int, src: np.ndarray, dst: np.ndarray) -> list[int]:
    matrix = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, comp = connected_components(matrix, directed=False)
    first = np.full(n, n)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp].tolist()


@pytest.mark.parametrize("seed", range(5))
def test_long_chains_among_many_nodes_match_scipy(seed: int) -> None:
    """Few edges per node and long paths: the rounds that follow only the edges' ends."""
    rng = np.random.default_rng(seed)
    n = 50_000
    path = rng.permutation(n)[:4000]
    src = np.concatenate([path[:-1], rng.integers(0, n, 800)])
    dst = np.concatenate([path[1:], rng.integers(0, n, 800)])
    order = rng.permutation(len(src))
    res = resolve(n, src[order], dst[order], np.zeros(n, np.int64), [0])
    assert res.labels.tolist() == scipy_labels(n, src, dst)
    assert (
        linked_nodes([path[7]], src, dst).tolist()
        == np.flatnonzero(res.labels == res.labels[path[7]]).tolist()
    )


@settings(max_examples=500, deadline=None)
@given(graphs())
def test_resolve_refuses_exactly_what_the_reference_refuses(g: Graph) -> None:
    labels, refused = reference(g)
    res = run(g)
    assert res.labels.tolist() == labels
    assert refused_pairs(res) == refused


@settings(max_examples=300, deadline=None)
@given(graphs(), st.lists(st.integers(0, 40), max_size=6))
def test_incremental_in_any_chunking_equals_resolve(g: Graph, cuts: list[int]) -> None:
    res = run(g)
    inc = IncrementalGraph(g.bucket, g.limit)
    outcomes = []
    bounds = sorted({0, len(g.edges), *(c for c in cuts if c < len(g.edges))})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        outcomes.append(inc.add_edges(g.src[lo:hi], g.dst[lo:hi]))
    kind = np.concatenate([o.kind for o in outcomes]) if outcomes else np.zeros(0)
    bucket = np.concatenate([o.bucket for o in outcomes]) if outcomes else np.zeros(0)
    assert inc.labels().tolist() == res.labels.tolist()
    assert np.flatnonzero(kind == REFUSED).tolist() == res.refused.tolist()
    assert bucket[kind == REFUSED].tolist() == res.refused_bucket.tolist()


@settings(max_examples=300, deadline=None)
@given(graphs(), st.integers(0, 40))
def test_growing_and_restarting_the_online_graph_changes_nothing(g: Graph, cut: int) -> None:
    """Nodes added on the way and a restart from stored labels give resolve's answer."""
    res = run(g)
    cut = min(cut, len(g.edges))
    first = max([*(max(e) for e in g.edges[:cut]), -1]) + 1
    inc = IncrementalGraph(g.bucket[:first], g.limit)
    before = inc.add_edges(g.src[:cut], g.dst[:cut])
    stored = inc.labels() * 7 + 3  # any per-node key will do, not only smallest ids
    restarted = IncrementalGraph(g.bucket[:first], g.limit, labels=stored)
    restarted.add_nodes(g.bucket[first:])
    out = restarted.add_edges(g.src[cut:], g.dst[cut:])
    assert restarted.labels().tolist() == res.labels.tolist()
    kind = np.concatenate([before.kind, out.kind])
    assert np.flatnonzero(kind == REFUSED).tolist() == res.refused.tolist()


def test_shared_family_tablet_stays_two_people() -> None:
    phone, device = 0, 1
    limit = [1, 0]
    bucket = [device, phone, phone]  # 0 tablet, 1 phone A, 2 phone B
    res = resolve(3, [0, 0], [1, 2], bucket, limit)
    assert res.labels.tolist() == [0, 0, 2]
    assert res.refused.tolist() == [1]
    assert res.refused_bucket.tolist() == [phone]

    inc = IncrementalGraph(bucket, limit)
    out = inc.add_edges([0, 0, 1], [1, 2, 0])
    assert out.kind.tolist() == [MERGED, REFUSED, NOOP]
    assert out.bucket.tolist() == [-1, phone, -1]
    assert (out.src_root.tolist(), out.dst_root.tolist()) == ([0, 0, 0], [1, 2, 0])
    assert out.survivor.tolist() == [0, -1, 0]
    assert out.absorbed.tolist() == [1, -1, -1]


def test_the_order_decides_who_keeps_a_shared_tablet() -> None:
    bucket, limit = [1, 0, 0], [1, 0]
    assert resolve(3, [0, 0], [2, 1], bucket, limit).labels.tolist() == [0, 1, 0]


def test_member_ids_of_two_brands_do_not_block_each_other() -> None:
    brand_a, brand_b, unionid = 0, 1, 2
    limit = [1, 1, 1]
    # 0 unionid, 1 member@A, 2 member@B, 3 member@A (another card), 4 device
    bucket = [unionid, brand_a, brand_b, brand_a, 3]
    res = resolve(5, [0, 0, 4, 4], [1, 2, 0, 3], bucket, [*limit, 0])
    assert res.labels.tolist() == [0, 0, 0, 3, 0]
    assert refused_pairs(res) == [(3, brand_a)]


def test_a_large_random_graph_takes_both_paths_and_agrees() -> None:
    rng = np.random.default_rng(5)
    n, m = 600, 700
    g = Graph(
        n,
        list(zip(rng.integers(0, n, m).tolist(), rng.integers(0, n, m).tolist(), strict=True)),
        rng.integers(0, 5, n).tolist(),
        [1, 2, 0, 0, 3],
    )
    labels, refused = reference(g)
    res = run(g)
    assert 0 < res.sequential_edges < m  # some components break a limit, some do not
    assert res.labels.tolist() == labels
    assert refused_pairs(res) == refused


def test_removing_a_bridge_splits_in_two() -> None:
    nodes = [10, 11, 12, 13, 14]
    src, dst = [10, 11, 12, 13], [11, 12, 13, 14]
    bucket = [0] * 5
    whole = components_of(nodes, src, dst, bucket, [0])
    assert whole.labels.tolist() == [10] * 5
    split = components_of(nodes[::-1], [10, 11, 13], [11, 12, 14], bucket, [0])
    assert split.labels.tolist() == [13, 13, 10, 10, 10]


@settings(max_examples=300, deadline=None)
@given(graphs(), st.data())
def test_split_of_the_linked_nodes_equals_a_full_resolve(g: Graph, data: st.DataObject) -> None:
    res = run(g)
    refused = set(res.refused.tolist())
    accepted = [i for i, (a, b) in enumerate(g.edges) if a != b and i not in refused]
    if not accepted:
        return
    gone = data.draw(st.sampled_from(accepted))
    keep = [i for i in range(len(g.edges)) if i != gone]
    rest = Graph(g.n, [g.edges[i] for i in keep], g.bucket, g.limit)
    truth = run(rest).labels

    profile = np.flatnonzero(res.labels == res.labels[g.edges[gone][0]])
    nodes = linked_nodes(profile, rest.src, rest.dst)
    inside = np.isin(rest.src, nodes) & np.isin(rest.dst, nodes)
    piece = components_of(
        nodes, rest.src[inside], rest.dst[inside], np.array(g.bucket)[nodes], g.limit
    )
    labels = res.labels.copy()
    labels[nodes] = piece.labels
    assert labels.tolist() == truth.tolist()

    inc = IncrementalGraph(g.bucket, g.limit, labels=res.labels)
    inc.apply_partition(nodes, piece.labels)
    assert inc.labels().tolist() == truth.tolist()
    # the online state keeps counting right after the split: later edges as in resolve
    node = st.integers(0, g.n - 1)
    later = data.draw(st.lists(st.tuples(node, node), max_size=2 * g.n))
    out = inc.add_edges([a for a, _ in later], [b for _, b in later])
    full = run(Graph(g.n, rest.edges + later, g.bucket, g.limit))
    assert inc.labels().tolist() == full.labels.tolist()
    assert (np.flatnonzero(out.kind == REFUSED) + len(rest.edges)).tolist() == [
        i for i in full.refused.tolist() if i >= len(rest.edges)
    ]


def test_a_split_after_a_restart_forgets_the_old_counts() -> None:
    device, phone = 0, 1
    inc = IncrementalGraph([device, phone, phone], [0, 1], labels=[0, 0, 2])
    inc.apply_partition([0, 1], [0, 1])  # the link tablet-phone A was removed
    assert inc.add_edges([0], [2]).kind.tolist() == [MERGED]


def test_apply_partition_rejects_a_partial_component() -> None:
    inc = IncrementalGraph([0, 0, 0], [0])
    inc.add_edges([0, 1], [1, 2])
    with pytest.raises(ValueError, match="not all the nodes"):
        inc.apply_partition([0, 1], [0, 1])
    with pytest.raises(ValueError, match="smallest"):
        inc.apply_partition([0, 1, 2], [1, 1, 2])


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="src holds values outside 0..2"):
        resolve(3, [0, 3], [1, 1], [0, 0, 0], [0])
    with pytest.raises(ValueError, match="bucket has 2 entries for 3 nodes"):
        resolve(3, [0], [1], [0, 0], [0])
    with pytest.raises(ValueError, match="outside the component"):
        components_of([1, 2], [1], [3], [0, 0], [0])


def test_online_graph_grows_and_takes_new_buckets() -> None:
    inc = IncrementalGraph(np.zeros(0, np.int64), [1])
    brand = int(inc.add_buckets([1])[0])
    ids = inc.add_nodes(np.array([0, brand, brand] * 1000))
    assert ids.tolist() == list(range(3000))
    out = inc.add_edges(ids[0::3], ids[1::3])
    assert (out.kind == MERGED).all()
    out = inc.add_edges(ids[0::3], ids[2::3])
    assert (out.bucket == brand).all()
    assert inc.label_of([1, 2, 2999]).tolist() == [0, 2, 2999]


def test_blocked_nodes_lose_their_edges() -> None:
    src, dst = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])
    blocked = np.array([False, False, True, False])
    s, d, kept = without_blocked(src, dst, blocked)
    assert (s.tolist(), d.tolist(), kept.tolist()) == ([0, 3], [1, 0], [0, 3])


DAY = 86_400_000_000


def test_a_windowed_limit_counts_only_recent_identifiers() -> None:
    """Phone limit 1 within 30 days: a number unused for a year does not block a new one."""
    # nodes: 0 person, 1 old phone (first seen day 0), 2 new phone (day 400), 3 person
    bucket = [0, 1, 1, 0]
    times = [0, 0, 400 * DAY, 400 * DAY]
    src, dst = [0, 3, 0], [1, 2, 3]
    edge_time = [0, 400 * DAY, 400 * DAY]
    plain = resolve(4, src, dst, bucket, [0, 1])
    assert plain.refused.tolist() == [2]  # without a window: two phones, refused
    windowed = resolve(
        4, src, dst, bucket, [0, 1],
        bucket_window=[0, 30 * DAY], node_time=times, edge_time=edge_time,
    )  # fmt: skip
    assert windowed.refused.tolist() == [] and len(set(windowed.labels.tolist())) == 1
    # the same link a week after the old phone was first seen is refused
    recent = resolve(
        4, src, dst, bucket, [0, 1],
        bucket_window=[0, 30 * DAY], node_time=[0, 0, 7 * DAY, 7 * DAY],
        edge_time=[0, 7 * DAY, 7 * DAY],
    )  # fmt: skip
    assert recent.refused.tolist() == [2]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_incremental_equals_resolve_with_windows(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 25))
    m = data.draw(st.integers(1, 40))
    bucket = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    times = data.draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    src = data.draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    dst = data.draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    edge_time = sorted(data.draw(st.lists(st.integers(0, 150), min_size=m, max_size=m)))
    limits, windows = [0, 1, 2], [0, 20, 50]
    full = resolve(
        n, src, dst, bucket, limits,
        bucket_window=windows, node_time=times, edge_time=edge_time,
    )  # fmt: skip
    graph = IncrementalGraph(bucket, limits, bucket_window=windows, node_time=times)
    cut = data.draw(st.integers(0, m))
    first = graph.add_edges(src[:cut], dst[:cut], edge_time[:cut])
    second = graph.add_edges(src[cut:], dst[cut:], edge_time[cut:])
    refused = np.flatnonzero(np.concatenate([first.kind, second.kind]) == REFUSED)
    assert graph.labels().tolist() == full.labels.tolist()
    assert refused.tolist() == full.refused.tolist()
    # a restart from the stored partition after the first part goes on the same way
    part = resolve(
        n, src[:cut], dst[:cut], bucket, limits,
        bucket_window=windows, node_time=times, edge_time=edge_time[:cut],
    )  # fmt: skip
    again = IncrementalGraph(
        bucket, limits, labels=part.labels, bucket_window=windows, node_time=times
    )
    rest = again.add_edges(src[cut:], dst[cut:], edge_time[cut:])
    assert again.labels().tolist() == full.labels.tolist()
    assert (np.flatnonzero(rest.kind == REFUSED) + cut).tolist() == [
        r for r in full.refused.tolist() if r >= cut
    ]
