"""Shared fixtures: a real DuckDB file in a temporary data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from quanyu.config import Settings
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.store import open_store

# Every test receiver listens on 127.0.0.1, which servers refuse as a webhook target by
# default (quanyu.delivery.netguard); tests of that refusal turn it back off.
os.environ.setdefault("QUANYU_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def engine(settings: Settings) -> Iterator[DuckDBEngine]:
    eng = open_store(settings)
    yield eng
    eng.close()
