"""Scans: verify a code, look up its state, record the scan and answer the scanner.

The tag check is pure (:func:`quanyu.codes.serials.verify`), so a forged code is answered
before any database read. In a server a genuine code is looked up in memory (the
tenant's code snapshot and scan history); the scan's row and its ingest event are one
record in the scan log (:mod:`quanyu.codes.scan_log`), and the request is answered only
once that record is durable — a 2xx means durable.

Where the code sits in its lifecycle comes from the codes core through a
:class:`Directory`; scans never read the core's tables themselves.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.codes import scan_sql as q
from quanyu.codes.scan_log import ScanLog, encode, row_values, scan_rows, wait_all
from quanyu.codes.scan_models import PartyScanRequest, Role, ScanRequest, ScanResult, Verdict
from quanyu.codes.serials import CODE_CHARS, CodeKeys, ForgedCode, decode, decode_one, verify
from quanyu.engine import Engine, Session
from quanyu.errors import RateLimited, Unavailable
from quanyu.ids import new_id, utcnow
from quanyu.ingest.pii import Sealer
from quanyu.ingest.writer import Chunk
from quanyu.observability import CODE_SNAPSHOT_CODES
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import SourceCreate, SourceKind

log = logging.getLogger("quanyu.codes.scans")

LIVE = frozenset({"activated", "aggregated", "shipped", "received", "redeemed"})
UNRELEASED = frozenset({"issued", "printed"})
VOID = frozenset({"voided", "destroyed"})


@dataclass(frozen=True)
class CodeInfo:
    """What scans need to know of a code: its state, product and where it was shipped.

    ``recalled`` is true when the code or any container it was packed in is recalled.
    """

    code: str
    state: str
    gtin: str | None = None
    dealer_id: str | None = None
    region: str | None = None
    recalled: bool = False


class Directory(Protocol):
    """The codes core, as scans see it: a code's state, product and shipment."""

    def get(self, db: Session, tenant: str, code: str) -> CodeInfo | None:
        """The outer code ``code`` (canonical 16 characters), or None if never issued."""
        ...

    def by_inner(self, db: Session, tenant: str, inner_hash: bytes) -> CodeInfo | None:
        """The outer code whose inner code has the stored keyed hash ``inner_hash``."""
        ...


def _info(row: tuple[Any, ...] | None) -> CodeInfo | None:
    if row is None:
        return None
    code, state, gtin, dealer, region = row
    return CodeInfo(code, state, gtin, dealer, region, recalled=state == "recalled")


class CoreDirectory:
    """The codes core's ``codes`` table as a :class:`Directory` (recalls cascade down to
    every packed code there, so a code's own state says whether it is recalled)."""

    def get(self, db: Session, tenant: str, code: str) -> CodeInfo | None:
        raw = decode(np.frombuffer(code.encode("ascii"), np.uint8)[None])
        key = int.from_bytes(bytes(raw[0, :8]), "big", signed=True)
        return _info(db.one(q.CODE_STATE, [tenant, key, code]))

    def by_inner(self, db: Session, tenant: str, inner_hash: bytes) -> CodeInfo | None:
        key = int.from_bytes(inner_hash[:8], "big", signed=True)
        return _info(db.one(q.INNER_STATE, [tenant, key, inner_hash]))


def serial_of(text: str) -> str:
    """The serial in a scanned text: the AI (21) value of a Digital Link URI, else the text."""
    text = text.strip()
    if "://" not in text:
        return text
    parts = urlsplit(text).path.split("/")
    for i, part in enumerate(parts[:-1]):
        if part == "21":
            return parts[i + 1]
    return text  # not a Digital Link with a serial: verify() names what is wrong


@dataclass
class ScanRow:
    """One scan as stored (see ``code_scans``)."""

    tenant_id: str
    code: str | None
    presented: str | None
    inner_code: bool
    verdict: str
    state: str | None
    gtin: str | None
    scanned_at: datetime
    city: str | None
    lat: float | None
    lon: float | None
    ip: str | None
    device_id: str | None
    role: str
    party_id: str | None
    dealer_id: str | None
    region: str | None


def scan_table(rows: Sequence[ScanRow]) -> pa.Table:
    """Scan rows in the ``code_scans`` layout."""
    return scan_rows([row_values(r) for r in rows])


