"""Connected components of the identity graph, with per-bucket limits, as array code.

Nodes are identifiers numbered ``0..n-1``. Each node has a *limit bucket* (for most
types the type itself; for brand member ids the pair (type, brand)) and each bucket a
limit: at most ``limit[b]`` nodes of bucket ``b`` in one person, ``0`` meaning
unlimited (nodes of an unlimited bucket are never counted). Edges arrive in order; the
edge's index is its position.

The answer is defined by the sequential rule: process the edges in order with a
union-find that keeps per-root bucket counts; an edge whose union would give the merged
component more than ``limit[b]`` nodes of some bucket ``b`` is *refused* (no merge,
reported with ``b``, the smallest such bucket); an edge inside one component is
accepted. Each component is labelled by its smallest node id, which is stable and
independent of the edge order.

Where order matters: without refusals the partition is the plain connected components,
the same for every order. Order decides the outcome only inside a component that breaks
a limit: there, the earlier edges win (a tablet linked to phone A and then to phone B,
phone limit 1, stays with A, and the edge to B is the conflict).

A bucket may also have a time window: its limit then counts only the nodes first seen
within the window before the linking edge's time (a phone unused for a year does not
stop a new one). The fast path below stays exact, since a windowed count never exceeds
the total; the sequential rule keeps first-seen times instead of counts for such buckets.

``resolve`` takes the fast path for everything that breaks no limit (connected
components and counts in numpy) and runs the sequential union-find only on the edges of
components that break one. ``IncrementalGraph`` keeps the same state online.
``linked_nodes`` and ``components_of`` re-resolve just the nodes a removed link affects
(a split); ``IncrementalGraph.apply_partition`` takes the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

NOOP, MERGED, REFUSED = 0, 1, 2
"""Per-edge outcome kinds in :class:`EdgeOutcome`."""

#: Per bucket of a root: how many nodes, or for a bucket with a time window the times
#: (epoch microseconds) its nodes were first seen.
_Counts = dict[int, int | list[int]]


class _Cells(Protocol):
    def __getitem__(self, i: int, /) -> int: ...
    def __setitem__(self, i: int, v: int, /) -> None: ...


@dataclass(frozen=True)
class Resolution:
    """The partition of the nodes and the edges the limits refused.

    ``labels[i]`` is the smallest node id of node ``i``'s component; ``refused`` the
    ascending indices of refused edges, ``refused_bucket`` the bucket each would have
    exceeded. ``sequential_edges`` counts the edges that took the slow path.
    """

    labels: I64
    refused: I64
    refused_bucket: I32
    sequential_edges: int = 0

    @property
    def n_components(self) -> int:
        """Number of components (people)."""
        return int(np.count_nonzero(self.labels == np.arange(len(self.labels))))


@dataclass(frozen=True)
class EdgeOutcome:
    """Per edge of one ``add_edges`` call: the kind and the roots (labels) before it.

    ``kind`` is NOOP (both ends already in one component), MERGED (the component with
    the larger label joined the one with the smaller label, which survives) or REFUSED
    (``bucket`` names the bucket that would be exceeded; -1 otherwise).
    """

    kind: npt.NDArray[np.int8]
    src_root: I64
    dst_root: I64
    bucket: I32

    @property
    def survivor(self) -> I64:
        """The label after the edge for merges and no-ops; -1 for refused edges."""
        return np.where(self.kind == REFUSED, -1, np.minimum(self.src_root, self.dst_root))

    @property
    def absorbed(self) -> I64:
        """The label that disappeared for merges; -1 otherwise."""
        return np.where(self.kind == MERGED, np.maximum(self.src_root, self.dst_root), -1)


def _link(
    parent: _Cells,
    limit: list[int],
    counts: dict[int, _Counts],
    lookup: Callable[[int], _Counts | None],
    src: Iterable[int],
    dst: Iterable[int],
    window: list[int] | None = None,
    times: list[int] | None = None,
) -> tuple[list[int], list[int], list[int], list[int]]:
    """The sequential rule: union edges in order, refusing those that break a limit.

    Invariants: a root is the smallest node id of its component and ``parent[i] <= i``.
    ``counts[r]`` holds the bucket counts of root ``r`` when set; otherwise
    ``lookup(r)`` derives them (None meaning no counted nodes). Returns per edge: kind,
    src root, dst root, refused bucket (-1).
    """
    kinds: list[int] = []
    roots_a: list[int] = []
    roots_b: list[int] = []
    buckets: list[int] = []
    for j, (a, b) in enumerate(zip(src, dst, strict=True)):
        p = parent[a]
        while p != a:  # path halving
            g = parent[p]
            parent[a] = g
            a = g
            p = parent[a]
        p = parent[b]
        while p != b:
            g = parent[p]
            parent[b] = g
            b = g
            p = parent[b]
        roots_a.append(a)
        roots_b.append(b)
        if a == b:
            kinds.append(NOOP)
            buckets.append(-1)
            continue
        ca = counts.get(a)
        if ca is None:
            ca = lookup(a)
        cb = counts.get(b)
        if cb is None:
            cb = lookup(b)
        if not ca:
            merged = cb
        elif not cb:
            merged = ca
        else:
            if len(ca) > len(cb):
                ca, cb = cb, ca
            over = -1
            for k, v in ca.items():
                w = cb.get(k)
                if w is None:
                    continue
                if isinstance(v, list) and isinstance(w, list):
                    # a windowed limit counts the nodes first seen within the window
                    # before this link
                    since = (times[j] if times else 0) - (window[k] if window else 0)
                    n = sum(1 for x in v if x >= since) + sum(1 for x in w if x >= since)
                else:
                    n = int(v) + int(w)  # type: ignore[arg-type]
                if n > limit[k] and (over < 0 or k < over):
                    over = k
            if over >= 0:
                kinds.append(REFUSED)
                buckets.append(over)
                continue
            for k, v in ca.items():
                w = cb.get(k)
                cb[k] = v if w is None else w + v  # type: ignore[operator]
            merged = cb
        lo, hi = (a, b) if a < b else (b, a)
        parent[hi] = lo
        counts.pop(hi, None)
        if merged:
            counts[lo] = merged
        kinds.append(MERGED)
        buckets.append(-1)
    return kinds, roots_a, roots_b, buckets


def _compress(parent: npt.NDArray[np.integer]) -> I64:
    """Every node's root by pointer jumping (valid because ``parent[i] <= i``)."""
    label = parent
    while True:
        nxt = label[label]
        if np.array_equal(nxt, label):
            return label.astype(np.int64, copy=False)
        label = nxt


