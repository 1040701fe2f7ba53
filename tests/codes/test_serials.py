"""Serial codes: Crockford encoding, keyed tags (forgeries refused without a database
read), the MOD 37-36 check character, and uniqueness of generated codes."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from quanyu.codes import generate, serials, service
from quanyu.codes import sql as q
from quanyu.codes.serials import ALPHABET, CodeKeys, ForgedCode
from quanyu.engine import Session
from tests.codes.conftest import Plant

KEYS = CodeKeys.derive(bytes(range(32)), "ten_a")
ISO = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def reference_encode(b: bytes) -> str:
    v = int.from_bytes(b, "big")
    return "".join(ALPHABET[(v >> (75 - 5 * i)) & 31] for i in range(16))


def serial_of(raw: np.ndarray, keys: CodeKeys = KEYS) -> list[str]:  # type: ignore[type-arg]
    chars = np.concatenate([serials.encode(raw), serials.tags(keys, raw)], axis=1)
    return [bytes(r).decode() for r in chars]


def test_encode_matches_a_reference_and_decodes_back() -> None:
    raw = serials.draw(5000)
    chars = serials.encode(raw)
    assert [bytes(r).decode() for r in chars[:500]] == [
        reference_encode(bytes(r)) for r in raw[:500]
    ]
    assert (serials.decode(chars) == raw).all()
    edge = np.array([[0] * 10, [255] * 10], np.uint8)
    assert [bytes(r).decode() for r in serials.encode(edge)] == ["0" * 16, "Z" * 16]


def test_decode_forgives_case_and_look_alikes_and_refuses_others() -> None:
    code = reference_encode(os.urandom(10))
    typed = code.lower().replace("0", "o").replace("1", "l")
    got = serials.decode(np.frombuffer(typed.encode(), np.uint8)[None])
    assert reference_encode(bytes(got[0])) == code
    with pytest.raises(ForgedCode, match="outside Crockford"):
        serials.decode(np.frombuffer(b"U" + code[1:].encode(), np.uint8)[None])


def test_tags_and_inner_hashes_are_standard_aes_cmac() -> None:
    raw = serials.draw(3)
    inner = serials.inner_codes(KEYS, raw)
    hashed = serials.inner_hashes(KEYS, inner)
    for i in range(3):
        mac = CMAC(algorithms.AES(KEYS.hash_key))
        mac.update(bytes(inner[i]) + b"qihash")
        assert mac.finalize() == bytes(hashed[i])
        mac = CMAC(algorithms.AES(KEYS.tag_key))
        mac.update(bytes(raw[i]) + b"qouter")
        bits = int.from_bytes(mac.finalize()[:3], "big") >> 4
        tag = "".join(ALPHABET[(bits >> s) & 31] for s in (15, 10, 5, 0))
        assert serial_of(raw[i : i + 1])[0][16:] == tag


def test_genuine_serials_verify_in_every_accepted_form() -> None:
    for serial in serial_of(serials.draw(50)):
        for form in (
            serial,
            serial.lower(),
            serials.typed_form(serial),
            serials.typed_form(serial).replace("-", " "),
        ):
            assert serials.verify(KEYS, form).code == serial[:16]


def test_every_altered_tag_is_forged() -> None:
    for serial in serial_of(serials.draw(20)):
        for pos in range(16, 20):
            for ch in ALPHABET:
                if ch != serial[pos]:
                    with pytest.raises(ForgedCode, match="no valid tag"):
                        serials.verify(KEYS, serial[:pos] + ch + serial[pos + 1 :])


def test_invented_codes_and_other_tenants_codes_are_forged() -> None:
    rng = random.Random(7)
    invented = ["".join(rng.choice(ALPHABET) for _ in range(20)) for _ in range(20000)]
    accepted = 0
    for text in invented:
        try:
            serials.verify(KEYS, text)
            accepted += 1
        except ForgedCode:
            pass
    assert accepted <= 2  # 20-bit tag: 20000 guesses pass about 0.02 times
    other = CodeKeys.derive(bytes(range(32)), "ten_b")
    forged = sum(1 for s in serial_of(serials.draw(2000), other) if _forged(s))
    assert forged >= 1995


def _forged(text: str) -> bool:
    try:
        serials.verify(KEYS, text)
    except ForgedCode:
        return True
    return False


class CountingSession:
    """A session that counts what it is asked to run (and runs nothing)."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            raise AssertionError(f"database touched: {name}")

        return call