def record(db: Session, rows: Sequence[ScanRow]) -> None:
    """Store scan rows in the caller's transaction (or autocommit)."""
    if rows:
        db.with_table("staged_scans", scan_table(rows), q.INSERT_SCANS)


Recorder = Callable[[list[ScanRow]], None]

_MESSAGES: dict[str, str] = {
    "not_released": "This code was never released for sale: the product is not genuine stock.",
    "recalled": "This product has been recalled: do not consume it; contact the brand.",
    "voided": "This code was voided by the brand: the product may be counterfeit.",
    "unknown": "This code was not found: the product may be counterfeit; report it.",
    "forged": "This code was not issued by the brand: the product is likely counterfeit.",
}


def _verdict(info: CodeInfo | None) -> Verdict:
    if info is None:
        return "unknown"
    if info.recalled or info.state == "recalled":
        return "recalled"
    if info.state in VOID:
        return "voided"
    if info.state in UNRELEASED:
        return "not_released"
    return "genuine"


def scan(
    engine: Engine,
    keys: CodeKeys,
    directory: Directory,
    req: ScanRequest,
    *,
    tenant: str,
    record: Recorder,
    ip: str | None = None,
    role: Role = "consumer",
    party_id: str | None = None,
    history: ScanHistory | None = None,
    now: datetime | None = None,
) -> ScanResult:
    """Verify one scanned code, record the scan through ``record`` and answer.

    A forged code is answered from the tag alone: the database is not opened. Precise
    coordinates are kept only when ``req.precise_consent`` is true. ``history`` (the
    server's in-memory :class:`ScanHistory`) replaces the history query.
    """
    row = new_row(req, tenant=tenant, ip=ip, role=role, party_id=party_id, now=now)
    try:
        code = verify(keys, serial_of(req.code)).code
    except ForgedCode:
        record([row])
        return forged(row, req)
    with engine.connect() as db:
        info = directory.get(db, tenant, code)
        if _verdict(info) == "genuine" and history is None:
            hist = db.one(q.SCAN_HISTORY, [tenant, code])
            before = (int(hist[0]), hist[1], hist[2]) if hist else (0, None, None)
            return judge(row, code, info, before, record)
    return judge(row, code, info, history or (0, None, None), record)


def new_row(
    req: ScanRequest,
    *,
    tenant: str,
    ip: str | None,
    role: Role,
    party_id: str | None,
    now: datetime | None = None,
) -> ScanRow:
    """The scan's row before the code is looked at (verdict "forged" until it is)."""
    precise = req.precise_consent and req.lat is not None and req.lon is not None
    return ScanRow(tenant, None, None, False, "forged", None, None, now or utcnow(), req.city,
                   req.lat if precise else None, req.lon if precise else None, ip,
                   req.device_id, role, party_id, None, None)  # fmt: skip


def forged(row: ScanRow, req: ScanRequest) -> ScanResult:
    """The answer to a code whose tag does not verify (``row`` keeps what was shown)."""
    row.presented = req.code[:40]
    # our own values: no validation needed (a scan's answer is on the hot path)
    return ScanResult.model_construct(verdict="forged", first_scan=False,
                                      message=_MESSAGES["forged"],
                                      scanned_at=row.scanned_at)  # fmt: skip


History = tuple[int, datetime | None, str | None]


