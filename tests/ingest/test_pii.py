"""Sealing PII in what ingest stores: identifier fields, and dead letters by shape."""

from __future__ import annotations

import orjson
import pyarrow as pa

from quanyu.identity.tokens import Tokenizer
from quanyu.ingest.pii import Sealer

TOKENS = Tokenizer.derive(b"k" * 16 + b"m" * 16, "ten_a")
SEALER = Sealer(frozenset({"phone", "email"}), TOKENS.seal, TOKENS.open)


def test_dead_letter_payloads_lose_every_phone_and_email_and_get_them_back() -> None:
    raw = (
        b'{"type":"track","properties":{"a":"13812345678","b":"+86 138-1234-5679",'
        b'"c":"0086 13812345670","d":"+442071234567","e":"Li.Wei@corp.cn",'
        b'"order":"2026112600001234","sku":"A-138"}, broken'
    )
    scrubbed = SEALER.scrub(raw)
    for pii in (b"13812345678", b"1234-5679", b"13812345670", b"442071234567", b"Li.Wei"):
        assert pii not in scrubbed
    # long order numbers and SKUs are not phones
    assert b"2026112600001234" in scrubbed and b"A-138" in scrubbed
    assert SEALER.unscrub(scrubbed.decode()).encode() == raw


def test_identifier_fields_are_sealed_others_kept() -> None:
    events = pa.table(
        {
            "traits": ['{"phone":"13812345678","name":"Li"}', None],
            "context": ['{"traits":{"email":"a@b.cn"},"ip":"1.2.3.4"}', "{}"],
            "identifiers": [
                '[{"type":"phone","value":"13812345678","scope":null},'
                '{"type":"email","value":"a@b.cn","scope":null}]',
                '[{"type":"unionid","value":"U1","scope":null}]',
            ],
        }
    )
    out = SEALER.table(events)
    traits = orjson.loads(out.column("traits")[0].as_py())
    assert traits["name"] == "Li" and TOKENS.open(traits["phone"]) == "13812345678"
    ctx = orjson.loads(out.column("context")[0].as_py())
    assert ctx["ip"] == "1.2.3.4" and TOKENS.open(ctx["traits"]["email"]) == "a@b.cn"
    ids = orjson.loads(out.column("identifiers")[0].as_py())
    assert [TOKENS.open(i["value"]) for i in ids] == ["13812345678", "a@b.cn"]
    assert all(i["value"].startswith("qy1:") for i in ids)
    # a row without PII identifiers is untouched
    assert out.slice(1).to_pylist() == events.slice(1).to_pylist()
    # sealing twice changes nothing (replays, re-imports)
    assert SEALER.table(out).to_pylist() == out.to_pylist()


def test_kinds_match_whatever_their_case() -> None:
    ext = SEALER.external_ids([{"type": "Phone", "id": "13812345678"}, {"type": "x", "id": "1"}])
    assert ext[0]["id"].startswith("qy1:") and ext[1]["id"] == "1"
    found = [{"type": "EMAIL", "value": "a@b.cn", "scope": None}]
    assert SEALER.touches(found) and SEALER.identifiers(found)[0]["value"].startswith("qy1:")
    table = pa.table(
        {
            "traits": pa.array([None], pa.string()),
            "context": ['{"externalIds":[{"type":"Phone","id":"13812345678"}]}'],
            "identifiers": ['[{"type":"Phone","value":"13812345678","scope":null}]'],
        }
    )
    assert b"13812345678" not in str(SEALER.table(table).to_pylist()).encode()
