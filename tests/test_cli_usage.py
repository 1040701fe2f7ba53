"""A usage error or a bad setting is one clear message and an exit code, never a
traceback."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_missing_argument_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "quanyu.cli", "codes", "order"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Missing argument 'product_id'" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_invalid_setting_names_the_variable_and_the_rule(tmp_path) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [sys.executable, "-m", "quanyu.cli", "tenants", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={
            **os.environ,
            "QUANYU_DATA_DIR": str(tmp_path / "data"),
            "QUANYU_DEDUP_WINDOW_HOURS": "1",
            "COLUMNS": "200",
        },
    )
    assert done.returncode == 1, done.stderr
    assert "QUANYU_DEDUP_WINDOW_HOURS='1'" in done.stderr
    assert "greater than or equal to 24" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # nothing was started on a bad setting
