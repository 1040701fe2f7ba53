"""A usage error on the command line is one clear message and exit code 2, never a
traceback."""

from __future__ import annotations

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