def _components(n: int, src: I64, dst: I64) -> I64:
    """The smallest node id of each node's connected component, all in numpy.

    Rounds of hooking (each edge's larger root points to the smaller one, by
    ``minimum.at``) and pointer jumping, dropping edges whose ends share a root. A
    parent is never larger than its node, so there are no cycles, and the smallest node
    of a component is never hooked: it ends as the root of all its nodes. On 10M edges
    this beats building a sparse matrix for scipy's ``connected_components``.
    """
    dt = np.dtype(np.int32 if n < 2**31 else np.int64)
    parent: npt.NDArray[np.integer] = np.arange(n, dtype=np.int64).astype(dt)
    a, b = src.astype(dt), dst.astype(dt)
    while True:
        keep = a != b
        if not keep.all():
            a, b = a[keep], b[keep]
        if len(a) == 0:
            return _compress(parent)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        np.minimum.at(parent, hi, lo)
        if len(a) * 8 > n:  # many edges left: compress every node
            while True:
                nxt = parent[parent]
                if np.array_equal(nxt, parent):
                    break
                parent = nxt
            a, b = parent[lo], parent[hi]
        else:  # few: follow the pointers of their ends only
            a, b = parent[lo], parent[hi]
            while True:
                na, nb = parent[a], parent[b]
                if np.array_equal(na, a) and np.array_equal(nb, b):
                    break
                a, b = na, nb


