"""Prometheus metrics and structured JSON logs shared by every capability."""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_ACCEPTED = Counter(
    "quanyu_events_accepted_total",
    "Events accepted (committed) by source.",
    ["source"],
    registry=REGISTRY,
)
EVENTS_REJECTED = Counter(
    "quanyu_events_rejected_total",
    "Events rejected, by source and reason code.",
    ["source", "reason"],
    registry=REGISTRY,
)
EVENTS_FLAGGED = Counter(
    "quanyu_events_flagged_total",
    "Events accepted with a tracking-plan violation.",
    ["source", "reason"],
    registry=REGISTRY,
)
EVENTS_JOURNAL_ACKED = Counter(
    "quanyu_events_journal_acked_total",
    "Events answered once in the ingest journal, their commit being late (a checkpoint).",
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "quanyu_request_duration_seconds",
    "HTTP request latency by route and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
QUEUE_DEPTH = Gauge(
    "quanyu_writer_queue_events", "Events waiting for the group commit.", registry=REGISTRY
)
IDENTITY_COMMITS_BEHIND = Gauge(
    "quanyu_identity_commits_behind",
    "Group commits whose events the identity resolver has not resolved yet (0: caught up;"
    " GET /v1/tenants/{t}/identity/status has the events and seconds per tenant).",
    registry=REGISTRY,
)
CODE_SNAPSHOT_CODES = Gauge(
    "quanyu_code_snapshot_codes",
    "Codes in the scan path's in-memory snapshot, by tenant (absent while it loads).",
    ["tenant"],
    registry=REGISTRY,
)
COMMITS = Counter("quanyu_writer_commits_total", "Group commits.", registry=REGISTRY)

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.captureWarnings(True)
