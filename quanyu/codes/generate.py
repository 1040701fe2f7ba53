"""Code generation: draw, deduplicate and store an order's codes in bulk.

Everything per code happens in numpy, AES-ECB and one SQL statement per chunk; Python
never loops over codes. A chunk is drawn, sorted by its 64-bit key (so each stored row
group covers a narrow key range and point lookups skip the rest), checked for repeats
within itself and against the tenant's stored codes (an anti-join), and the few
repeats are drawn again until the chunk is whole.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from quanyu.codes import events, gs1, serials
from quanyu.codes import service as codes
from quanyu.codes import sql as q
from quanyu.codes.models import Generated
from quanyu.codes.serials import U8, CodeKeys
from quanyu.engine import Session
from quanyu.errors import Conflict, ValidationFailed
from quanyu.ids import utcnow

CHUNK = 5_000_000
Drawer = Callable[[int], U8]


@dataclass
class _Batch:
    raw: U8
    chars: U8
    redrawn: int


def keys64(raw: U8) -> npt.NDArray[np.int64]:
    """The first 64 bits of each code as signed integers (the ``code_key`` column)."""
    return np.ascontiguousarray(raw[:, :8]).view(">i8").reshape(-1).astype(np.int64)


def string_array(chars: U8) -> pa.Array:
    """An Arrow string array over n x w ASCII characters, without copying per row."""
    n, w = chars.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * w).tobytes())
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(np.ascontiguousarray(chars)))


def _unique_sorted(raw: U8) -> tuple[U8, int]:
    """The rows sorted by key with exact repeats dropped, and how many were dropped."""
    key = keys64(raw)
    # unsigned order is the codes' text order, so seq order is alphabetical in a chunk
    order = np.argsort(key.view(np.uint64))
    rows = raw.view(f"V{serials.CODE_BYTES}").reshape(-1)[order]  # one gather, not ten
    key = key[order]
    same = np.zeros(len(rows), bool)
    same[1:] = key[1:] == key[:-1]
    if same.any():  # a 64-bit prefix repeated: a repeat only if the last 16 bits match too
        at = np.flatnonzero(same)
        same[at] = rows[at] == rows[at - 1]
    out = rows[~same].view(np.uint8).reshape(-1, serials.CODE_BYTES)
    return out, int(same.sum())


def _table(keys: CodeKeys, batch: _Batch, first_seq: int, sscc: list[str] | None,
           inner: bool) -> pa.Table:  # fmt: skip
    raw, n = batch.raw, len(batch.raw)
    cols: dict[str, pa.Array] = {
        "code_key": pa.array(keys64(raw)),
        "code": string_array(batch.chars),
        "seq": pa.array(np.arange(first_seq, first_seq + n, dtype=np.int64)),
        "sscc": pa.array(sscc, pa.string()) if sscc else pa.nulls(n, pa.string()),
    }
    if inner:
        hashed = serials.inner_hashes(keys, serials.inner_codes(keys, raw))
        cols["inner_key"] = pa.array(keys64(hashed))
        cols["inner_hash"] = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(16), n, [None, pa.py_buffer(hashed.tobytes())]
        ).cast(pa.binary())
    else:
        cols["inner_key"] = pa.nulls(n, pa.int64())
        cols["inner_hash"] = pa.nulls(n, pa.binary())
    return pa.table(cols)


def _fresh(db: Session, tenant: str, n: int, draw: Drawer) -> _Batch:
    """``n`` codes, sorted, none repeated within the batch nor among the tenant's codes."""
    redrawn = 0
    raw = draw(n)
    while True:
        raw, dropped = _unique_sorted(raw)
        chars = serials.encode(raw)
        probe = pa.table({"code_key": keys64(raw), "code": string_array(chars)})
        db.register("staged_codes", probe)
        taken = {r[0] for r in db.execute(q.EXISTING, [tenant])}
        db.unregister("staged_codes")
        if taken:
            keep = ~np.isin(probe.column("code").to_numpy(zero_copy_only=False), list(taken))
            raw, chars = raw[keep], chars[keep]
        redrawn += dropped + len(taken)
        if len(raw) == n:
            return _Batch(raw, chars, redrawn)
        raw = np.concatenate([raw, draw(n - len(raw))])


