"""A tenant's identity graph in memory, and turning a batch of events into its changes.

Every event hangs on its strongest identifier (the anchor: lowest priority number) and
links the anchor to each other identifier it carries. Links are numbered in arrival
order; a person is a connected component under the type limits
(:mod:`quanyu.identity.components`), named by its smallest node number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.engine import Session
from quanyu.identity import sql as q
from quanyu.identity.components import MERGED, REFUSED, IncrementalGraph
from quanyu.identity.normalize import normalize_many
from quanyu.identity.occurrences import collect, opened
from quanyu.identity.secrets import TenantKeys, encrypt, identifier_key, mask
from quanyu.identity.tokens import Tokenizer
from quanyu.identity.types import IdentifierType, IdentityRules, canonical_type_key
from quanyu.identity.types import limit_key as type_limit_key

_US = pa.timestamp("us")
#: Most raw identifiers (type, scope, value as stored) a tenant's graph remembers the node
#: of, so a returning identifier skips opening, normalising and keying (~150 MB at most).
RAW_NODES_MAX = 1_000_000
#: In that memory: not seen yet; seen and refused (malformed or blocked).
_MISS, _INVALID = -1, -2
#: Bucket 0 holds every node whose type has no limit.
UNLIMITED = "*"
#: Scope written for a scoped identifier that arrived without its app or brand.
UNKNOWN_SCOPE = "-"

NODE_SCHEMA = pa.schema(
    [
        ("node_id", pa.int64()),
        ("id_type", pa.string()),
        ("scope", pa.string()),
        ("key", pa.string()),
        ("value", pa.string()),
        ("value_enc", pa.binary()),
        ("masked", pa.string()),
        ("profile_id", pa.int64()),
        ("source_id", pa.string()),
        ("first_seen", pa.timestamp("us")),
    ]
)
EDGE_SCHEMA = pa.schema(
    [
        ("edge_id", pa.int64()),
        ("a", pa.int64()),
        ("b", pa.int64()),
        ("kind", pa.string()),
        ("score", pa.float64()),
        ("status", pa.string()),
        ("bucket", pa.string()),
        ("source_id", pa.string()),
        ("message_id", pa.string()),
        ("seen_at", pa.timestamp("us")),
    ]
)
CHANGE_SCHEMA = pa.schema(
    [
        ("change_id", pa.int64()),
        ("changed_at", pa.timestamp("us")),
        ("kind", pa.string()),
        ("profile_id", pa.int64()),
        ("other_profile_id", pa.int64()),
        ("edge_id", pa.int64()),
        ("node_id", pa.int64()),
        ("source_id", pa.string()),
        ("message_id", pa.string()),
        ("actor", pa.string()),
        ("detail", pa.string()),
    ]
)


def pair_codes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One integer per unordered pair of node numbers (below 2**31 each)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    codes: np.ndarray = (np.minimum(a, b) << 32) | np.maximum(a, b)
    return codes


@dataclass
class TenantGraph:
    """What the resolver keeps of one tenant between batches."""

    tenant_id: str
    rules: IdentityRules
    keys: TenantKeys
    tokens: Tokenizer
    graph: IncrementalGraph
    node_of: dict[str, int]
    bucket_index: dict[str, int]
    pairs: set[int]
    next_edge: int
    next_change: int
    resolved_seq: int
    _types: dict[str, IdentifierType] = field(default_factory=dict)
    #: "type\0scope\0value as stored" -> node, or _INVALID (see RAW_NODES_MAX)
    raw_nodes: dict[str, int] = field(default_factory=dict)

    def type_of(self, name: str) -> IdentifierType:
        """The rules' type for a type name as it arrived in an event."""
        t = self._types.get(name)
        if t is None:
            t = self.rules.type_for(canonical_type_key(name))
            self._types[name] = t
        return t

    def bucket(self, t: IdentifierType, scope: str) -> int:
        """The limit bucket of identifiers of type ``t`` in ``scope``, added when new."""
        name = type_limit_key(t, scope) if t.limit else UNLIMITED
        index = self.bucket_index.get(name)
        if index is None:
            index = int(self.graph.add_buckets([t.limit or 0], [window_of(t)])[0])
            self.bucket_index[name] = index
        return index

    @property
    def bucket_names(self) -> list[str]:
        """Bucket names by index."""
        names = [""] * len(self.bucket_index)
        for name, i in self.bucket_index.items():
            names[i] = name
        return names


def shell_graph(
    tenant_id: str,
    keys: TenantKeys,
    tokens: Tokenizer,
    rules: IdentityRules,
    state: tuple[Any, ...],
) -> TenantGraph:
    """A tenant's graph with its rules and counters but no nodes or links loaded."""
    return TenantGraph(
        tenant_id=tenant_id,
        rules=rules,
        keys=keys,
        tokens=tokens,
        graph=IncrementalGraph(np.zeros(0, np.int64), [0]),
        node_of={},
        bucket_index={UNLIMITED: 0},
        pairs=set(),
        next_edge=int(state[2]),
        next_change=int(state[3]),
        resolved_seq=int(state[4]),
    )


