"""Online state: the database file, its lock and its migrations."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import duckdb

from quanyu.config import Settings
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import StoreLocked
from quanyu.store.migrations import Migration, collect

__all__ = ["Migration", "open_store", "read_server_file", "running_server"]

_PID = re.compile(r"PID (\d+)")


def read_server_file(settings: Settings) -> dict[str, Any] | None:
    """The ``server.json`` a running server left in the data dir, if any."""
    try:
        data = json.loads(settings.server_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_server(settings: Settings) -> dict[str, Any] | None:
    """The server that owns the data dir, if its process is still alive."""
    info = read_server_file(settings)
    if info and isinstance(info.get("pid"), int) and _alive(info["pid"]):
        return info
    return None


def _locked_error(settings: Settings, err: duckdb.IOException) -> StoreLocked:
    match = _PID.search(str(err))
    pid = match.group(1) if match else "unknown"
    server = running_server(settings)
    if server and str(server.get("pid")) == pid:
        fix = (
            f"a Quanyu server (pid {pid}) serves it at {server.get('url')}: "
            "send changes through its API (the CLI does this by itself), or stop it first"
        )
    else:
        fix = f"process {pid} holds it: stop that process, or point QUANYU_DATA_DIR elsewhere"
    return StoreLocked(f"The database {settings.database_path} is locked for writing; {fix}.")


def _machine_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def open_store(settings: Settings, *, migrate: bool = True) -> DuckDBEngine:
    """Open (creating if needed) the database file and apply pending migrations.

    Raises:
        StoreLocked: another process holds the file.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(settings.database_path))
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise _locked_error(settings, e) from e
        raise
    # Folding the write-ahead log into the file stalls commits while it runs; doing it
    # every 256 MB instead of DuckDB's 16 MB makes those stalls rare (the server also
    # checkpoints when it stops, and a restart replays the log).
    con.execute("SET checkpoint_threshold = '256MB'")
    # DuckDB's default (80 % of the machine) leaves too little beside the audience
    # indexes: at 10M persons a tag computation and an index build take the process past
    # the machine's memory. Half the machine is enough for either without spilling.
    limit = settings.memory_limit_gib or _machine_gib() / 2
    con.execute(f"SET memory_limit = '{int(limit * 1024)}MiB'")
    engine = DuckDBEngine(con)
    if migrate:
        apply_migrations(engine, collect())
    return engine


def apply_migrations(engine: DuckDBEngine, migrations: list[Migration]) -> list[Migration]:
    """Apply the migrations not yet recorded, each in its own transaction."""
    session = engine.session()
    try:
        session.raw(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " capability VARCHAR NOT NULL, version INTEGER NOT NULL,"
            " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp,"
            " PRIMARY KEY (capability, version))"
        )
        done = {
            (str(c), int(v))
            for c, v in session.raw("SELECT capability, version FROM schema_migrations")
        }
        applied = []
        for m in migrations:
            if (m.capability, m.version) in done:
                continue
            session.raw("BEGIN TRANSACTION")
            session.raw(m.sql)
            session.raw(
                "INSERT INTO schema_migrations (capability, version) VALUES (?, ?)",
                [m.capability, m.version],
            )
            session.raw("COMMIT")
            applied.append(m)
        return applied
    finally:
        session.close()
