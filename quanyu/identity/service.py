"""The resolver: keeps every tenant's OneIDs in step with its events.

It is the only writer of the identity tables. In ``quanyu serve`` it runs in a thread
woken by each group commit, so an event is resolved within a second of its 200; the CLI
runs it in-process when no server runs. Full rebuilds and splits go through it too, one
at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from quanyu.engine import Engine, Session
from quanyu.errors import NotFound, ValidationFailed
from quanyu.identity import sql as q
from quanyu.identity.components import (
    components_of,
    linked_nodes,
    resolve,
)
from quanyu.identity.graph import (
    TenantGraph,
    load_graph,
    micros,
    node_buckets,
    resolve_events,
    shell_graph,
    store_changes,
)
from quanyu.identity.normalize import InvalidIdentifier, normalize
from quanyu.identity.partition import live_edges, store_partition
from quanyu.identity.secrets import TenantKeys, identifier_key
from quanyu.identity.tokens import Tokenizer
from quanyu.identity.types import IdentityRules, Scope
from quanyu.ids import utcnow
from quanyu.ingest.pii import Sealer

log = logging.getLogger("quanyu.identity")

#: Events resolved per transaction (whole commits: a bulk commit may exceed it).
BATCH_EVENTS = 200_000


@dataclass
class ResolveReport:
    """What a resolve run did."""

    events: int = 0
    identifiers: int = 0
    links: int = 0
    merges: int = 0
    conflicts: int = 0
    dropped: int = 0
    moved: int = 0
    profiles: int = 0

    def add(self, other: ResolveReport) -> None:
        for name in ("events", "identifiers", "links", "merges", "conflicts", "dropped", "moved"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Resolver:
    """Resolution for every tenant of one store (one per process)."""

    #: Seconds between the starts of two background runs. A run costs ~30 ms of its
    #: thread's CPU before its first event (about 40 calls into DuckDB and Arrow, each
    #: waiting for the interpreter lock under load), so under steady ingest fewer, larger
    #: runs leave more of the machine to ingest and resolve sooner: at 0.5 s rather than
    #: 0.2 s, resolution kept up with more events per second and lagged less (see
    #: BENCHMARKS.md), and an event still resolves within a second of its 200.
    min_interval = 0.5

    def __init__(self, engine: Engine, master_key: bytes, *, batch_events: int = BATCH_EVENTS):
        self._engine = engine
        self._master = master_key
        self._batch = batch_events
        self._graphs: dict[str, TenantGraph] = {}
        self._sealers: dict[str, Sealer] = {}
        self._rules: dict[str, IdentityRules] = {}
        self._secrets: dict[str, tuple[TenantKeys, Tokenizer]] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen_seq = 0
        self._notified = 0  # the last commit the writer announced
        self._done = 0  # every commit up to this one is resolved
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each catch-up that resolved events (consent capture)."""
        self._listeners.append(listener)

    # --- background ---------------------------------------------------------------------
    def notify(self, seq: int = 0) -> None:
        """Wake the background thread (the writer calls this after each commit)."""
        self._notified = max(self._notified, seq)
        self._wake.set()

    @property
    def commits_behind(self) -> int:
        """Group commits announced since the start of the last background run that
        finished: 0 when resolution has caught up with ingest."""
        return max(0, self._notified - self._done)

    def start(self) -> None:
        """Resolve in a background thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="quanyu-resolver", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            started, target = time.monotonic(), self._notified
            try:
                self.catch_up()
                self._done = max(self._done, target)
            except Exception:  # noqa: BLE001 - logged; the next wake retries from the store
                log.exception("identity resolution failed; retrying on the next commit")
                self._stopping.wait(1.0)
            # under steady ingest, gather commits for a moment (see min_interval)
            self._stopping.wait(max(0.0, self.min_interval - (time.monotonic() - started)))

    # --- state --------------------------------------------------------------------------
    def sealer(self, tenant_id: str) -> Sealer:
        """How ingest seals the tenant's PII identifier values (its rules' PII types)."""
        found = self._sealers.get(tenant_id)
        if found is None:
            with self._engine.connect() as db:
                rules = self.rules(db, tenant_id)
            kinds = frozenset(t.key for t in rules.types.values() if t.pii)
            tokens = self.tokens(tenant_id)
            found = Sealer(kinds, tokens.seal, tokens.open)
            self._sealers[tenant_id] = found
        return found

    def reveal(self, tenant_id: str) -> Callable[[str], str]:
        """Opens the tenant's sealed PII values (for masked display, never for export)."""
        return self.tokens(tenant_id).open

    def tokens(self, tenant_id: str) -> Tokenizer:
        """The tenant's PII tokenizer."""
        return self._derived(tenant_id)[1]

    def _derived(self, tenant_id: str) -> tuple[TenantKeys, Tokenizer]:
        found = self._secrets.get(tenant_id)
        if found is None:
            found = (
                TenantKeys.derive(self._master, tenant_id),
                Tokenizer.derive(self._master, tenant_id),
            )
            self._secrets[tenant_id] = found
        return found

    def keys(self, tenant_id: str) -> TenantKeys:
        """The tenant's hashing and encryption keys."""
        return self._derived(tenant_id)[0]

    def _state(self, db: Session, tenant_id: str) -> tuple[Any, ...]:
        row = db.one(q.GET_STATE, [tenant_id])
        if row is None:
            rules = orjson.dumps(IdentityRules.default().to_dict()).decode()
            db.execute(q.CREATE_STATE, [tenant_id, rules, utcnow()])
            row = db.one(q.GET_STATE, [tenant_id])
            assert row is not None
        return row

    def rules(self, db: Session, tenant_id: str) -> IdentityRules:
        """The tenant's identifier rules (the shipped defaults until changed)."""
        found = self._rules.get(tenant_id)
        if found is None:
            row = db.one(q.GET_STATE, [tenant_id])
            if row is None or row[0] is None:
                return IdentityRules.default()
            found = IdentityRules.from_dict(orjson.loads(str(row[0])))
            self._rules[tenant_id] = found
        return found

    def set_rules(self, db: Session, tenant_id: str, rules: IdentityRules) -> None:
        """Replace the tenant's rules; they apply to what is resolved from now on and to
        the next full rebuild."""
        with self._lock:
            self._state(db, tenant_id)
            db.execute(
                q.UPDATE_RULES, [orjson.dumps(rules.to_dict()).decode(), utcnow(), tenant_id]
            )
            self._graphs.pop(tenant_id, None)
            self._sealers.pop(tenant_id, None)
            self._rules.pop(tenant_id, None)

    def _shell(self, tenant_id: str, state: tuple[Any, ...]) -> TenantGraph:
        rules = IdentityRules.from_dict(orjson.loads(str(state[0])))
        tokens = self.tokens(tenant_id)
        return shell_graph(tenant_id, self.keys(tenant_id), tokens, rules, state)

    def _graph(self, db: Session, tenant_id: str) -> TenantGraph:
        g = self._graphs.get(tenant_id)
        if g is None:
            state = self._state(db, tenant_id)
            rules = IdentityRules.from_dict(orjson.loads(str(state[0])))
            g = load_graph(
                db,
                tenant_id,
                self.keys(tenant_id),
                self.tokens(tenant_id),
                rules,
                state,
            )
            self._graphs[tenant_id] = g
        return g

    # --- incremental --------------------------------------------------------------------
    def catch_up(self, tenant_id: str | None = None) -> ResolveReport:
        """Resolve every committed event not resolved yet (of one tenant, or of all)."""
        report = ResolveReport()
        with self._lock, self._engine.connect() as db:
            if tenant_id is not None:
                tenants = [tenant_id]
            else:
                pending = db.execute(q.PENDING_TENANTS, [self._seen_seq])
                tenants = sorted(t for t, _ in pending)
                top = max((int(s) for _, s in pending), default=self._seen_seq)
            for tenant in tenants:
                report.add(self._catch_up(db, tenant))
            if tenant_id is None:
                self._seen_seq = top
        if report.events:
            for listener in self._listeners:
                listener()
        return report

    def _catch_up(self, db: Session, tenant_id: str) -> ResolveReport:
        g = self._graph(db, tenant_id)
        report = ResolveReport()
        commits = db.execute(q.PENDING_COMMITS, [tenant_id, g.resolved_seq])
        start, size = g.resolved_seq, 0
        for i, (seq, count) in enumerate(commits):
            size += int(count)
            if size < self._batch and i + 1 < len(commits):
                continue
            report.add(self._resolve_range(db, g, start, int(seq)))
            start, size = int(seq), 0
        return report

    def _resolve_range(self, db: Session, g: TenantGraph, after: int, upto: int) -> ResolveReport:
        events = db.arrow(q.EVENTS_TO_RESOLVE, [g.tenant_id, after, upto])
        now = utcnow()
        try:
            changes = resolve_events(g, events, now)
            with db.transaction():
                store_changes(db, g.tenant_id, changes)
                self._save_counters(db, g, upto, now)
        except BaseException:
            self._graphs.pop(g.tenant_id, None)  # memory is ahead of the store: reload
            raise
        g.resolved_seq = upto
        return ResolveReport(
            events=events.num_rows,
            identifiers=changes.nodes.num_rows,
            links=changes.edges.num_rows,
            merges=changes.merges,
            conflicts=changes.refused,
            dropped=changes.dropped,
        )

    def _save_counters(self, db: Session, g: TenantGraph, seq: int, now: datetime) -> None:
        db.execute(
            q.UPDATE_COUNTERS,
            [g.graph.n_nodes, g.next_edge, g.next_change, seq, now, g.tenant_id],
        )

    # --- full rebuild -------------------------------------------------------------------
    def rebuild(self, tenant_id: str, *, actor: str = "resolver") -> ResolveReport:
        """Recompute every person of the tenant from all its links, in arrival order.

        Gives the partition incremental resolution gives on the same links; links a
        limit refused are tried again (a split may have made room for them).
        """
        with self._lock, self._engine.connect() as db:
            report = ResolveReport()
            state = self._state(db, tenant_id)
            if self._graphs.get(tenant_id) or db.execute(
                q.PENDING_COMMITS, [tenant_id, int(state[4])]
            ):
                report = self._catch_up(db, tenant_id)
            # without a loaded graph, a shell does: no identifier index, no link set
            g = self._graphs.get(tenant_id) or self._shell(tenant_id, state)
            nodes = db.arrow(q.LOAD_NODE_BUCKETS, [tenant_id])
            edges = live_edges(db.arrow(q.LOAD_EDGES, [tenant_id]))
            found = node_buckets(g, nodes)
            stored = nodes.column("profile_id").to_numpy()
            res = resolve(
                nodes.num_rows,
                edges.column("a").to_numpy(),
                edges.column("b").to_numpy(),
                found.bucket,
                found.limits,
                bucket_window=found.windows,
                node_time=found.times,
                edge_time=micros(edges.column("seen_at")),
            )
            g.graph = found.graph(res.labels)
            everything = np.arange(nodes.num_rows, dtype=np.int64)
            moved = store_partition(
                db,
                g,
                everything,
                stored,
                res,
                edges,
                kind="rebuild",
                actor=actor,
                then=lambda tx: self._save_counters(tx, g, g.resolved_seq, utcnow()),
            )
        report.moved = moved
        report.profiles = res.n_components
        return report

    # --- splits -------------------------------------------------------------------------
    def node_key(self, db: Session, tenant_id: str, type_key: str, value: str, scope: str) -> str:
        """The graph key of an identifier as a person would type it (normalised, hashed)."""
        rules = self.rules(db, tenant_id)
        t = rules.type_for(type_key)
        if t.scope is not Scope.GROUP and not scope:
            raise ValidationFailed(
                f"Identifier type {type_key!r} is scoped by {t.scope.value}: give the"
                f" {t.scope.value} id as scope (for example {type_key}:<{t.scope.value}>:<value>)."
            )
        try:
            canonical = normalize(rules, t.key, value)
        except InvalidIdentifier as e:
            raise ValidationFailed(f"{e.message}") from e
        return identifier_key(self.keys(tenant_id), rules, t.key, scope, canonical)

    def unlink(
        self, tenant_id: str, node: int, *, actor: str, reason: str | None = None
    ) -> list[int]:
        """Remove every link of identifier ``node`` and re-resolve its person.

        Returns the persons (OneID numbers) the old person became. The piece holding the
        person's smallest node keeps its number; events follow their identifiers. The same
        link arriving again later does not merge again.
        """
        with self._lock, self._engine.connect() as db:
            self._catch_up(db, tenant_id)
            g = self._graph(db, tenant_id)
            if node < 0 or node >= g.graph.n_nodes:
                raise NotFound(f"Identifier node {node} does not exist in this tenant.")
            labels = g.graph.labels()
            person = int(labels[node])
            nodes = db.arrow(q.LOAD_NODE_BUCKETS, [tenant_id])
            edges = live_edges(db.arrow(q.LOAD_EDGES, [tenant_id]), unlinked=node)
            a = edges.column("a").to_numpy()
            b = edges.column("b").to_numpy()
            members = np.flatnonzero(labels == person)
            closure = linked_nodes(members, a, b)
            inside = np.isin(a, closure) & np.isin(b, closure)
            found = node_buckets(g, nodes)
            res = components_of(
                closure,
                a[inside],
                b[inside],
                found.bucket[closure],
                found.limits,
                bucket_window=found.windows,
                node_time=found.times[closure],
                edge_time=micros(edges.column("seen_at"))[inside],
            )
            store_partition(
                db,
                g,
                closure,
                labels[closure],
                res,
                edges.filter(pa.array(inside)),
                kind="split",
                actor=actor,
                node_id=node,
                detail=reason,
                first=lambda tx: tx.execute(
                    q.REMOVE_LINKS, [utcnow(), reason or "unlinked", tenant_id, node, node]
                ),
                then=lambda tx: self._save_counters(tx, g, g.resolved_seq, utcnow()),
            )
            g.graph.apply_partition(closure, res.labels)
            pieces = res.labels[np.isin(closure, members)]
            return sorted({int(x) for x in pieces.tolist()})
