"""Tracking plans: which calls a source may send and the JSON Schema of each.

A plan follows Segment Protocols. Track events are planned by name; identify traits,
and page, screen and group payloads, are checked when the plan gives a schema for
them; page, screen, group and alias calls are never *unplanned* (the ingest hook sees
no page name to match). Schemas are compiled once per plan with fastjsonschema and
the compiled plan is kept while the stored plan is unchanged, so the per-message
check is a dict lookup plus, only when a schema needs it, one JSON decode.

Every violation names its rule: ``unplanned_event:<event>``,
``unplanned_properties:<event>`` (omit mode) or ``schema:<event>:<pointer> <keyword>``
where the pointer is into the message (``/properties/revenue``, ``/traits/email``).
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import msgspec
import orjson

from quanyu.engine import Session
from quanyu.errors import InvalidRequest, NotFound
from quanyu.ids import utcnow
from quanyu.ingest import plans_sql as q
from quanyu.ingest.normalize import PlanChecker, PlanVerdict, Violation
from quanyu.ingest.plan_models import JsonSchema, PlanMode, TrackingPlan, TrackingPlanSpec
from quanyu.tenancy import service as tenancy

Validate = Callable[[Any], Any]
_OK = PlanVerdict()
_ANNOTATIONS = frozenset({"title", "description", "$schema", "$comment", "examples", "$id", "id"})
_decode = msgspec.json.decode
_encode = msgspec.json.encode


class _NoRemoteRefs(Mapping[str, Callable[[str], Any]]):
    """fastjsonschema handlers for every URI scheme: a plan may not fetch schemas."""

    def __getitem__(self, scheme: str) -> Callable[[str], Any]:
        def refuse(uri: str) -> Any:
            raise fastjsonschema.JsonSchemaDefinitionException(
                f"remote $ref {uri!r} is not allowed: inline it under 'definitions'"
            )

        return refuse

    def __contains__(self, scheme: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_SCHEMA_ERRORS = (
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    RecursionError,
    re.error,
)


@dataclass(frozen=True)
class _Entry:
    """One planned payload compiled: its validator and the property names it declares."""

    kind: str  # track, identify, page, screen or group
    label: str  # the event name, or the call type
    field: str  # "properties" or "traits"
    validate: Validate | None  # None: the schema accepts any object
    declared: frozenset[str] | None  # None: every property is planned
    patterns: tuple[re.Pattern[str], ...]

    def undeclared(self, data: dict[str, Any]) -> list[str]:
        declared = self.declared or frozenset()
        return [
            k for k in data if k not in declared and not any(p.search(k) for p in self.patterns)
        ]


_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependencies")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "items")
_SUBSCHEMAS = (
    "items",
    "additionalProperties",
    "additionalItems",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
)


def _bad_type(schema: Any, at: str = "") -> str | None:
    """Where ``schema`` names a type JSON Schema lacks (fastjsonschema says only "Unknown type")."""
    if not isinstance(schema, dict):
        return None
    kinds = schema.get("type")
    for kind in kinds if isinstance(kinds, list) else [] if kinds is None else [kinds]:
        if kind not in _TYPES:
            return f"at {at or '/'}, type {kind!r} is not one of {', '.join(sorted(_TYPES))}"
    subs: list[tuple[str, Any]] = [(f"{at}/{k}", schema.get(k)) for k in _SUBSCHEMAS]
    for key in _SUBSCHEMA_MAPS:
        value = schema.get(key)
        if isinstance(value, dict):
            subs += [(f"{at}/{key}/{name}", sub) for name, sub in value.items()]
    for key in _SUBSCHEMA_LISTS:
        value = schema.get(key)
        if isinstance(value, list):
            subs += [(f"{at}/{key}/{i}", sub) for i, sub in enumerate(value)]
    for where, sub in subs:
        found = _bad_type(sub, where)
        if found:
            return found
    return None


def _compile_entry(kind: str, label: str, schema: JsonSchema | None) -> _Entry:
    """Compile one schema. Raises InvalidRequest naming the entry and the problem."""
    field = "traits" if kind in ("identify", "group") else "properties"
    if schema is None:
        return _Entry(kind, label, field, None, None, ())
    where = f"The {field} schema of {label!r}"
    kinds = schema.get("type", "object")
    if (kinds if isinstance(kinds, list) else [kinds]).count("object") == 0:
        raise InvalidRequest(
            f'{where} has type {kinds!r}; {field} are a JSON object: use "type": "object".'
        )
    try:
        problem = _bad_type(schema)
        if problem:
            raise fastjsonschema.JsonSchemaDefinitionException(problem)
        validate = fastjsonschema.compile(
            schema, handlers=_NoRemoteRefs(), use_default=False, detailed_exceptions=True
        )
        patterns = tuple(re.compile(p) for p in schema.get("patternProperties") or {})
        declared = frozenset(schema.get("properties") or {})
    except _SCHEMA_ERRORS as e:
        raise InvalidRequest(
            f"{where} is not a valid JSON Schema: {e}. Fix it and send the plan again."
        ) from e
    trivial = not (set(schema) - _ANNOTATIONS - {"type"})
    extra = schema.get("additionalProperties", False)
    return _Entry(
        kind,
        label,
        field,
        None if trivial else validate,
        None if extra is not False else declared,
        patterns,
    )


_FUZZY_LIMIT = 200
_NOT_ALNUM = re.compile(r"[\W_]+")


def _fold(name: str) -> str:
    """``order_completed`` and ``Order Completed`` fold alike (for "did you mean")."""
    return _NOT_ALNUM.sub("", name).casefold()


def _pointer(field: str, name: str | None) -> str:
    """``data.items[0].price`` → ``/properties/items/*/price`` (indices folded: few rules)."""
    path = re.sub(r"\[\d+\]", ".*", (name or "data")[4:])
    parts = [p.replace("~", "~0").replace("/", "~1") for p in path.split(".") if p]
    return "/" + "/".join([field, *parts])


class CompiledPlan:
    """A tracking plan ready for the hot path (implements :class:`PlanChecker`)."""

    def __init__(self, spec: TrackingPlanSpec, *, source: str) -> None:
        """Compile every schema of ``spec``. Raises InvalidRequest on a bad plan."""
        self.source = source
        self.mode = spec.mode
        self.block_invalid = spec.block_invalid
        self._omit = spec.mode is PlanMode.omit_unplanned_properties
        self._track: dict[str, _Entry] = {}
        self._other: dict[str, _Entry] = {}
        self._unplanned: dict[str, PlanVerdict] = {}
        self._lock = threading.Lock()
        for i, e in enumerate(spec.events):
            label = e.name if e.type == "track" else e.type
            if e.type == "track" and not e.name:
                raise InvalidRequest(f'Plan entry {i} is a track event without a name: add "name".')
            if e.type != "track" and e.name is not None:
                raise InvalidRequest(
                    f"Plan entry {i} ({e.type} {e.name!r}) has a name; {e.type}"
                    f" entries have none: one entry checks every {e.type} call."
                )
            if (e.traits if e.type != "group" else e.properties) is not None:
                right = "traits" if e.type == "group" else "properties"
                raise InvalidRequest(
                    f"Plan entry {i} ({label!r}) is a {e.type} entry: give its schema as {right!r}."
                )
            bucket = self._track if e.type == "track" else self._other
            key = e.name if e.type == "track" else e.type
            assert key is not None and label is not None
            if key in bucket:
                raise InvalidRequest(f"The plan lists {label!r} twice: merge the two entries.")
            schema = e.traits if e.type == "group" else e.properties
            bucket[key] = _compile_entry(e.type, label, schema)
        self._folded = {_fold(name): name for name in self._track}
        self._identify = (
            _compile_entry("identify", "identify", spec.identify_traits)
            if spec.identify_traits is not None
            else None
        )

    def check(
        self, kind: str, event: str | None, properties: bytes | None, traits: dict[str, Any] | None
    ) -> PlanVerdict:
        """What the plan says of one message (see the module docstring for the rules)."""
        entry: _Entry | None
        if kind == "track":
            entry = self._track.get(event or "")
            if entry is None:
                return self._unplanned_event(event or "")
        else:
            entry = self._identify if kind == "identify" else self._other.get(kind)
            if entry is None:
                return _OK
        if entry.field == "traits":
            return self._validate(entry, traits or {}, None, [])
        omit = self._omit and entry.declared is not None
        if entry.validate is None and not omit:
            return _OK
        try:
            data = _decode(properties) if properties else {}
        except msgspec.DecodeError:  # normalize hands over valid JSON; stay safe regardless
            data = None
        if not isinstance(data, dict):
            rule = f"schema:{entry.label}:/properties type"
            bad = Violation(
                "invalid_properties",
                rule,
                f"Event {entry.label!r}: properties must be a JSON object.",
            )
            return PlanVerdict((bad,), block=self.block_invalid)
        violations: list[Violation] = []
        replaced = None
        if omit and (extra := entry.undeclared(data)):
            data = {k: v for k, v in data.items() if k not in extra}
            replaced = _encode(data)
            names = ", ".join(repr(k) for k in extra[:20])
            violations.append(
                Violation(
                    "unplanned_properties",
                    f"unplanned_properties:{entry.label}",
                    f"Event {entry.label!r} carried properties its plan does not declare, removed"
                    f" before storing: {names}. Add them to the event's schema to keep them.",
                )
            )
        return self._validate(entry, data, replaced, violations)

    def _validate(
        self, entry: _Entry, data: dict[str, Any], replaced: bytes | None, found: list[Violation]
    ) -> PlanVerdict:
        block = False
        if entry.validate is not None:
            try:
                entry.validate(data)
            except fastjsonschema.JsonSchemaValueException as e:
                found.append(self._schema_violation(entry, e))
                block = self.block_invalid
        if not found:
            return _OK
        return PlanVerdict(tuple(found), block=block, properties=replaced)

    def _schema_violation(
        self, entry: _Entry, e: fastjsonschema.JsonSchemaValueException
    ) -> Violation:
        pointer = _pointer(entry.field, e.name)
        what = (e.name or "data").replace("data", entry.field, 1)
        if e.rule == "required" and isinstance(e.value, dict):
            missing = [k for k in e.rule_definition or () if k not in e.value]
            problem = f"{what} lacks required {', '.join(repr(k) for k in missing)}"
        else:
            got = orjson.dumps(e.value, default=str).decode()
            got = got if len(got) <= 60 else got[:57] + "..."
            problem = f"{e.message.replace('data', entry.field, 1)} (got {got})"
        subject = "Event" if entry.kind == "track" else "Call"
        outcome = (
            "It was rejected: fix the sender, or change the plan and replay the dead letter."
            if self.block_invalid
            else "It was stored and flagged: fix the sender, or change the plan."
        )
        return Violation(
            f"invalid_{entry.field}",
            f"schema:{entry.label}:{pointer} {e.rule}",
            f"{subject} {entry.label!r} breaks its tracking-plan schema: {problem}. {outcome}",
        )

    def _unplanned_event(self, event: str) -> PlanVerdict:
        if self.mode is PlanMode.allow_all:
            return _OK
        verdict = self._unplanned.get(event)
        if verdict is None:
            block = self.mode is PlanMode.block_unplanned
            near = [self._folded[_fold(event)]] if _fold(event) in self._folded else []
            if not near and len(self._track) <= _FUZZY_LIMIT:  # difflib is O(plan) per name
                near = difflib.get_close_matches(event, list(self._track), n=1, cutoff=0.75)
            fix = "Fix the sender"
            if near:
                fix = f"Did you mean {near[0]!r}? Fix the name in the sender"
            fix += ", or add the event to the plan" + (
                " and replay this dead letter." if block else "."
            )
            what = "rejected" if block else "stored and flagged"
            message = f"Event {event!r} is not in source {self.source}'s tracking plan: {what}."
            violation = Violation("unplanned_event", f"unplanned_event:{event}", f"{message} {fix}")
            verdict = PlanVerdict((violation,), block=block)
            with self._lock:
                if len(self._unplanned) >= 1024:
                    self._unplanned.clear()
                self._unplanned[event] = verdict
        return verdict


# --- service ----------------------------------------------------------------------------

_compiled: dict[str, tuple[tuple[str, bool, str], CompiledPlan]] = {}
_compiled_lock = threading.Lock()


def _spec(mode: str, block_invalid: bool, plan: str) -> TrackingPlanSpec:
    return TrackingPlanSpec(mode=PlanMode(mode), block_invalid=block_invalid, **orjson.loads(plan))


def compiled(db: Session, *, tenant: str, source: str) -> PlanChecker | None:
    """The source's plan compiled for the hot path, or None when it has none.

    Compiles only when the stored plan changed since the last call.
    """
    row = db.one(q.GET_PLAN, [tenant, source])
    if row is None:
        return None
    fingerprint = (str(row[0]), bool(row[1]), str(row[2]))
    hit = _compiled.get(source)
    if hit is not None and hit[0] == fingerprint:
        return hit[1]
    plan = CompiledPlan(_spec(*fingerprint), source=source)
    with _compiled_lock:
        _compiled[source] = (fingerprint, plan)
    return plan


def _stored(db: Session, *, tenant: str, source: str) -> TrackingPlan | None:
    row = db.one(q.GET_PLAN, [tenant, source])
    if row is None:
        return None
    spec = _spec(str(row[0]), bool(row[1]), str(row[2]))
    return TrackingPlan(tenant_id=tenant, source_id=source, updated_at=row[3], **spec.model_dump())


def get_plan(db: Session, *, tenant: str, source: str) -> TrackingPlan:
    """A source's tracking plan. Raises NotFound (no such source, or no plan)."""
    tenancy.get_source(db, tenant=tenant, source=source)
    plan = _stored(db, tenant=tenant, source=source)
    if plan is None:
        raise NotFound(
            f"Source {source} has no tracking plan: every event is accepted as sent."
            " Create one with PUT .../tracking-plan."
        )
    return plan


def set_plan(
    db: Session,
    spec: TrackingPlanSpec,
    *,
    tenant: str,
    source: str,
    actor: str,
    request_id: str | None = None,
) -> TrackingPlan:
    """Create or replace a source's plan, after compiling every schema in it.

    Raises:
        InvalidRequest: a schema does not compile, or the entries contradict each other.
        NotFound: the tenant has no such source.
    """
    tenancy.get_source(db, tenant=tenant, source=source)
    CompiledPlan(spec, source=source)
    body = spec.model_dump(mode="json", include={"events", "identify_traits"}, exclude_none=True)
    plan = TrackingPlan(
        tenant_id=tenant, source_id=source, updated_at=utcnow(), **spec.model_dump()
    )
    with db.transaction():
        before = _stored(db, tenant=tenant, source=source)
        db.execute(q.DELETE_PLAN, [tenant, source])
        db.execute(
            q.INSERT_PLAN,
            [
                tenant,
                source,
                spec.mode.value,
                spec.block_invalid,
                orjson.dumps(body).decode(),
                plan.updated_at,
            ],
        )
        tenancy.audit(
            db,
            actor=actor,
            action="tracking_plan.set",
            target=plan,
            target_type="tracking_plan",
            target_id=source,
            tenant=tenant,
            before=before,
            request_id=request_id,
        )
    return plan


def delete_plan(
    db: Session, *, tenant: str, source: str, actor: str, request_id: str | None = None
) -> TrackingPlan:
    """Remove a source's plan (every event is then accepted as sent); return what it was."""
    with db.transaction():
        plan = get_plan(db, tenant=tenant, source=source)
        db.execute(q.DELETE_PLAN, [tenant, source])
        tenancy.audit(
            db,
            actor=actor,
            action="tracking_plan.delete",
            target=None,
            target_type="tracking_plan",
            target_id=source,
            tenant=tenant,
            before=plan,
            request_id=request_id,
        )
    return plan
