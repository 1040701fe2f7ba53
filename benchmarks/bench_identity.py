"""OneID online figures: resolution while ingesting, and lookups among a million people.

One ``quanyu serve`` on 127.0.0.1 (a port in 18600-18699) with a temporary data dir.

1. Incremental. Four clients send identify/track calls to ``/v1/batch`` (100 events a
   request) for ``--seconds``: new people (anonymousId + unionid, a phone for half, a brand
   member id for a third), ~20 % of events linking a new identifier (a phone, a member id,
   another device's anonymousId) to someone seen before, the rest activity of people
   picked with heavy-tailed (Pareto) weights. The server's resolver follows the commits.
   Events resolved/s = events acknowledged / (first send -> lookup answers the newest
   identifier of the last acknowledged request). Lag = a request's 200 -> its new unionid
   answered by lookup, sampled every 40 ms of acknowledgements; one prober polls the
   oldest pending sample (the resolver works in commit order).
2. Lookups. ``--people`` identify calls (a distinct unionid, a phone for every other
   person, a CRM userId) go through ``quanyu import events``'s path to the running server;
   ``POST .../identity/resolve`` after the import waits for the background resolver and
   resolves what is left. Then wrk looks up random people by unionid, then by phone, with
   the tenant's secret key; a sample of answers is checked: a person's unionid, phone and
   userId give one OneID, and different people different ones.
Run: python benchmarks/bench_identity.py [--people 1000000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_seconds, machine, process  # noqa: E402

from quanyu.client import connect  # noqa: E402
from quanyu.config import Settings  # noqa: E402
from quanyu.ingest import importer  # noqa: E402

PORTS = range(18600, 18700)
CLIENTS = 4
EVENTS_PER_REQUEST = 100
SAMPLE_EVERY_S = 0.04
#: Share of events that bring a new person, and that link a new identifier to a known one.
NEW_PERSON, NEW_LINK = 0.15, 0.20
BRAND = "lumi"
TAIL_BOUND_S = 120.0
RESOLVE_BOUND_S = 1800.0
LOOKUP_CONNECTIONS = 4
CONTEXT = {
    "library": {"name": "analytics-miniprogram", "version": "2.3.1"},
    "app": {"name": "Lumi Club", "version": "5.2.0"},
    "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.40",
    "locale": "zh-CN",
    "campaign": {"name": "double11", "source": "wechat", "medium": "miniprogram"},
}
EVENTS = ["Product Viewed", "Product Added", "Coupon Claimed", "Order Completed"]


def phone(g: int) -> str:
    """A valid China Mobile number, distinct for every ``g`` below 10**8."""
    return f"139{(g * 48271 + 12345678) % 10**8:08d}"


def free_port() -> int:
    """A port in :data:`PORTS` nothing listens on."""
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@dataclass
class Tenant:
    """A tenant with one mini-program source, its write key and an admin secret key."""

    id: str
    source: str
    write_key: str
    secret: str


def new_tenant(api: httpx.Client, name: str) -> Tenant:
    """Create a tenant, a source and a secret key through the management API."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = api.post(path, json=body)
        r.raise_for_status()
        return dict(r.json())

    t = post("/v1/tenants", {"name": name})["id"]
    s = post(f"/v1/tenants/{t}/sources", {"name": "Mini-program", "kind": "mini_program"})
    key = post(f"/v1/tenants/{t}/keys", {"name": "bench", "scopes": ["admin"]})["secret"]
    return Tenant(t, s["id"], s["write_key"], key)


def lookup(http: httpx.Client, tenant: Tenant, kind: str, value: str, scope: str = "") -> str:
    """The OneID of an identifier, or "" when no person has it yet."""
    params = {"type": kind, "value": value, **({"scope": scope} if scope else {})}
    r = http.get(f"/v1/tenants/{tenant.id}/identity/lookup", params=params)
    if r.status_code == 404:
        return ""
    r.raise_for_status()
    return str(r.json()["profile"])


def api_client(url: str, secret: str, timeout: float = 30.0) -> httpx.Client:
    """A keep-alive management-API client sending ``secret`` as its bearer token."""
    return httpx.Client(
        base_url=url, timeout=timeout, headers={"Authorization": f"Bearer {secret}"}
    )


# --- 1. incremental resolution while ingesting ------------------------------------------


