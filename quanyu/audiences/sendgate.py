"""The send-time check of audience exports: the delivery worker asks it before each
webhook that carries people, so consent withdrawn after a push was queued still stops
the send. Records of people who may no longer be reached are taken out of the body; a
body left with none is not sent at all. Every allow and block is logged under the
message id.
"""

from __future__ import annotations

from typing import Any

import orjson
from pyroaring import BitMap

from quanyu.audiences import consent_gate
from quanyu.delivery.worker import Gate
from quanyu.engine import Session


def _number(oneid: Any) -> int | None:
    if isinstance(oneid, str) and oneid[:1] == "P" and oneid[1:].isdigit():
        return int(oneid[1:])
    return None


def audience_export(
    db: Session, *, tenant: str, destination_id: str, message_id: str, body: str
) -> str | None:
    """The body to send now (records of people still reachable), or None to send nothing."""
    msg = orjson.loads(body)
    data = msg.get("data") or {}
    records = data.get("records") or []
    purpose, channel = data.get("purpose"), data.get("channel")
    if not isinstance(purpose, str) or not isinstance(channel, str):
        return None  # an export that does not say what it is for reaches nobody
    people = BitMap(n for n in (_number(r.get("oneid")) for r in records) if n is not None)
    admitted = consent_gate.admit(
        db, people, tenant=tenant, purpose=purpose, channel=channel, brands=data.get("brands"),
        destination=destination_id, act="send", act_id=message_id,
    ).members  # fmt: skip
    keep = [r for r in records if (n := _number(r.get("oneid"))) is not None and n in admitted]
    if not keep:
        return None
    if len(keep) == len(records):
        return body
    data["records"] = keep
    data["withheld"] = len(records) - len(keep)
    return orjson.dumps(msg).decode()


#: The gates the delivery worker must run, by topic.
GATES: dict[str, Gate] = {"audience.export": audience_export}