def load_graph(
    db: Session,
    tenant_id: str,
    keys: TenantKeys,
    tokens: Tokenizer,
    rules: IdentityRules,
    state: tuple[Any, ...],
) -> TenantGraph:
    """Rebuild a tenant's in-memory graph from its stored nodes, links and numbers."""
    nodes = db.arrow(q.LOAD_NODES, [tenant_id])
    edges = db.arrow(q.LOAD_EDGES, [tenant_id])
    g = shell_graph(tenant_id, keys, tokens, rules, state)
    ids = nodes.column("node_id").to_numpy()
    if not np.array_equal(ids, np.arange(len(ids))):
        raise RuntimeError(f"identity nodes of tenant {tenant_id} are not numbered 0..n-1")
    g.graph = node_buckets(g, nodes).graph(nodes.column("profile_id").to_numpy())
    g.node_of = dict(zip(nodes.column("key").to_pylist(), ids.tolist(), strict=True))
    g.pairs = set(pair_codes(edges.column("a").to_numpy(), edges.column("b").to_numpy()).tolist())
    return g


DAY_US = 86_400 * 1_000_000


def window_of(t: IdentifierType) -> int:
    """The window of a type's limit in microseconds (0: the limit counts every identifier)."""
    return t.limit_window_days * DAY_US if t.limit and t.limit_window_days else 0


def micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp column as epoch microseconds."""
    return np.asarray(pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False), np.int64)


@dataclass(frozen=True)
class Buckets:
    """Every node's limit bucket and first-seen time, and every bucket's limit and window."""

    bucket: np.ndarray
    limits: list[int]
    windows: list[int]
    times: np.ndarray

    def graph(self, labels: np.ndarray) -> IncrementalGraph:
        """The online graph of a stored partition."""
        return IncrementalGraph(
            self.bucket,
            self.limits,
            labels=labels,
            bucket_window=self.windows,
            node_time=self.times,
        )


def node_buckets(g: TenantGraph, nodes: pa.Table) -> Buckets:
    """The buckets of the nodes (LOAD_NODES order), worked out per distinct (type, scope)."""
    types = pc.dictionary_encode(nodes.column("id_type").combine_chunks())
    scopes = pc.dictionary_encode(nodes.column("scope").combine_chunks())
    width = max(len(scopes.dictionary), 1)
    pair_code = types.indices.to_numpy().astype(np.int64) * width + scopes.indices.to_numpy()
    distinct, inverse = np.unique(pair_code, return_inverse=True)
    type_names, scope_names = types.dictionary.to_pylist(), scopes.dictionary.to_pylist()
    per_pair = np.asarray(
        [g.bucket(g.type_of(type_names[c // width]), scope_names[c % width]) for c in distinct],
        np.int64,
    )
    limits = [0] * len(g.bucket_index)
    windows = [0] * len(g.bucket_index)
    for name, i in g.bucket_index.items():
        if name != UNLIMITED:
            t = g.type_of(name.split(":", 1)[0])
            limits[i], windows[i] = t.limit or 0, window_of(t)
    buckets = per_pair[inverse] if len(per_pair) else np.zeros(0, np.int64)
    return Buckets(buckets, limits, windows, micros(nodes.column("first_seen")))


def _anchors(
    n_events: int, event: np.ndarray, priority: np.ndarray, node: np.ndarray
) -> np.ndarray:
    """Each event's strongest identifier (lowest priority number, first found); -1: none."""
    anchors = np.full(n_events, -1, np.int64)
    if len(event):
        order = np.lexsort((np.arange(len(event)), priority, event))
        ev = event[order]
        first = np.r_[True, ev[1:] != ev[:-1]]
        anchors[ev[first]] = node[order][first]
    return anchors


def _new_edges(
    g: TenantGraph, events: pa.Table, event: np.ndarray, node: np.ndarray, anchors: np.ndarray
) -> dict[str, list[Any]]:
    """Links from each event's anchor to its other identifiers not linked before, in
    arrival order, numbered on from ``g.next_edge``."""
    a = anchors[event]
    linking = node != a
    a, b, ev = a[linking], node[linking], event[linking]
    codes = pair_codes(a, b)
    _, first = np.unique(codes, return_index=True)
    first.sort()
    keep = []
    for i, c in zip(first.tolist(), codes[first].tolist(), strict=True):
        if c not in g.pairs:
            g.pairs.add(c)
            keep.append(i)
    at = pa.array(ev[keep] if keep else np.zeros(0, np.int64))
    count = len(keep)
    edges: dict[str, list[Any]] = {
        "edge_id": list(range(g.next_edge, g.next_edge + count)),
        "a": a[keep].tolist() if keep else [],
        "b": b[keep].tolist() if keep else [],
        "kind": ["same"] * count,
        "score": [None] * count,
        "source_id": events.column("source_id").take(at).to_pylist(),
        "message_id": events.column("message_id").take(at).to_pylist(),
        "seen_at": events.column("timestamp").take(at).to_pylist(),
    }
    g.next_edge += count
    return edges


