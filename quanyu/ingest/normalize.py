"""Segment-spec decoding and normalisation of tracking calls. Pure: no I/O.

A request body becomes column lists ready for an Arrow table plus a list of
rejects. Each message is decoded on its own from the raw batch, so one bad
message never sinks its neighbours, and the raw bytes of a reject are kept for
the dead-letter store.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from quanyu.ids import random_bytes

if TYPE_CHECKING:
    from quanyu.ingest.pii import Sealer

MAX_MESSAGE_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
MAX_BATCH_MESSAGES = 2500
TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

Id = str | int | float


class Message(msgspec.Struct):
    """One Segment message as sent; unknown fields are ignored, as Segment does."""

    type: str | None = None
    messageId: str | None = None
    userId: Id | None = None
    anonymousId: Id | None = None
    event: str | None = None
    name: str | None = None
    groupId: Id | None = None
    previousId: Id | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    properties: msgspec.Raw = msgspec.Raw(b"null")  # msgspec allows Raw in no union
    traits: dict[str, Any] | None = None
    context: msgspec.Raw = msgspec.Raw(b"null")
    integrations: dict[str, Any] | None = None


class ContextView(msgspec.Struct):
    """The parts of ``context`` normalisation reads; the rest stays raw bytes, unparsed."""

    ip: Any = None
    traits: Any = None
    externalIds: Any = None
    device: Any = None
    app: Any = None


class Envelope(msgspec.Struct):
    """A ``/v1/batch`` or ``/v1/import`` body; items stay raw until decoded one by one."""

    batch: list[msgspec.Raw] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    sentAt: datetime | None = None
    writeKey: str | None = None


class KeyOnly(msgspec.Struct):
    """The write key a single-message body may carry."""

    writeKey: str | None = None


_message_decoder = msgspec.json.Decoder(Message)
_envelope_decoder = msgspec.json.Decoder(Envelope)
_key_decoder = msgspec.json.Decoder(KeyOnly)
_context_decoder = msgspec.json.Decoder(ContextView)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])
_encode = msgspec.json.Encoder().encode


class BadBody(Exception):
    """The whole request body is unusable (not JSON, not an object, too many messages)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Violation:
    """One broken rule: a stable code, the rule's name and what was wrong."""

    code: str
    rule: str
    message: str


@dataclass(frozen=True)
class PlanVerdict:
    """What a tracking plan says of one message."""

    violations: tuple[Violation, ...] = ()
    block: bool = False
    properties: bytes | None = None  # replacement properties (unplanned ones omitted)


class PlanChecker(Protocol):
    """A compiled tracking plan (see :mod:`quanyu.ingest.plans`)."""

    def check(
        self, kind: str, event: str | None, properties: bytes | None, traits: dict[str, Any] | None
    ) -> PlanVerdict: ...


@dataclass
class Reject:
    """A message that did not make it (``rejected``) or did with a note (``flagged``)."""

    index: int
    message_id: str | None
    event_type: str | None
    event: str | None
    code: str
    reason: str
    payload: bytes
    rule: str | None = None
    disposition: str = "rejected"

    def public(self) -> dict[str, Any]:
        """The shape reported back to the client."""
        return {
            "index": self.index,
            "messageId": self.message_id,
            "code": self.code,
            "message": self.reason,
            **({"rule": self.rule} if self.rule else {}),
        }


ROW_FIELDS = (
    "message_id",
    "type",
    "event",
    "name",
    "user_id",
    "anonymous_id",
    "group_id",
    "previous_id",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "properties",
    "traits",
    "context",
    "integrations",
    "identifiers",
)


@dataclass
class Normalized:
    """Valid messages as rows in :data:`ROW_FIELDS` order, plus rejects.

    Timestamps are epoch microseconds; JSON fields are UTF-8 bytes of JSON text.
    """

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    flagged: list[Reject] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def columns(self) -> dict[str, tuple[Any, ...]]:
        """The rows turned into one tuple per field."""
        if not self.rows:
            return {f: () for f in ROW_FIELDS}
        return dict(zip(ROW_FIELDS, zip(*self.rows, strict=True), strict=True))


