"""Scans on a real database file: the answer for every code state, forged codes answered
without opening the database, precise location only with consent, Digital Link URIs,
rate limits, and the scan's event in ingest joining the scanner's identity graph."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from quanyu.codes import scans, serials
from quanyu.codes.scan_log import ScanLog, encode
from quanyu.codes.scan_models import ScanRequest
from quanyu.codes.scans import CoreDirectory, ScanHistory, ScanLimiter, Scanner, ScanRow
from quanyu.codes.serials import CodeKeys
from quanyu.config import Settings
from quanyu.engine import Session, Statement
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import RateLimited
from quanyu.identity.secrets import load_master_key
from quanyu.ids import new_id, utcnow
from quanyu.ingest.writer import Chunk, write_chunks
from quanyu.store import open_store
from quanyu.store.journal import START, Journal, frame
from tests.tags.test_compute import World, identify, world  # noqa: F401

GTIN = "06901234567892"

_PRODUCT = Statement(
    "t.scan_product",
    "INSERT INTO code_products (tenant_id, id, gtin, brand_id, name, created_at)"
    " VALUES (?, ?, ?, 'b', 'Baijiu 500ml', ?)",
)
_CODE = Statement(
    "t.scan_code",
    "INSERT INTO codes (tenant_id, code_key, code, order_id, product_id, seq, level, state,"
    " state_at, parent_code, dealer_id, region, inner_key, inner_hash, scan_count)"
    " VALUES (?, ?, ?, 'o', ?, 1, 'item', ?, ?, ?, ?, ?, ?, ?, 0)",
)


@dataclass(frozen=True)
class Made:
    code: str
    serial: str
    inner_serial: str


def product(db: Session, tenant: str, gtin: str = GTIN) -> str:
    pid = new_id("prod")
    db.execute(_PRODUCT, [tenant, pid, gtin, utcnow()])
    return pid


def make_code(
    db: Session,
    keys: CodeKeys,
    tenant: str,
    product_id: str,
    state: str = "activated",
    dealer: str | None = None,
    region: str | None = None,
    parent: str | None = None,
) -> Made:
    """A code in the core's table layout, in ``state`` (the core's lifecycle is tested
    by the core; here only the state a scan reads matters)."""
    raw = serials.draw(1)
    code = bytes(serials.encode(raw)[0]).decode()
    serial = code + bytes(serials.tags(keys, raw)[0]).decode()
    inner = serials.inner_codes(keys, raw)
    inner_serial = (
        bytes(serials.encode(inner)[0]).decode()
        + bytes(serials.tags(keys, inner, inner=True)[0]).decode()
    )
    ih = bytes(serials.inner_hashes(keys, inner)[0])
    key = int.from_bytes(bytes(raw[0, :8]), "big", signed=True)
    db.execute(
        _CODE,
        [
            tenant,
            key,
            code,
            product_id,
            state,
            utcnow(),
            parent,
            dealer,
            region,
            int.from_bytes(ih[:8], "big", signed=True),
            ih,
        ],
    )
    return Made(code, serial, inner_serial)


@dataclass
class Bench:
    engine: DuckDBEngine
    keys: CodeKeys
    tenant: str
    product: str
    rows: list[ScanRow]

    def scan(self, text: str, **kw: object) -> scans.ScanResult:
        req = ScanRequest(code=text, **kw)  # type: ignore[arg-type]
        return scans.scan(
            self.engine, self.keys, CoreDirectory(), req, tenant=self.tenant, record=self.record
        )

    def record(self, rows: list[ScanRow]) -> None:
        self.rows.extend(rows)
        with self.engine.connect() as db:
            scans.record(db, rows)

    def code(self, state: str = "activated", **kw: object) -> Made:
        with self.engine.connect() as db:
            return make_code(db, self.keys, self.tenant, self.product, state, **kw)  # type: ignore[arg-type]


@pytest.fixture
def bench(engine: DuckDBEngine, tmp_path: Path) -> Bench:
    tenant = new_id("ten")
    keys = CodeKeys.derive(load_master_key(tmp_path), tenant)
    with engine.connect() as db:
        pid = product(db, tenant)
    return Bench(engine, keys, tenant, pid, [])


def test_genuine_first_then_repeat_with_first_date_and_city(bench: Bench) -> None:
    made = bench.code()
    first = bench.scan(made.serial, city="成都")
    assert (first.verdict, first.first_scan, first.scans_before) == ("genuine", True, 0)
    assert first.gtin == GTIN and first.code == made.code and "first scan" in first.message
    bench.scan(made.serial, city="绵阳")
    third = bench.scan(made.serial.lower(), city="上海")
    assert third.verdict == "genuine" and not third.first_scan and third.scans_before == 2
    assert third.first_city == "成都" and third.first_scanned_at is not None
    assert "2 time(s) before" in third.message and "成都" in third.message


@pytest.mark.parametrize(
    ("state", "verdict"),
    [
        ("issued", "not_released"),
        ("printed", "not_released"),
        ("recalled", "recalled"),
        ("voided", "voided"),
        ("destroyed", "voided"),
        ("shipped", "genuine"),
        ("received", "genuine"),
        ("aggregated", "genuine"),
    ],
)
def test_answer_for_each_state(bench: Bench, state: str, verdict: str) -> None:
    made = bench.code(state)
    got = bench.scan(made.serial)
    assert got.verdict == verdict and got.state == state
    assert bench.rows[-1].verdict == verdict and bench.rows[-1].code == made.code


def test_genuine_tag_never_issued_is_unknown(bench: Bench) -> None:
    raw = serials.draw(1)
    serial = (
        bytes(serials.encode(raw)[0]).decode() + bytes(serials.tags(bench.keys, raw)[0]).decode()
    )
    got = bench.scan(serial)
    assert got.verdict == "unknown" and "not found" in got.message


def test_forged_is_answered_without_opening_the_database(bench: Bench, tmp_path: Path) -> None:
    made = bench.code()
    closed = open_store(Settings(data_dir=tmp_path / "closed"))
    closed.close()
    rows: list[ScanRow] = []
    forged = made.serial[:-1] + ("A" if made.serial[-1] != "A" else "B")
    req = ScanRequest(code=forged, city="广州")
    got = scans.scan(
        closed, bench.keys, CoreDirectory(), req, tenant=bench.tenant, record=rows.extend
    )
    assert got.verdict == "forged" and not got.first_scan
    assert rows[0].verdict == "forged" and rows[0].code is None and rows[0].presented == forged
    # the same engine cannot answer a genuine code: the forged answer really read nothing
    with pytest.raises(Exception):  # noqa: B017 - any failure to use a closed engine
        scans.scan(
            closed,
            bench.keys,
            CoreDirectory(),
            ScanRequest(code=made.serial),
            tenant=bench.tenant,
            record=rows.extend,
        )


def test_another_tenants_code_is_forged(bench: Bench, tmp_path: Path) -> None:
    made = bench.code()
    other = CodeKeys.derive(load_master_key(tmp_path), "ten_other")
    got = scans.scan(
        bench.engine,
        other,
        CoreDirectory(),
        ScanRequest(code=made.serial),
        tenant="ten_other",
        record=bench.record,
    )
    assert got.verdict == "forged"


def test_digital_link_and_typed_form(bench: Bench) -> None:
    made = bench.code()
    link = f"https://t.brand.cn/01/{GTIN}/21/{made.serial}"
    assert bench.scan(link).verdict == "genuine"
    assert bench.scan(serials.typed_form(made.serial)).scans_before == 1
    assert scans.serial_of(f"HTTPS://T.BRAND.CN/01/{GTIN}/21/{made.serial}?x=1") == made.serial


def test_precise_location_only_with_consent(bench: Bench) -> None:
    made = bench.code()
    bench.scan(made.serial, city="成都", lat=30.57, lon=104.06)
    assert (bench.rows[-1].lat, bench.rows[-1].lon, bench.rows[-1].city) == (None, None, "成都")
    bench.scan(made.serial, city="成都", lat=30.57, lon=104.06, precise_consent=True)
    assert (bench.rows[-1].lat, bench.rows[-1].lon) == (30.57, 104.06)


def test_limiter_per_ip_and_device() -> None:
    lim = ScanLimiter(per_ip=1, ip_burst=3, per_device=1, device_burst=2)
    lim.check("1.2.3.4", "dev-a")
    lim.check("1.2.3.4", "dev-a")
    with pytest.raises(RateLimited) as e:
        lim.check("1.2.3.4", "dev-a")
    assert "device" in e.value.message and e.value.retry_after >= 1
    lim.check("1.2.3.4", "dev-b")  # the IP still had a token; the new device has two
    with pytest.raises(RateLimited, match="this ip"):
        lim.check("1.2.3.4", "dev-c")
    lim.check("5.6.7.8", None)


def _row(tenant: str, city: str = "北京") -> ScanRow:
    return ScanRow(tenant, "X" * 16, None, False, "genuine", "activated", GTIN, utcnow(), city,
                   None, None, None, None, "consumer", None, None, None)  # fmt: skip


_COUNT_SCANS = Statement(
    "t.count_scans", "SELECT count(*), count(DISTINCT id) FROM code_scans WHERE tenant_id = ?"
)


def test_scan_log_answers_after_the_journal_and_folds_in_groups(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    log = ScanLog(engine, tmp_path / "j", ingest=None, source=str, interval=5).open()
    try:
        futs = [log.journal.append(encode(_row("ten_w"), None)) for _ in range(50)]
        for f in futs:
            f.result(timeout=10)
        assert log.journal.syncs < 50  # appends queued together share an fsync
        with engine.connect() as db:  # durable in the journal, not folded yet
            assert db.one(_COUNT_SCANS, ["ten_w"]) == (0, 0)
        log.flush()
        with engine.connect() as db:
            assert db.one(_COUNT_SCANS, ["ten_w"]) == (50, 50)
    finally:
        log.stop()


def test_folded_scans_do_not_linger_in_the_journal(engine: DuckDBEngine, tmp_path: Path) -> None:
    log = ScanLog(engine, tmp_path / "j", ingest=None, source=str, interval=0.05,
                  keep_folded=0).open()  # fmt: skip
    try:
        for _ in range(3):
            log.journal.append(encode(_row("ten_l"), None)).result(timeout=10)
            log.flush()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = [r for w in log.journal.recover(START) for r in w.records]
            if not left:
                break
            time.sleep(0.05)
        assert not left, f"{len(left)} folded scans are still in the journal"
        with engine.connect() as db:
            assert db.one(_COUNT_SCANS, ["ten_l"]) == (3, 3)
    finally:
        log.stop()


def test_scans_a_killed_process_journaled_are_folded_once_at_the_next_start(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    folder = tmp_path / "j"
    first = ScanLog(engine, folder, ingest=None, source=str).open()
    first.journal.append(encode(_row("ten_k"), None)).result(timeout=10)
    first.stop()  # folded: 1
    # a process that made 3 scans durable and died before folding them, in the middle
    # of writing a fourth (never answered)
    journal = Journal(folder, name="scans").start()
    for city in ("成都", "遵义", "贵阳"):
        journal.append(encode(_row("ten_k", city), None)).result(timeout=10)
    journal.stop()
    (segment,) = journal.segments()
    with open(journal.path(segment), "ab") as f:
        f.write(frame(encode(_row("ten_k", "torn"), None))[:-7])
    assert ScanLog.waiting(engine, folder)
    second = ScanLog(engine, folder, ingest=None, source=str).open()
    try:
        with engine.connect() as db:
            assert db.one(_COUNT_SCANS, ["ten_k"]) == (4, 4)
        assert not ScanLog.waiting(engine, folder)
        second.journal.append(encode(_row("ten_k", "after"), None)).result(timeout=10)
        second.flush()
    finally:
        second.stop()
    third = ScanLog(engine, folder, ingest=None, source=str).open()  # nothing to fold twice
    third.stop()
    with engine.connect() as db:
        assert db.one(_COUNT_SCANS, ["ten_k"]) == (5, 5)
        cities = db.execute(
            Statement("t.scan_cities", "SELECT city FROM code_scans WHERE tenant_id = ?"),
            ["ten_k"],
        )
    assert sorted(c for (c,) in cities) == sorted(["北京", "成都", "遵义", "贵阳", "after"])


# --- the scan as an ingest event ---------------------------------------------------------


def _one_code(world: World, tmp_path: Path) -> tuple[bytes, Made]:  # noqa: F811
    """The master key and one activated code of ``world``'s tenant."""
    master = load_master_key(tmp_path)
    keys = CodeKeys.derive(master, world.tenant)
    with world.engine.connect() as db:
        return master, make_code(db, keys, world.tenant, product(db, world.tenant))


