"""Reading import files into Arrow batches, and whole imports through the in-process API."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quanyu.api import imports
from quanyu.api.app import create_app
from quanyu.client import Client
from quanyu.config import Settings
from quanyu.errors import InvalidRequest, NotFound
from quanyu.ingest import importer
from quanyu.ingest.bulk import UNPARSED
from tests.sealed import opened

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ADMIN = {"Authorization": "Bearer t"}
EVENTS: list[dict[str, Any]] = [
    {
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "properties": {"total": 12.5, "sku": "A-1"},
        "timestamp": "2024-05-01T10:00:00Z",
    },
    {"type": "identify", "userId": "u2", "traits": {"phone": "13800000002"}},
    {"type": "page", "anonymousId": "a3", "name": "Home", "timestamp": "2024-05-02T08:00:00+08:00"},
    {"type": "track", "userId": "u4"},  # no event name: rejected
    {"type": "track", "event": "Viewed", "userId": "u5", "properties": {"sku": "B-2"}},
]


class Api:
    """An in-process server with the import router, a tenant and a source."""

    def __init__(self, c: TestClient, data_dir: Path) -> None:
        self.data_dir = data_dir
        c.headers.update(ADMIN)
        self.client = Client(c)
        self.tenant = self.client.post("/v1/tenants", {"name": "Jomoo"})["id"]
        self.source = self.client.post(f"/v1/tenants/{self.tenant}/sources", {"name": "POS"})["id"]

    def run(self, path: Path, kind: importer.Kind = "events", **kw: Any) -> importer.ImportSummary:
        return importer.run_import(
            self.client, path, tenant=self.tenant, source=self.source, kind=kind, **kw
        )

    def events(self) -> list[dict[str, Any]]:
        return list(self.client.get(f"/v1/tenants/{self.tenant}/events", limit=1000)["items"])


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    app = create_app(Settings(data_dir=tmp_path / "data"), local_token="t")
    app.include_router(imports.router)
    with TestClient(app) as c:
        yield Api(c, tmp_path / "data")


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` in the format ``path``'s suffix names (objects as JSON text in CSV)."""
    fmt = importer.FORMATS[path.suffix]
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        names = list(dict.fromkeys(k for r in rows for k in r))
        cols = {
            n: [json.dumps(r[n]) if isinstance(r.get(n), dict) else r.get(n) for r in rows]
            for n in names
        }
        table = pa.table({n: pa.array(v, pa.string()) for n, v in cols.items()})
        if fmt == "csv":
            pa.csv.write_csv(table, path)
        else:
            pq.write_table(table, path)
    return path


def read_all(path: Path, **kw: Any) -> pa.Table:
    return pa.concat_tables(importer.read_file(path, **kw), promote_options="permissive")


def test_csv_cells_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "members.csv"
    path.write_text("\ufeffmember_id,phone,age\n00123,13800000000,35\n00124,,\n", encoding="utf-8")
    table = read_all(path, kind="profiles")
    assert table.to_pydict() == {
        "member_id": ["00123", "00124"],
        "phone": ["13800000000", None],
        "age": ["35", None],
    }


def test_json_lines_keep_values_as_json_text(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(
        '{"userId": 1, "event": "a", "properties": {"x": [1, 2]}}\n'
        '\n{"userId": "u2", "event": "b", "extra": true}\nnot json\n[1]\n'
        "a\x1fb\n"
    )
    events = read_all(path, kind="events")
    assert events.column("userId").to_pylist() == ["1", "u2", None, None, None]
    assert json.loads(events.column("properties")[0].as_py()) == {"x": [1, 2]}
    assert "extra" not in events.column_names  # events read only the fields they have
    assert events.column(UNPARSED).to_pylist() == [None, None, "not json", "[1]", "a\x1fb"]
    profiles = read_all(path, kind="profiles")
    assert profiles.column_names == ["userId", "event", "properties", "extra", UNPARSED]
    assert profiles.column("extra").to_pylist() == [None, "true", None, None, None]


def test_parquet_is_read_in_batches_and_mapped(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"uid": [f"u{i}" for i in range(7)], "event": ["e"] * 7}), path)
    batches = list(importer.read_file(path, kind="events", mapping={"uid": "userId"}, batch_rows=3))
    assert [b.num_rows for b in batches] == [3, 3, 1]
    assert batches[0].column_names == ["userId", "event"]
    assert importer.estimate_rows([path]) == 7


