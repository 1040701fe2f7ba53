"""The ``quanyu`` CLI next to a running server: it goes through the server's API, and
anything that tries to open the database itself is told which process holds it."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from .harness import Server, Tenant, free_port, server_env, track


def cli(server: Server, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m quanyu.cli ARGS`` on the server's data dir."""
    return subprocess.run(
        [sys.executable, "-m", "quanyu.cli", *args],
        env=server_env(server.data_dir) | {"COLUMNS": "200"},
        cwd=server.root,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_events_list_json_shows_a_stored_event(server: Server, tenant: Tenant) -> None:
    msg = track(properties={"note": "long " * 40})
    r = httpx.post(f"{server.url}/v1/batch", json={"batch": [msg]}, auth=(tenant.write_key, ""))
    assert r.status_code == 200, r.text
    out = cli(server, "events", "list", "--json", "--tenant", tenant.id)
    assert out.returncode == 0, out.stderr
    events = json.loads(out.stdout)
    (event,) = events
    assert event["message_id"] == msg["messageId"]
    assert event["properties"] == msg["properties"]
    assert event["source_id"] == tenant.source_id


def test_tenants_list_goes_through_the_running_server(server: Server, tenant: Tenant) -> None:
    # the server holds the database file: only a call through its API can answer
    out = cli(server, "tenants", "list", "--json")
    assert out.returncode == 0, out.stderr
    listed = {t["id"]: t["name"] for t in json.loads(out.stdout)}
    assert listed[tenant.id] == tenant.name
    table = cli(server, "tenants", "list")
    assert table.returncode == 0, table.stderr
    assert tenant.id in table.stdout


def test_cli_changes_go_through_the_server(server: Server, tenant: Tenant) -> None:
    out = cli(server, "brands", "create", "Luzhou", "--tenant", tenant.id, "--json")
    assert out.returncode == 0, out.stderr
    brand = json.loads(out.stdout)
    brands = server.call("GET", f"/v1/tenants/{tenant.id}/brands", tenant.secret)
    assert [b["id"] for b in brands] == [brand["id"]]


def test_cli_errors_are_one_line(server: Server) -> None:
    out = cli(server, "brands", "list", "--tenant", "ten_does_not_exist")
    assert out.returncode == 1
    assert out.stderr.startswith("Error:"), out.stderr
    assert "ten_does_not_exist" in out.stderr
    assert "Traceback" not in out.stderr


def test_opening_the_store_while_the_server_runs_names_its_pid(server: Server) -> None:
    code = (
        "from quanyu.store import open_store; from quanyu.config import Settings;"
        f" open_store(Settings(data_dir={str(server.data_dir)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=server_env(server.data_dir),
        cwd=server.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0, "a second process opened the database for writing"
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("quanyu.errors.StoreLocked:"), out.stderr
    assert f"pid {server.pid}" in last
    assert server.url in last
    assert "stop it" in last and "API" in last


def test_a_second_server_on_the_same_data_dir_refuses(server: Server) -> None:
    out = cli(server, "serve", "--port", str(free_port()), timeout=30)
    assert out.returncode == 1
    assert f"pid {server.pid}" in out.stderr
    assert server.url in out.stderr
    assert httpx.get(f"{server.url}/readyz").status_code == 200
