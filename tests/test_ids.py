"""Ids and random bytes: drawn per thread in chunks, never handed out twice."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading

import pytest

from quanyu import ids
from quanyu.identity.secrets import TenantKeys


def test_random_bytes_are_never_handed_out_twice() -> None:
    got = [ids.random_bytes(12) for _ in range(2_000)]  # several 4 KiB refills
    assert all(len(b) == 12 for b in got)
    assert len(set(got)) == len(got)
    assert len(ids.random_bytes(10_000)) == 10_000  # past a chunk: straight from the OS


def test_threads_draw_from_pools_of_their_own() -> None:
    seen: list[list[bytes]] = [[], []]

    def draw(i: int) -> None:
        seen[i].extend(ids.random_bytes(16) for _ in range(500))

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0] + seen[1])) == 1_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_repeats_its_parents_bytes() -> None:
    ids.random_bytes(8)  # the parent has a pool with bytes left in it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send what it draws next, then leave at once
        os.write(write, ids.random_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.close(read)
    os.waitpid(pid, 0)
    assert child != ids.random_bytes(32)  # the parent's next bytes


def test_new_ids_are_time_ordered_and_distinct() -> None:
    made = [ids.new_id("x") for _ in range(1_000)]
    assert len(set(made)) == len(made)
    assert all(m.startswith("x_") and len(m) == 2 + 11 + 10 for m in made)
    assert made[0][:13] <= made[-1][:13]


def test_keyed_hash_is_hmac_sha256_of_the_identifier_key() -> None:
    """Stored identifier keys were made with hmac.digest: the keyed copy must agree."""
    keys = TenantKeys.derive(b"k" * 32, "ten_a")
    for message in (b"", b"phone\x00\x00+8613812345678", b"x" * 5_000):
        want = hmac.digest(keys.hmac_key, message, "sha256")
        assert keys.keyed_hash(message) == want
        assert keys.keyed_hash(message) == hmac.new(keys.hmac_key, message, hashlib.sha256).digest()