@dataclass
class BatchChanges:
    """What one batch of events adds to the store, as Arrow tables, plus counts."""

    nodes: pa.Table
    edges: pa.Table
    changes: pa.Table
    event_nodes: pa.Table
    relabel: pa.Table
    merges: int = 0
    refused: int = 0
    dropped: int = 0


def resolve_events(g: TenantGraph, events: pa.Table, now: datetime) -> BatchChanges:
    """Apply a batch of events (EVENTS_TO_RESOLVE's columns) to ``g``; return the rows to store.

    Column work throughout: Python runs per distinct identifier and per new link, not
    per event. ``g`` is changed in place: if storing the result fails, reload the graph.
    """
    occ = collect(events, g.type_of)
    known = np.array([t is not None for t in occ.types] + [False])[occ.type_index]
    keys_of_type = np.array([t.key if t else "" for t in occ.types] + [""], dtype=object)
    type_keys = pa.array(keys_of_type[occ.type_index].tolist(), pa.string())
    # identifiers an earlier batch met: their node (or refusal) straight from the raw value
    raws = pc.dictionary_encode(
        pc.binary_join_element_wise(type_keys, occ.scope, occ.stored, "\x00")
    )
    raw_code = raws.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    raw_texts = raws.dictionary.to_pylist()
    remembered = np.fromiter(
        (g.raw_nodes.get(t, _MISS) for t in raw_texts), np.int64, len(raw_texts)
    )
    node_at = remembered[raw_code] if len(raw_code) else np.zeros(0, np.int64)
    fresh = np.flatnonzero(known & (node_at == _MISS))
    fresh_at = pa.array(fresh)
    fresh_types = type_keys.take(fresh_at)
    plain = opened(occ.stored.take(fresh_at), g.tokens.open)
    values = pa.array(normalize_many(g.rules, fresh_types, plain)[0], pa.string())
    valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
    node_at[fresh[~valid]] = _INVALID
    good = fresh[valid]
    keep = pa.array(valid)
    triple = pc.binary_join_element_wise(
        fresh_types.filter(keep), occ.scope.take(pa.array(good)), values.filter(keep), "\x00"
    )
    codes = pc.dictionary_encode(triple)
    code = codes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    distinct, first_row = np.unique(code, return_index=True)
    node_of_code = np.empty(len(distinct), np.int64)
    new_nodes: dict[str, list[Any]] = {name: [] for name in NODE_SCHEMA.names}
    new_buckets: list[int] = []
    first_new = g.graph.n_nodes
    texts = codes.dictionary.to_pylist()
    first_event = occ.event[good[first_row]].tolist() if len(code) else []
    firsts: list[int] = []  # the event each new node is first seen in
    for c in distinct[np.argsort(first_row, kind="stable")].tolist():
        t_key, scope, value = texts[c].split("\x00", 2)
        t = g.type_of(t_key)
        key = identifier_key(g.keys, g.rules, t.key, scope, value)
        node = g.node_of.get(key)
        if node is None:
            node = first_new + len(new_buckets)
            g.node_of[key] = node
            new_buckets.append(g.bucket(t, scope))
            firsts.append(first_event[c])
            _new_node(g, new_nodes, node, t, scope, key, value)
        node_of_code[c] = node
    if len(code):
        node_at[good] = node_of_code[code]
    _remember(g, raw_texts, raw_code[fresh], node_at[fresh])
    # taken as columns: an element of a chunked column costs microseconds in Python
    at = pa.array(firsts, pa.int64())
    new_nodes["source_id"] = events.column("source_id").take(at).cast(pa.string())
    new_nodes["first_seen"] = events.column("timestamp").take(at).cast(_US)
    if new_buckets:
        g.graph.add_nodes(np.asarray(new_buckets, np.int64), micros(new_nodes["first_seen"]))
    ok = known & (node_at >= 0)
    dropped = int(len(ok) - ok.sum())
    rows = np.flatnonzero(ok)
    event = occ.event[rows]
    linked = node_at[rows]
    priority = np.array([t.priority if t else 1 << 30 for t in occ.types] + [0], np.int64)
    anchors = _anchors(events.num_rows, event, priority[occ.type_index[rows]], linked)
    edges = _new_edges(g, events, event, linked, anchors)
    outcome = g.graph.add_edges(
        np.asarray(edges["a"], np.int64),
        np.asarray(edges["b"], np.int64),
        micros(pa.array(edges["seen_at"], _US)),
    )
    names = g.bucket_names
    kinds = outcome.kind.tolist()
    edges["status"] = ["refused" if k == REFUSED else "active" for k in kinds]
    edges["bucket"] = [names[b] if b >= 0 else None for b in outcome.bucket.tolist()]
    changes: dict[str, list[Any]] = {name: [] for name in CHANGE_SCHEMA.names}
    survivors, absorbed = outcome.survivor.tolist(), outcome.absorbed.tolist()
    for j, kind in enumerate(kinds):
        if kind != MERGED or absorbed[j] >= first_new:
            continue  # a new identifier joining a person changes no stored OneID
        for name, v in (
            ("change_id", g.next_change),
            ("changed_at", now),
            ("kind", "merge"),
            ("profile_id", survivors[j]),
            ("other_profile_id", absorbed[j]),
            ("edge_id", edges["edge_id"][j]),
            ("node_id", edges["b"][j]),
            ("source_id", edges["source_id"][j]),
            ("message_id", edges["message_id"][j]),
            ("actor", "resolver"),
            ("detail", None),
        ):
            changes[name].append(v)
        g.next_change += 1
    # new nodes get their final person; stored persons that were absorbed are renamed
    if new_buckets:
        new_nodes["profile_id"] = g.graph.label_of(
            np.arange(first_new, g.graph.n_nodes, dtype=np.int64)
        ).tolist()
    old = sorted({a for a in changes["other_profile_id"] if a < first_new})
    relabel = pa.table(
        {
            "old_label": pa.array(old, pa.int64()),
            "new_label": pa.array(g.graph.label_of(np.asarray(old, np.int64)).tolist(), pa.int64()),
        }
    )
    event_nodes = pa.table(
        {
            "source_id": events.column("source_id"),
            "message_id": events.column("message_id"),
            "node_id": pa.array(anchors),
            "resolved_at": pa.array([now] * events.num_rows, pa.timestamp("us")),
            "commit_seq": events.column("commit_seq"),
            "timestamp": events.column("timestamp"),
            "type": events.column("type"),
            "event": events.column("event"),
            "name": events.column("name"),
            "brand_id": events.column("brand_id"),
        }
    )
    return BatchChanges(
        nodes=pa.table(new_nodes, schema=NODE_SCHEMA),
        edges=pa.table(edges, schema=EDGE_SCHEMA),
        changes=pa.table(changes, schema=CHANGE_SCHEMA),
        event_nodes=event_nodes,
        relabel=relabel,
        merges=kinds.count(MERGED),
        refused=kinds.count(REFUSED),
        dropped=dropped,
    )