@dataclass
class Person:
    unionid: str
    anon: list[str]
    phone: str | None = None
    member: str | None = None


@dataclass
class Probe:
    """Samples of (request's 200, its new unionid) for the prober, and their lags."""

    pending: deque[tuple[float, str]] = field(default_factory=deque)
    lags: list[float] = field(default_factory=list)
    last_offer: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def offer(self, acked: float, unionid: str) -> None:
        with self.lock:
            if acked - self.last_offer >= SAMPLE_EVERY_S:
                self.last_offer = acked
                self.pending.append((acked, unionid))


@dataclass
class Sent:
    """What one client sent: events acknowledged, first send, last 200 and its unionid."""

    events: int = 0
    first: float = 0.0
    last: tuple[float, str] = (0.0, "")
    people: list[Person] = field(default_factory=list)
    per_person: Counter[int] = field(default_factory=Counter)


class Sender:
    """One client: a growing population of its own people, sent 100 events a request."""

    def __init__(self, k: int, seed: int) -> None:
        self.k, self.rng, self.sent = k, random.Random(seed), Sent()
        self.tickets: list[int] = []  # person index repeated by its activity weight
        self.counter = 0

    def _id(self) -> int:
        self.counter += 1
        return self.k * 10_000_000 + self.counter

    def _new_person(self) -> tuple[Person, dict[str, Any]]:
        g = self._id()
        p = Person(f"oU{g:012d}bm", [f"anon-{g}"])
        traits: dict[str, Any] = {"unionid": p.unionid, "nickname": f"user{g % 997}"}
        if self.rng.random() < 0.5:
            p.phone = traits["phone"] = phone(g)
        if self.rng.random() < 0.33:
            p.member, traits["brand"] = f"M{g:010d}", BRAND
            traits["member_id"] = p.member
        return p, {"type": "identify", "anonymousId": p.anon[0], "traits": traits}

    def _link(self, p: Person) -> dict[str, Any]:
        """A known person shows a new identifier next to their unionid."""
        traits: dict[str, Any] = {"unionid": p.unionid}
        anon = p.anon[-1]
        if p.phone is None:
            p.phone = traits["phone"] = phone(self._id())
        elif p.member is None:
            p.member, traits["brand"] = f"M{self._id():010d}", BRAND
            traits["member_id"] = p.member
        else:
            anon = f"anon-{self._id()}"
            p.anon.append(anon)
        return {"type": "identify", "anonymousId": anon, "traits": traits}

    def _track(self, p: Person) -> dict[str, Any]:
        return {
            "type": "track",
            "event": self.rng.choice(EVENTS),
            "anonymousId": self.rng.choice(p.anon),
            "properties": {"sku": f"LUMI-{self.rng.randrange(97):03d}", "price": 89.0},
            "context": {**CONTEXT, "traits": {"unionid": p.unionid}},
        }

    def batch(self, stamp: str) -> tuple[list[dict[str, Any]], list[Person]]:
        """One request's events and the people it introduces."""
        events, fresh = [], []
        for _ in range(EVENTS_PER_REQUEST):
            r = self.rng.random()
            if not self.tickets or r < NEW_PERSON:
                p, msg = self._new_person()
                fresh.append(p)
            else:
                i = self.rng.choice(self.tickets)
                self.sent.per_person[i] += 1
                p = self.sent.people[i]
                msg = self._link(p) if r < NEW_PERSON + NEW_LINK else self._track(p)
            self.counter += 1
            msg.update(messageId=f"m{self.k}-{self.counter}", timestamp=stamp)
            msg.setdefault("context", CONTEXT)
            events.append(msg)
        return events, fresh

    def run(self, url: str, write_key: str, until: float, probe: Probe) -> Sent:
        """Send until ``until`` (monotonic); every request must be answered 200."""
        with httpx.Client(base_url=url, auth=(write_key, ""), timeout=30.0) as http:
            while time.monotonic() < until:
                stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                events, fresh = self.batch(stamp)
                body = orjson.dumps({"batch": events})
                started = time.monotonic()
                r = http.post(
                    "/v1/batch", content=body, headers={"content-type": "application/json"}
                )
                acked = time.monotonic()
                if r.status_code != 200:
                    raise RuntimeError(f"/v1/batch answered {r.status_code}: {r.text[:300]}")
                self.sent.first = self.sent.first or started
                self.sent.events += len(events)
                for p in fresh:
                    index = len(self.sent.people)
                    self.sent.people.append(p)
                    self.sent.per_person[index] += 1
                    weight = min(int(self.rng.paretovariate(1.1)), 500)
                    self.tickets.extend([index] * weight)
                if fresh:
                    self.sent.last = (acked, fresh[-1].unionid)
                    probe.offer(acked, fresh[0].unionid)
        return self.sent


