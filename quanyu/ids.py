"""Identifiers and clocks shared by every capability."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime


def new_id(prefix: str) -> str:
    """A time-ordered random id such as ``ten_0190f3a2c41b9e77d2a1``."""
    return f"{prefix}_{time.time_ns() // 1_000_000:011x}{secrets.token_hex(5)}"


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (the database stores UTC without zone)."""
    return datetime.now(UTC).replace(tzinfo=None)