def _remember(g: TenantGraph, texts: list[str], codes: np.ndarray, nodes: np.ndarray) -> None:
    """Keep the node (or refusal) of each raw identifier newly worked out, for later
    batches; past :data:`RAW_NODES_MAX` the memory starts over."""
    if not len(codes):
        return
    distinct, first = np.unique(codes, return_index=True)
    if len(g.raw_nodes) + len(distinct) > RAW_NODES_MAX:
        g.raw_nodes.clear()
    found = [texts[c] for c in distinct.tolist()]
    g.raw_nodes.update(zip(found, nodes[first].tolist(), strict=True))


def _new_node(
    g: TenantGraph,
    rows: dict[str, list[Any]],
    node: int,
    t: IdentifierType,
    scope: str,
    key: str,
    value: str,
) -> None:
    """One new node's row (its source and first_seen are taken as columns after)."""
    secret = t.pii and g.rules.pii_storage == "encrypted"
    for name, v in (
        ("node_id", node),
        ("id_type", t.key),
        ("scope", scope),
        ("key", key),
        ("value", None if t.pii else value),
        ("value_enc", encrypt(g.keys, value, aad=key.encode()) if secret else None),
        ("masked", mask(t.key, value) if t.pii else value),
        ("profile_id", node),
    ):
        rows[name].append(v)


def store_changes(db: Session, tenant_id: str, changes: BatchChanges) -> None:
    """Write a batch's changes (inside the caller's transaction)."""
    for name, table, stmt in (
        ("staged_nodes", changes.nodes, q.INSERT_NODES),
        ("staged_edges", changes.edges, q.INSERT_EDGES),
        ("staged_changes", changes.changes, q.INSERT_CHANGES),
        ("staged_event_nodes", changes.event_nodes, q.INSERT_EVENT_NODES),
    ):
        if table.num_rows:
            db.with_table(name, table, stmt, [tenant_id])
    if changes.relabel.num_rows:
        db.with_table("staged_relabel", changes.relabel, q.RELABEL_PROFILES, [tenant_id])
