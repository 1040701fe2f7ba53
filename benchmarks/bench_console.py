"""Console page loads in headless Chromium on the demo (target: every page ≤ 300 ms).

Loads ``quanyu demo`` (100,000 consumers by default; the data dir is kept in
``benchmarks/.work/`` and reused, since building it takes minutes), starts ``quanyu serve``,
signs in with the demo's console user in Debian's Chromium (Playwright) and opens every
page of the menu plus the detail pages a user reaches from them (a customer's 360 view, an
audience, a tag, a code), ``--repeat`` times each after one warm-up load.

Per page it prints the navigation timing of the browser: ``response`` (request sent until
the HTML has arrived: the server's time plus the transfer), ``load`` (until the load event:
HTML, CSS, scripts, inline charts drawn) and ``settled`` (until the last live part a page
fetches with htmx after loading has been swapped in; the load time for other pages), p50
and max in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, cpu_seconds, free_port, machine, process  # noqa: E402

WORK = ROOT / "benchmarks" / ".work"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TIMING = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {response: n.responseEnd - n.startTime, load: n.loadEventEnd - n.startTime};
}"""
SETTLED = "() => !document.querySelector('.htmx-request') && document.readyState === 'complete'"


def demo_dir(consumers: int, fresh: bool) -> Path:
    """A data dir with the demo loaded (built once per size, kept for the next run)."""
    data_dir = WORK / f"console-demo-{consumers}"
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    if not (data_dir / "demo-keys.json").exists():
        shutil.rmtree(data_dir, ignore_errors=True)
        print(f"loading the demo ({consumers:,} consumers) into {data_dir} …", flush=True)
        subprocess.run(
            [sys.executable, "-m", "quanyu.cli", "demo", "--consumers", str(consumers)],
            env={**os.environ, "QUANYU_DATA_DIR": str(data_dir)},
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
    return data_dir


def detail_pages(page: Any, base: str, tenant: str, menu: list[str]) -> list[str]:
    """Pages a user reaches from the menu: the first link of each shape found on the menu's
    pages (a customer, an audience, a tag, a code, a dealer, a consent entry …), files to
    download left out."""
    found: dict[str, str] = {}
    prefix = f"/console/t/{tenant}/"
    for path in [*menu, f"{prefix}profiles?q=1"]:
        page.goto(base + path)
        hrefs = page.eval_on_selector_all(
            f'main a[href^="{prefix}"]:not([download])',
            "els => els.map(e => e.getAttribute('href'))",
        )
        for href in hrefs:
            rest = href[len(prefix) :].split("?")[0].split("#")[0]
            parts = rest.strip("/").split("/")
            skip = ("new", "package", "qr", "export", "download", "lang")
            if len(parts) < 2 or any(p in skip for p in parts):
                continue
            shape = "/".join([parts[0], *("*" for _ in parts[1:])])
            found.setdefault(shape, href.split("#")[0])
    return list(found.values())


def measure(url: str, keys: dict[str, Any], repeat: int) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no Chromium: `make chromium` installs Debian's")
    tenant = keys["tenant_id"]
    results: dict[str, dict[str, float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
        page = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        tab = page.new_page()
        tab.goto(f"{url}/console/sign-in")
        tab.fill("input[name=login]", keys["console"]["login"])
        tab.fill("input[name=password]", keys["console"]["password"])
        tab.click("button[type=submit]")
        tab.wait_for_url(f"{url}/console/t/{tenant}/")
        menu = tab.eval_on_selector_all("nav.side a", "els => els.map(e => e.getAttribute('href'))")
        pages = [*menu, *detail_pages(tab, url, tenant, menu)]
        for path in pages:
            samples: dict[str, list[float]] = {"response": [], "load": [], "settled": []}
            for i in range(repeat + 1):
                tab.goto(url + path, wait_until="load")
                tab.wait_for_function(SETTLED, polling="raf")
                settled = tab.evaluate("() => window.quanyuLastSwap || 0")
                timing = tab.evaluate(TIMING)
                if i:  # the first load warms the server's caches
                    samples["response"].append(timing["response"])
                    samples["load"].append(timing["load"])
                    samples["settled"].append(max(settled, timing["load"]))
            results[path.replace(tenant, "{t}")] = {
                f"{k}_{stat}": round(fn(v), 1)
                for k, v in samples.items()
                for stat, fn in (("p50", statistics.median), ("max", max))
            }
        browser.close()
    return results


def wait_idle(pid: int, limit: float = 180.0) -> float:
    """Wait until the server's start-up passes are done (tag refresh, audience index,
    consent capture): under 5 % of a core over a second. Returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < 0.05:
            break
    return round(time.monotonic() - started, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--consumers", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--fresh", action="store_true", help="rebuild the demo data dir")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()
    data_dir = demo_dir(args.consumers, args.fresh)
    keys = json.loads((data_dir / "demo-keys.json").read_text())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = [sys.executable, "-m", "quanyu.cli", "serve", "--port", str(port)]
    with process(serve, {"QUANYU_DATA_DIR": str(data_dir)}, f"{url}/readyz") as server:
        idle = wait_idle(server.pid)
        results = measure(url, keys, args.repeat)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"console pages, demo of {args.consumers:,} consumers; {machine()};"
        f" the server was idle {idle} s after start"
    )
    print(f"{'page':<46} {'response p50/max':>18} {'load p50/max':>16} {'settled p50/max':>17}")
    for path, r in results.items():
        print(
            f"{path:<46} {r['response_p50']:>8} / {r['response_max']:<7}"
            f" {r['load_p50']:>7} / {r['load_max']:<7} {r['settled_p50']:>7} / {r['settled_max']}"
        )
    worst = max(r["settled_p50"] for r in results.values())
    print(f"slowest page p50 (settled): {worst} ms (target ≤ 300 ms)")


if __name__ == "__main__":
    main()