def judge(
    row: ScanRow,
    code: str,
    info: CodeInfo | None,
    history: ScanHistory | History,
    record: Recorder,
) -> ScanResult:
    """Answer a genuine-tagged code from what the directory knows of it, count it in
    ``history`` (a consumer's scan of a genuine code) and record ``row``.

    ``history`` is the in-memory :class:`ScanHistory` or what came before, read already.
    """
    verdict = _verdict(info)
    tenant, now, counted = row.tenant_id, row.scanned_at, False
    before: History = (0, None, None)
    if verdict != "genuine":
        pass
    elif not isinstance(history, ScanHistory):
        before = history
    elif row.role == "consumer":
        before, counted = history.observe(tenant, code, now, row.city), True
    else:
        before = history.peek(tenant, code)
    row.code, row.verdict = code, verdict
    if info is not None:
        row.state, row.gtin = info.state, info.gtin
        row.dealer_id, row.region = info.dealer_id, info.region
    try:
        record([row])
    except BaseException:
        if counted and isinstance(history, ScanHistory):
            history.forget(tenant, code)
        raise
    n, first_at, first_city = before
    result = ScanResult.model_construct(
        verdict=verdict, first_scan=verdict == "genuine" and n == 0, message="", code=code,
        gtin=row.gtin, state=row.state, scans_before=n, scanned_at=now,
    )  # fmt: skip
    if verdict != "genuine":
        result.message = _MESSAGES[verdict]
    elif n == 0:
        result.message = "Genuine product. This is the first scan of this code."
    else:
        result.first_scanned_at, result.first_city = first_at, first_city
        where = f" in {first_city}" if first_city else ""
        when = f" on {first_at:%Y-%m-%d}" if first_at else ""
        result.message = (
            f"Genuine product, but this code was scanned {n} time(s) before, first"
            f"{when}{where}. If you just opened it, the bottle may be refilled."
        )
    return result


def party_scan(
    engine: Engine,
    keys: CodeKeys,
    directory: Directory,
    req: PartyScanRequest,
    *,
    tenant: str,
    record: Recorder,
    history: ScanHistory | None = None,
    now: datetime | None = None,
) -> list[ScanResult]:
    """A dealer's or store's scans, each answered like a consumer's and recorded with the
    party's id (the input of the channel-diversion report)."""
    rows: list[ScanRow] = []
    results = [
        scan(
            engine,
            keys,
            directory,
            ScanRequest(code=c, city=req.city),
            tenant=tenant,
            record=rows.extend,
            role=req.role,
            party_id=req.party_id,
            now=now,
        )  # fmt: skip
        for c in req.codes
    ]
    record(rows)  # one commit for the whole request
    return results


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.updated = now


class ScanLimiter:
    """Token buckets per client IP and per device id for the public scan endpoint."""

    def __init__(self, *, per_ip: float = 5.0, ip_burst: float = 30.0,
                 per_device: float = 1.0, device_burst: float = 10.0) -> None:  # fmt: skip
        self.limits = {"ip": (per_ip, ip_burst), "device": (per_device, device_burst)}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, ip: str | None, device_id: str | None) -> None:
        """Take one token from the IP's and the device's bucket.

        Raises:
            RateLimited: either is empty (nothing is taken from the other).
        """
        now = time.monotonic()
        keys = [(k, v) for k, v in (("ip", ip), ("device", device_id)) if v]
        with self._lock:
            if len(self._buckets) > 200_000:
                self._buckets.clear()  # bounded memory; a reset only forgives a little
            waits = [self._wait(k, now) for k in keys]
            worst = max(waits, default=0.0)
            if worst > 0:
                kind = keys[waits.index(worst)][0]
                rate = self.limits[kind][0]
                raise RateLimited(
                    f"Too many scans from this {kind} (limit {rate:g} per second); retry after"
                    f" {math.ceil(worst)} s.",
                    retry_after=math.ceil(worst),
                    reset_at=time.time() + worst,
                )
            for k in keys:
                self._buckets[k].tokens -= 1

    def _wait(self, key: tuple[str, str], now: float) -> float:
        rate, burst = self.limits[key[0]]
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(burst, now)
        b.tokens = min(burst, b.tokens + (now - b.updated) * rate)
        b.updated = now
        return 0.0 if b.tokens >= 1 else (1 - b.tokens) / rate


# -- scans as ingest events ---------------------------------------------------------------

SOURCE_NAME = "Product QR scans"


def find_source(db: Session, *, tenant: str) -> str | None:
    """The tenant's "Product QR scans" source, if made already."""
    for s in tenancy.list_sources(db, tenant=tenant):
        if s.name == SOURCE_NAME:
            return s.id
    return None


def scan_source(db: Session, *, tenant: str, actor: str = "system") -> str:
    """The tenant's "Product QR scans" source, created on first use."""
    found = find_source(db, tenant=tenant)
    if found is not None:
        return found
    made = tenancy.create_source(db, SourceCreate(name=SOURCE_NAME, kind=SourceKind.qr),
                                 tenant=tenant, actor=actor)  # fmt: skip
    return made.id