def test_forged_code_is_refused_before_any_database_read() -> None:
    serial = serial_of(serials.draw(1))[0]
    forged = serial[:19] + ("0" if serial[19] != "0" else "1")
    db = CountingSession()
    with pytest.raises(ForgedCode):
        service.lookup(db, KEYS, tenant="ten_a", text=forged)  # type: ignore[arg-type]
    with pytest.raises(ForgedCode):
        link = f"https://t.brand.cn/01/06901234567892/21/{forged}"
        service.lookup(db, KEYS, tenant="ten_a", text=link)  # type: ignore[arg-type]
    assert db.calls == 0


def test_check_character_catches_every_single_substitution() -> None:
    for serial in serial_of(serials.draw(40)):
        full = serial + serials.check_char(serial)
        assert serials.check_ok(full)
        for pos in range(len(full)):
            for ch in ISO:
                if ch != full[pos]:
                    assert not serials.check_ok(full[:pos] + ch + full[pos + 1 :]), (full, pos, ch)


def test_mistyped_code_fails_its_check_before_its_tag() -> None:
    serial = serial_of(serials.draw(1))[0]
    typed = serials.typed_form(serial)
    bad = ("Z" if typed[0] != "Z" else "Y") + typed[1:]
    with pytest.raises(ForgedCode, match="check character"):
        serials.verify(KEYS, bad)


def test_verify_many_agrees_with_verify() -> None:
    good = serial_of(serials.draw(300))
    assert serials.verify_many(KEYS, good) == [s[:16] for s in good]
    assert serials.verify_many(KEYS, [s[:16] for s in good]) == [s[:16] for s in good]
    bad = good[:5] + [good[5][:19] + ("0" if good[5][19] != "0" else "1")]
    with pytest.raises(ForgedCode, match=bad[5]):
        serials.verify_many(KEYS, bad)


def _count(db: Session, tenant: str) -> tuple[int, int]:
    from quanyu.engine import statement

    stmt = statement(
        "test.codes_distinct",
        "SELECT count(*), count(DISTINCT code) FROM codes WHERE tenant_id = ?",
    )
    row = db.one(stmt, [tenant])
    assert row
    return int(row[0]), int(row[1])


@pytest.mark.slow
def test_a_million_codes_are_unique_and_seq_is_dense(plant: Plant) -> None:
    order = plant.order(1_000_000)
    total, distinct = _count(plant.db, plant.tenant)
    assert total == distinct == 1_000_000
    rows = plant.db.execute(q.ORDER_CODES, [plant.tenant, order, 1, 10**9])
    assert [r[0] for r in rows[:3]] == [1, 2, 3] and rows[-1][0] == 1_000_000


def test_repeats_within_a_batch_and_with_stored_codes_are_drawn_again(plant: Plant) -> None:
    first = plant.order(1000)
    stored = plant.codes(first)
    stored_raw = serials.decode(np.frombuffer("".join(stored).encode(), np.uint8).reshape(-1, 16))
    calls: list[int] = []

    def rigged(n: int) -> np.ndarray:  # type: ignore[type-arg]
        calls.append(n)
        if len(calls) > 1:
            return serials.draw(n)
        fresh = serials.draw(n)
        fresh[:10] = stored_raw[:10]  # ten codes the tenant has already
        fresh[10:20] = fresh[20:30]  # ten repeats inside the batch
        return fresh

    from quanyu.codes.models import OrderCreate

    body = OrderCreate(product_id=plant.product, quantity=500, line="L2", lot="B")
    order = service.create_order(plant.db, body, tenant=plant.tenant)
    made = generate.generate(
        plant.db, plant.keys, tenant=plant.tenant, order_id=order.id, draw=rigged
    )
    assert made.added == 500 and made.redrawn == 20 and calls == [500, 20]
    total, distinct = _count(plant.db, plant.tenant)
    assert total == distinct == 1500
