"""Segment-spec normalisation: defaults, skew correction, limits, rejects, identifiers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyu.ingest.normalize import (
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    BadBody,
    decode_envelope,
    decode_write_key,
    extract_identifiers,
    micros,
    normalize,
)

RECEIVED = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def enc(obj: object) -> bytes:
    return json.dumps(obj).encode()


def one(msg: dict[str, object], **kw: object) -> dict[str, object]:
    out = normalize([enc(msg)], received_at=RECEIVED, **kw)  # type: ignore[arg-type]
    assert not out.rejects, out.rejects
    return {k: v[0] for k, v in out.columns.items()}


def test_received_at_is_timestamp_when_client_sends_none() -> None:
    row = one({"type": "track", "event": "E", "userId": "u"})
    assert row["timestamp"] == micros(RECEIVED)
    assert row["original_timestamp"] is None


def test_skew_correction_uses_sent_at() -> None:
    # the client clock is 1 h ahead: it stamped 13:00:00 and sent at 13:00:05
    row = one(
        {
            "type": "track",
            "event": "E",
            "userId": "u",
            "timestamp": "2026-11-26T13:00:00Z",
            "sentAt": "2026-11-26T13:00:05Z",
        }
    )
    assert row["timestamp"] == micros(RECEIVED - timedelta(seconds=5))
    assert row["original_timestamp"] == micros(datetime(2026, 11, 26, 13, tzinfo=UTC))


def test_batch_sent_at_applies_to_items() -> None:
    out = normalize(
        [
            enc(
                {
                    "type": "track",
                    "event": "E",
                    "userId": "u",
                    "timestamp": "2026-11-26T13:00:00+01:00",
                }
            )
        ],
        received_at=RECEIVED,
        batch_sent_at=datetime(2026, 11, 26, 12, 0, 2, tzinfo=UTC),
    )
    assert out.columns["timestamp"][0] == micros(RECEIVED - timedelta(seconds=2))


def test_historical_import_keeps_timestamps_as_sent() -> None:
    row = one(
        {
            "type": "track",
            "event": "E",
            "userId": "u",
            "timestamp": "2024-01-01T00:00:00Z",
            "sentAt": "2026-11-26T13:00:05Z",
        },
        correct_skew=False,
    )
    assert row["timestamp"] == micros(datetime(2024, 1, 1, tzinfo=UTC))


def test_without_sent_at_timestamp_is_kept() -> None:
    row = one({"type": "track", "event": "E", "userId": "u", "timestamp": "2025-01-01T00:00:00"})
    assert row["timestamp"] == micros(datetime(2025, 1, 1, tzinfo=UTC))


def test_message_id_generated_when_missing_and_kept_when_sent() -> None:
    a = one({"type": "track", "event": "E", "userId": "u"})
    b = one({"type": "track", "event": "E", "userId": "u", "messageId": "m-1"})
    assert str(a["message_id"]).startswith("qy-")
    assert b["message_id"] == "m-1"


def test_batch_context_merges_under_item_context_and_ip_is_filled() -> None:
    out = normalize(
        [
            enc({"type": "track", "event": "E", "userId": "u", "context": {"locale": "zh-CN"}}),
            enc({"type": "track", "event": "E", "userId": "u", "context": {"ip": "1.2.3.4"}}),
        ],
        received_at=RECEIVED,
        batch_context={"locale": "en", "app": {"name": "x"}},
        batch_integrations={"All": False},
        ip="9.9.9.9",
    )
    first, second = (json.loads(c) for c in out.columns["context"])
    assert first == {"locale": "zh-CN", "app": {"name": "x"}, "ip": "9.9.9.9"}
    assert second["ip"] == "1.2.3.4"
    assert json.loads(out.columns["integrations"][0]) == {"All": False}


def test_ip_spliced_into_raw_context() -> None:
    bare = one({"type": "page", "userId": "u"}, ip="1.1.1.1")["context"]
    assert isinstance(bare, bytes)
    assert json.loads(bare) == {"ip": "1.1.1.1"}
    ctx = one({"type": "page", "userId": "u", "context": {"a": 1}}, ip="1.1.1.1")["context"]
    assert isinstance(ctx, bytes)
    assert json.loads(ctx) == {"ip": "1.1.1.1", "a": 1}


def test_numeric_user_id_becomes_text() -> None:
    assert one({"type": "identify", "userId": 42})["user_id"] == "42"


def test_path_type_overrides_body_type() -> None:
    assert one({"type": "identify", "event": "E", "userId": "u"}, path_type="track")["type"] == (
        "track"
    )


@pytest.mark.parametrize(
    ("msg", "code"),
    [
        ({"type": "track", "event": "E"}, "missing_identity"),
        ({"type": "track", "userId": "u"}, "missing_field"),
        ({"type": "track", "event": "", "userId": "u"}, "missing_field"),
        ({"type": "group", "userId": "u"}, "missing_field"),
        ({"type": "alias", "userId": "u"}, "missing_field"),
        ({"type": "nope", "userId": "u"}, "unknown_type"),
        ({"userId": "u"}, "unknown_type"),
        ({"type": "track", "event": "E", "userId": {"a": 1}}, "invalid_field"),
        ({"type": "track", "event": "E", "userId": "u", "properties": [1]}, "invalid_field"),
        ({"type": "track", "event": "E", "userId": "u", "context": "x"}, "invalid_field"),
        ({"type": "track", "event": "E", "userId": "u", "timestamp": "yesterday"}, "invalid_field"),
    ],
)
def test_invalid_messages_are_rejected_with_a_code(msg: dict[str, object], code: str) -> None:
    out = normalize([enc(msg)], received_at=RECEIVED)
    assert out.count == 0
    (reject,) = out.rejects
    assert reject.code == code
    assert reject.reason
    assert json.loads(reject.payload) == msg


def test_one_bad_message_does_not_sink_the_batch() -> None:
    items = [
        enc({"type": "track", "event": "E", "userId": "u", "messageId": str(i)}) for i in range(5)
    ]
    items.insert(2, b"{not json")
    out = normalize(items, received_at=RECEIVED)
    assert out.count == 5
    assert [r.index for r in out.rejects] == [2]
    assert out.rejects[0].code == "invalid_json"


def test_invalid_utf8_is_rejected_not_stored() -> None:
    bad = b'{"type":"track","event":"E","userId":"u","properties":{"a":"\xff"}}'
    good = enc({"type": "track", "event": "E", "userId": "u"})
    out = normalize([bad, good], received_at=RECEIVED)
    assert out.count == 1
    assert [(r.index, r.code) for r in out.rejects] == [(0, "invalid_json")]
    assert "UTF-8" in out.rejects[0].reason


def test_message_size_limit() -> None:
    big = {
        "type": "track",
        "event": "E",
        "userId": "u",
        "properties": {"x": "a" * MAX_MESSAGE_BYTES},
    }
    small = {"type": "track", "event": "E", "userId": "u"}
    out = normalize([enc(big), enc(small)], received_at=RECEIVED)
    assert out.count == 1
    assert out.rejects[0].code == "message_too_large"


def test_envelope_limits_and_errors() -> None:
    with pytest.raises(BadBody) as e:
        decode_envelope(b"[1,2]")
    assert e.value.code == "invalid_json"
    with pytest.raises(BadBody) as e:
        decode_envelope(b"{}")
    assert "batch" in e.value.message
    with pytest.raises(BadBody) as e:
        decode_envelope(enc({"batch": [{}] * (MAX_BATCH_MESSAGES + 1)}))
    assert e.value.code == "payload_too_large"
    env = decode_envelope(enc({"batch": [{"a": 1}], "writeKey": "wk", "sentAt": None}))
    assert env.writeKey == "wk" and len(env.batch or []) == 1
    assert decode_write_key(enc({"writeKey": "k", "userId": "u"})) == "k"


def test_identifiers_from_traits_context_and_external_ids() -> None:
    ids = extract_identifiers(
        {"phone": "+86 138 0013 8000", "email": "A@b.cn", "name": "王芳"},
        {
            "traits": {"unionId": "oU1", "openid": "oP1", "appId": "wx1", "member_id": "M9"},
            "externalIds": [
                {"id": "oP2", "type": "openid", "collection": "users", "appId": "wx2"},
                {"id": "T1", "type": "tmall_ouid", "collection": "users"},
            ],
            "device": {"id": "dev-1"},
            "app": None,
        },
        "brd_lumi",
    )
    got = {(i["type"], i["value"], i["scope"]) for i in ids}
    assert got == {
        ("phone", "+86 138 0013 8000", None),
        ("email", "A@b.cn", None),
        ("unionid", "oU1", None),
        ("openid", "oP1", "wx1"),
        ("openid", "oP2", "wx2"),
        ("member_id", "M9", "brd_lumi"),
        ("tmall_ouid", "T1", "users"),
        ("device_id", "dev-1", None),
    }


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(
            st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=2)
        ),
        max_size=6,
    )
)
def test_normalize_never_crashes_on_arbitrary_objects(extra: dict[str, object]) -> None:
    msg = {"type": "track", "event": "E", "userId": "u", **extra}
    out = normalize([msgspec.json.encode(msg)], received_at=RECEIVED)
    assert out.count + len(out.rejects) == 1
