"""The database file: migrations once, and a clear error for a second writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from quanyu.config import Settings
from quanyu.errors import StoreLocked
from quanyu.store import open_store
from quanyu.store.migrations import collect


def test_migrations_apply_once(settings: Settings) -> None:
    eng = open_store(settings)
    with eng.connect() as db:
        n = db.raw("SELECT count(*) FROM schema_migrations")[0][0]  # type: ignore[attr-defined]
    eng.close()
    assert n == len(collect())
    eng = open_store(settings)  # re-open: nothing to apply, nothing breaks
    with eng.connect() as db:
        assert db.raw("SELECT count(*) FROM schema_migrations")[0][0] == n  # type: ignore[attr-defined]
    eng.close()


def test_second_writer_gets_a_clear_error_naming_the_holder(settings: Settings) -> None:
    eng = open_store(settings)
    try:
        code = (
            "from quanyu.store import open_store; from quanyu.config import Settings;"
            f"open_store(Settings(data_dir={str(settings.data_dir)!r}))"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode != 0
        assert "StoreLocked" in proc.stderr
        assert f"process {os.getpid()}" in proc.stderr
        assert "stop that process" in proc.stderr
    finally:
        eng.close()


def test_locked_error_names_a_running_server(settings: Settings) -> None:
    eng = open_store(settings)
    settings.server_file.write_text(json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:9"}))
    try:
        code = (
            "from quanyu.store import open_store; from quanyu.config import Settings;"
            f"open_store(Settings(data_dir={str(settings.data_dir)!r}))"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert "a Quanyu server" in proc.stderr and "http://127.0.0.1:9" in proc.stderr
    finally:
        eng.close()


def test_store_locked_is_a_quanyu_error() -> None:
    with pytest.raises(StoreLocked):
        raise StoreLocked("x")
