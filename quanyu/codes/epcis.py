"""EPCIS 2.0 JSON-LD export of code lifecycle events, so a brand's ERP or WMS can read them.

Each lifecycle event of the codes core becomes one EPCIS event with a CBV 2.0 business
step and disposition: activation is commissioning (ObjectEvent ADD), packing an
AggregationEvent, shipping and receiving ObjectEvent OBSERVE, void and destroy
ObjectEvent DELETE, a recall an OBSERVE that sets the ``recalled`` disposition. Issuing
serials is bookkeeping, not a physical event, and is left out. Items and cases are
named by GS1 Digital Link URIs on id.gs1.org (EPCIS 2.0 accepts them as EPCs), pallets
by their SSCC; dealers and stores by ``urn:quanyu:`` party URIs.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from quanyu.codes import scan_sql as q
from quanyu.codes import serials
from quanyu.codes.events import events_since
from quanyu.codes.gs1 import gtin14
from quanyu.codes.serials import CodeKeys
from quanyu.codes.service import code_key
from quanyu.engine import Session
from quanyu.ids import utcnow

CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
#: China Standard Time: where the lines, dealers and stores are.
OFFSET = "+08:00"
_NS = uuid.UUID("6f1c9a52-5b1e-4d8e-9a57-0c1d2e3f4a5b")

#: lifecycle action -> (EPCIS type, action, CBV bizStep, CBV disposition)
MAPPING: dict[str, tuple[str, str, str, str]] = {
    "print": ("ObjectEvent", "ADD", "encoding", "encoded"),
    "activate": ("ObjectEvent", "ADD", "commissioning", "active"),
    "aggregate": ("AggregationEvent", "ADD", "packing", "in_progress"),
    "ship": ("ObjectEvent", "OBSERVE", "shipping", "in_transit"),
    "receive": ("ObjectEvent", "OBSERVE", "receiving", "sellable_accessible"),
    "recall": ("ObjectEvent", "OBSERVE", "holding", "recalled"),
    "void": ("ObjectEvent", "DELETE", "decommissioning", "inactive"),
    "reject": ("ObjectEvent", "DELETE", "decommissioning", "inactive"),
    "destroy": ("ObjectEvent", "DELETE", "destroying", "destroyed"),
}


def _time(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds") + "Z"


def epc(keys: CodeKeys, code: str, gtin: str, level: str, sscc: str | None) -> str:
    """The EPC of a code: its SSCC for a pallet, else the GS1 Digital Link of its GTIN and
    printed serial (code and tag) on id.gs1.org."""
    if level == "pallet" and sscc:
        return f"https://id.gs1.org/00/{sscc}"
    raw = serials.decode(np.frombuffer(code.encode("ascii"), np.uint8)[None])
    serial = code + bytes(serials.tags(keys, raw)[0]).decode()
    return f"https://id.gs1.org/01/{gtin14(gtin)}/21/{serial}"


def _event(db: Session, keys: CodeKeys, tenant: str, ev: Any) -> dict[str, Any] | None:
    mapped = MAPPING.get(ev.action)
    if mapped is None:
        return None
    kind, action, step, disposition = mapped
    context: dict[str, Any] = orjson.loads(ev.leaf)
    epcs = {r[0]: epc(keys, r[0], r[3], r[1], r[2]) for r in db.execute(q.EVENT_EPCS,
            [tenant, ev.id])}  # fmt: skip
    out: dict[str, Any] = {
        "type": kind,
        "eventID": uuid.uuid5(_NS, f"{tenant}/{ev.id}").urn,
        "eventTime": _time(ev.at),
        "eventTimeZoneOffset": OFFSET,
        "action": action,
        "bizStep": step,
        "disposition": disposition,
    }
    if kind == "AggregationEvent":
        parent = str(context.get("parent", ""))
        row = db.one(q.CODE_EPC, [tenant, code_key(parent), parent]) if parent else None
        if row is None:
            return None  # a parent the export cannot name: never a half event
        out["parentID"] = epc(keys, row[0], row[3], row[1], row[2])
        out["childEPCs"] = sorted(v for c, v in epcs.items() if c != parent)
    else:
        out["epcList"] = sorted(epcs.values())
    if ev.action == "ship" and context.get("dealer"):
        dealer = f"urn:quanyu:dealer:{context['dealer']}"
        out["destinationList"] = [{"type": "owning_party", "destination": dealer}]
    if ev.action == "receive" and context.get("store"):
        out["bizLocation"] = {"id": f"urn:quanyu:store:{context['store']}"}
    return out


def export(
    db: Session, keys: CodeKeys, *, tenant: str, after: int = 0, limit: int = 100
) -> tuple[dict[str, Any], int]:
    """An EPCIS 2.0 document of the lifecycle events after event ``after`` (at most
    ``limit`` of them, oldest first), and the event id to page on from."""
    events = events_since(db, tenant=tenant, after_id=after, limit=limit)
    body = [e for e in (_event(db, keys, tenant, ev) for ev in events) if e is not None]
    doc = {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(utcnow()),
        "epcisBody": {"eventList": body},
    }
    return doc, events[-1].id if events else after