def _as_index(name: str, values: npt.ArrayLike, bound: int) -> I64:
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D integer array, got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= bound):
        raise ValueError(f"{name} holds values outside 0..{bound - 1}; renumber the nodes")
    return arr


def _windows(
    bucket_window: npt.ArrayLike | None,
    n_buckets: int,
    node_time: npt.ArrayLike | None,
    edge_time: npt.ArrayLike | None,
) -> tuple[list[int] | None, I64, I64]:
    """Per-bucket windows (None when no bucket has one) and the node and edge times."""
    if bucket_window is None:
        return None, np.zeros(0, np.int64), np.zeros(0, np.int64)
    win = np.asarray(bucket_window).astype(np.int64, copy=False)
    if win.shape != (n_buckets,):
        raise ValueError(f"bucket_window has shape {win.shape}; one per bucket ({n_buckets})")
    if not win.any():
        return None, np.zeros(0, np.int64), np.zeros(0, np.int64)
    if node_time is None or edge_time is None:
        raise ValueError("a bucket with a time window needs node_time and edge_time")
    return (
        win.tolist(),
        np.asarray(edge_time).astype(np.int64, copy=False),
        np.asarray(node_time).astype(np.int64, copy=False),
    )


def _limits(bucket_limit: npt.ArrayLike) -> I64:
    limit = np.asarray(bucket_limit).astype(np.int64, copy=False)
    if limit.ndim != 1 or (limit.size and limit.min() < 0):
        raise ValueError("bucket_limit must be a 1-D array of limits >= 0 (0 = unlimited)")
    return limit


