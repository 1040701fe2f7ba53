"""A usage error or a bad setting is one clear message and an exit code, never a
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


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


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("QUANYU_DEDUP_WINDOW_HOURS", "1", "greater than or equal to 24"),
        ("QUANYU_JOURNAL_ACK_MS", "-1", "greater than or equal to 0"),
        ("QUANYU_JOURNAL_ACK_MS", "", "valid number"),
    ],
)
def test_an_invalid_setting_names_the_variable_and_the_rule(
    tmp_path: Path, name: str, value: str, rule: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "quanyu.cli", "tenants", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={
            **os.environ,
            "QUANYU_DATA_DIR": str(tmp_path / "data"),
            name: value,
            "COLUMNS": "200",
        },
    )
    assert done.returncode == 1, done.stderr
    assert f"{name}='{value}'" in done.stderr
    assert rule in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # nothing was started on a bad setting
