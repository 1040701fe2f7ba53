"""The data-quality report, checked against traffic whose figures are known."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_plans_api import ADMIN, ORDER_SCHEMA, Api, TestClient, build_client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with build_client(tmp_path) as c:
        yield c


def msg(
    mid: str, event: str = "Product Viewed", *, user: bool = True, **extra: Any
) -> dict[str, Any]:
    who = {"userId": f"u-{mid}"} if user else {"anonymousId": f"a-{mid}"}
    return {"type": "track", "event": event, "messageId": mid, **who, **extra}


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def known_traffic(api: Api) -> None:
    """10 new events (1 late, 1 future, 1 unplanned: flagged), 2 duplicates, 3 invalid and
    1 without identity (rejected), with identifiers in known proportions."""
    api.put_plan(
        mode="flag_unplanned",
        block_invalid=True,
        events=[
            {"name": "Order Completed", "properties": ORDER_SCHEMA},
            {"name": "Product Viewed"},
        ],
    )
    now = datetime.now(UTC)
    good = [
        msg(
            "m1",
            "Order Completed",
            properties={"revenue": 10},
            context={"traits": {"phone": "+8613800000001", "email": "a@b.cn"}},
        ),
        msg(
            "m2",
            "Order Completed",
            properties={"revenue": 20},
            context={"traits": {"mobile": "13800000002"}},
        ),
        msg(
            "m3",
            context={
                "app": {"id": "wx1"},
                "traits": {"openid": "o1"},
                "externalIds": [{"type": "unionid", "id": "un1"}],
            },
        ),
        msg("m4", traits={"member_id": "M4"}, context={"traits": {"member_id": "M4"}}),
        msg("m5", user=False, context={"device": {"id": "d5"}}),
        msg("m6", user=False, context={"device": {"id": "d6"}}),
        msg("m7", user=False, context={"device": {"id": "d7"}}),
        msg("m8", user=False, timestamp=iso(now - timedelta(days=2))),  # late
        msg("m9", user=False, timestamp=iso(now + timedelta(hours=1))),  # future-dated
        msg("m10", "Coupon Clicked", user=False),  # unplanned: stored and flagged
    ]
    bad = [
        msg("b1", "Order Completed", properties={"revenue": "10"}),
        msg("b2", "Order Completed", properties={"revenue": "oops"}),
        msg("b3", "Order Completed", properties={}),
        {"type": "track", "event": "Product Viewed", "messageId": "b4"},  # no identity
    ]
    r = api.send(*good, *bad)
    assert r.status_code == 200 and r.json()["accepted"] == 10, r.text
    assert len(r.json()["rejected"]) == 4
    assert api.send(good[0], good[1]).json()["accepted"] == 2  # duplicates: kept once


def test_report_figures_match_known_inputs(client: TestClient) -> None:
    api = Api(client)
    known_traffic(api)
    other, other_key = api.new_source("POS")
    assert api.send(msg("p1"), key=other_key).json()["accepted"] == 1
    r = client.get(
        f"/v1/tenants/{api.tenant}/quality", params={"source": api.source}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    report = r.json()
    (row,) = report["rows"]
    assert row["day"] == datetime.now(UTC).date().isoformat()
    figures = {
        k: row[k]
        for k in (
            "volume",
            "received",
            "accepted",
            "rejected",
            "flagged",
            "duplicates",
            "late",
            "future",
        )
    }
    assert figures == {
        "volume": 16,
        "received": 12,
        "accepted": 10,
        "rejected": 4,
        "flagged": 1,
        "duplicates": 2,
        "late": 1,
        "future": 1,
    }
    assert row["duplicate_rate"] == pytest.approx(2 / 12, abs=1e-6)
    assert row["violation_rate"] == pytest.approx(5 / 16, abs=1e-6)
    assert row["fill_rates"] == pytest.approx(
        {
            "user_id": 0.4,
            "anonymous_id": 0.6,
            "phone": 0.2,
            "email": 0.1,
            "unionid": 0.1,
            "openid": 0.1,
            "member_id": 0.1,
            "device_id": 0.3,
        }
    )
    by_rule = {v["rule"]: (v["count"], v["rate"]) for v in row["violations"]}
    assert by_rule == {
        "schema:Order Completed:/properties/revenue type": (2, pytest.approx(2 / 16, abs=1e-6)),
        "schema:Order Completed:/properties required": (1, pytest.approx(1 / 16, abs=1e-6)),
        "unplanned_event:Coupon Clicked": (1, pytest.approx(1 / 16, abs=1e-6)),
        "missing_identity": (1, pytest.approx(1 / 16, abs=1e-6)),
    }
    every = client.get(f"/v1/tenants/{api.tenant}/quality", headers=ADMIN).json()
    assert {(x["source_id"], x["volume"]) for x in every["rows"]} == {(api.source, 16), (other, 1)}


def test_report_range_and_errors(client: TestClient) -> None:
    api = Api(client)
    assert api.send(msg("m1")).json()["accepted"] == 1
    path = f"/v1/tenants/{api.tenant}/quality"
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    later = client.get(path, params={"since": tomorrow, "until": tomorrow}, headers=ADMIN)
    assert later.json()["rows"] == []
    default = client.get(path, headers=ADMIN).json()
    assert default["until"] == today.isoformat()
    assert default["since"] == (today - timedelta(days=6)).isoformat()
    reversed_ = client.get(
        path, params={"since": tomorrow, "until": today.isoformat()}, headers=ADMIN
    )
    assert reversed_.status_code == 400 and "swap" in reversed_.json()["message"]
    too_long = client.get(
        path, params={"since": "2020-01-01", "until": "2024-01-01"}, headers=ADMIN
    )
    assert too_long.status_code == 400 and "366" in too_long.json()["message"]
    missing = client.get(path, params={"source": "src_nope"}, headers=ADMIN)
    assert missing.status_code == 404
    assert client.get(path, params={"since": "yesterday"}, headers=ADMIN).status_code == 422


def test_report_is_scoped_to_the_tenant(client: TestClient) -> None:
    a, b = Api(client, "A"), Api(client, "B")
    known_traffic(a)
    assert b.send(msg("m1"), msg("m2")).json()["accepted"] == 2
    rows = client.get(f"/v1/tenants/{b.tenant}/quality", headers=ADMIN).json()["rows"]
    assert [(r["source_id"], r["volume"], r["accepted"]) for r in rows] == [(b.source, 2, 2)]
    assert rows[0]["violations"] == [] and rows[0]["duplicates"] == 0