def resolve(
    n_nodes: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    bucket: npt.ArrayLike,
    bucket_limit: npt.ArrayLike,
    *,
    bucket_window: npt.ArrayLike | None = None,
    node_time: npt.ArrayLike | None = None,
    edge_time: npt.ArrayLike | None = None,
) -> Resolution:
    """Partition ``n_nodes`` nodes by the edges ``(src[i], dst[i])`` taken in order.

    Args:
        n_nodes: number of nodes; ids are ``0..n_nodes-1``.
        src, dst: edge endpoints in arrival order.
        bucket: per node, its limit bucket (index into ``bucket_limit``).
        bucket_limit: per bucket, the most nodes of it one component may hold; 0 = no limit.
        bucket_window: per bucket, a window in microseconds (0 = none): the limit then
            counts only the nodes first seen within the window before the linking edge.
        node_time: per node, when it was first seen (epoch microseconds).
        edge_time: per edge, when it arrived (epoch microseconds).

    Returns:
        The :class:`Resolution` the sequential rule gives (see the module docstring).

    Raises:
        ValueError: an id or bucket out of range, or arrays of the wrong shape.
    """
    limit = _limits(bucket_limit)
    buckets = _as_index("bucket", bucket, max(len(limit), 1))
    if len(buckets) != n_nodes:
        raise ValueError(f"bucket has {len(buckets)} entries for {n_nodes} nodes")
    s = _as_index("src", src, n_nodes)
    d = _as_index("dst", dst, n_nodes)
    if len(s) != len(d):
        raise ValueError(f"src has {len(s)} edges but dst has {len(d)}")
    empty = np.zeros(0, np.int64)
    if n_nodes == 0 or len(s) == 0:
        return Resolution(np.arange(n_nodes, dtype=np.int64), empty, np.zeros(0, np.int32))

    labels = _components(n_nodes, s, d)

    # A component whose final counts are within every limit is final: each union the
    # sequential rule would make joins two subsets of it, whose counts are at most the
    # final counts, so no edge is refused. Components do not interact (an edge lies in
    # one), so only the components over a limit need the sequential rule; ``sel`` is
    # ascending, so it sees their edges in arrival order.
    counted = np.flatnonzero(limit[buckets] > 0)
    nb = len(limit)
    key = labels[counted] * nb + buckets[counted]
    keys, per_key = np.unique(key, return_counts=True)
    over = per_key > limit[keys % nb]
    if not over.any():
        return Resolution(labels, empty, np.zeros(0, np.int32))
    bad = np.zeros(n_nodes, bool)  # indexed by label
    bad[keys[over] // nb] = True
    del key, keys, per_key, counted

    sel = np.flatnonzero(bad[labels[s]])
    nodes = np.flatnonzero(bad[labels])  # ascending, so local order = global order
    local_bucket = buckets[nodes].tolist()
    limits = limit.tolist()
    windows, times, local_time = _windows(bucket_window, len(limit), node_time, edge_time)
    local_times = local_time[nodes].tolist() if windows else []

    def lookup(r: int) -> _Counts | None:
        b = local_bucket[r]
        if not limits[b]:
            return None
        return {b: [local_times[r]]} if windows and windows[b] else {b: 1}

    parent = np.arange(len(nodes), dtype=np.int64)
    kinds, _, _, over_bucket = _link(
        parent.data,
        limits,
        {},
        lookup,
        np.searchsorted(nodes, s[sel]).tolist(),
        np.searchsorted(nodes, d[sel]).tolist(),
        windows,
        times[sel].tolist() if windows else None,
    )
    labels[nodes] = nodes[_compress(parent)]
    refused_at = np.asarray(kinds, np.int8) == REFUSED
    return Resolution(
        labels,
        sel[refused_at],
        np.asarray(over_bucket, np.int32)[refused_at],
        sequential_edges=len(sel),
    )


def components_of(
    nodes: npt.ArrayLike,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    bucket: npt.ArrayLike,
    bucket_limit: npt.ArrayLike,
    *,
    bucket_window: npt.ArrayLike | None = None,
    node_time: npt.ArrayLike | None = None,
    edge_time: npt.ArrayLike | None = None,
) -> Resolution:
    """Re-resolve a set of nodes closed under the edges, after links were removed.

    The result equals :func:`resolve` over all remaining edges, restricted to ``nodes``,
    when no remaining edge joins ``nodes`` to a node outside (refused edges count: a
    refused edge may be accepted once a link is gone). :func:`linked_nodes` gives such a
    set for a split: the profile's nodes and everything linked to them. Labels of the
    nodes outside stay as they were.

    Args:
        nodes: the global node ids, any order.
        src, dst: the remaining edges among them (global ids), in arrival order.
        bucket: the bucket of each node, aligned with ``nodes``.
        bucket_limit: per bucket limits as for :func:`resolve`.

    Returns:
        A :class:`Resolution` whose ``labels`` align with ``nodes`` and are global ids
        (the smallest node id of each new component); ``refused`` indexes ``src``/``dst``.

    Raises:
        ValueError: an edge endpoint not among ``nodes``, or repeated nodes.
    """
    ids = np.asarray(nodes).astype(np.int64, copy=False)
    order = np.argsort(ids, kind="stable")
    ids_sorted = ids[order]
    if len(ids) > 1 and not (np.diff(ids_sorted) > 0).all():
        raise ValueError("nodes repeats a node id; pass each node of the component once")

    def local(name: str, ends: npt.ArrayLike) -> I64:
        e = np.asarray(ends).astype(np.int64, copy=False)
        pos = np.searchsorted(ids_sorted, e)
        ok = pos < len(ids_sorted)
        ok[ok] = ids_sorted[pos[ok]] == e[ok]
        if not ok.all():
            raise ValueError(f"{name} names node {e[~ok][0]} outside the component")
        return pos.astype(np.int64)

    res = resolve(
        len(ids),
        local("src", src),
        local("dst", dst),
        np.asarray(bucket)[order],
        bucket_limit,
        bucket_window=bucket_window,
        node_time=None if node_time is None else np.asarray(node_time)[order],
        edge_time=edge_time,
    )
    labels = np.empty(len(ids), np.int64)
    labels[order] = ids_sorted[res.labels]
    return Resolution(labels, res.refused, res.refused_bucket, res.sequential_edges)


def linked_nodes(seeds: npt.ArrayLike, src: npt.ArrayLike, dst: npt.ArrayLike) -> I64:
    """The nodes connected to ``seeds`` by the edges, limits ignored (ascending ids).

    This is the set to re-resolve after removing accepted edges of a profile: pass the
    profile's nodes as ``seeds`` and every remaining edge touching the affected nodes,
    refused ones included (an edge refused before may be accepted once a link is gone).
    """
    seed = np.asarray(seeds).astype(np.int64, copy=False)
    s = np.asarray(src).astype(np.int64, copy=False)
    d = np.asarray(dst).astype(np.int64, copy=False)
    nodes, inverse = np.unique(np.concatenate([s, d, seed]), return_inverse=True)
    m = len(s)
    comp = _components(len(nodes), inverse[:m], inverse[m : 2 * m])
    hit = np.zeros(len(nodes), bool)
    hit[comp[inverse[2 * m :]]] = True
    return nodes[hit[comp]]


def without_blocked(src: I64, dst: I64, blocked: npt.NDArray[np.bool_]) -> tuple[I64, I64, I64]:
    """Drop the edges touching a blocked node (junk values such as ``13800000000``).

    Returns the kept ``src``, ``dst`` and their indices in the input, so that refused
    edge indices can be mapped back.
    """
    kept = np.flatnonzero(~(blocked[src] | blocked[dst]))
    return src[kept], dst[kept], kept


# ---------------------------------------------------------------------------------------
# Online state


@dataclass
class _BaseCounts:
    """Bucket counts per root of a restored partition, looked up lazily (no Python dicts
    for millions of roots at start-up)."""

    roots: I64
    start: I64
    bucket: I64
    count: I64
    window: list[int] | None = None
    key_start: I64 | None = None  # per key: where its node times start in ``times``
    times: I64 | None = None

    def get(self, r: int) -> _Counts | None:
        i = int(np.searchsorted(self.roots, r))
        if i == len(self.roots) or self.roots[i] != r:
            return None
        lo, hi = int(self.start[i]), int(self.start[i + 1])
        found: _Counts = {}
        for k in range(lo, hi):
            b = int(self.bucket[k])
            if self.window and self.window[b] and self.key_start is not None:
                assert self.times is not None
                found[b] = self.times[self.key_start[k] : self.key_start[k + 1]].tolist()
            else:
                found[b] = int(self.count[k])
        return found


def _base_counts(
    labels: I64, bucket: I64, limit: I64, window: list[int] | None, time: I64
) -> _BaseCounts:
    counted = np.flatnonzero(limit[bucket] > 0)
    nb = max(len(limit), 1)
    key = labels[counted] * nb + bucket[counted]
    order = np.argsort(key, kind="stable")
    keys, key_start, count = np.unique(key[order], return_index=True, return_counts=True)
    roots, start = np.unique(keys // nb, return_index=True)
    return _BaseCounts(
        roots,
        np.append(start, len(keys)).astype(np.int64),
        keys % nb,
        count,
        window,
        np.append(key_start, len(key)).astype(np.int64),
        time[counted][order] if window else None,
    )


def _normalised(labels: npt.ArrayLike, n: int) -> I64:
    """Any per-node component key turned into the smallest node id of each component."""
    lab = np.asarray(labels).astype(np.int64, copy=False)
    if lab.shape != (n,):
        raise ValueError(f"labels has shape {lab.shape}; expected one label per node ({n})")
    ids = np.arange(n, dtype=np.int64)
    if ((lab >= 0) & (lab <= ids)).all() and np.array_equal(lab[lab], lab):
        return lab.copy()  # already the smallest member of each component
    _, inverse = np.unique(lab, return_inverse=True)
    first = np.full(n, n, np.int64)
    np.minimum.at(first, inverse, ids)
    return first[inverse]


class IncrementalGraph:
    """The union-find state of :func:`resolve`, kept online.

    Feeding the edges of ``resolve`` in the same order, in any number of calls, gives
    the same labels and refuses the same edges. A root is always the smallest node id of
    its component, so a root is its label. Bucket counts are kept (as small dicts) only
    for roots whose component holds counted nodes; after a restart from stored labels
    they are looked up lazily from sorted arrays. Not thread-safe: one writer.

    Args:
        bucket: per existing node, its limit bucket.
        bucket_limit: per bucket, its limit (0 = unlimited).
        labels: optional per-node component key of a stored partition (for example
            ``Resolution.labels``); without it every node starts alone.
    """

    def __init__(
        self,
        bucket: npt.ArrayLike,
        bucket_limit: npt.ArrayLike,
        labels: npt.ArrayLike | None = None,
        *,
        bucket_window: npt.ArrayLike | None = None,
        node_time: npt.ArrayLike | None = None,
    ) -> None:
        limit = _limits(bucket_limit)
        buckets = _as_index("bucket", bucket, max(len(limit), 1))
        n = len(buckets)
        cap = max(1024, n + n // 4)
        self._parent = np.empty(cap, np.int64)
        self._bucket = np.empty(cap, np.int64)
        self._time = np.zeros(cap, np.int64)
        self._bucket[:n] = buckets
        if node_time is not None:
            self._time[:n] = np.asarray(node_time).astype(np.int64, copy=False)
        self._limit = limit.tolist()
        self._window = (
            np.asarray(bucket_window).astype(np.int64).tolist()
            if bucket_window is not None
            else [0] * len(self._limit)
        )
        self._counts: dict[int, _Counts] = {}
        self._n = n
        self._base: _BaseCounts | None = None
        self._base_n = 0
        if labels is None:
            self._parent[:n] = np.arange(n)
        else:
            lab = _normalised(labels, n)
            self._parent[:n] = lab
            windowed = self._window if any(self._window) else None
            self._base = _base_counts(lab, buckets, limit, windowed, self._time[:n])
            self._base_n = n
        self._views()

    @classmethod
    def from_resolution(
        cls,
        resolution: Resolution,
        bucket: npt.ArrayLike,
        bucket_limit: npt.ArrayLike,
        *,
        bucket_window: npt.ArrayLike | None = None,
        node_time: npt.ArrayLike | None = None,
    ) -> IncrementalGraph:
        """Start from the result of a full :func:`resolve` over the same nodes."""
        return cls(
            bucket,
            bucket_limit,
            labels=resolution.labels,
            bucket_window=bucket_window,
            node_time=node_time,
        )

    def _views(self) -> None:
        self._pv = self._parent.data  # Python ints on item access: fast in loops
        self._bv = self._bucket.data

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return self._n

    @property
    def bucket_limit(self) -> I64:
        """The limit of each bucket (a copy)."""
        return np.asarray(self._limit, np.int64)

    def add_buckets(self, limits: npt.ArrayLike, windows: npt.ArrayLike | None = None) -> I64:
        """Append buckets (a new brand's member ids, say); returns their indices."""
        new = _limits(limits).tolist()
        first = len(self._limit)
        self._limit.extend(new)
        self._window.extend(
            np.asarray(windows).astype(np.int64).tolist() if windows is not None else [0] * len(new)
        )
        return np.arange(first, first + len(new), dtype=np.int64)

    def add_nodes(
        self, bucket_of_new_nodes: npt.ArrayLike, times: npt.ArrayLike | None = None
    ) -> I64:
        """Add nodes, each alone in its component (``times``: first seen, epoch
        microseconds, for windowed limits); returns their ids (consecutive)."""
        b = _as_index("bucket", bucket_of_new_nodes, max(len(self._limit), 1))
        n, k = self._n, len(b)
        if n + k > len(self._parent):
            cap = max(n + k, 2 * len(self._parent))
            del self._pv, self._bv
            self._parent = np.resize(self._parent, cap)
            self._bucket = np.resize(self._bucket, cap)
            self._time = np.resize(self._time, cap)
            self._views()
        ids = np.arange(n, n + k, dtype=np.int64)
        self._parent[n : n + k] = ids
        self._bucket[n : n + k] = b
        self._time[n : n + k] = 0 if times is None else np.asarray(times).astype(np.int64)
        self._n = n + k
        return ids

    def _lookup(self, r: int) -> _Counts | None:
        if r < self._base_n and self._base is not None:
            found = self._base.get(r)
            if found is not None:
                self._counts[r] = found
            return found
        b = self._bv[r]
        if not self._limit[b]:
            return None
        return {b: [int(self._time[r])]} if self._window[b] else {b: 1}

    def add_edges(
        self, src: npt.ArrayLike, dst: npt.ArrayLike, times: npt.ArrayLike | None = None
    ) -> EdgeOutcome:
        """Apply edges in order; returns what each did.

        Raises:
            ValueError: an endpoint that is not a node, or arrays of different lengths.
        """
        s = _as_index("src", src, self._n)
        d = _as_index("dst", dst, self._n)
        if len(s) != len(d):
            raise ValueError(f"src has {len(s)} edges but dst has {len(d)}")
        windowed = any(self._window)
        kinds, ra, rb, over = _link(
            self._pv,
            self._limit,
            self._counts,
            self._lookup,
            s.tolist(),
            d.tolist(),
            self._window if windowed else None,
            np.asarray(times).astype(np.int64).tolist() if windowed and times is not None else None,
        )
        return EdgeOutcome(
            np.asarray(kinds, np.int8),
            np.asarray(ra, np.int64),
            np.asarray(rb, np.int64),
            np.asarray(over, np.int32),
        )

    def label_of(self, nodes: npt.ArrayLike) -> I64:
        """The current label (smallest node id of the component) of each node."""
        x = self._parent[_as_index("nodes", nodes, self._n)]
        while True:
            y = self._parent[x]
            if np.array_equal(x, y):
                return x
            x = y

    def labels(self) -> I64:
        """Every node's label, as :func:`resolve` gives it (compresses paths as it goes)."""
        lab = _compress(self._parent[: self._n])
        self._parent[: self._n] = lab
        return lab.copy()

    def apply_partition(self, nodes: npt.ArrayLike, labels: npt.ArrayLike) -> None:
        """Replace whole components by the pieces a split gave (see :func:`components_of`).

        Args:
            nodes: every node of one or more current components (``linked_nodes``).
            labels: their new labels (each the smallest node id of its piece), aligned.

        Raises:
            ValueError: ``nodes`` is not a union of whole components, or ``labels`` do
                not name pieces by their smallest member.

        The check that ``nodes`` are whole components scans every node (numpy, O(n)).
        """
        ids = _as_index("nodes", nodes, self._n)
        new = np.asarray(labels).astype(np.int64, copy=False)
        if len(ids) == 0 or new.shape != ids.shape:
            raise ValueError("pass the nodes of one component and one label per node")
        roots = np.unique(self.label_of(ids))
        if np.isin(self.labels(), roots).sum() != len(np.unique(ids)):
            raise ValueError(f"nodes are not all the nodes of components {roots.tolist()}")
        pos = {v: i for i, v in enumerate(ids.tolist())}
        for node, lab in zip(ids.tolist(), new.tolist(), strict=True):
            if lab > node or lab not in pos or new[pos[lab]] != lab:
                raise ValueError(f"label {lab} of node {node} is not the smallest of a piece")
        self._parent[ids] = new
        for root in roots.tolist():
            self._counts.pop(root, None)
        fresh: dict[int, _Counts] = {int(r): {} for r in np.unique(new)}
        for node, lab in zip(ids.tolist(), new.tolist(), strict=True):
            b = self._bv[node]
            if not self._limit[b]:
                continue
            have = fresh[lab].get(b)
            if self._window[b]:
                fresh[lab][b] = [*(have if isinstance(have, list) else []), int(self._time[node])]
            else:
                fresh[lab][b] = (have if isinstance(have, int) else 0) + 1
        self._counts.update(fresh)  # explicit, also when empty: stored base counts are stale