def scan_message(req: ScanRequest, result: ScanResult) -> dict[str, object]:
    """The "Product Scanned" track call of a consumer scan, with the scanner's identifiers
    in ``context.traits`` so identity resolution joins the scan to the person."""
    traits = {k: v for k, v in (("openid", req.openid), ("app_id", req.app_id),
              ("unionid", req.unionid), ("phone", req.phone)) if v}  # fmt: skip
    context: dict[str, object] = {"traits": traits}
    if req.device_id:
        context["device"] = {"id": req.device_id}
    if req.city:
        context["location"] = {"city": req.city}
    props = {"gtin": result.gtin, "serial": result.code, "city": req.city,
             "verdict": result.verdict, "first_scan": result.first_scan,
             "scans_before": result.scans_before}  # fmt: skip
    msg: dict[str, object] = {
        "type": "track", "event": "Product Scanned", "properties": props, "context": context,
        "timestamp": result.scanned_at.isoformat() + "Z", "messageId": new_id("scanmsg"),
    }  # fmt: skip
    if req.user_id:
        msg["userId"] = req.user_id
    else:
        msg["anonymousId"] = req.device_id or req.openid or req.unionid or new_id("anon")
    return msg


class Scanner:
    """What the scan endpoints need at request time, owned by the server process: the
    tenants' code keys, the scan log, the rate limiter and each tenant's scan source.

    Scans are answered once their record is durable in the scan log's journal
    (``journal``, a folder in the data dir) and reach ``code_scans`` and ingest when the
    log folds them; :meth:`flush` waits for that. ``ingest`` hands a chunk of scan
    events to the ingest writer and returns a future.
    """

    def __init__(
        self,
        engine: Engine,
        master_key: bytes,
        *,
        journal: Path,
        ingest: Callable[[Chunk], Future[int]] | None = None,
        sealer: Callable[[str], Sealer | None] | None = None,
        directory: Directory | None = None,
        limiter: ScanLimiter | None = None,
        fold_interval: float = 0.2,
    ) -> None:
        self.engine = engine
        self.master_key = master_key
        self._memory = MemoryDirectory(engine) if directory is None else None
        self.directory: Directory = directory or self._memory or CoreDirectory()
        self.history = ScanHistory(engine)
        self.limiter = limiter or ScanLimiter()
        self._ingest = ingest
        self._keys: dict[str, CodeKeys] = {}
        self._sources: dict[str, str] = {}
        self.log = ScanLog(engine, journal, ingest=ingest, source=self.source, sealer=sealer,
                           interval=fold_interval).open()  # fmt: skip

    def keys(self, tenant: str) -> CodeKeys:
        """The tenant's code keys (derived once; a pure computation, no database read)."""
        k = self._keys.get(tenant)
        if k is None:
            k = self._keys[tenant] = CodeKeys.derive(self.master_key, tenant)
        return k

    def source(self, tenant: str) -> str:
        s = self._sources.get(tenant)
        if s is None:
            with self.engine.connect() as db:
                s = self._sources[tenant] = scan_source(db, tenant=tenant)
        return s

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every scan answered so far is in ``code_scans`` and ingest."""
        self.log.flush(timeout)

    def _message(self, req: ScanRequest, result: ScanResult) -> dict[str, object] | None:
        """The scan's ingest event (None when scans make no events)."""
        return scan_message(req, result) if self._ingest is not None else None

    def consumer_scan(self, req: ScanRequest, *, tenant: str, ip: str | None) -> ScanResult:
        """A public scan: rate-limited, recorded, answered, and sent to ingest.

        Raises:
            RateLimited: the IP or device is over its limit (nothing is recorded).
            Unavailable: the scan could not be made durable.
        """
        result, pending = self.begin_consumer_scan(req, tenant=tenant, ip=ip)
        try:
            wait_all(pending)
        except Unavailable as e:
            raise self.failed(result, tenant, e) from e
        return result

    def begin_consumer_scan(
        self, req: ScanRequest, *, tenant: str, ip: str | None
    ) -> tuple[ScanResult, list[Future[Any]]]:
        """The answer and the journal append to wait for before giving it."""
        self.limiter.check(ip, req.device_id)
        self.source(tenant)  # made before the first record that needs it is folded
        rows: list[ScanRow] = []
        result = scan(self.engine, self.keys(tenant), self.directory, req, tenant=tenant,
                      record=rows.extend, ip=ip, history=self.history)  # fmt: skip
        (row,) = rows
        return result, [self.log.journal.append(encode(row, self._message(req, result)))]

    def scan_now(
        self, req: ScanRequest, *, tenant: str, ip: str | None
    ) -> tuple[ScanResult, asyncio.Future[Any]] | None:
        """A public scan answered from memory alone, for a coroutine to await its append.

        None when memory cannot answer (the tenant's snapshot, history or source not
        loaded yet, a code the snapshot lacks) or the caller is over its rate limit:
        nothing is taken or recorded then, and :meth:`begin_consumer_scan` answers.
        """
        keys = self._keys.get(tenant)
        memory = self._memory
        if keys is None or memory is None or tenant not in self._sources:
            return None
        if not self.history.loaded(tenant):
            return None
        row = new_row(req, tenant=tenant, ip=ip, role="consumer", party_id=None)
        try:
            code: str | None = verify(keys, serial_of(req.code)).code
        except ForgedCode:
            code = None
        info = memory.cached(tenant, code) if code is not None else None
        if code is not None and info is None:
            return None
        try:
            self.limiter.check(ip, req.device_id)
        except RateLimited:
            return None
        rows: list[ScanRow] = []
        if code is None:
            rows.append(row)
            result = forged(row, req)
        else:
            result = judge(row, code, info, self.history, rows.extend)
        (done,) = rows
        return result, self.log.journal.append_async(encode(done, self._message(req, result)))

    def warm(self, tenants: list[str]) -> None:
        """Start loading these tenants' code snapshots (with the memory directory) and
        scan histories in the background, so that their first scans after a start are
        answered from memory rather than all loading the same history at once."""
        if self._memory is not None:
            self._memory.warm(tenants)
        threading.Thread(target=self._warm, args=(tenants,), name="quanyu-scan-warm",
                         daemon=True).start()  # fmt: skip

    def _warm(self, tenants: list[str]) -> None:
        for tenant in tenants:
            try:
                self.keys(tenant)
                with self.engine.connect() as db:
                    found = find_source(db, tenant=tenant)
                if found is not None:  # else the first scan makes it
                    self._sources.setdefault(tenant, found)
                self.history.load(tenant)
            except Exception:  # the tenant's first scan loads what is missing
                log.exception("warming the scan path of tenant %s failed", tenant)

    def failed(self, result: ScanResult, tenant: str, e: BaseException) -> Unavailable:
        """Take back a scan whose append failed; the error to answer with."""
        if result.verdict == "genuine" and result.code:
            self.history.forget(tenant, result.code)
        return Unavailable(f"the scan could not be stored ({e}); scan again")

    def party_scan(self, req: PartyScanRequest, *, tenant: str) -> list[ScanResult]:
        """A dealer's or store's scans (authenticated; no ingest event: no consumer)."""
        rows: list[ScanRow] = []
        results = party_scan(self.engine, self.keys(tenant), self.directory, req,
                             tenant=tenant, record=rows.extend,
                             history=self.history)  # fmt: skip
        wait_all([self.log.journal.append(encode(r, None)) for r in rows])
        return results

    def stop(self) -> None:
        """Fold every scan answered, then stop the threads."""
        self.log.stop()
        if self._memory is not None:
            self._memory.stop()


