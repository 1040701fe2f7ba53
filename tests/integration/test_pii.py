"""A leaked database file alone does not reveal phone numbers or e-mails: every byte of
the file (and its write-ahead log) is scanned after real traffic, a bulk import and
identity resolution."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx

from .harness import Server
from .test_cli import cli
from .test_identity import wait_profile

PHONES = ["13912340001", "+86 139 1234 0002", "139-1234-0003", "13912340004", "13912340005"]
EMAIL = "wang.li@example-brand.cn"
MARKER = "plain-marker-7f3a9c"  # stored as sent: shows raw text is findable in the file


def file_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("quanyu.duckdb*")))


def test_no_raw_phone_or_email_anywhere_in_the_database_file(fresh_server: Server) -> None:
    srv = fresh_server
    t = srv.new_tenant()
    batch = [
        {
            "type": "identify",
            "messageId": str(uuid.uuid4()),
            "anonymousId": "a1",
            "traits": {"phone": PHONES[0], "email": EMAIL, "nickname": MARKER},
        },
        {
            "type": "track",
            "event": "Viewed",
            "messageId": str(uuid.uuid4()),
            "anonymousId": "a2",
            "context": {"traits": {"mobile": PHONES[1]}},
            "properties": {"note": MARKER},
        },
        {
            "type": "track",
            "event": "Scanned",
            "messageId": str(uuid.uuid4()),
            "anonymousId": "a3",
            "context": {
                "externalIds": [
                    {"id": PHONES[2], "type": "phone", "collection": "users", "encoding": "none"}
                ]
            },
        },
    ]
    # rejected messages keep their payload in the dead-letter store: its PII is sealed too
    batch.append(
        {"type": "track", "messageId": "no-event", "anonymousId": "a4",
         "properties": {"contact": PHONES[4], "mail": EMAIL}}
    )  # fmt: skip
    r = httpx.post(f"{srv.url}/v1/batch", json={"batch": batch}, auth=(t.write_key, ""))
    assert r.status_code == 200, r.text
    assert [x["messageId"] for x in r.json()["rejected"]] == ["no-event"]
    broken = b'{"batch": [{"type": "identify", "traits": {"phone": "' + PHONES[3].encode() + b'"'
    r = httpx.post(f"{srv.url}/v1/batch", content=broken, auth=(t.write_key, ""))
    assert r.status_code == 400, r.text
    crm = srv.root / "crm.jsonl"
    crm.write_text(
        "\n".join(
            json.dumps({"user_id": f"m{i}", "phone": p, "email": f"m{i}@{MARKER}.cn"})
            for i, p in enumerate(PHONES[3:])
        )
    )
    out = cli(srv, "import", "profiles", str(crm), "--tenant", t.id, "--source", t.source_id)
    assert out.returncode == 0, out.stderr
    # resolved: the phones are matchable, by any spelling
    for p in PHONES:
        wait_profile(srv, t, "phone", p)
    wait_profile(srv, t, "email", EMAIL.upper())
    # the dead letter shows the phone sealed
    (letter,) = [d for d in srv.dead_letters(t) if d["message_id"] == "no-event"]
    assert letter["payload"]["properties"]["contact"].startswith("qy1:")
    srv.stop()  # checkpoints: everything is in the file
    data = file_bytes(srv.data_dir)
    assert MARKER.encode() in data, "raw text is not findable in the file: the scan proves nothing"
    for p in PHONES:
        digits = "".join(ch for ch in p if ch.isdigit())[-11:]
        for form in {p, digits, "+86" + digits}:
            assert form.encode() not in data, f"{form} is in the database file"
    assert EMAIL.encode() not in data
    assert b"wang.li" not in data  # the masked form keeps only the domain


def test_a_replayed_dead_letter_is_the_message_as_sent(server: Server) -> None:
    t = server.new_tenant()
    message = {"type": "track", "messageId": "late-fix", "anonymousId": "a9",
               "properties": {"contact": "+86 139-1234-0009", "mail": EMAIL}}  # fmt: skip
    r = httpx.post(f"{server.url}/v1/batch", json={"batch": [message]}, auth=(t.write_key, ""))
    assert r.status_code == 400  # no event name: every message rejected
    (letter,) = server.dead_letters(t)
    assert "0009" not in json.dumps(letter)
    fixed = {**letter["payload"], "event": "Contacted"}
    path = f"/v1/tenants/{t.id}/dead-letters"
    server.call("PUT", f"{path}/{letter['id']}", t.secret, json={"payload": fixed})
    done = server.call("POST", f"{path}/replay", t.secret, json={"ids": [letter["id"]]})
    assert done["replayed"] == [letter["id"]]
    (event,) = server.events(t)
    assert event["event"] == "Contacted"
    assert event["properties"] == message["properties"]
