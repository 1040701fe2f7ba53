"""Signed checkpoints: the C2SP text format, the signed-note signature, tampering."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.ledger import checkpoint as cpt
from quanyu.ledger import merkle, service, verify
from quanyu.ledger.checkpoint import CheckpointError
from quanyu.ledger.log import Leaf

MASTER = bytes(range(32))
T = "ten_cp"


def signed(size: int = 3, root: bytes | None = None) -> tuple[str, str]:
    root = root or merkle.mth([merkle.leaf_hash(b"%d" % i) for i in range(size)])
    name = cpt.origin(T)
    note = cpt.sign(cpt.Checkpoint(name, size, root), name, cpt.signing_key(MASTER, T))
    return note, cpt.tenant_verifier_key(MASTER, T)


def test_text_format_follows_c2sp() -> None:
    root = merkle.mth([merkle.leaf_hash(b"a")])
    note, key = signed(1, root)
    lines = note.split("\n")
    assert lines[:4] == ["quanyu.local/ten_cp", "1", base64.b64encode(root).decode(), ""]
    assert lines[4].startswith("\u2014 quanyu.local/ten_cp ") and lines[5] == "" and len(lines) == 6
    stamp = base64.b64decode(lines[4].split(" ")[2])
    public = cpt.public_bytes(cpt.signing_key(MASTER, T).public_key())
    # key hash per the signed-note spec, computed here from its text
    khash = hashlib.sha256(b"quanyu.local/ten_cp\n\x01" + public).digest()[:4]
    assert stamp[:4] == khash and len(stamp) == 4 + 64
    Ed25519PublicKey.from_public_bytes(public).verify(
        stamp[4:], note.split("\n\n")[0].encode() + b"\n"
    )
    encoded = base64.b64encode(b"\x01" + public).decode()
    assert key == f"quanyu.local/ten_cp+{khash.hex()}+{encoded}"


def test_round_trip_and_determinism() -> None:
    note, key = signed(5)
    cp = cpt.open_signed(note, key)
    assert (cp.origin, cp.size) == ("quanyu.local/ten_cp", 5)
    assert cpt.sign(cp, cp.origin, cpt.signing_key(MASTER, T)) == note
    assert cpt.parse(note)[0] == cp


def test_keys_are_per_tenant_and_per_master_key() -> None:
    assert cpt.tenant_verifier_key(MASTER, "a") != cpt.tenant_verifier_key(MASTER, "b")
    assert cpt.tenant_verifier_key(MASTER, "a") != cpt.tenant_verifier_key(bytes(32), "a")
    note, _ = signed()
    with pytest.raises(CheckpointError, match="no signature by key"):
        cpt.open_signed(note, cpt.tenant_verifier_key(MASTER, "other"))
    with pytest.raises(CheckpointError, match="no signature by key"):
        cpt.open_signed(note, cpt.tenant_verifier_key(bytes(31) + b"\x01", T))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda n: n.replace("\n3\n", "\n4\n", 1), "does not verify"),
        (lambda n: n.replace("quanyu.local/ten_cp\n", "quanyu.local/ten_cx\n", 1), "verify"),
        (lambda n: n.replace("\n\n", "\nextra\n\n", 1), "does not verify"),
        (lambda n: n.replace("\n3\n", "\n03\n", 1), "not a decimal"),
        (lambda n: n.replace("\n\n", "\n", 1), "no blank line|signature line"),
        (lambda n: n[:-1], "ends with a newline"),
        (lambda n: n.replace("\n", "\r\n"), "carriage"),
    ],
)
def test_tampered_text_is_refused(change, reason) -> None:  # type: ignore[no-untyped-def]
    note, key = signed()
    with pytest.raises(CheckpointError, match=reason):
        cpt.open_signed(change(note), key)


def test_every_bit_of_root_and_signature_matters() -> None:
    note, key = signed()
    body, _, sig = note.partition("\n\n")
    lines = body.split("\n")
    root = bytearray(base64.b64decode(lines[2]))
    for i in range(0, len(root), 7):
        bad = bytearray(root)
        bad[i] ^= 1
        text = "\n".join([*lines[:2], base64.b64encode(bad).decode()]) + "\n\n" + sig
        with pytest.raises(CheckpointError, match="does not verify"):
            cpt.open_signed(text, key)
    prefix, _, stamp = sig.rstrip("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(stamp))
    for i in range(4, len(raw), 5):
        bad = bytearray(raw)
        bad[i] ^= 0x80
        text = f"{body}\n\n{prefix} {base64.b64encode(bad).decode()}\n"
        with pytest.raises(CheckpointError, match="does not verify"):
            cpt.open_signed(text, key)


def test_malformed_verifier_keys_are_refused() -> None:
    _, key = signed()
    name, khash, b64 = key.split("+")
    for bad in ["nope", f"{name}+{khash}", f"{name}+zzzzzzzz+{b64}", f"{name}+00000000+{b64}",
                f"{name}+{khash}+AAAA", f"other+{khash}+{b64}"]:  # fmt: skip
        with pytest.raises(CheckpointError):
            cpt.parse_verifier_key(bad)


def test_service_signs_and_bundles_verify(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        empty = service.checkpoint(db, T, MASTER)
        assert empty.tree_size == 0 and empty.root == merkle.EMPTY_ROOT
        leaves = [Leaf("code", f"code:{i}", merkle.leaf_hash(b"%d" % i), b"%d" % i)
                  for i in range(10)]  # fmt: skip
        service.append_committed(db, T, leaves)
        cp = service.checkpoint(db, T, MASTER)
        assert service.checkpoint(db, T, MASTER) == cp  # not grown: the same checkpoint
        assert service.latest_checkpoint(db, T) == cp
        key = service.verifier_key(MASTER, T)
        bundle = service.inclusion_bundle(db, T, 7)
        assert bundle["checkpoint"] == cp.note and bundle["leaf_data"] == "7"
        assert verify.verify(bundle, cp.note, key).tree_size == 10
        del bundle["leaf_hash"]  # the data alone proves the leaf
        verify.verify(bundle, cp.note, key)
        bundle["leaf_data"] = "8"
        with pytest.raises(verify.BundleError, match="does not lead to the root"):
            verify.verify(bundle, cp.note, key)
        cons = service.consistency_bundle(db, T, 0, 10)
        assert cons["old_checkpoint"] == empty.note
        assert "prefix" in verify.verify(cons, cp.note, key).statement
        cons["old_root"] = merkle.leaf_hash(b"x").hex()
        with pytest.raises(verify.BundleError, match="differ from the old checkpoint"):
            verify.verify(cons, cp.note, key)
        with pytest.raises(verify.BundleError, match="checkpoint is for 10"):
            verify.verify(service.inclusion_bundle(db, T, 1, 5), cp.note, key)
