"""Storing a recomputed partition (a full rebuild or a split) and the links it uses."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.engine import Session
from quanyu.identity import sql as q
from quanyu.identity.components import Resolution
from quanyu.identity.graph import CHANGE_SCHEMA, TenantGraph
from quanyu.ids import utcnow


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
    now_refused = np.zeros(edges.num_rows, bool)
    now_refused[refused] = True
    bucket_of = np.full(edges.num_rows, -1, np.int64)
    bucket_of[refused] = refused_bucket
    was_refused = pc.equal(edges.column("status"), "refused").to_numpy(zero_copy_only=False)
    differs = np.flatnonzero(now_refused != was_refused)  # live links: active or refused
    # one change per (old person, new person) the moved identifiers went between
    moves = np.unique((before[changed].astype(np.int64) << 32) | labels[changed])
    count = len(moves)
    now = utcnow()
    rows = pa.table(
        {
            "change_id": pa.array(np.arange(g.next_change, g.next_change + count)),
            "changed_at": pa.repeat(pa.scalar(now, pa.timestamp("us")), count),
            "kind": pa.repeat(pa.scalar(kind), count),
            "profile_id": pa.array(moves >> 32),
            "other_profile_id": pa.array(moves & 0xFFFFFFFF),
            "edge_id": pa.nulls(count, pa.int64()),
            "node_id": pa.repeat(pa.scalar(node_id, pa.int64()), count),
            "source_id": pa.nulls(count, pa.string()),
            "message_id": pa.nulls(count, pa.string()),
            "actor": pa.repeat(pa.scalar(actor), count),
            "detail": pa.repeat(pa.scalar(detail, pa.string()), count),
        },
        schema=CHANGE_SCHEMA,
    )
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
        if len(differs):
            db.with_table(
                "staged_status",
                pa.table(
                    {
                        "edge_id": edges.column("edge_id").to_numpy()[differs],
                        "status": pa.array(
                            ["refused" if r else "active" for r in now_refused[differs]],
                            pa.string(),
                        ),
                        "bucket": pa.array(
                            [names[b] if b >= 0 else None for b in bucket_of[differs].tolist()],
                            pa.string(),
                        ),
                    }
                ),
                q.SET_EDGE_STATUS,
                [g.tenant_id],
            )
        if count:
            db.with_table("staged_changes", rows, q.INSERT_CHANGES, [g.tenant_id])
            g.next_change += count
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
