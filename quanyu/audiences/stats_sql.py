"""SQL of the audiences' read-only summaries for the console (see ``stats.py``)."""

from __future__ import annotations

from quanyu.engine import statement

#: An audience's latest pushes, newest first.
PUSHES = statement(
    "audiences.stats.pushes",
    "SELECT push_id, audience_id, snapshot_id, destination_id, identifier, records, batches,"
    " created_at FROM audience_pushes WHERE tenant_id = ? AND audience_id = ?"
    " ORDER BY created_at DESC, push_id DESC LIMIT ?",
)