def test_consumer_scan_is_an_ingest_event_that_joins_the_identity_graph(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    master, made = _one_code(world, tmp_path)
    # a person known from the mini-program by user id and openid
    world.send("mp", [identify("u1", "m1", openid="o_abc", app_id="wxapp")])

    def ingest(chunk: Chunk) -> Future[int]:
        fut: Future[int] = Future()
        fut.set_result(write_chunks(world.engine, [chunk]))
        return fut

    scanner = Scanner(world.engine, master, ingest=ingest, journal=tmp_path / "journal")
    try:
        got = scanner.consumer_scan(
            ScanRequest(
                code=made.serial, city="成都", openid="o_abc", app_id="wxapp", device_id="dev-1"
            ),
            tenant=world.tenant,
            ip="10.0.0.1",
        )
    finally:
        scanner.stop()
    assert got.verdict == "genuine"
    world.resolver.catch_up()
    with world.engine.connect() as db:
        rows = db.execute(
            Statement(
                "t.scan_events",
                "SELECT e.event, e.properties, e.anonymous_id FROM events e WHERE e.tenant_id = ?"
                " AND e.event = 'Product Scanned'",
            ),
            [world.tenant],
        )
        assert len(rows) == 1 and made.code in rows[0][1] and GTIN in rows[0][1]
        profiles = db.execute(
            Statement(
                "t.scan_people",
                "SELECT DISTINCT profile_id FROM id_nodes WHERE tenant_id = ?"
                " AND ((id_type = 'user_id' AND value = 'u1')"
                " OR (id_type = 'anonymous_id' AND value = 'dev-1'))",
            ),
            [world.tenant],
        )
    assert len(profiles) == 1, profiles  # the scanner is the mini-program's u1


def test_a_tenants_history_loads_once_under_concurrent_first_scans(
    engine: DuckDBEngine,
) -> None:
    calls = 0
    real = engine.connect

    def counting() -> Any:
        nonlocal calls
        calls += 1
        return real()

    engine.connect = counting  # type: ignore[method-assign]
    history = ScanHistory(engine)
    start = threading.Barrier(8)

    def first_scan() -> None:
        start.wait(timeout=10)
        history.observe("ten_h", "X" * 16, utcnow(), "北京")

    threads = [threading.Thread(target=first_scan) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert calls == 1  # one load of the tenant's history, not one per scan
    assert history.peek("ten_h", "X" * 16)[0] == 8


def test_a_started_server_warms_the_scan_path_of_tenants_with_codes(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    master, made = _one_code(world, tmp_path)
    first = Scanner(world.engine, master, journal=tmp_path / "j")
    first.consumer_scan(ScanRequest(code=made.serial), tenant=world.tenant, ip="10.0.0.9")
    first.stop()  # the tenant's scan source exists now
    again = Scanner(world.engine, master, journal=tmp_path / "j")  # as after a restart
    try:
        again.warm([world.tenant])
        deadline = time.monotonic() + 20
        answered = None
        while answered is None and time.monotonic() < deadline:
            memory = again._memory
            if again.history.loaded(world.tenant) and memory and memory.ready(world.tenant):
                answered = asyncio.run(_scan_now(again, made.serial, world.tenant))
            time.sleep(0.05)
        assert answered is not None, "the first scan after the warm-up was not fast"
        assert answered.scans_before == 1
    finally:
        again.stop()


async def _scan_now(scanner: Scanner, serial: str, tenant: str) -> Any:
    got = scanner.scan_now(ScanRequest(code=serial), tenant=tenant, ip="10.0.0.8")
    if got is None:
        return None
    result, durable = got
    await durable
    return result
