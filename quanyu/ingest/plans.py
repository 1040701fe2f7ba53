"""Tracking plans: which events a source may send and the JSON Schema of each."""

from __future__ import annotations

from quanyu.engine import Session
from quanyu.ingest.normalize import PlanChecker


def compiled(db: Session, *, tenant: str, source: str) -> PlanChecker | None:
    """The source's plan compiled for the hot path, or None when it has none."""
    return None