# -- the hot path off the database ---------------------------------------------------------


def _small(n: int) -> type[np.signedinteger[Any]]:
    return np.int16 if n < 32_000 else np.int32


class _Snapshot:
    """One tenant's codes as sorted numpy columns: 80-bit code as (key, tail), state,
    GTIN, dealer and region as small integers into string pools (about 20 bytes a code)."""

    def __init__(self, table: pa.Table, event_id: int) -> None:
        self.event_id = event_id
        self.changed: dict[str, CodeInfo] = {}  # rows changed since: they win
        keys = table.column("code_key").to_numpy()
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        col = table.column("code").combine_chunks()
        offsets = np.frombuffer(col.buffers()[1], np.int32)[col.offset : col.offset + len(col) + 1]
        data = np.frombuffer(col.buffers()[2], np.uint8)
        if len(col) and not (np.diff(offsets) == CODE_CHARS).all():
            raise ValueError("codes of other than 16 characters in the codes table")
        chars = data[offsets[0] : offsets[-1]].reshape(-1, CODE_CHARS)[order]
        raw = decode(chars) if len(col) else np.zeros((0, 10), np.uint8)
        self.tails = np.ascontiguousarray(raw[:, 8:]).view(">u2").reshape(-1).astype(np.uint16)
        self.pools: dict[str, list[str | None]] = {}
        self.cols: dict[str, npt.NDArray[Any]] = {}
        for name in ("state", "gtin", "dealer_id", "region"):
            enc = pc.dictionary_encode(table.column(name)).combine_chunks()
            pool: list[str | None] = [*enc.dictionary.to_pylist(), None]
            idx = enc.indices.fill_null(len(pool) - 1).to_numpy()
            self.pools[name] = pool
            self.cols[name] = idx.astype(_small(len(pool)))[order]

    def get(self, code: str) -> CodeInfo | None:
        """The code's info, or None when the snapshot lacks it (ask the database)."""
        hit = self.changed.get(code)
        if hit is not None:
            return hit
        raw = decode_one(code)
        key = int.from_bytes(raw[:8], "big", signed=True)
        tail = int.from_bytes(raw[8:], "big")
        i = int(self.keys.searchsorted(key))
        while i < len(self.keys) and int(self.keys[i]) == key:
            if int(self.tails[i]) == tail:
                v = {n: self.pools[n][int(self.cols[n][i])] for n in self.cols}
                state = v["state"] or ""
                return CodeInfo(code, state, v["gtin"], v["dealer_id"], v["region"],
                                recalled=state == "recalled")  # fmt: skip
            i += 1
        return None


