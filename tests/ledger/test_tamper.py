"""Tampering with the stored log, a proof or a leaf is caught by a verifier holding a
signed checkpoint; the scheduled checkpointer signs only logs that grew."""

from __future__ import annotations

import time

import pytest

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import Conflict
from quanyu.ledger import merkle, service, tiles, verify
from quanyu.ledger.checkpointer import Checkpointer
from quanyu.ledger.log import Leaf

MASTER = bytes(range(1, 33))
T = "ten_tamper"


def _fill(engine: DuckDBEngine, n: int) -> list[bytes]:
    data = [b'{"redemption":%d}' % i for i in range(n)]
    with engine.connect() as db:
        service.append_committed(db, T, [Leaf("redemption", f"r:{i}", merkle.leaf_hash(d), d)
                                         for i, d in enumerate(data)])  # fmt: skip
    return data


def test_every_altered_proof_node_and_leaf_is_detected(engine: DuckDBEngine) -> None:
    _fill(engine, 64)
    key = service.verifier_key(MASTER, T)
    with engine.connect() as db:
        note = service.checkpoint(db, T, MASTER).note
        for index in range(64):
            bundle = service.inclusion_bundle(db, T, index)
            assert verify.verify(bundle, note, key).tree_size == 64
            for i, node in enumerate(bundle["proof"]):
                bad = [*bundle["proof"]]
                bad[i] = ("0" if node[0] != "0" else "1") + node[1:]
                with pytest.raises(verify.BundleError, match="does not lead to the root"):
                    verify.verify({**bundle, "proof": bad}, note, key)
            other = merkle.leaf_hash(bundle["leaf_data"].encode() + b" ").hex()
            with pytest.raises(verify.BundleError, match="does not lead to the root"):
                verify.verify({**bundle, "leaf_hash": other, "leaf_data": None}, note, key)
            with pytest.raises(verify.BundleError, match="too (long|short)"):
                verify.verify({**bundle, "proof": bundle["proof"][:-1]}, note, key)


def test_a_leaf_rewritten_in_the_database_no_longer_proves(engine: DuckDBEngine) -> None:
    data = _fill(engine, 300)
    key = service.verifier_key(MASTER, T)
    with engine.connect() as db:
        note = service.checkpoint(db, T, MASTER).note
        # someone with the database file swaps leaf 5's hash in its tile
        raw = db._con  # type: ignore[attr-defined]
        tile = bytearray(raw.execute("SELECT hashes FROM ledger_tiles WHERE tenant_id = ?"
                                     " AND level = 0 AND idx = 0", [T]).fetchone()[0])  # fmt: skip
        tile[5 * 32 : 6 * 32] = merkle.leaf_hash(b'{"redemption":"forged"}')
        raw.execute("UPDATE ledger_tiles SET hashes = ? WHERE tenant_id = ? AND level = 0"
                    " AND idx = 0", [bytes(tile), T])  # fmt: skip
        tiles.clear()
        # leaves whose proofs pass through the altered hash now fail against the checkpoint
        for index in (4, 0, 200):
            bundle = service.inclusion_bundle(db, T, index)
            with pytest.raises(verify.BundleError, match="does not lead to the root"):
                verify.verify(bundle, note, key)
        # and the forged leaf cannot be proven either
        forged = {**service.inclusion_bundle(db, T, 5), "leaf_data": '{"redemption":"forged"}',
                  "leaf_hash": None}  # fmt: skip
        with pytest.raises(verify.BundleError, match="does not lead to the root"):
            verify.verify(forged, note, key)
        # leaves beyond the altered tile still prove
        assert verify.verify(service.inclusion_bundle(db, T, 299), note, key)
        assert service.get_leaf(db, T, 5).data == data[5]


def test_a_shortened_tile_is_refused_with_a_clear_error(engine: DuckDBEngine) -> None:
    _fill(engine, 20)
    with engine.connect() as db:
        db._con.execute(  # type: ignore[attr-defined]
            "UPDATE ledger_edge SET hashes = ? WHERE tenant_id = ?", [b"\x00" * 64, T]
        )
        tiles.clear()
        with pytest.raises(Conflict, match="altered outside Quanyu"):
            service.inclusion_proof(db, T, 3, 20)


def test_checkpointer_signs_only_grown_logs(engine: DuckDBEngine) -> None:
    signer = Checkpointer(engine, MASTER, interval=3600)
    assert signer.run_once() == []
    _fill(engine, 3)
    assert signer.run_once() == [T]
    assert signer.run_once() == []
    with engine.connect() as db:
        service.append_committed(db, T, [Leaf("code", "c:9", merkle.leaf_hash(b"9"))])
    signer.start()
    signer.poke()
    try:
        for _ in range(200):
            with engine.connect() as db:
                latest = service.latest_checkpoint(db, T)
            if latest and latest.tree_size == 4:
                break
            time.sleep(0.02)
    finally:
        signer.stop()
    assert latest is not None and latest.tree_size == 4
