"""Load the demo brand group through the public API and the bulk-import path.

Everything a real ISV would do by hand happens here through the REST API: create the
tenant, its brands and sources and keys, then import the generated events and member
records file by file with :func:`quanyu.ingest.importer.run_import`. The ground truth
(which records are the same person) is written beside, never loaded.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quanyu.client import Client
from quanyu.demo.codes import load_codes
from quanyu.demo.generate import DEMO_BRANDS, DEMO_SOURCES, DemoData, generate
from quanyu.ingest.importer import ImportSummary, run_import

TENANT_NAME = "Hanami Group (demo)"
CONSOLE_LOGIN = "demo"
ISV_NAME = "Demo Partner"

Step = Callable[[str, int], Callable[[int], None]]
"""Announces a step (description, total rows) and returns its progress callback."""


@dataclass
class DemoResult:
    """What the demo created: ids, keys (shown once) and what the imports did."""

    tenant_id: str
    admin_key: str
    platform_key: str
    write_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    console: dict[str, str] = field(default_factory=dict)
    codes: dict[str, Any] = field(default_factory=dict)
    events: ImportSummary | None = None
    profiles: ImportSummary | None = None
    files: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "admin_key": self.admin_key,
            "platform_key": self.platform_key,
            "write_keys": self.write_keys,
            "console": self.console,
            "files": self.files,
        }


def _source_ids(table: pa.Table, ids: dict[str, str]) -> pa.Table:
    """Replace the generator's source keys by the created source ids (vectorised)."""
    keys = pa.array(list(ids))
    index = pc.index_in(table.column("source"), value_set=keys)
    mapped = pc.take(pa.array(list(ids.values())), index)
    return table.set_column(table.schema.get_field_index("source"), "source", mapped)


def _brand_ids(column: pa.ChunkedArray, brands: dict[str, str], pattern: str) -> pa.ChunkedArray:
    for key, brand_id in brands.items():
        column = pc.replace_substring(column, pattern.format(key), pattern.format(brand_id))
    return column


def create_tenant(client: Client) -> tuple[DemoResult, dict[str, str], dict[str, str]]:
    """The demo ISV, tenant, brands, sources and keys, through the REST API."""
    isv = client.post("/v1/isvs", {"name": f"{ISV_NAME} {datetime.now():%Y%m%d%H%M%S}"})
    tenant = client.post("/v1/tenants", {"name": TENANT_NAME, "isv_id": isv["id"]})
    t = tenant["id"]
    brands = {
        key: client.post(f"/v1/tenants/{t}/brands", {"name": name})["id"]
        for key, name in DEMO_BRANDS
    }
    admin = client.post(f"/v1/tenants/{t}/keys", {"name": "Demo admin", "scopes": ["admin"]})
    platform = client.post("/v1/keys", {"name": "Demo platform admin", "scopes": ["admin"]})
    result = DemoResult(tenant_id=t, admin_key=admin["secret"], platform_key=platform["secret"])
    password = secrets.token_urlsafe(12)
    client.post(
        f"/v1/tenants/{t}/users",
        {"login": CONSOLE_LOGIN, "name": "Demo admin", "password": password, "role": "admin"},
    )
    result.console = {"login": CONSOLE_LOGIN, "password": password}
    sources: dict[str, str] = {}
    for s in DEMO_SOURCES:
        body = {"name": s.name, "kind": s.kind, "brand_id": brands.get(s.brand or "")}
        created = client.post(f"/v1/tenants/{t}/sources", body)
        sources[s.key] = created["id"]
        result.write_keys[s.key] = {
            "name": s.name,
            "source_id": created["id"],
            "write_key": created["write_key"],
        }
    # the group's counter POS keys people by their brand member numbers (userId), so one
    # person may have a user id per brand there: allow three, as the group's admin would
    rules = client.get(f"/v1/tenants/{t}/identity/rules")["rules"]
    rules["types"]["user_id"]["limit"] = len(DEMO_BRANDS)
    client.put(f"/v1/tenants/{t}/identity/rules", {"rules": rules})
    return result, brands, sources


def write_files(
    data: DemoData, folder: Path, brands: dict[str, str], sources: dict[str, str]
) -> dict[str, Path]:
    """The demo's import files (Parquet) and its ground truth, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    events = _source_ids(data.events, sources)  # member ids name their brand by id already
    profiles = _source_ids(data.profiles, sources)
    # each member record's import event carries the record id, so the truth covers it
    profiles = profiles.append_column("messageId", profiles.column("record_id"))
    profiles = profiles.set_column(
        profiles.schema.get_field_index("brand"),
        "brand",
        _brand_ids(profiles.column("brand"), brands, "{}"),
    )
    files = {
        "events": folder / "events.parquet",
        "profiles": folder / "profiles.parquet",
        "truth": folder / "truth.parquet",
    }
    pq.write_table(events, files["events"], row_group_size=250_000)
    pq.write_table(profiles, files["profiles"])
    pq.write_table(data.truth, files["truth"])
    return files


def load(
    client: Client,
    *,
    folder: Path,
    consumers: int,
    seed: int,
    start: datetime | None,
    step: Step,
) -> DemoResult:
    """Create the demo tenant and import a generated year of its data."""
    result, brands, sources = create_tenant(client)
    generating = step(f"Generating {consumers:,} consumers' year of events", 1)
    data = generate(consumers, seed=seed, start=start, brand_ids=brands)
    generating(1)
    writing = step("Writing the import files", 1)
    files = write_files(data, folder, brands, sources)
    writing(1)
    result.files = {k: str(v) for k, v in files.items()}
    default_source = sources[DEMO_SOURCES[0].key]
    result.events = run_import(
        client,
        files["events"],
        tenant=result.tenant_id,
        source=default_source,
        kind="events",
        on_progress=step("Importing events", data.events.num_rows),
    )
    result.profiles = run_import(
        client,
        files["profiles"],
        tenant=result.tenant_id,
        source=sources["hanami_pos"],
        kind="profiles",
        on_progress=step("Importing member records", data.profiles.num_rows),
    )
    coding = step("Product codes, shipments and scans", 1)
    result.codes = load_codes(client, tenant=result.tenant_id, brands=brands, seed=seed)
    coding(1)
    return result


def save_keys(result: DemoResult, path: Path) -> None:
    """Keep the demo's keys for `make demo` to print again (readable by the owner only)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(result.as_json(), f, indent=2)