def test_wide_batches_are_posted_in_slices_under_the_byte_limit() -> None:
    table = pa.table({"properties": ["x" * 1000] * 10, "n": list(range(10))})
    parts = list(importer._fit(table, max_bytes=2500))
    assert [p.num_rows for p in parts] == [2, 2, 2, 2, 2]
    assert all(p.nbytes <= 2500 for p in parts)
    assert pa.concat_tables(parts).column("n").to_pylist() == list(range(10))
    assert [p.num_rows for p in importer._fit(table)] == [10]  # small: one post


def test_files_and_folders_are_found(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("userId\nu\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jsonl").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("x")
    assert importer.discover(tmp_path) == [tmp_path / "b.csv", tmp_path / "sub" / "a.jsonl"]
    with pytest.raises(NotFound):
        importer.discover(tmp_path / "missing.csv")
    with pytest.raises(InvalidRequest, match="Cannot tell the format"):
        importer.discover(tmp_path / "notes.txt")
    with pytest.raises(InvalidRequest, match="sourceColumn=targetField"):
        importer.parse_mapping(["phone"])
    assert importer.parse_mapping([" tel = phone "]) == {"tel": "phone"}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_an_import_loads_rejects_and_is_idempotent(api: Api, tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"events{suffix}", EVENTS)
    done = api.run(path, batch_rows=2)
    assert (done.read, done.loaded, done.duplicates) == (5, 4, 0)
    assert done.rejected == {"missing_field": 1}
    assert done.rejected_file == tmp_path / f"events{suffix}.rejected.jsonl"
    (line,) = [json.loads(x) for x in done.rejected_file.read_text().splitlines()]
    assert (line["row_number"], line["code"]) == (4, "missing_field")
    assert line["row"]["userId"] == "u4" and line["file"] == str(path)
    stored = {e["user_id"] or e["anonymous_id"]: e for e in api.events()}
    assert stored["u1"]["properties"] == {"total": 12.5, "sku": "A-1"}
    assert stored["a3"]["timestamp"].startswith("2024-05-02T00:00:00")
    again = api.run(path)
    assert (again.loaded, again.duplicates, again.rejected_total) == (0, 4, 1)
    assert len(api.events()) == 4


def test_a_folder_of_mixed_files(api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    write(folder / "1.csv", EVENTS[:2])
    write(folder / "2.jsonl", EVENTS[2:4])
    write(folder / "3.parquet", EVENTS[4:])
    done = api.run(folder)
    assert (done.files, done.read, done.loaded, done.rejected_total) == (3, 5, 4, 1)
    assert done.rejected_file == tmp_path / "drop.rejected.jsonl"
    (line,) = [json.loads(x) for x in done.rejected_file.read_text().splitlines()]
    assert line["file"].endswith("2.jsonl") and line["row_number"] == 2
    clean = api.run(folder / "1.csv")
    assert clean.rejected_file is None and clean.duplicates == 2


def test_mapping_and_profiles_from_csv(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("手机号,openid,app_id,tier\n13800000001,o-1,wx1,gold\n,,,silver\n")
    done = api.run(path, "profiles", mapping={"手机号": "phone", "absent": "email"})
    assert (done.loaded, done.rejected) == (1, {"no_identifier": 1})
    assert done.unused_mapping == ["absent"]
    (event,) = api.events()
    assert event["type"] == "identify"
    # the phone (PII) is stored sealed, in the identifiers and in the traits
    phone, openid = event["identifiers"]
    assert phone["type"] == "phone" and phone["value"].startswith("qy1:")
    assert openid == {"type": "openid", "value": "o-1", "scope": "wx1"}
    assert event["traits"]["phone"] == phone["value"]
    seen: list[int] = []
    again = api.run(path, "profiles", mapping={"手机号": "phone"}, on_progress=seen.append)
    assert (again.loaded, again.duplicates, seen) == (0, 1, [2])


def test_struct_columns_import_like_json_text(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pq.write_table(
        pa.table(
            {
                "event": ["Order"],
                "userId": ["u1"],
                "properties": pa.array([{"total": 3, "items": [{"sku": "A"}]}]),
                "context": pa.array([{"traits": {"email": "a@b.cn"}}]),
            }
        ),
        path,
    )
    assert api.run(path).loaded == 1
    (event,) = api.events()
    assert event["properties"] == {"total": 3, "items": [{"sku": "A"}]}
    assert event["identifiers"][0]["value"].startswith("qy1:")  # PII is stored sealed
    assert opened(event["identifiers"], api.data_dir, api.tenant) == [
        {"type": "email", "value": "a@b.cn", "scope": None}
    ]