def tenants_with_codes(db: Session) -> list[str]:
    """Every tenant with code products (whose snapshots a server warms at start)."""
    return [str(t) for (t,) in db.execute(q.TENANTS_WITH_CODES)]


class MemoryDirectory:
    """A :class:`Directory` answering from an in-memory snapshot of each tenant's codes.

    A tenant's snapshot loads in the background on its first lookup (lookups go to the
    database until it is ready). A poller applies every lifecycle event since the
    snapshot — the codes each event touched, from ``code_event_items`` — every
    ``poll`` seconds, so a recall is seen within about that long; a larger change
    reloads the snapshot. A code the snapshot lacks is looked up in the database, so
    new codes are never answered "unknown" by mistake.
    """

    reload_above = 200_000

    def __init__(self, engine: Engine, *, poll: float = 0.2) -> None:
        self.engine = engine
        self.poll = poll
        self.db_fallback = CoreDirectory()
        self._snaps: dict[str, _Snapshot] = {}
        self._loading: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="quanyu-code-snapshot",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def ready(self, tenant: str) -> bool:
        return tenant in self._snaps

    def warm(self, tenants: list[str]) -> None:
        """Start loading these tenants' snapshots now, one after another in the
        background (a server does this at start, so the first scans after a restart do
        not go to the database while the snapshot loads under their load)."""
        with self._lock:
            todo = [t for t in tenants if t not in self._loading]
            self._loading.update(todo)
        if todo:
            threading.Thread(target=self._load_all, args=(todo,),
                             name="quanyu-code-snapshot-warm", daemon=True).start()  # fmt: skip

    def _load_all(self, tenants: list[str]) -> None:
        for tenant in tenants:
            self._load_quietly(tenant)

    def load(self, tenant: str) -> None:
        """Load (or reload) the tenant's snapshot now, in the calling thread."""
        with self.engine.connect() as db:
            row = db.one(q.LAST_CODE_EVENT, [tenant])
            event_id = int(row[0]) if row else 0
            snap = _Snapshot(db.arrow(q.CODES_SNAPSHOT, [tenant]), event_id)
        self._snaps[tenant] = snap
        CODE_SNAPSHOT_CODES.labels(tenant).set(len(snap.keys))
        self._catch_up(tenant, snap)

    def get(self, db: Session, tenant: str, code: str) -> CodeInfo | None:
        snap = self._snaps.get(tenant)
        if snap is None:
            with self._lock:
                start = tenant not in self._loading
                self._loading.add(tenant)
            if start:
                threading.Thread(target=self._load_quietly, args=(tenant,), daemon=True).start()
        else:
            hit = snap.get(code)
            if hit is not None:
                return hit
        return self.db_fallback.get(db, tenant, code)

    def cached(self, tenant: str, code: str) -> CodeInfo | None:
        """The code from the tenant's snapshot alone: None when the snapshot is not
        loaded or lacks the code (:meth:`get` then asks the database)."""
        snap = self._snaps.get(tenant)
        return None if snap is None else snap.get(code)

    def by_inner(self, db: Session, tenant: str, inner_hash: bytes) -> CodeInfo | None:
        return self.db_fallback.by_inner(db, tenant, inner_hash)

    def _load_quietly(self, tenant: str) -> None:
        try:
            self.load(tenant)
        except Exception:  # lookups keep going to the database; the next miss retries
            log.exception("loading the code snapshot of tenant %s failed", tenant)
            with self._lock:
                self._loading.discard(tenant)

    def _catch_up(self, tenant: str, snap: _Snapshot) -> None:
        with self.engine.connect() as db:
            row = db.one(q.COUNT_CHANGED, [snap.event_id, tenant, snap.event_id])
            n, last = (int(row[0]), int(row[1])) if row else (0, snap.event_id)
            if n == 0:
                return
            if n > self.reload_above:
                self.load(tenant)
                return
            rows = db.execute(q.CHANGED_CODES, [tenant, tenant, snap.event_id, last])
        for r in rows:
            info = _info(r)
            assert info is not None
            snap.changed[info.code] = info
        snap.event_id = last

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            for tenant, snap in list(self._snaps.items()):
                try:
                    self._catch_up(tenant, snap)
                except Exception:  # the next round retries; lookups stay correct but stale
                    log.exception("catching up the code snapshot of tenant %s failed", tenant)