def micros(dt: datetime) -> int:
    """Epoch microseconds of ``dt``; a naive datetime is taken as UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _US


def decode_envelope(body: bytes) -> Envelope:
    """Decode a batch body, keeping its messages raw.

    Raises:
        BadBody: not JSON, not an object with a ``batch`` list, or over 2,500 messages.
    """
    try:
        env = _envelope_decoder.decode(body)
    except msgspec.DecodeError as e:
        raise BadBody("invalid_json", f"The request body is not valid batch JSON: {e}.") from e
    if env.batch is None:
        raise BadBody(
            "invalid_request", "The body has no 'batch' list: send {\"batch\": [message, ...]}."
        )
    if len(env.batch) > MAX_BATCH_MESSAGES:
        raise BadBody(
            "payload_too_large",
            f"The batch holds {len(env.batch)} messages; the limit is {MAX_BATCH_MESSAGES}:"
            " split it into smaller batches.",
        )
    return env


def decode_write_key(body: bytes) -> str | None:
    """The ``writeKey`` a single-message body carries, if any.

    Raises:
        BadBody: the body is not a JSON object.
    """
    try:
        return _key_decoder.decode(body).writeKey
    except msgspec.DecodeError as e:
        raise BadBody("invalid_json", f"The request body is not a valid JSON message: {e}.") from e


def _str(v: Id | None) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v or None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


#: Keys of ``traits`` / ``context.traits`` that carry an identifier, and its type. The bulk
#: import's SQL is generated from these too, so both paths extract the same identifiers.
ID_KEYS = {
    "phone": "phone",
    "mobile": "phone",
    "phone_number": "phone",
    "phoneNumber": "phone",
    "email": "email",
    "unionid": "unionid",
    "unionId": "unionid",
    "union_id": "unionid",
    "openid": "openid",
    "openId": "openid",
    "open_id": "openid",
    "member_id": "member_id",
    "memberId": "member_id",
}
#: Keys naming the WeChat app an openid belongs to.
APP_KEYS = ("app_id", "appId", "appid")
#: Keys naming the brand a member id belongs to.
BRAND_KEYS = ("brand", "brand_id", "brandId")


def _first(d: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = d.get(k)
        if v:
            return v
    return None


def extract_identifiers(
    traits: dict[str, Any] | None, context: dict[str, Any], brand: str | None
) -> list[dict[str, Any]]:
    """Identifiers beyond userId/anonymousId a message carries, for identity resolution.

    Read from ``traits``, ``context.traits`` and ``context.externalIds`` (Segment's
    convention). An openid is scoped to its app id, a member id to its brand.
    """
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: str, value: Any, scope: Any) -> None:
        if value is None or isinstance(value, dict | list) or value == "":
            return
        text = _str(value)
        if text is None or (kind, text) in seen:
            return
        seen.add((kind, text))
        found.append({"type": kind, "value": text, "scope": _str(scope)})

    app = context.get("app")
    app_id = _first(app, ("id", *APP_KEYS)) if isinstance(app, dict) else None
    for bag in (traits, context.get("traits")):
        if not isinstance(bag, dict):
            continue
        for key, value in bag.items():
            kind = ID_KEYS.get(key)
            if kind == "openid":
                add(kind, value, _first(bag, APP_KEYS) or app_id)
            elif kind == "member_id":
                add(kind, value, _first(bag, BRAND_KEYS) or brand)
            elif kind is not None:
                add(kind, value, None)
    external = context.get("externalIds")
    if isinstance(external, list):
        for item in external:
            if isinstance(item, dict) and item.get("type"):
                kind = ID_KEYS.get(str(item["type"]), str(item["type"]))
                scope = (
                    _first(item, APP_KEYS) or app_id
                    if kind == "openid"
                    else _first(item, BRAND_KEYS) or brand
                    if kind == "member_id"
                    else item.get("collection")
                )
                add(kind, item.get("id"), scope)
    device = context.get("device")
    if isinstance(device, dict):
        add("device_id", device.get("id"), None)
    return found


def _missing(kind: str, msg: Message) -> tuple[str, str] | None:
    """The first Segment-spec rule ``msg`` breaks, as (code, message)."""
    if kind == "alias":
        if _str(msg.previousId) is None or _str(msg.userId) is None:
            return "missing_field", "An alias call needs both previousId and userId."
        return None
    if _str(msg.userId) is None and _str(msg.anonymousId) is None:
        return (
            "missing_identity",
            f"A {kind} call needs a userId or an anonymousId; it had neither.",
        )
    if kind == "track" and not msg.event:
        return "missing_field", "A track call needs a non-empty 'event' name."
    if kind == "group" and _str(msg.groupId) is None:
        return "missing_field", "A group call needs a groupId."
    return None


def _reject(
    out: Normalized,
    index: int,
    raw: bytes,
    code: str,
    reason: str,
    msg: Message | None = None,
    kind: str | None = None,
) -> None:
    out.rejects.append(
        Reject(
            index,
            (msg.messageId or None) if msg else None,
            kind,
            msg.event if msg else None,
            code,
            reason,
            raw,
        )
    )


def normalize(
    items: Sequence[bytes | msgspec.Raw],
    *,
    received_at: datetime,
    path_type: str | None = None,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
    batch_sent_at: datetime | None = None,
    ip: str | None = None,
    brand: str | None = None,
    plan: PlanChecker | None = None,
    correct_skew: bool = True,
    sealer: Sealer | None = None,
) -> Normalized:
    """Validate and normalise raw messages the way Segment does.

    ``path_type`` is the call the URL named (``/v1/track``); batch items name their
    own. Batch-level context and integrations merge under each message's own;
    ``receivedAt`` is set; a missing ``messageId`` is generated; ``timestamp`` is
    corrected for client clock skew as ``receivedAt - (sentAt - originalTimestamp)``;
    ``context.ip`` is filled from the request when absent. ``correct_skew=False`` keeps
    timestamps as sent (historical imports through ``/v1/import``). With a ``sealer``,
    PII identifier values are stored sealed (see :mod:`quanyu.ingest.pii`).
    """
    out = Normalized()
    rows = out.rows
    received = micros(received_at)
    for index, raw in enumerate(items):
        raw_bytes = bytes(raw)

        if len(raw_bytes) > MAX_MESSAGE_BYTES:
            _reject(
                out,
                index,
                raw_bytes,
                "message_too_large",
                f"The message is {len(raw_bytes)} bytes; the limit is {MAX_MESSAGE_BYTES}:"
                " trim its properties or traits.",
            )
            continue
        try:
            raw_bytes.decode()  # raw parts (properties, context) are stored as they came
        except UnicodeDecodeError as e:
            _reject(
                out,
                index,
                raw_bytes,
                "invalid_json",
                f"The message is not valid UTF-8 ({e}); send JSON in UTF-8.",
            )
            continue
        try:
            msg = _message_decoder.decode(raw_bytes)
        except msgspec.ValidationError as e:
            _reject(out, index, raw_bytes, "invalid_field", f"Invalid message: {e}.")
            continue
        except msgspec.DecodeError as e:
            _reject(out, index, raw_bytes, "invalid_json", f"Not a JSON message: {e}.")
            continue
        kind = path_type or msg.type
        message_id = msg.messageId or None
        if kind not in TYPES:
            _reject(
                out,
                index,
                raw_bytes,
                "unknown_type",
                f"Unknown message type {msg.type!r}: use one of {', '.join(sorted(TYPES))}.",
                msg,
                msg.type,
            )
            continue
        broken = _missing(kind, msg)
        if broken:
            _reject(out, index, raw_bytes, broken[0], broken[1], msg, kind)
            continue
        props: bytes | None = bytes(msg.properties)
        if props == b"null":
            props = None
        elif props is not None and props.lstrip()[:1] != b"{":
            _reject(
                out,
                index,
                raw_bytes,
                "invalid_field",
                "Invalid message: 'properties' must be a JSON object.",
                msg,
                kind,
            )
            continue
        if plan is not None:
            verdict = plan.check(kind, msg.event, props, msg.traits)
            if verdict.violations:
                first = verdict.violations[0]
                note = Reject(
                    index,
                    message_id,
                    kind,
                    msg.event,
                    first.code,
                    "; ".join(v.message for v in verdict.violations),
                    raw_bytes,
                    rule=", ".join(v.rule for v in verdict.violations),
                    disposition="rejected" if verdict.block else "flagged",
                )
                if verdict.block:
                    out.rejects.append(note)
                    continue
                out.flagged.append(note)
            if verdict.properties is not None:
                props = verdict.properties
        raw_context = bytes(msg.context)
        if raw_context == b"null":
            raw_context = b"{}"
        try:
            view = _context_decoder.decode(raw_context)
        except msgspec.DecodeError as e:
            _reject(
                out,
                index,
                raw_bytes,
                "invalid_field",
                f"Invalid message: 'context' must be a JSON object ({e}).",
                msg,
                kind,
            )
            continue
        if batch_context:
            merged = {**batch_context, **_dict_decoder.decode(raw_context)}
            if ip and "ip" not in merged:
                merged["ip"] = ip
            context_bytes = _encode(merged)
        elif ip and view.ip is None:
            # splice the ip in rather than decode and re-encode the whole context
            inner = raw_context.strip()[1:]
            sep = b"," if inner.strip() != b"}" else b""
            context_bytes = b'{"ip":' + _encode(ip) + sep + inner
        else:
            context_bytes = raw_context
        integrations = msg.integrations
        if batch_integrations:
            integrations = {**batch_integrations, **(integrations or {})}
        original = msg.originalTimestamp or msg.timestamp
        sent = msg.sentAt or batch_sent_at
        orig_us = micros(original) if original is not None else None
        sent_us = micros(sent) if sent is not None else None
        if orig_us is None:
            ts = received
        elif sent_us is None or not correct_skew:
            ts = orig_us
        else:
            ts = received - (sent_us - orig_us)
        identifiers = extract_identifiers(
            msg.traits,
            {
                "traits": view.traits,
                "externalIds": view.externalIds,
                "device": view.device,
                "app": view.app,
            },
            brand,
        )
        traits = msg.traits
        if sealer is not None and identifiers and sealer.touches(identifiers):
            traits = sealer.bag(traits)
            context_bytes = sealer.context(context_bytes)
            identifiers = sealer.identifiers(identifiers)
        uid = msg.userId
        aid = msg.anonymousId
        rows.append(
            (
                message_id or f"qy-{uuid.UUID(bytes=random_bytes(16), version=4)}",
                kind,
                msg.event if kind == "track" else None,
                msg.name,
                (uid or None) if uid.__class__ is str else _str(uid),
                (aid or None) if aid.__class__ is str else _str(aid),
                _str(msg.groupId),
                _str(msg.previousId),
                ts,
                orig_us,
                sent_us,
                props,
                _encode(traits) if traits is not None else None,
                context_bytes,
                _encode(integrations) if integrations is not None else None,
                _encode(identifiers) if identifiers else None,
            )
        )
    return out
