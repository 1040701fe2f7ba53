"""The bulk import endpoint: Arrow IPC batches in, a committed summary out, per tenant."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from quanyu.api import imports
from quanyu.api.app import create_app
from quanyu.config import Settings
from quanyu.ingest.importer import ARROW_STREAM, encode
from tests.sealed import opened

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ADMIN = {"Authorization": "Bearer t"}


class Tenant:
    """A tenant with one source, seen through the REST API."""

    def __init__(self, c: TestClient, name: str) -> None:
        self.c = c
        self.id = c.post("/v1/tenants", json={"name": name}, headers=ADMIN).json()["id"]
        self.source = self.add_source("POS")
        key = c.post(
            f"/v1/tenants/{self.id}/keys", json={"name": "ops", "scopes": ["admin"]}, headers=ADMIN
        ).json()
        self.auth = {"Authorization": f"Bearer {key['secret']}"}

    def add_source(self, name: str) -> str:
        made = self.c.post(f"/v1/tenants/{self.id}/sources", json={"name": name}, headers=ADMIN)
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def post(
        self,
        table: pa.Table,
        kind: str = "events",
        *,
        source: str | None = None,
        auth: dict[str, str] | None = None,
        **params: Any,
    ) -> Any:
        return self.c.post(
            f"/v1/tenants/{self.id}/sources/{source or self.source}/imports/{kind}",
            content=encode(table),
            params=params,
            headers={**(auth or self.auth), "content-type": ARROW_STREAM},
        )

    def events(self, **params: Any) -> list[dict[str, Any]]:
        got = self.c.get(
            f"/v1/tenants/{self.id}/events", params={"limit": 1000, **params}, headers=self.auth
        )
        assert got.status_code == 200, got.text
        return list(got.json()["items"])


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(data_dir=tmp_path), local_token="t")
    app.include_router(imports.router)
    with TestClient(app) as c:
        yield c


ROWS = pa.table(
    {
        "type": ["track", "identify", "track", "bogus"],
        "event": ["Order Completed", None, None, None],
        "userId": ["u1", "u2", "u3", "u4"],
        "traits": [None, '{"phone": "13800000000"}', None, None],
        "properties": ['{"total": 10}', None, None, None],
        "timestamp": ["2024-02-01T10:00:00Z", None, None, None],
    }
)


def test_a_batch_is_stored_and_answered(client: TestClient, tmp_path: Path) -> None:
    t = Tenant(client, "Swellfun")
    answer = t.post(ROWS)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["read"], body["loaded"], body["duplicates"]) == (4, 2, 0)
    assert body["rejected"] == {"missing_field": 1, "unknown_type": 1}
    first, second = body["rejected_rows"]
    assert first["index"] == 2 and first["code"] == "missing_field"
    assert first["row"] == {"type": "track", "userId": "u3"}
    assert second["row"]["type"] == "bogus"
    stored = {e["user_id"]: e for e in t.events()}  # committed before the answer
    assert set(stored) == {"u1", "u2"}
    assert stored["u1"]["properties"] == {"total": 10}
    assert stored["u1"]["timestamp"].startswith("2024-02-01T10:00:00")
    assert opened(stored["u2"]["identifiers"], tmp_path, t.id) == [
        {"type": "phone", "value": "13800000000", "scope": None}
    ]
    letters = client.get(f"/v1/tenants/{t.id}/dead-letters", headers=t.auth).json()["items"]
    assert sorted(d["code"] for d in letters) == ["missing_field", "unknown_type"]


def test_posting_the_same_batch_again_stores_nothing(client: TestClient) -> None:
    t = Tenant(client, "Kao")
    table = ROWS.filter(pa.array([True, True, False, False]))
    assert t.post(table).json()["loaded"] == 2
    again = t.post(table).json()
    assert (again["loaded"], again["duplicates"]) == (0, 2)
    assert len(t.events()) == 2


def test_profiles_become_identify_events(client: TestClient, tmp_path: Path) -> None:
    t = Tenant(client, "Lego")
    people = pa.table(
        {"mobile_no": ["13800000001", None], "name": ["Wang", "Nobody"], "member_id": ["M1", None]}
    )
    body = t.post(people, "profiles", map=["mobile_no=phone"]).json()
    assert (body["loaded"], body["rejected"]) == (1, {"no_identifier": 1})
    (event,) = t.events()
    assert event["type"] == "identify" and event["anonymous_id"].startswith("imp-")
    assert opened(event["traits"], tmp_path, t.id) == {
        "phone": "13800000001",
        "name": "Wang",
        "member_id": "M1",
    }
    assert [i["type"] for i in event["identifiers"]] == ["phone", "member_id"]


def test_rows_naming_a_source_of_another_tenant_are_rejected(client: TestClient) -> None:
    a, b = Tenant(client, "A"), Tenant(client, "B")
    second = a.add_source("Web")
    table = pa.table(
        {"event": ["e", "e", "e"], "userId": ["u1", "u2", "u3"], "source": [second, b.source, None]}
    )
    body = a.post(table).json()
    assert body["rejected"] == {"unknown_source": 1}
    assert body["rejected_rows"][0]["index"] == 1
    assert {e["user_id"]: e["source_id"] for e in a.events()} == {"u1": second, "u3": a.source}
    assert b.events() == []


def test_another_tenants_key_sees_nothing(client: TestClient) -> None:
    a, b = Tenant(client, "A"), Tenant(client, "B")
    assert a.post(ROWS, auth=b.auth).status_code == 404  # b's key on a's tenant
    assert a.post(ROWS, source=b.source).status_code == 404  # a's key, b's source
    assert a.events() == [] and b.events() == []


def test_bad_requests_are_refused(client: TestClient) -> None:
    t = Tenant(client, "A")
    url = f"/v1/tenants/{t.id}/sources/{t.source}/imports/events"
    garbage = client.post(url, content=b"not arrow", headers=t.auth)
    assert garbage.status_code == 400 and garbage.json()["code"] == "invalid_request"
    assert (
        client.post(
            url.replace("events", "orders"), content=encode(ROWS), headers=t.auth
        ).status_code
        == 422
    )
    bad_map = t.post(ROWS, map=["userId"])
    assert bad_map.status_code == 400 and "sourceColumn=targetField" in bad_map.json()["message"]
    assert client.post(url, content=encode(ROWS)).status_code == 401
