"""Storing a recomputed partition (a full rebuild or a split) and the links it uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.engine import Session
from quanyu.identity import sql as q
from quanyu.identity.components import Resolution
from quanyu.identity.graph import CHANGE_SCHEMA, TenantGraph


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def store_partition(
    db: Session,
    g: TenantGraph,
    nodes: np.ndarray,
    before: np.ndarray,
    res: Resolution,
    edges: pa.Table,
    *,
    kind: str,
    actor: str,
    node_id: int | None = None,
    detail: str | None = None,
    first: Callable[[Session], object] | None = None,
    then: Callable[[Session], object] | None = None,
) -> int:
    """Store new labels of ``nodes`` and statuses of ``edges``; record the changes."""
    labels, refused, refused_bucket = res.labels, res.refused, res.refused_bucket
    changed = labels != before
    names = g.bucket_names
    status = np.full(edges.num_rows, "active", dtype=object)
    status[refused] = "refused"
    bucket = np.full(edges.num_rows, None, dtype=object)
    bucket[refused] = [names[b] for b in refused_bucket.tolist()]
    old_status = edges.column("status").to_numpy(zero_copy_only=False)
    differs = status != old_status
    pairs = sorted(set(zip(before[changed].tolist(), labels[changed].tolist(), strict=True)))
    now = _now()
    rows = {
        "change_id": list(range(g.next_change, g.next_change + len(pairs))),
        "changed_at": [now] * len(pairs),
        "kind": [kind] * len(pairs),
        "profile_id": [old for old, _ in pairs],
        "other_profile_id": [new for _, new in pairs],
        "edge_id": [None] * len(pairs),
        "node_id": [node_id] * len(pairs),
        "source_id": [None] * len(pairs),
        "message_id": [None] * len(pairs),
        "actor": [actor] * len(pairs),
        "detail": [detail] * len(pairs),
    }
    with db.transaction():
        if first is not None:
            first(db)
        if changed.any():
            db.with_table(
                "staged_labels",
                pa.table({"node_id": nodes[changed], "label": labels[changed]}),
                q.RELABEL_NODES,
                [g.tenant_id],
            )
        if differs.any():
            db.with_table(
                "staged_status",
                pa.table(
                    {
                        "edge_id": edges.column("edge_id").to_numpy()[differs],
                        "status": pa.array(status[differs].tolist(), pa.string()),
                        "bucket": pa.array(bucket[differs].tolist(), pa.string()),
                    }
                ),
                q.SET_EDGE_STATUS,
                [g.tenant_id],
            )
        if pairs:
            db.with_table(
                "staged_changes",
                pa.table(rows, schema=CHANGE_SCHEMA),
                q.INSERT_CHANGES,
                [g.tenant_id],
            )
            g.next_change += len(pairs)
        if then is not None:
            then(db)
    return int(changed.sum())


def live_edges(edges: pa.Table, unlinked: int | None = None) -> pa.Table:
    """The links that take part in resolution: not removed, exact ('same'), and not
    touching ``unlinked``."""
    keep = pc.and_(
        pc.not_equal(edges.column("status"), "removed"), pc.equal(edges.column("kind"), "same")
    )
    if unlinked is not None:
        touching = pc.or_(
            pc.equal(edges.column("a"), unlinked), pc.equal(edges.column("b"), unlinked)
        )
        keep = pc.and_(keep, pc.invert(touching))
    return edges.filter(keep)