def _ssccs(db: Session, tenant: str, prefix: str | None, brand: str, n: int) -> list[str]:
    if not prefix:
        raise ValidationFailed(
            f"brand {brand} has no GS1 company prefix: set it (PUT .../codes/brands/{brand})"
            " before ordering pallet codes, which carry an SSCC"
        )
    last = db.one(q.LAST_SSCC, [tenant, f"0{prefix}%"])
    start = int(last[0][1 + len(prefix) : -1]) + 1 if last and last[0] else 1
    return [gs1.sscc(0, prefix, start + i) for i in range(n)]


def generate(
    db: Session,
    keys: CodeKeys,
    *,
    tenant: str,
    order_id: str,
    count: int | None = None,
    actor: str = "system",
    on_progress: Callable[[int], None] | None = None,
    draw: Drawer = serials.draw,
) -> Generated:
    """Generate the order's next ``count`` codes (default: all it still lacks).

    Chunk by chunk (five million codes), each chunk one transaction: its codes, the
    order's progress and an ``issue`` event (with the SHA-256 of the chunk's codes in
    print order) commit together, so an interrupted run keeps whole chunks, the next
    call carries on, and memory stays bounded (about 120 bytes per code in flight).

    Raises:
        NotFound: no such order.
        ValidationFailed: ``count`` exceeds what the order still lacks, or a pallet
            order's brand has no GS1 company prefix.
    """
    started = time.perf_counter()
    order = codes.get_order(db, tenant=tenant, order_id=order_id)
    product = codes.get_product(db, tenant=tenant, product_id=order.product_id)
    left = order.quantity - order.generated
    want = left if count is None else count
    if not 0 <= want <= left:
        raise ValidationFailed(
            f"order {order_id} lacks {left} of its {order.quantity} codes, not {count}:"
            f" ask for at most {left}"
        )
    inner = order.inner_codes and order.level == "item"
    prefix = None
    if order.level == "pallet":
        prefix = codes.brand_settings(db, tenant=tenant, brand_id=product.brand_id).company_prefix
    redrawn, done = 0, 0
    while done < want:
        n = min(CHUNK, want - done)
        with events.recording(db, tenant):
            now = utcnow()
            have = codes.get_order(db, tenant=tenant, order_id=order_id).generated
            if have + n > order.quantity:
                raise Conflict(
                    f"order {order_id} was generated by another call meanwhile: it has"
                    f" {have} of {order.quantity} codes; ask for at most {order.quantity - have}"
                )
            batch = _fresh(db, tenant, n, draw)
            pallet = order.level == "pallet"
            sscc = _ssccs(db, tenant, prefix, product.brand_id, n) if pallet else None
            table = _table(keys, batch, have + 1, sscc, inner)
            db.with_table("staged_codes", table, q.INSERT_CODES,
                          [tenant, order_id, product.id, order.level, now])  # fmt: skip
            db.execute(q.SET_GENERATED, [have + n, tenant, order_id])
            events.record(db, tenant=tenant, action="issue", actor=actor, count=n,
                          codes_sha256=hashlib.sha256(batch.chars.tobytes()).hexdigest(),
                          at=now, context={"order": order_id, "first_seq": have + 1,
                                           "last_seq": have + n})  # fmt: skip
        redrawn += batch.redrawn
        done += n
        if on_progress:
            on_progress(n)
    fresh = codes.get_order(db, tenant=tenant, order_id=order_id)
    return Generated(order=fresh, added=done, redrawn=redrawn,
                     seconds=round(time.perf_counter() - started, 3))  # fmt: skip