def prober(http: httpx.Client, tenant: Tenant, probe: Probe, done: threading.Event) -> int:
    """Poll the oldest pending sample until it resolves; return lookups made."""
    calls = 0
    deadline = float("inf")
    while time.monotonic() < deadline:
        if not probe.pending:
            if done.is_set():
                return calls
            time.sleep(0.005)
            continue
        if done.is_set() and deadline == float("inf"):
            deadline = time.monotonic() + TAIL_BOUND_S
        acked, unionid = probe.pending[0]
        calls += 1
        if lookup(http, tenant, "unionid", unionid):
            probe.lags.append(time.monotonic() - acked)
            probe.pending.popleft()
        else:
            time.sleep(0.005)
    raise TimeoutError(f"{len(probe.pending)} samples not resolved {TAIL_BOUND_S} s after sending")


def wait_resolved(http: httpx.Client, tenant: Tenant, unionid: str, bound: float) -> float:
    """Poll until ``unionid`` resolves; return the monotonic time it did."""
    deadline = time.monotonic() + bound
    while not lookup(http, tenant, "unionid", unionid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"unionid {unionid} not resolved within {bound} s")
        time.sleep(0.005)
    return time.monotonic()


def check_people(http: httpx.Client, tenant: Tenant, people: list[Person]) -> int:
    """Each person's identifiers give one OneID, and different people different ones."""
    seen: dict[str, str] = {}
    for p in people:
        oneid = lookup(http, tenant, "unionid", p.unionid)
        others = [lookup(http, tenant, "anonymous_id", a, tenant.source) for a in p.anon]
        if p.phone:
            others.append(lookup(http, tenant, "phone", p.phone))
        if p.member:
            others.append(lookup(http, tenant, "member_id", p.member, BRAND))
        if not oneid or any(o != oneid for o in others):
            raise AssertionError(f"{p} resolved to {oneid} and {others}")
        if seen.setdefault(oneid, p.unionid) != p.unionid:
            raise AssertionError(f"{p.unionid} and {seen[oneid]} share the OneID {oneid}")
    return len(people)


