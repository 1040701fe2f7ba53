"""A record's leaf proved and checked against the signed checkpoint: waiting until a
checkpoint covers it, verified after, refused when the record's data does not hash to the
leaf, and absent for a record never logged."""

from __future__ import annotations

import os

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.ledger import merkle, service
from quanyu.ledger.checked import check_ref
from quanyu.ledger.log import Leaf


def _leaf(n: int) -> Leaf:
    data = f'{{"n":{n},"type":"test"}}'.encode()
    return Leaf("test", f"test:{n}", merkle.leaf_hash(data), data)


def test_pending_then_verified_then_tampered(engine: DuckDBEngine) -> None:
    master, tenant = os.urandom(32), "ten_checked"
    with engine.connect() as db:
        service.append_committed(db, tenant, [_leaf(n) for n in range(5)])
        waiting = check_ref(db, tenant, "test:3", master_key=master)
        assert waiting.found and waiting.pending and not waiting.verified
        assert (waiting.index, waiting.tree_size) == (3, 5)
        with db.transaction():
            service.checkpoint(db, tenant, master)
        service.append_committed(db, tenant, [_leaf(n) for n in range(5, 9)])  # after it
        done = check_ref(db, tenant, "test:3", master_key=master, leaf_data='{"n":3,"type":"test"}')
        assert done.verified and not done.pending and done.tree_size == 5
        assert done.proof == service.inclusion_bundle(db, tenant, 3, 5)["proof"]
        assert done.checkpoint and done.root == service.root(db, tenant, 5).hex()
        assert check_ref(db, tenant, "test:7", master_key=master).pending  # newer than it
        forged = check_ref(db, tenant, "test:3", master_key=master,
                           leaf_data='{"n":4,"type":"test"}')  # fmt: skip
        assert not forged.verified and "altered" in (forged.reason or "")
        other_key = check_ref(db, tenant, "test:3", master_key=os.urandom(32))
        assert not other_key.verified and "checkpoint" in (other_key.reason or "")
        missing = check_ref(db, tenant, "test:99", master_key=master)
        assert not missing.found and not missing.verified
