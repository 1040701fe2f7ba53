"""Helpers shared by the benchmarks: free ports, servers as subprocesses, Segment payloads."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> str:
    """One line naming the machine the figures come from."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process until the block ends."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=log, stderr=log, cwd=ROOT)
    try:
        wait_ready(ready_url)
        yield proc
    except BaseException:
        log.seek(0)
        sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def quanyu(data_dir: Path, *args: str) -> object:
    """Run a ``quanyu ... --json`` CLI command and return its JSON output."""
    out = subprocess.run(
        [sys.executable, "-m", "quanyu.cli", *args, "--json"],
        env={**os.environ, "QUANYU_DATA_DIR": str(data_dir)},
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout)


def segment_event(i: int, message_id: str) -> dict[str, object]:
    """A Segment-shaped track call of about 770 bytes, as analytics.js would send it."""
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": message_id,
        "anonymousId": f"anon-{i:08d}-3f6c-4d2b-9e1a-7c5d",
        "userId": f"member-{i % 5000:06d}",
        "timestamp": "2026-11-26T10:00:00.000Z",
        "sentAt": "2026-11-26T10:00:01.000Z",
        "properties": {
            "product_id": f"SKU-{i % 997:05d}",
            "sku": f"LUMI-{i % 97:03d}-50ML",
            "name": "Lumi UV Aqua Rich Watery Essence",
            "price": 89.0,
            "currency": "CNY",
            "category": "skincare/sunscreen",
            "brand": "lumi",
            "quantity": 1,
            "url": "https://shop.example.cn/products/lumi-uv-aqua",
        },
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "page": {
                "path": "/products/lumi-uv-aqua",
                "referrer": "https://www.example.cn/",
                "title": "Lumi UV Aqua Rich",
                "url": "https://shop.example.cn/products/lumi",
            },
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1"
            " MicroMessenger/8.0.40",
            "locale": "zh-CN",
            "timezone": "Asia/Shanghai",
            "campaign": {"name": "double11", "source": "wechat", "medium": "miniprogram"},
            "traits": {"unionid": f"oUnion{i % 5000:010d}"},
        },
        "integrations": {},
    }


def segment_batch(n: int, id_placeholder: str = "@@") -> bytes:
    """A ``/v1/batch`` body of ``n`` events whose messageIds contain ``id_placeholder``."""
    body = {
        "batch": [segment_event(i, f"{id_placeholder}-{i}") for i in range(n)],
        "sentAt": "2026-11-26T10:00:01.000Z",
    }
    return json.dumps(body, separators=(",", ":")).encode()