def bench_incremental(url: str, tenant: Tenant, token: str, seconds: float, server: int) -> None:
    """Part 1: see the module doc. Lookups use the platform ``token``: a tenant's secret
    key is written to on every use, and two concurrent uses can fail (see the report)."""
    probe, done = Probe(), threading.Event()
    cpu = cpu_seconds(server), cpu_seconds(os.getpid())
    until = time.monotonic() + seconds
    senders = [Sender(k, seed=100 + k) for k in range(CLIENTS)]
    with (
        api_client(url, token) as http,
        ThreadPoolExecutor(CLIENTS + 1) as pool,
    ):
        watch = pool.submit(prober, http, tenant, probe, done)
        runs = [pool.submit(s.run, url, tenant.write_key, until, probe) for s in senders]
        try:
            sent = [r.result() for r in runs]
        finally:
            done.set()
        last_acked, last_unionid = max(s.last for s in sent)
        with api_client(url, token) as own:
            resolved_at = wait_resolved(own, tenant, last_unionid, TAIL_BOUND_S)
        probes = watch.result()
        cpu = cpu_seconds(server) - cpu[0], cpu_seconds(os.getpid()) - cpu[1]
        rich = [p for p in sent[0].people if p.phone and p.member][:40]
        checked = check_people(http, tenant, rich + sent[1].people[:40])
    events = sum(s.events for s in sent)
    first = min(s.first for s in sent)
    counts = np.array(sorted(c for s in sent for c in s.per_person.values()))
    top = counts[-max(1, len(counts) // 10) :].sum() / counts.sum()
    lags = np.array(probe.lags) * 1000
    print(
        f"# incremental: {events} events from {len(counts)} people in"
        f" {last_acked - first:.1f} s ({CLIENTS} clients); events per person p50"
        f" {np.median(counts):.0f}, max {counts.max()}, top 10% of people send {top:.0%};"
        f" {len(lags)} lag samples ({probes} lookups); {checked} people checked;"
        f" CPU: server {cpu[0]:.1f} s, clients {cpu[1]:.1f} s in {resolved_at - first:.1f} s"
    )
    print(f"identity_ingest_events_per_s={events / (last_acked - first):.0f}")
    print(f"identity_incremental_events_per_s={events / (resolved_at - first):.0f}")
    print(f"identity_tail_lag_ms={(resolved_at - last_acked) * 1000:.0f}")
    print(f"identity_lag_p50_ms={np.percentile(lags, 50):.0f}")
    print(f"identity_lag_p99_ms={np.percentile(lags, 99):.0f}")


# --- 2. lookups among --people people ---------------------------------------------------


def people_table(n: int) -> pa.Table:
    """One identify call per person: CRM userId, distinct unionid, a phone if even."""
    idx = np.arange(n, dtype=np.int64)
    num = pa.array(idx).cast(pa.string())
    union = pc.binary_join_element_wise("oBulk", pc.utf8_lpad(num, 10, "0"), "")
    digits = pc.utf8_lpad(pa.array((idx * 48271 + 12345678) % 10**8).cast(pa.string()), 8, "0")
    with_phone = pc.binary_join_element_wise(
        '{"unionid":"', union, '","phone":"139', digits, '","plan":"gold"}', ""
    )
    without = pc.binary_join_element_wise('{"unionid":"', union, '","plan":"silver"}', "")
    stamps = np.datetime64("2026-05-01T00:00:00", "ms") + (idx * 97).astype("timedelta64[s]")
    return pa.table(
        {
            "type": pa.array(np.full(n, "identify")),
            "messageId": pc.binary_join_element_wise("bulk-", num, ""),
            "userId": pc.binary_join_element_wise("crm-", num, ""),
            "timestamp": pa.array(stamps, pa.timestamp("ms", tz="UTC")),
            "traits": pc.if_else(pa.array(idx % 2 == 0), with_phone, without),
        }
    )


LUA = """
local n, kind, prefix
function init(args)
  n, kind, prefix = tonumber(args[1]), args[2], args[3]
  wrk.headers["Authorization"] = "Bearer " .. args[4]
  math.randomseed(tonumber(args[5]))
end
function request()
  local i = math.random(0, n - 1)
  local value
  if kind == "phone" then
    i = i - i % 2
    value = string.format("139%08d", (i * 48271 + 12345678) % 100000000)
  else
    value = string.format("oBulk%010d", i)
  end
  return wrk.format("GET", prefix .. "type=" .. kind .. "&value=" .. value)
end
"""


def run_wrk(
    url: str, lua: Path, args: list[str], seconds: int, connections: int = 0
) -> dict[str, float]:
    """wrk with one thread and a few connections; requests/s, p50 and p99 in ms."""
    conns = str(connections or LOOKUP_CONNECTIONS)
    cmd = ["wrk", "-t", "1", "-c", conns, "-d", f"{seconds}s", "--latency"]
    cmd += ["--timeout", "5s", "-s", str(lua), url, "--", *args]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 30)
    out = done.stdout

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            raise RuntimeError(f"no p{p} in wrk's output:\n{out}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(bad.group(1)) if bad else 0
    errors += sum(int(x) for x in sockets.groups()) if sockets else 0
    return {"rps": float(rps.group(1)), "p50": pct("50"), "p99": pct("99"), "errors": errors}


def bulk_load(url: str, data: Path, work: Path, tenant: Tenant, n: int) -> None:
    """Part 2, first half: import ``n`` people, wait until resolved, check a sample."""
    made = time.perf_counter()
    path = work / "people.parquet"
    pq.write_table(people_table(n), path)
    made = time.perf_counter() - made
    start = time.perf_counter()
    with connect(Settings(data_dir=data), timeout=600.0) as client:
        done = importer.run_import(
            client, path, tenant=tenant.id, source=tenant.source, kind="events"
        )
    imported = time.perf_counter()
    if done.loaded != n:
        raise SystemExit(f"import loaded {done.loaded} of {n}: {dict(done.rejected)}")
    resolve = f"/v1/tenants/{tenant.id}/identity/resolve"
    with api_client(url, tenant.secret, timeout=RESOLVE_BOUND_S) as http:
        rest = http.post(resolve).raise_for_status().json()
        resolved = time.perf_counter()
        again = http.post(resolve).raise_for_status().json()
        if again["events"]:
            raise AssertionError(f"resolve found {again['events']} events after catching up")
        picks = sorted(random.Random(5).sample(range(n), min(n, 200)) + [0, n - 1])
        oneids: dict[str, int] = {}
        for i in picks:
            by_union = lookup(http, tenant, "unionid", f"oBulk{i:010d}")
            by_user = lookup(http, tenant, "user_id", f"crm-{i}", tenant.source)
            by_phone = lookup(http, tenant, "phone", phone(i)) if i % 2 == 0 else by_union
            if not by_union or by_union != by_user or by_union != by_phone:
                raise AssertionError(f"person {i}: {by_union}, {by_user}, {by_phone}")
            if oneids.setdefault(by_union, i) != i:
                raise AssertionError(f"people {i} and {oneids[by_union]} share {by_union}")
    print(
        f"# bulk: {n} people ({n // 2 + n % 2} with a phone) written in {made:.1f} s;"
        f" import {imported - start:.1f} s; all resolved {resolved - start:.1f} s after its"
        f" start ({rest['events']} events left after the import, resolved in"
        f" {resolved - imported:.1f} s); {len(picks)} people checked by unionid, userId, phone"
    )
    print(f"identity_bulk_import_events_per_s={n / (imported - start):.0f}")
    print(f"identity_bulk_resolve_events_per_s={n / (resolved - start):.0f}")


def lookups(url: str, work: Path, tenant: Tenant, token: str, n: int, seconds: int) -> int:
    """Part 2, second half: wrk by unionid and by phone with the tenant's secret key, and
    by unionid with the platform token (no key row to touch); return the errors."""
    lua = work / "lookup.lua"
    lua.write_text(LUA)
    prefix = f"/v1/tenants/{tenant.id}/identity/lookup?"
    errors = 0
    runs = (
        ("unionid", tenant.secret, "", 0),
        ("phone", tenant.secret, "_phone", 0),
        ("unionid", token, "_platform_token", 0),
        ("unionid", tenant.secret, "_one_connection", 1),
    )
    for kind, secret, suffix, connections in runs:
        args = [str(n), kind, prefix, secret]
        run_wrk(url, lua, [*args, "1"], 2, connections)
        got = run_wrk(url, lua, [*args, "2"], seconds, connections)
        errors += int(got["errors"])
        print(
            f"identity_lookup{suffix}_p50_ms={got['p50']:.2f}"
            f" identity_lookup{suffix}_p99_ms={got['p99']:.2f}"
            f" identity_lookup{suffix}_per_s={got['rps']:.0f} errors={got['errors']:.0f}",
            flush=True,
        )
    return errors


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(m.group(1)) / 1024 if m else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="incremental sending")
    parser.add_argument("--lookup-seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    wall = time.perf_counter()
    print(f"# {machine()}; {args.people} people, {args.seconds:.0f} s of incremental ingest")
    with tempfile.TemporaryDirectory(prefix="quanyu-bench-id-") as tmp:
        work = Path(tmp)
        data, port = work / "data", free_port()
        url = f"http://127.0.0.1:{port}"
        env = {"QUANYU_DATA_DIR": str(data), "QUANYU_LOG_LEVEL": "WARNING"}
        serve = [sys.executable, "-m", "quanyu.cli", "serve", "--port", str(port)]
        with process(serve, env, f"{url}/readyz") as proc:
            token = json.loads((data / "server.json").read_text())["token"]
            with api_client(url, token) as admin:
                live, bulk = new_tenant(admin, "Live Group"), new_tenant(admin, "Bulk Group")
            bench_incremental(url, live, token, args.seconds, proc.pid)
            bulk_load(url, data, work, bulk, args.people)
            errors = lookups(url, work, bulk, token, args.people, args.lookup_seconds)
            print(f"identity_server_peak_rss_mib={peak_rss_mib(proc.pid):.0f}")
    print(f"identity_bench_wall_s={time.perf_counter() - wall:.0f}")
    if errors:
        sys.exit(f"{errors} lookups failed (non-2xx or socket errors): see the lines above")


if __name__ == "__main__":
    main()
