"""The real Segment and RudderStack Python SDKs, pointed at a running Quanyu.

Each SDK sends every Segment call type; the events are read back through the
management API and compared field by field. A response hook on the SDK's own
``requests`` session records which endpoint it hit and how it authenticated.
"""

from __future__ import annotations

import base64
import importlib
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.sealed import opened

from .harness import Server, Tenant

SDKS = {
    # name: (package whose Client we use, its request module, library name it reports)
    "segment": ("segment.analytics", "segment.analytics.request", "analytics-python"),
    "rudderstack": ("rudderstack.analytics", "rudderstack.analytics.request", "analytics-python"),
}
VARIANTS = [
    ("segment", {"sync_mode": False, "gzip": False}),
    ("segment", {"sync_mode": True, "gzip": True}),
    ("rudderstack", {"sync_mode": False, "gzip": True}),
    ("rudderstack", {"sync_mode": True, "gzip": False}),
]
SKEW = timedelta(seconds=30)


class Recorder:
    """Records (method, url, headers, status) of every request an SDK session makes."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], int]] = []
        self._lock = threading.Lock()

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> None:
        req = response.request
        with self._lock:
            self.seen.append((req.method, req.url, dict(req.headers), response.status_code))


def send_all(client: Any, user: str) -> dict[str, dict[str, Any]]:
    """Make one call of each type; return what was sent, by messageId."""
    past = datetime.now(UTC) - SKEW
    calls: list[tuple[str, dict[str, Any]]] = [
        ("identify", {"user_id": user, "traits": {"email": f"{user}@example.com", "tier": "gold"}}),
        (
            "track",
            {
                "user_id": user,
                "event": "Order Completed",
                "properties": {"order_id": "o-1", "revenue": 99.5, "items": [{"sku": "a"}]},
                "timestamp": past,
            },
        ),
        ("page", {"user_id": user, "name": "Home", "properties": {"path": "/"}}),
        ("screen", {"user_id": user, "name": "Cart", "properties": {"items": 2}}),
        ("group", {"user_id": user, "group_id": "g-1", "traits": {"name": "Acme"}}),
        ("alias", {"previous_id": f"anon-{user}", "user_id": user}),
    ]
    sent: dict[str, dict[str, Any]] = {}
    for kind, kwargs in calls:
        ok, msg = getattr(client, kind)(**kwargs)
        assert ok, f"the SDK refused to queue {kind}"
        sent[msg["messageId"]] = {**msg, "_sent_ts": kwargs.get("timestamp")}
    return sent


@pytest.mark.parametrize(
    ("sdk", "options"),
    VARIANTS,
    ids=[
        f"{s}-{'sync' if o['sync_mode'] else 'async'}-{'gzip' if o['gzip'] else 'plain'}"
        for s, o in VARIANTS
    ],
)
def test_sdk_calls_are_stored_once_each(
    server: Server, tenant: Tenant, sdk: str, options: dict[str, bool]
) -> None:
    package, request_module, library = SDKS[sdk]
    client_cls = importlib.import_module(f"{package}.client").Client
    session = importlib.import_module(request_module)._session
    version = importlib.import_module(f"{package}.version").VERSION
    errors: list[Any] = []
    recorder = Recorder()
    session.hooks["response"].append(recorder)
    try:
        client = client_cls(
            tenant.write_key,
            host=server.url,
            on_error=lambda e, b: errors.append(e),
            max_retries=2,
            **options,
        )
        sent = send_all(client, user=f"{sdk}-{uuid.uuid4().hex[:6]}")
        client.flush()
        if not options["sync_mode"]:
            client.join()  # ends the consumer threads (sync mode has none)
    finally:
        session.hooks["response"].remove(recorder)
    assert not errors, f"{sdk} reported errors: {errors}"

    mine = [s for s in recorder.seen if s[1].startswith(server.url)]
    assert mine, f"{sdk} made no request to {server.url}"
    expected_auth = "Basic " + base64.b64encode(f"{tenant.write_key}:".encode()).decode()
    for method, url, headers, status in mine:
        assert (method, url, status) == ("POST", f"{server.url}/v1/batch", 200)
        assert headers.get("Authorization") == expected_auth
        assert (headers.get("Content-Encoding") == "gzip") == options["gzip"]
    if options["sync_mode"]:
        assert len(mine) == len(sent), "sync mode sends one request per call"

    # PII identifiers (the e-mail) are stored sealed: open them to compare with what was sent
    stored = opened(server.events(tenant), server.data_dir, tenant.id)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for e in stored:
        by_id.setdefault(e["message_id"], []).append(e)
    assert set(by_id) == set(sent), "stored messageIds differ from those the SDK sent"
    assert all(len(v) == 1 for v in by_id.values()), "a message was stored twice"

    for message_id, msg in sent.items():
        (event,) = by_id[message_id]
        assert event["type"] == msg["type"]
        assert event["source_id"] == tenant.source_id
        assert event["user_id"] == msg["userId"]
        assert event["context"]["library"] == {"name": library, "version": version}
        for key, value in msg["context"].items():
            assert event["context"][key] == value, f"context.{key} changed"
        assert event["context"]["ip"] == "127.0.0.1"
        assert event["sent_at"] is not None
        check_timestamp(event, msg["_sent_ts"])
        if msg["type"] == "track":
            assert event["event"] == msg["event"]
        if msg["type"] in ("track", "page", "screen"):
            assert event["properties"] == msg["properties"]
        if msg["type"] in ("page", "screen"):
            assert event["name"] == msg["name"]
        if msg["type"] in ("identify", "group") and "traits" in msg:
            assert event["traits"] == msg["traits"]
        if msg["type"] == "group":
            assert event["group_id"] == msg["groupId"]
        if msg["type"] == "alias":
            assert event["previous_id"] == msg["previousId"]
        if msg["type"] == "identify":
            # Segment sends traits at the top level, RudderStack under context.traits
            traits = msg.get("traits") or msg["context"]["traits"]
            assert {"type": "email", "value": traits["email"], "scope": None} in (
                event["identifiers"] or []
            )


def check_timestamp(event: dict[str, Any], sent_ts: datetime | None) -> None:
    """``timestamp`` is skew-corrected: receivedAt - (sentAt - originalTimestamp)."""
    received = datetime.fromisoformat(event["received_at"])
    ts = datetime.fromisoformat(event["timestamp"])
    assert event["original_timestamp"] is not None
    expected_lag = SKEW if sent_ts is not None else timedelta(0)
    lag = received - ts
    # the SDK stamps a message, then sends it a little later: allow that delay
    assert expected_lag - timedelta(seconds=1) <= lag <= expected_lag + timedelta(seconds=10), (
        f"timestamp {ts} is {lag} before receivedAt {received}; expected about {expected_lag}"
    )
