"""The log's hashes in C2SP tlog-tiles layout: writing tiles as leaves arrive, reading the
hashes of complete subtrees back.

A tile ``(L, t)`` holds the 32-byte hashes of complete subtrees of height ``8·L``
numbered ``256·t`` to ``256·t + 255``, concatenated; level 0 holds leaf hashes. A tile
only grows, and a prefix of it never changes once committed, so this process keeps a
cache of tiles it has read, and loads every tile above level 0 of a log at its first
proof (a 256th of the leaf tiles, 1.2 MiB for ten million leaves): an inclusion proof
then reads one leaf tile from the database instead of five or six. The subtrees built
from recent tiles are kept too, so proofs of recently proven leaves hash nothing. The
caches forget every tile reaching past the start of an append (an append may roll back
and another take its place), so only committed, immutable prefixes are served from them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

import pyarrow as pa

from quanyu.engine import Session
from quanyu.errors import Conflict
from quanyu.ledger import merkle
from quanyu.ledger import sql as q

HEIGHT = 8
WIDTH = 1 << HEIGHT
H = merkle.HASH_SIZE
CACHE_TILES = 4096  # 32 MiB at most

_cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
_upper_loaded: set[str] = set()
_built: OrderedDict[tuple[str, int, int, int], list[list[bytes]]] = OrderedDict()
BUILT_TILES = 512  # each about 35 KiB of Python objects
_lock = threading.Lock()


def tile_key(tenant: str, level: object, idx: object) -> str:
    """The indexed key of a full tile."""
    return f"{tenant}/{level}/{idx}"


def forget(tenant: str, from_leaf: int) -> None:
    """Drop cached tiles of ``tenant`` covering any leaf at or after ``from_leaf``."""
    with _lock:
        for key in [k for k in _cache if k[0] == tenant]:
            _, level, idx = key
            if (idx + 1) << (HEIGHT * (level + 1)) > from_leaf:
                del _cache[key]
        for built in [k for k in _built if k[0] == tenant]:
            if (built[2] + 1) << (HEIGHT * (built[1] + 1)) > from_leaf:
                del _built[built]


def clear() -> None:
    """Empty the cache (as after a restart; tests that rewrite tables behind its back)."""
    with _lock:
        _cache.clear()
        _upper_loaded.clear()
        _built.clear()


def _remember(key: tuple[str, int, int], got: bytes) -> None:
    with _lock:
        old = _cache.get(key)
        if old is None or len(old) < len(got):
            _cache[key] = got
        _cache.move_to_end(key)
        while len(_cache) > CACHE_TILES:
            _cache.popitem(last=False)


def warm(db: Session, tenant: str) -> None:
    """Cache the tenant's tiles above level 0 and its right edge (newest first, up to
    half the cache)."""
    if tenant in _upper_loaded:
        return
    for level, idx, got in db.execute(q.UPPER_TILES, [tenant, tenant, CACHE_TILES // 2]):
        _remember((tenant, int(level), int(idx)), bytes(got))
    with _lock:
        _upper_loaded.add(tenant)


def read(db: Session, tenant: str, level: int, idx: int, width: int) -> bytes:
    """The first ``width`` hashes of tile ``(level, idx)``, concatenated.

    Raises:
        Conflict: the tile is shorter than the log's size says (the tables were altered).
    """
    key = (tenant, level, idx)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and len(hit) >= width * H:
            _cache.move_to_end(key)
            return hit[: width * H]
    if width == WIDTH:  # full at the size asked for, so among the full tiles
        row = db.one(q.GET_FULL_TILE, [tile_key(tenant, level, idx), tenant])
    else:  # full by now, or still the right edge
        row = db.one(q.GET_TILE, [tile_key(tenant, level, idx), tenant, tenant, level, idx])
    got = bytes(row[0]) if row else b""
    if len(got) < width * H or len(got) % H:
        raise Conflict(
            f"the ledger of tenant {tenant} lacks hashes in tile {level}/{idx} (has"
            f" {len(got) // H}, needs {width}): its tables were altered outside Quanyu;"
            " restore the database from a backup"
        )
    _remember(key, got)
    return got[: width * H]


def write(db: Session, tenant: str, n0: int, leaf_hashes: list[bytes]) -> None:
    """Store leaves ``[n0, n0 + len(leaf_hashes))`` and every subtree they complete."""
    forget(tenant, n0)
    level, lo, new = 0, n0, b"".join(leaf_hashes)
    rows: dict[str, list[object]] = {"level": [], "idx": [], "hashes": []}
    while new:
        t0, off = lo >> HEIGHT, lo & (WIDTH - 1)
        buf = read(db, tenant, level, t0, off) + new if off else new
        chunks = [buf[i : i + WIDTH * H] for i in range(0, len(buf), WIDTH * H)]
        full = [c for c in chunks if len(c) == WIDTH * H]  # a prefix of the chunks
        rows["level"] += [level] * len(full)
        rows["idx"] += range(t0, t0 + len(full))
        rows["hashes"] += full
        db.execute(q.DELETE_EDGE, [tenant, level])
        if len(full) < len(chunks):
            db.execute(q.INSERT_EDGE, [tenant, level, t0 + len(full), chunks[-1]])
        # each full tile is one subtree 8 levels up
        parents = _split(b"".join(full))
        for _ in range(HEIGHT if parents else 0):
            parents = merkle.level_up(parents)
        level, lo, new = level + 1, t0, b"".join(parents)
    if rows["idx"]:
        table = pa.table(
            {
                "tile": pa.array(
                    [
                        tile_key(tenant, lv, i)
                        for lv, i in zip(rows["level"], rows["idx"], strict=True)
                    ],
                    pa.string(),
                ),
                "tenant_id": pa.array([tenant] * len(rows["idx"]), pa.string()),
                "level": pa.array(rows["level"], pa.int32()),
                "idx": pa.array(rows["idx"], pa.int64()),
                "hashes": pa.array(rows["hashes"], pa.binary()),
            }
        )
        db.with_table("staged_ledger_tiles", table, q.INSERT_TILES)


def _split(buf: bytes) -> list[bytes]:
    return [buf[i : i + H] for i in range(0, len(buf), H)]


def hashes(
    db: Session, tenant: str, nodes: Iterable[merkle.Node], tree_size: int
) -> dict[merkle.Node, bytes]:
    """The hashes of complete subtrees inside the first ``tree_size`` leaves, each rebuilt
    from the one tile holding the subtrees of the nearest stored height under it."""
    warm(db, tenant)
    built: dict[tuple[int, int], list[list[bytes]]] = {}
    out: dict[merkle.Node, bytes] = {}
    for height, idx in nodes:
        level, sub = divmod(height, HEIGHT)
        t = (idx << sub) >> HEIGHT
        if (level, t) not in built:
            width = min(WIDTH, (tree_size >> (HEIGHT * level)) - (t << HEIGHT))
            built[(level, t)] = _layers(db, tenant, level, t, width)
        out[(height, idx)] = built[(level, t)][sub][idx - (t << (HEIGHT - sub))]
    return out


def _layers(db: Session, tenant: str, level: int, t: int, width: int) -> list[list[bytes]]:
    """Every complete subtree inside the first ``width`` hashes of a tile, by height."""
    key = (tenant, level, t, width)
    with _lock:
        hit = _built.get(key)
        if hit is not None:
            _built.move_to_end(key)
            return hit
    layers = [_split(read(db, tenant, level, t, width))]
    while len(layers[-1]) > 1:
        layers.append(merkle.level_up(layers[-1]))
    with _lock:
        _built[key] = layers
        while len(_built) > BUILT_TILES:
            _built.popitem(last=False)
    return layers
