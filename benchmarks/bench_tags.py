"""Tags and audiences at brand-group scale: 10M persons, 30 tags, 100M events.

Data is generated inside DuckDB from ``range()`` with hash-based pseudo-random values
(no Python loops): one tenant, six brands (``brd_a`` .. ``brd_f``), 24 sources (a brand
times mini_program / tmall / pos / official_account), 1-4 identifiers a person (user_id;
a phone for 60 %, a wx_app openid for 30 %, a brand member id for 40 %) and
``event_facts`` in time order over the last 400 days: one identify event a person with
its traits (city, tier, gender, age, ``sms_opt_out`` for 5 %), the rest track events
(Product Viewed 50 %, Page Viewed 25 %, Product Added 10 %, Order Completed 10 %, Signup
5 %) of persons picked so a fifth of them make two thirds of the events. ``tag_state``
says everything is folded, so a computation reads the facts as they are.

Then: the 30 tags (six templates = 9 tags, 21 rule tags) computed in full through
``tags.service.compute_tags``; an incremental run after 100k new events of 50k persons
go through the real fold (events + event_nodes); the audience index build; live counts
and a materialised ~1M audience through ``audiences.service``; each beside one plain
DuckDB query over native tables answering the same question, in the same run, and the
answers checked against each other. Tags are computed at the data's clock (the time
it was generated), so a kept data dir gives the same tags later; event conditions
in audiences read the real clock, as they do in the product. Each phase opens the
store afresh, as a scheduled job and a server would, and the run stops with its
figures (exit 3) if its memory passes ``--max-rss-gib`` (default: 90 % of the machine).
Run: python benchmarks/bench_tags.py [--profiles 10000000] [--events 100000000]
     [--data-dir DIR --keep] [--reuse DIR] [--skip-compute] [--reps 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from quanyu.audiences import service as audiences  # noqa: E402
from quanyu.audiences.models import AudienceCreate, AudienceDraft  # noqa: E402
from quanyu.config import Settings  # noqa: E402
from quanyu.consent import service as consent  # noqa: E402
from quanyu.engine import Session  # noqa: E402
from quanyu.ids import utcnow  # noqa: E402
from quanyu.store import open_store  # noqa: E402
from quanyu.tags import service as tags  # noqa: E402
from quanyu.tags.models import TagCreate  # noqa: E402
from quanyu.tenancy import service as tenancy  # noqa: E402
from quanyu.tenancy.models import TenantCreate  # noqa: E402

ACTOR = "bench"
BRANDS = [f"brd_{c}" for c in "abcdef"]
KINDS = ["mini_program", "tmall", "pos", "official_account"]
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "南京", "苏州", "成都", "重庆",
          "武汉", "西安", "天津", "长沙", "郑州", "青岛", "宁波", "厦门", "合肥",
          "福州", "昆明"]  # fmt: skip
CATEGORIES = ["skincare", "makeup", "haircare", "bodycare", "baby", "home", "fragrance", "health"]
TEMPLATES = ["rfm", "lifecycle", "cross_brand_buyer", "channel_preference",
             "favourite_category", "high_value_member"]  # fmt: skip
ORDER = '"Order Completed"'
RULE_TAGS = [
    ("buyer_90d", "boolean", f"count(event = {ORDER}, within 90d) >= 1"),
    ("buyer_2_90d", "boolean", f"count(event = {ORDER}, within 90d) >= 2"),
    ("spend_365d", "number", f"sum(amount, event = {ORDER}, within 365d)"),
    ("orders_365d", "number", f"count(event = {ORDER}, within 365d)"),
    ("views_30d", "number", 'count(event = "Product Viewed", within 30d)'),
    ("cart_abandoner_30d", "boolean", 'count(event = "Product Added", within 30d) >= 1'
     f" and count(event = {ORDER}, within 30d) = 0"),
    ("spend_brd_a_365d", "number", f'sum(amount, event = {ORDER}, brand = "brd_a", within 365d)'),
    ("spend_brd_b_365d", "number", f'sum(amount, event = {ORDER}, brand = "brd_b", within 365d)'),
    ("brd_c_buyer_180d", "boolean", f'count(event = {ORDER}, brand = "brd_c", within 180d) >= 1'),
    ("brands_365d", "number", "distinct(brand, within 365d)"),
    ("last_order_at", "date", f"last(event = {ORDER})"),
    ("first_seen_at", "date", "first()"),
    ("active_7d", "boolean", "last() >= ago(7d)"),
    ("tmall_shopper", "boolean", 'channel = "tmall"'),
    ("big_ticket_30d", "boolean", f"max(amount, event = {ORDER}, within 30d) >= 1000"),
    ("city_tier1", "boolean", 'traits.city in ("上海", "北京", "广州", "深圳")'),
    ("age_band", "enum", 'case when traits.age < 25 then "18-24" when traits.age < 35 then'
     ' "25-34" when traits.age < 50 then "35-49" when traits.age >= 50 then "50+" end'),
    ("member_brd_a", "boolean", 'identifier("member_id", "brd_a")'),
    ("wx_follower", "boolean", 'identifier("openid", "wx_app")'),
    ("gold_buyer_90d", "boolean", 'tag("buyer_90d") and traits.tier = "gold"'),
    ("vip_member", "boolean", 'tag("spend_365d") >= 2000 and identifier("member_id")'),
]  # fmt: skip
AUDIENCE_A = ('brand in ("brd_a", "brd_b") and traits.tier = "gold" and tag("spend_365d") > 500'
              ' and tag("buyer_2_90d")')  # fmt: skip
AUDIENCE_B = 'traits.city in ("上海", "杭州")'
AUDIENCE_C = 'sum(amount, brand = "brd_a", event = "Order Completed", within 30d) >= 300'
COMPUTE_TARGET_S, COUNT_TARGET_MS, MATERIALISE_TARGET_MS, EVENTS_TARGET_MS = 300, 20, 100, 500


# -- measuring ------------------------------------------------------------------------------
class PeakRss:
    """Samples this process's resident set every 20 ms; ``peak`` is the largest since reset.

    Past ``cap`` bytes it prints what it has and ends the process (exit 3): a run that
    would take all the machine's memory stops with its figures, not an OOM kill.
    """

    def __init__(self) -> None:
        self.peak = 0
        self.cap = 0
        self.phase = "start"
        self.cleanup: Path | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def now() -> int:
        with contextlib.suppress(OSError), open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self) -> None:
        while True:
            time.sleep(0.02)
            now = self.now()
            self.peak = max(self.peak, now)
            if self.cap and now > self.cap:
                report(f"abort phase={self.phase} rss_gib={gib(now)} cap_gib={gib(self.cap)}"
                       " (the run would exhaust the machine's memory)")  # fmt: skip
                summary()
                if self.cleanup is not None:
                    shutil.rmtree(self.cleanup, ignore_errors=True)
                os._exit(3)

    def reset(self, name: str) -> int:
        self.phase = name
        self.peak = self.now()
        return self.peak


RSS = PeakRss()
RESULTS: list[str] = []


def report(line: str) -> None:
    """Print a figure now and keep it for the summary."""
    print(line, flush=True)
    RESULTS.append(line)


def summary() -> None:
    """Every figure again, in one block."""
    print("== summary", flush=True)
    for line in RESULTS:
        print("  " + line, flush=True)


def gib(n: float) -> str:
    """Bytes as GiB text."""
    return f"{n / 2**30:.2f}"


@contextlib.contextmanager
def phase(name: str) -> Iterator[dict[str, float]]:
    """Time a block and its peak RSS; the caller may add fields to the yielded dict."""
    base = RSS.reset(name)
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    yield out
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_gib"] = float(gib(RSS.peak))
    out["rss_growth_gib"] = float(gib(RSS.peak - base))


def percentiles(times: list[float]) -> tuple[float, float]:
    """p50 and p99 of durations in seconds, in milliseconds."""
    arr = np.asarray(times) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def repeat(fn: Callable[[], Any], reps: int, warmup: int = 3) -> list[float]:
    """Durations of ``reps`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# -- data -----------------------------------------------------------------------------------
def _pick(values: list[str], expr: str) -> str:
    """SQL picking one of ``values`` by the integer expression ``expr`` (0-based)."""
    items = ", ".join("'" + v + "'" for v in values)
    return f"[{items}][CAST(({expr}) % {len(values)} AS BIGINT) + 1]"


IDENTIFIERS_SQL = """
INSERT INTO id_nodes (tenant_id, node_id, id_type, scope, key, value, value_enc, masked,
                      profile_id, source_id, first_seen)
WITH k AS (SELECT range AS k, 3 * range + 1 AS pid, $start + to_days((range * 400) // $p)
           AS seen, {src} AS src FROM range($p))
SELECT $t, pid, 'user_id', src, 'u:' || k, 'user-' || k, NULL, 'user-' || k, pid, src, seen
FROM k
UNION ALL
SELECT $t, 3 * $p + 3 * k + 1, 'phone', '', 'ph:' || k, NULL, NULL,
       '139****' || lpad(CAST(k % 10000 AS VARCHAR), 4, '0'), pid, src, seen
FROM k WHERE hb(k * 17 + 1) % 100 < 60
UNION ALL
SELECT $t, 3 * $p + 3 * k + 2, 'openid', 'wx_app', 'oid:' || k, 'o' || k, NULL, 'o' || k,
       pid, src, seen
FROM k WHERE hb(k * 17 + 2) % 100 < 30
UNION ALL
SELECT $t, 3 * $p + 3 * k + 3, 'member_id', {member_brand}, 'm:' || k, 'M' || k, NULL,
       'M' || k, pid, src, seen
FROM k WHERE hb(k * 17 + 3) % 100 < 40
"""

EVENTS_SQL = """
INSERT INTO event_facts
WITH r AS (
    SELECT i, (i % $ratio = 0 AND i // $ratio < $p) AS ident,
           hb(i * 7 + 1) AS h1, hb(i * 7 + 2) AS h2, hb(i * 7 + 3) % 100 AS ev,
           hb(i * 7 + 4) % 100 AS bh, hb(i * 7 + 5) % 10 AS ch, hb(i * 7 + 6) AS h6
    FROM range($e) AS t(i)
), s AS (
    SELECT *,
        CASE WHEN ident THEN i // $ratio WHEN h1 % 10 < 6 THEN (h2 % ($p // 5)) * 5
             ELSE h2 % $p END AS k,
        CASE WHEN ident THEN NULL WHEN ev < 50 THEN 'Product Viewed'
             WHEN ev < 75 THEN 'Page Viewed' WHEN ev < 85 THEN 'Product Added'
             WHEN ev < 95 THEN 'Order Completed' ELSE 'Signup' END AS event,
        CASE WHEN bh < 30 THEN 'brd_a' WHEN bh < 55 THEN 'brd_b' WHEN bh < 70 THEN 'brd_c'
             WHEN bh < 82 THEN 'brd_d' WHEN bh < 92 THEN 'brd_e' ELSE 'brd_f' END AS brand,
        CASE WHEN ch < 4 THEN 'mini_program' WHEN ch < 7 THEN 'tmall' WHEN ch < 9 THEN 'pos'
             ELSE 'official_account' END AS kind
    FROM r
), a AS (
    SELECT *, CASE WHEN event = 'Order Completed' THEN round(exp(ln(20) + ((h6 % 1000)
              + (h6 // 1000 % 1000)) / 2000.0 * ln(100)), 2) END AS amount
    FROM s
)
SELECT $t, 3 * k + 1, 3 * k + 1, i // 10000 + 1,
       $start + to_microseconds(i * $step),
       CASE WHEN ident THEN 'identify' ELSE 'track' END, event, NULL, brand,
       'src_' || brand || '_' || kind, kind, amount,
       CASE WHEN amount IS NOT NULL THEN '{"category":"' || {category} || '","revenue":'
            || amount || '}' END,
       CASE WHEN ident THEN '{"city":"' || {city} || '","tier":"' || {tier} || '","gender":"'
            || {gender} || '","age":' || (18 + hb(k * 13 + 4) % 50)
            || CASE WHEN hb(k * 13 + 5) % 100 < 5 THEN ',"sms_opt_out":true' ELSE '' END
            || '}' END
FROM a
"""


def generate(db: Session, tenant: str, profiles: int, events: int, now: datetime) -> None:
    """Brands, sources, identifiers, facts and the fold/identity state of ``tenant``."""
    con = db._con  # type: ignore[attr-defined]
    start = now - timedelta(days=400)
    for b in BRANDS:
        con.execute(
            "INSERT INTO brands (id, tenant_id, name, created_at) VALUES (?, ?, ?, ?)",
            [b, tenant, b.upper(), now],
        )
        for kind in KINDS:
            con.execute(
                "INSERT INTO sources (id, tenant_id, brand_id, name, kind, rate_limit,"
                " created_at) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                [f"src_{b}_{kind}", tenant, b, f"{b} {kind}", kind, now],
            )
    p = {"t": tenant, "p": profiles, "start": start}
    sql = IDENTIFIERS_SQL.format(
        src="'src_brd_a_' || " + _pick(KINDS, "hb(range * 17)"),
        member_brand=_pick(BRANDS, "hb(k * 17 + 4)"),
    )
    # bulk-building the lookup index afterwards is much faster than keeping it on insert
    # hash() is a UBIGINT: mixed with signed integers it computes in HUGEINT, ten times slower
    con.execute("CREATE OR REPLACE TEMP MACRO hb(x) AS CAST(hash(x) >> 1 AS BIGINT)")
    con.execute("DROP INDEX id_nodes_key")
    t0 = time.perf_counter()
    con.execute(sql, p)
    con.execute("CREATE INDEX id_nodes_key ON id_nodes (key)")
    n_ids = con.execute("SELECT count(*) FROM id_nodes").fetchall()[0][0]
    report(f"generate.identifiers rows={n_ids} seconds={time.perf_counter() - t0:.1f}")
    t0 = time.perf_counter()
    step = 400 * 86400 * 1_000_000 // events
    tier = "CASE WHEN hb(k * 13 + 2) % 100 < 15 THEN 'gold' WHEN hb(k * 13 + 2) % 100 < 40"
    tier += " THEN 'silver' WHEN hb(k * 13 + 2) % 100 < 70 THEN 'bronze' ELSE 'none' END"
    sql = EVENTS_SQL.replace("{category}", _pick(CATEGORIES, "h6 // 1000000"))
    sql = sql.replace("{city}", _pick(CITIES, "hb(k * 13 + 1)")).replace("{tier}", tier)
    sql = sql.replace("{gender}", "CASE WHEN hb(k * 13 + 3) % 10 < 6 THEN 'female' ELSE 'male' END")
    con.execute(sql, {**p, "e": events, "ratio": max(1, events // profiles), "step": step})
    seq = con.execute("SELECT max(commit_seq) FROM event_facts").fetchall()[0][0]
    report(f"generate.events rows={events} seconds={time.perf_counter() - t0:.1f}")
    con.execute(
        "INSERT INTO identity_state (tenant_id, rules, next_node, next_edge, next_change,"
        " resolved_seq, updated_at) VALUES (?, NULL, ?, 0, 0, ?, ?)",
        [tenant, 6 * profiles + 4, seq, now],
    )
    con.execute(
        "INSERT INTO tag_state (tenant_id, folded_seq, folded_change, next_run, updated_at)"
        " VALUES (?, ?, 0, 1, ?)",
        [tenant, seq, now],
    )
    t0 = time.perf_counter()
    consent.ensure_defaults(db, tenant=tenant)
    n = 0
    for channel, status, where in (("*", "granted", "true"), ("sms", "withdrawn", OPTED_OUT)):
        at = start + timedelta(days=1 if status == "granted" else 2)
        values = {"t": tenant, "base": n, "channel": channel, "status": status, "at": at}
        con.execute(CONSENT_SQL.replace("{where}", where), values)
        last = "SELECT max(seq) FROM consent_ledger WHERE tenant_id = ?"
        n = con.execute(last, [tenant]).fetchall()[0][0]
    subjects = "SELECT tenant_id, seq, subject_key FROM consent_ledger WHERE tenant_id = ?"
    con.execute(f"INSERT INTO consent_subjects {subjects}", [tenant])
    con.execute("UPDATE consent_state SET next_seq = ? WHERE tenant_id = ?", [n + 1, tenant])
    report(f"generate.consent entries={n} seconds={time.perf_counter() - t0:.1f}")
    con.execute("CHECKPOINT")


#: The people whose ``sms_opt_out`` trait is true (person k has profile id 3k + 1).
OPTED_OUT = "hb((profile_id - 1) // 3 * 13 + 5) % 100 < 5"
#: Every person's marketing decision, one entry each, as a mini-program records it.
CONSENT_SQL = """
INSERT INTO consent_ledger (tenant_id, seq, id, purpose_id, channel, status, separate,
    notice_version, decided_at, recorded_at, surface, actor, evidence, subject_key,
    subject_type, profile_id, origin, source_id, message_id, recorded_by, leaf_hash)
SELECT $t, $base + row_number() OVER (ORDER BY profile_id), 'cst_bench_' || $base || '_'
    || profile_id, 'default.marketing', $channel, $status, false, NULL, $at, $at,
    'mini_program', 'self', NULL, key, id_type, profile_id, 'bench', NULL, NULL, 'bench',
    'bench'
FROM id_nodes WHERE tenant_id = $t AND node_id = profile_id AND {where}
"""


INCREMENT_SQL = """
INSERT INTO {table}
WITH r AS (
    SELECT i, (i // 2 * 7919) % $p AS k, $seq + 1 + i // 10000 AS seq,
           CAST($now AS TIMESTAMP) - to_milliseconds(60000 + i) AS ts, i % 4 = 0 AS ordered,
           'inc' || $seq || '-' || i AS mid
    FROM range($n) AS t(i)
)
SELECT {columns} FROM r
"""
_EVENT_COLUMNS = (
    "$t, 'src_brd_a_pos', 'brd_a', mid, 'track', CASE WHEN ordered THEN 'Order Completed'"
    " ELSE 'Product Viewed' END, NULL, 'user-' || k, NULL, NULL, NULL, ts, ts, ts, ts,"
    ' CASE WHEN ordered THEN \'{"category":"baby","revenue":420}\' END, NULL, NULL, NULL,'
    " NULL, seq"
)
_NODE_COLUMNS = (
    "$t, 'src_brd_a_pos', mid, 3 * k + 1, ts, seq, ts, 'track', CASE WHEN ordered"
    " THEN 'Order Completed' ELSE 'Product Viewed' END, 'brd_a', NULL"
)


def append_events(db: Session, tenant: str, n: int, now: datetime) -> int:
    """``n`` new events of ``n / 2`` persons as ingest and identity leave them; returns the
    new resolved commit."""
    con = db._con  # type: ignore[attr-defined]
    seq = con.execute("SELECT resolved_seq FROM identity_state WHERE tenant_id = ?", [tenant])
    seq = seq.fetchall()[0][0]
    profiles = con.execute("SELECT count(*) FROM id_nodes WHERE id_type = 'user_id'").fetchall()[0][
        0
    ]
    p = {"t": tenant, "p": profiles, "seq": seq, "now": now, "n": n}
    con.execute(INCREMENT_SQL.format(table="events", columns=_EVENT_COLUMNS), p)
    con.execute(INCREMENT_SQL.format(table="event_nodes", columns=_NODE_COLUMNS), p)
    upto = seq + 1 + (n - 1) // 10000
    con.execute("UPDATE identity_state SET resolved_seq = ? WHERE tenant_id = ?", [upto, tenant])
    return int(upto)


# -- tags -----------------------------------------------------------------------------------
def create_tags(db: Session, tenant: str) -> int:
    """The six templates and the 21 rule tags; returns how many tags the tenant has."""
    for key in TEMPLATES:
        tags.add_template(db, key, tenant=tenant, actor=ACTOR)
    for key, value_type, rule in RULE_TAGS:
        body = TagCreate(key=key, name_zh=key, name_en=key, value_type=value_type, rule=rule,
                         status="live")  # fmt: skip
        tags.create_tag(db, body, tenant=tenant, actor=ACTOR)
    return len(tags.list_tags(db, tenant=tenant))


def rows(db: Session, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Plain SQL on the session's DuckDB connection (baselines and checks)."""
    return db._con.execute(sql, params).fetchall()  # type: ignore[attr-defined, no-any-return]


# -- baselines: plain DuckDB over native tables ---------------------------------------------------
NATIVE_SQL = [
    "CREATE OR REPLACE TABLE bench_profiles AS SELECT profile_id,"
    " json_extract_string(traits, '$.city') AS city, json_extract_string(traits, '$.tier') AS tier,"
    " coalesce(json_extract_string(traits, '$.sms_opt_out') = 'true', false) AS sms_opt_out"
    " FROM event_facts WHERE tenant_id = $t AND traits IS NOT NULL",
    "CREATE OR REPLACE TABLE bench_profile_tags AS SELECT profile_id,"
    " max(num) FILTER (WHERE tag_key = 'spend_365d') AS spend_365d,"
    " bool_or(tag_key = 'buyer_2_90d') AS buyer_2_90d FROM tag_history WHERE tenant_id = $t"
    " AND valid_to IS NULL AND tag_key IN ('spend_365d', 'buyer_2_90d') GROUP BY profile_id",
    "CREATE OR REPLACE TABLE bench_profile_brands AS SELECT DISTINCT profile_id, brand_id"
    " FROM event_facts WHERE tenant_id = $t",
]
BASELINE_A = (
    "SELECT count(*) FROM bench_profiles AS p JOIN bench_profile_tags AS t USING (profile_id)"
    " WHERE p.tier = 'gold' AND NOT p.sms_opt_out AND t.spend_365d > 500 AND t.buyer_2_90d"
    " AND p.profile_id IN (SELECT profile_id FROM bench_profile_brands"
    " WHERE brand_id IN ('brd_a', 'brd_b'))"
)
BASELINE_B = (
    "SELECT profile_id FROM bench_profiles WHERE city IN ('上海', '杭州') AND NOT sms_opt_out"
)
BASELINE_C = (
    "SELECT count(*) FROM (SELECT profile_id FROM event_facts WHERE tenant_id = ?"
    " AND brand_id = 'brd_a' AND event = 'Order Completed' AND ts >= ? GROUP BY profile_id"
    " HAVING sum(amount) >= 300)"
)
#: Audience (a) straight from the events and identifiers, at the tags' ``now``: it checks
#: the tag computation, the index and the gate together. (admitted, matched)
CHECK_A = """
WITH f AS (
    SELECT profile_id,
        count(*) FILTER (WHERE event = 'Order Completed' AND ts >= $now - INTERVAL 90 DAY) AS o90,
        coalesce(sum(amount) FILTER (WHERE event = 'Order Completed'
                 AND ts >= $now - INTERVAL 365 DAY), 0) AS s365,
        bool_or(brand_id IN ('brd_a', 'brd_b')) AS ab
    FROM event_facts WHERE tenant_id = $t GROUP BY profile_id
), tr AS (
    SELECT profile_id, arg_max(json_extract_string(traits, '$.tier'), ts) AS tier,
           arg_max(json_extract_string(traits, '$.sms_opt_out'), ts) AS opt_out
    FROM event_facts WHERE tenant_id = $t AND traits IS NOT NULL GROUP BY profile_id
)
SELECT count(*) FILTER (WHERE coalesce(opt_out, '') <> 'true'), count(*)
FROM f JOIN tr USING (profile_id)
WHERE o90 >= 2 AND s365 > 500 AND ab AND tier = 'gold'
  AND profile_id IN (SELECT profile_id FROM id_nodes WHERE tenant_id = $t)
"""


# -- the run --------------------------------------------------------------------------------------
def compute_full(db: Session, tenant: str, now: datetime) -> None:
    """Every live tag for every person (the tags' clock is the data's ``now``)."""
    first = not rows(db, "SELECT 1 FROM tag_runs WHERE tenant_id = ? LIMIT 1", [tenant])
    with phase("compute full") as m:
        run = tags.compute_tags(db, tenant=tenant, now=now)
    n_hist = rows(db, "SELECT count(*) FROM tag_history WHERE tenant_id = ?", [tenant])[0][0]
    report(f"tags.compute.full seconds={m['seconds']:.1f} target={COMPUTE_TARGET_S}"
           f" peak_rss_gib={m['peak_rss_gib']} tags={len(run.tags)} persons={run.profiles}"
           f" added={run.added} removed={run.removed} history_rows={n_hist}"
           f" first_run={first}")  # fmt: skip


def compute_incremental(db: Session, tenant: str, now: datetime, events: int) -> None:
    """New events of some persons through the real fold, then an incremental run."""
    n_new = max(2, events // 1000)
    with phase("append") as m:
        append_events(db, tenant, n_new, now)
    report(f"tags.incremental.append events={n_new} persons={n_new // 2}"
           f" seconds={m['seconds']:.1f}")  # fmt: skip
    with phase("compute incremental") as m:
        run = tags.compute_tags(db, tenant=tenant, incremental=True, now=now)
    report(f"tags.compute.incremental seconds={m['seconds']:.1f} persons={run.profiles}"
           f" added={run.added} removed={run.removed}"
           f" peak_rss_gib={m['peak_rss_gib']}")  # fmt: skip


def index(db: Session, tenant: str, cache: audiences.IndexCache) -> None:
    """Build the tenant's audience index through the service's cache."""
    with phase("index") as m:
        ix, _ = cache.get(db, tenant=tenant)
    report(f"audiences.index.build seconds={m['seconds']:.1f} bitmaps_gib={gib(ix.memory_bytes())}"
           f" rss_growth_gib={m['rss_growth_gib']} peak_rss_gib={m['peak_rss_gib']}"
           f" persons={len(ix.universe)}")  # fmt: skip


def timed(name: str, ours: list[float], base: list[float], target_ms: float) -> tuple[float, float]:
    """Report our p50/p99 beside plain DuckDB's; returns both p50s."""
    (p50, p99), (b50, b99) = percentiles(ours), percentiles(base)
    report(f"{name} p50_ms={p50:.2f} p99_ms={p99:.2f} target_ms={target_ms} reps={len(ours)}"
           f" duckdb_p50_ms={b50:.2f} duckdb_p99_ms={b99:.2f}"
           f" ratio_to_duckdb={p50 / b50:.2f}")  # fmt: skip
    return p50, b50


def audience_figures(db: Session, tenant: str, now: datetime, reps: int,
                     cache: audiences.IndexCache) -> list[str]:  # fmt: skip
    """Counts, materialisation and event conditions beside plain DuckDB; returns failures."""
    failed = []
    t = {"t": tenant}
    with phase("native") as m:
        for sql in NATIVE_SQL:
            rows(db, sql, t)
    report(f"duckdb.native_tables seconds={m['seconds']:.1f} (per-profile tables for baselines)")
    # (a) tags + traits + brands, through the consent gate
    draft = AudienceDraft(rule=AUDIENCE_A, purpose="marketing", channel="sms")
    got = audiences.count(db, draft, tenant=tenant, cache=cache)
    ours = repeat(lambda: audiences.count(db, draft, tenant=tenant, cache=cache), reps)
    base = repeat(lambda: rows(db, BASELINE_A), reps)
    timed("audiences.count.tags_traits", ours, base, COUNT_TARGET_MS)
    admitted, matched = rows(db, CHECK_A, {**t, "now": now})[0]
    plain = rows(db, BASELINE_A)[0][0]
    ok = (got.size, got.matched) == (admitted, matched) == (plain, matched)
    report(f"check.tags_traits ok={ok} size={got.size} matched={got.matched}"
           f" excluded={got.excluded} from_events=({admitted}, {matched}) plain={plain}"
           f" plan={','.join(got.plan)}")  # fmt: skip
    failed += [] if ok else ["tags_traits"]
    # (b) a ~1M audience materialised
    if not any(a.id == "bench-city" for a in audiences.list_audiences(db, tenant=tenant)):
        body = AudienceCreate(id="bench-city", name="上海 + 杭州", rule=AUDIENCE_B,
                              purpose="marketing", channel="sms")  # fmt: skip
        audiences.create_audience(db, body, tenant=tenant, actor=ACTOR)
    snap = audiences.materialise(db, tenant=tenant, audience_id="bench-city", cache=cache)
    n_mat = max(20, reps // 4)
    ours = repeat(lambda: audiences.materialise(db, tenant=tenant, audience_id="bench-city",
                                                cache=cache), n_mat)  # fmt: skip
    base = repeat(lambda: db._con.sql(BASELINE_B).to_arrow_table(), n_mat)  # type: ignore[attr-defined]
    p50, _ = timed("audiences.materialise", ours, base, MATERIALISE_TARGET_MS)
    plain = rows(db, f"SELECT count(*) FROM ({BASELINE_B})")[0][0]
    ok = snap.size == plain
    report(f"check.materialise ok={ok} members={snap.size} plain={plain}")
    failed += [] if ok else ["materialise"]
    # (c) an event condition no tag precomputes
    draft = AudienceDraft(rule=AUDIENCE_C, purpose="marketing", channel="sms")
    before = utcnow()
    got = audiences.count(db, draft, tenant=tenant, cache=cache)
    after = utcnow()
    n_ev = reps if got.took_ms < 100 else 20
    ours = repeat(lambda: audiences.count(db, draft, tenant=tenant, cache=cache), n_ev)
    since = utcnow() - timedelta(days=30)
    base = repeat(lambda: rows(db, BASELINE_C, [tenant, since]), n_ev)
    timed("audiences.count.events", ours, base, EVENTS_TARGET_MS)
    plain = {
        rows(db, BASELINE_C, [tenant, at - timedelta(days=30)])[0][0] for at in (before, after)
    }
    ok = got.matched in plain
    report(f"check.events ok={ok} matched={got.matched} plain={sorted(plain)}"
           f" plan={','.join(got.plan)}")  # fmt: skip
    return failed + ([] if ok else ["events"])


@contextlib.contextmanager
def store(data_dir: Path) -> Iterator[Session]:
    """A session on a store opened for one phase: generation, the computation and the
    audiences each start from a closed database, as a scheduled job and a server would."""
    engine = open_store(Settings(data_dir=data_dir))
    try:
        with engine.connect() as db:
            yield db
    finally:
        engine.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", type=int, default=10_000_000)
    ap.add_argument("--events", type=int, default=100_000_000)
    ap.add_argument("--data-dir", type=Path, help="where the database goes (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir for --reuse")
    ap.add_argument("--reuse", type=Path, help="a data dir kept by --keep: skip generation")
    ap.add_argument("--skip-compute", action="store_true", help="reuse the tags as computed")
    ap.add_argument("--reps", type=int, default=200, help="repetitions of each count")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    ap.add_argument("--max-rss-gib", type=float, default=round(0.9 * memory, 1),
                    help="stop the run when its resident memory passes this")  # fmt: skip
    args = ap.parse_args()
    data_dir = args.reuse or args.data_dir or Path(tempfile.mkdtemp(prefix="quanyu-bench-tags-"))
    RSS.cap = int(args.max_rss_gib * 2**30)
    if not (args.keep or args.reuse):
        RSS.cleanup = data_dir
    print(f"# {machine()}; data dir {data_dir}; rss cap {args.max_rss_gib} GiB", flush=True)
    failed: list[str] = []
    try:
        with store(data_dir) as db:
            found = rows(db, "SELECT id FROM tenants WHERE name = 'Bench tags'")
            if args.reuse and found:
                tenant = found[0][0]
            else:
                tenant = tenancy.create_tenant(db, TenantCreate(name="Bench tags"), actor=ACTOR).id
                with phase("generate") as m:
                    generate(db, tenant, args.profiles, args.events, utcnow())
                report(f"generate seconds={m['seconds']:.1f} profiles={args.profiles}"
                       f" events={args.events} peak_rss_gib={m['peak_rss_gib']}")  # fmt: skip
            now = rows(db, "SELECT min(created_at) FROM brands WHERE tenant_id = ?", [tenant])[0][0]
            if not tags.list_tags(db, tenant=tenant):
                report(f"tags.defined count={create_tags(db, tenant)}")
        if not args.skip_compute:
            with store(data_dir) as db:
                compute_full(db, tenant, now)
            with store(data_dir) as db:
                compute_incremental(db, tenant, now, args.events)
        with store(data_dir) as db:
            cache = audiences.IndexCache()
            index(db, tenant, cache)
            failed = audience_figures(db, tenant, now, args.reps, cache)
    finally:
        if not (args.keep or args.reuse):
            shutil.rmtree(data_dir, ignore_errors=True)
    summary()
    if failed:
        sys.exit(f"checks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