class ScanHistory:
    """Each code's earlier genuine consumer scans (count, first time and city), in memory.

    The server process is the only writer of scans, so counting here at scan time and
    forgetting a scan whose commit failed keeps this equal to the table, and concurrent
    scans of one code get distinct counts. Loaded per tenant on first use.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._seen: dict[str, dict[str, list[Any]]] = {}
        self._lock = threading.Lock()
        self._loading = threading.Lock()  # one load at a time: first scans after a start

    def _tenant(self, tenant: str) -> dict[str, list[Any]]:
        found = self._seen.get(tenant)
        if found is None:
            with self._loading:
                found = self._seen.get(tenant)
                if found is None:
                    with self.engine.connect() as db:
                        rows = db.execute(q.ALL_HISTORY, [tenant])
                    found = {r[0]: [int(r[1]), r[2], r[3]] for r in rows}
                    with self._lock:
                        self._seen[tenant] = found
        return found

    def load(self, tenant: str) -> None:
        """Load the tenant's history now (a server does at start, for tenants with codes)."""
        self._tenant(tenant)

    def loaded(self, tenant: str) -> bool:
        """Whether the tenant's history is in memory (its first scan loads it)."""
        return tenant in self._seen

    def observe(self, tenant: str, code: str, at: datetime,
                city: str | None) -> tuple[int, datetime | None, str | None]:  # fmt: skip
        """Count a scan; return what came before it: (count, first time, first city)."""
        seen = self._tenant(tenant)
        with self._lock:
            h = seen.get(code)
            if h is None:
                seen[code] = [1, at, city]
                return 0, None, None
            h[0] += 1
            return h[0] - 1, h[1], h[2]

    def peek(self, tenant: str, code: str) -> tuple[int, datetime | None, str | None]:
        """What came before, without counting a scan (dealer and store scans)."""
        h = self._tenant(tenant).get(code)
        return (0, None, None) if h is None else (int(h[0]), h[1], h[2])

    def forget(self, tenant: str, code: str) -> None:
        """Take back a scan whose commit failed."""
        seen = self._tenant(tenant)
        with self._lock:
            h = seen.get(code)
            if h is not None:
                h[0] -= 1
                if h[0] <= 0:
                    del seen[code]
