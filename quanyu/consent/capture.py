"""Consent captured from tracking events, so existing SDK integrations record decisions.

After identity has resolved an event, capture reads two forms of decision from it and
appends them to the ledger (origin ``event``, with the event's source and messageId),
telling subscribers in the same transaction:

1. **Segment's consent object.** ``context.consent.categoryPreferences``, e.g.
   ``{"Advertising": true, "Analytics": false}``, on any event. Each category speaks
   for the purposes that list it in ``categories`` (case-insensitive), on every channel
   (``*``), never as separate consent. ``true`` records ``granted``; ``false`` records
   ``withdrawn`` when the person's identifiers ever granted the purpose, else
   ``denied``. SDKs send the object on every call, so a preference is recorded only
   when it differs from the person's current word for the purpose on channel ``*``
   (read as said: a grant counts as a grant even where the purpose needs separate
   consent, so an unchanged preference never appends again; an expired grant is
   renewed).
2. **The ``Consent Updated`` track event** (Quanyu's documented form), properties::

       {"purpose": "marketing",        # purpose id or key (required)
        "status": "granted",           # granted | denied | withdrawn (required)
        "channel": "sms",              # default "*"
        "separate": false,             # given as separate consent (单独同意)
        "notice_version": "1", "surface": "mini_program",
        "actor": "self",               # self | guardian | agent | system
        "evidence": "sha256:..."}      # a hash or reference, no personal data

   It is always recorded. One that cannot be (unknown purpose, bad status, channel or
   surface, a grant missing separate consent, a child's own grant, no identifier) is
   kept as a *flagged* dead letter of its source (code ``consent_invalid``, the reason
   in words, the properties as payload): the event itself stays stored, its decision is
   not recorded, and ``GET /v1/dead-letters`` shows why.

The subject is the identifier the event hangs on; the entry covers every identifier of
that person at capture time; ``decided_at`` is the event's timestamp; the surface is the
event's ``surface`` property, else the kind of its source (``mini_program``, ``pos`` …),
else ``app``.

**Exactly once.** ``consent_state.captured_seq`` is the last commit read; entries, dead
letters, dropped events and the cursor commit in one transaction, and only commits
identity has resolved are read, so a restart never appends twice and never skips.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from quanyu.background import Periodic
from quanyu.consent import capture_sql as cq
from quanyu.consent import ledger, propagate, service
from quanyu.consent.collection import collecting_purposes, withheld
from quanyu.consent.ledger import Covered, NewEntry, Rules
from quanyu.consent.models import CHANNELS, SURFACES, Purpose, Status
from quanyu.engine import Engine, Session
from quanyu.errors import NotFound, QuanyuError, ValidationFailed
from quanyu.ids import new_id, utcnow
from quanyu.ingest import sql as ingest_sql

log = logging.getLogger("quanyu.consent.capture")
#: One pass at a time in a process: two would read the same events.
_LOCK = threading.Lock()

EVENT = "Consent Updated"
STATUSES = ("granted", "denied", "withdrawn")
ACTORS = ("self", "guardian", "agent", "system")
#: The capture surface of each source kind; other kinds capture as ``app``.
SOURCE_SURFACES = {
    "mini_program": "mini_program", "official_account": "official_account", "pos": "pos",
    "flash_store": "pos", "qr": "qr_scan", "web": "web", "app": "app", "ecommerce": "web",
    "tmall": "web",
}  # fmt: skip
_DL_SCHEMA = pa.schema(
    [(c, pa.timestamp("us") if c == "received_at" else pa.string()) for c in (
        "id", "tenant_id", "source_id", "received_at", "message_id", "event_type", "event",
        "code", "reason", "rule", "disposition", "status", "payload")]
)  # fmt: skip


@dataclass
class Captured:
    """What one capture pass of one tenant did."""

    tenant: str
    after: int
    upto: int
    entries: int = 0
    invalid: int = 0
    dropped: int = 0


@dataclass
class _Person:
    """One person's identifiers and the entries covering them, as capture goes."""

    keys: list[str]
    covered: list[Covered] = field(default_factory=list)


def capture_pending(engine: Engine) -> int:
    """Capture the consent in every tenant's resolved, uncaptured events.

    Returns:
        The number of ledger entries appended (0 when nothing was pending).

    Raises:
        The first tenant's error, once every other tenant had its pass.
    """
    appended, failed = 0, None
    with engine.connect() as db:
        for tenant, *_ in db.execute(cq.BEHIND):
            try:
                appended += capture_tenant(db, tenant=str(tenant)).entries
            except Exception as e:  # noqa: BLE001 - one tenant's failure must not stop the rest
                log.exception("consent capture of tenant %s failed", tenant)
                failed = failed or e
    if failed is not None:
        raise failed
    return appended


#: Up to this many identifiers, a pass looks them up by id; beyond, it joins them all.
_FEW_NODES = 2_000
#: Tenants this process gave their default entity and purposes (a pass checks once).
_DEFAULTS_MADE: set[str] = set()


def capture_tenant(db: Session, *, tenant: str) -> Captured:
    """Capture one tenant's resolved, uncaptured events (see the module docstring)."""
    with _LOCK:
        return _capture(db, tenant)


def _dropping(db: Session, tenant: str) -> bool:
    """Whether some purpose's collection policy drops the events of people without it."""
    return bool(collecting_purposes(db, tenant=tenant, policies=("drop",)))


def _move_on(db: Session, tenant: str, after: int, upto: int) -> None:
    """Only move the cursor on to ``upto`` (unless another pass moved it meanwhile): one
    compare-and-set update, the pass's only write when its events said nothing. Under
    the tenant's log lock, as every update of its ``consent_state`` row is, so it queues
    behind a canary seed or a settings change instead of conflicting with it."""
    with ledger.row_lock(tenant):
        db.execute(cq.MOVE_CAPTURED, [upto, utcnow(), tenant, after])


def _capture(db: Session, tenant: str) -> Captured:
    if tenant not in _DEFAULTS_MADE:  # entities and purposes are never deleted
        service.ensure_defaults(db, tenant=tenant)
        _DEFAULTS_MADE.add(tenant)
    progress = db.one(cq.PROGRESS, [tenant, tenant])
    upto = int(progress[0] or 0) if progress else 0
    after = int(progress[1] or 0) if progress else 0
    done = Captured(tenant, after, max(after, upto))
    if upto <= after:
        return done
    if not db.execute(cq.ANY_CARRYING, [tenant, after, upto]) and not _dropping(db, tenant):
        _move_on(db, tenant, after, upto)  # nothing said, nothing to drop
        return done
    with db.transaction():  # one snapshot: a person the rows name is a person read here
        nodes = [int(n) for (n,) in db.execute(cq.CANDIDATE_NODES, [tenant, after, upto] * 2)]
        if len(nodes) > _FEW_NODES:
            rows = db.execute(cq.CANDIDATES_MANY, [tenant, tenant, tenant, tenant, after, upto])
        else:
            rows = db.execute(
                cq.CANDIDATES, [tenant, after, upto, tenant, nodes, tenant, tenant, after, upto]
            )
        people = _people(db, tenant, {int(r[11]) for r in rows if r[11] is not None})
    if not rows and not _dropping(db, tenant):
        _move_on(db, tenant, after, upto)  # nothing said, nothing to drop
        return done
    purposes = service.list_purposes(db, tenant=tenant)
    guardian = service.get_settings(db, tenant=tenant).guardian_under
    entries: list[NewEntry] = []
    letters: list[dict[str, Any]] = []
    for r in rows:
        event = dict(zip(("source_id", "message_id", "commit_seq", "timestamp", "type",
                          "event", "properties", "prefs", "node_id", "key", "id_type",
                          "profile_id", "kind"), r, strict=True))  # fmt: skip
        if event["type"] == "track" and event["event"] == EVENT:
            try:
                made = [_updated(db, tenant, event, purposes, people, guardian)]
            except QuanyuError as err:
                letters.append(_letter(tenant, event, err.message))
                continue
        else:
            made = _preferences(event, purposes, people)
        for entry in made:
            _remember(people, entry)
        entries.extend(made)
    now = utcnow()
    with ledger.appending(db, tenant):
        again = db.one(cq.PROGRESS, [tenant, tenant])
        if again is None or int(again[1] or 0) != after:
            return done  # another pass (another process's API call) got there first
        stored = ledger.append(db, tenant, entries)
        propagate.announce(db, tenant, stored)
        if letters:
            table = pa.Table.from_pylist(letters, schema=_DL_SCHEMA)
            db.with_table("staged_dead_letters", table, ingest_sql.INSERT_DEAD_LETTERS)
        done.dropped = _drop(db, tenant)
        db.execute(cq.SET_CAPTURED, [upto, now, tenant])
    done.entries, done.invalid = len(stored), len(letters)
    if letters or done.dropped:
        log.info(
            "consent capture of tenant %s: %d entries, %d invalid, %d events dropped",
            tenant, done.entries, done.invalid, done.dropped,
        )  # fmt: skip
    return done


def _people(db: Session, tenant: str, profiles: set[int]) -> dict[int, _Person]:
    if not profiles:
        return {}
    staged = pa.table({"profile_id": pa.array(sorted(profiles), pa.int64())})
    db.register("consent_capture_persons", staged)
    try:
        people: dict[int, _Person] = {}
        for profile, key in db.execute(cq.PERSON_KEYS, [tenant]):
            people.setdefault(profile, _Person([])).keys.append(key)
        for profile, *entry in db.execute(cq.PERSON_COVERED, [tenant, tenant, tenant]):
            # (key, seq, purpose, channel, status, separate, decided_at): Covered's order
            people[profile].covered.append(Covered._make(entry))
    finally:
        db.unregister("consent_capture_persons")
    return people


def _remember(people: dict[int, _Person], e: NewEntry) -> None:
    """Let later events of the pass see an entry not appended yet (its seq is unknown,
    but it is newer than any stored one)."""
    if e.profile_id is None:
        return
    # (a person merged into another since the pass read it: new)
    covered = people.setdefault(e.profile_id, _Person([])).covered
    for key in e.covers:
        fake = (1 << 62) + len(covered)
        covered.append(
            Covered(key, fake, e.purpose_id, e.channel, e.status, e.separate, e.decided_at)
        )


def _surface(event: dict[str, Any], given: object = None) -> str:
    if isinstance(given, str):
        return given
    return SOURCE_SURFACES.get(str(event["kind"]), "app")


def _entry(event: dict[str, Any], people: dict[int, _Person], **kw: Any) -> NewEntry:
    profile = int(event["profile_id"])
    return NewEntry(
        decided_at=ledger.naive(event["timestamp"]), subject_key=str(event["key"]),
        subject_type=str(event["id_type"]), profile_id=profile, origin="event",
        recorded_by=f"source:{event['source_id']}", covers=list(people[profile].keys),
        source_id=str(event["source_id"]), message_id=str(event["message_id"]), **kw,
    )  # fmt: skip


def _preferences(
    event: dict[str, Any], purposes: list[Purpose], people: dict[int, _Person]
) -> list[NewEntry]:
    """Entries for the categories whose preference differs from the person's word."""
    if event["profile_id"] is None or event["node_id"] is None or int(event["node_id"]) < 0:
        return []
    try:
        prefs = orjson.loads(event["prefs"] or "null")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(prefs, dict):
        return []
    wanted: dict[str, bool] = {}
    for category, value in prefs.items():
        if not isinstance(value, bool):
            continue
        for p in purposes:
            if str(category).lower() in p.categories:
                # several categories on one purpose: a refusal wins
                wanted[p.id] = wanted.get(p.id, True) and value
    person = people[int(event["profile_id"])]
    now = max(utcnow(), ledger.naive(event["timestamp"]))
    out = []
    for p in purposes:
        if p.id not in wanted:
            continue
        said = ledger.state_of(person.covered, p.id, "*", Rules(False, p.valid_days), now)
        if wanted[p.id]:
            if said.status is Status.granted:
                continue
            status = "granted"
        else:
            if said.status in (Status.denied, Status.withdrawn):
                continue
            ever = any(c.purpose_id == p.id and c.status == "granted" for c in person.covered)
            status = "withdrawn" if ever else "denied"
        out.append(_entry(event, people, purpose_id=p.id, channel="*", status=status,
                          surface=_surface(event), actor="self"))  # fmt: skip
    return out


def _updated(
    db: Session,
    tenant: str,
    event: dict[str, Any],
    purposes: list[Purpose],
    people: dict[int, _Person],
    guardian_under: int | None,
) -> NewEntry:
    """The entry of a ``Consent Updated`` event; raises naming what is wrong with it."""
    try:
        props = orjson.loads(event["properties"] or "{}")
    except orjson.JSONDecodeError:
        props = None
    if not isinstance(props, dict):
        raise ValidationFailed(f"{EVENT} needs properties as a JSON object with purpose and status")
    ref, status = props.get("purpose"), props.get("status")
    if not isinstance(ref, str) or not ref:
        raise ValidationFailed(
            f"{EVENT} needs properties.purpose (a purpose id or key, one of"
            f" {', '.join(p.id for p in purposes)})"
        )
    if status not in STATUSES:
        raise ValidationFailed(
            f"{EVENT} properties.status {status!r} is not one of {', '.join(STATUSES)}"
        )
    actor = props.get("actor", "self")
    if actor not in ACTORS:
        raise ValidationFailed(
            f"{EVENT} properties.actor {actor!r} is not one of {', '.join(ACTORS)}"
        )
    if event["profile_id"] is None or event["node_id"] is None or int(event["node_id"]) < 0:
        raise ValidationFailed(
            f"{EVENT} carried no usable identifier: send it with a userId, anonymousId or"
            " context identifiers so the decision has a subject"
        )
    surface = _surface(event, props.get("surface"))
    purpose = _purpose(purposes, ref, tenant)
    channel, separate = props.get("channel", "*"), props.get("separate", False)
    notice = props.get("notice_version")
    evidence = props.get("evidence")
    if not isinstance(separate, bool):
        raise ValidationFailed(f"{EVENT} properties.separate {separate!r} must be true or false")
    for name, value in (("channel", channel), ("notice_version", notice), ("evidence", evidence)):
        if value is not None and not isinstance(value, str):
            raise ValidationFailed(f"{EVENT} properties.{name} {value!r} must be a string")
    if channel not in CHANNELS:
        raise ValidationFailed(
            f"{EVENT} properties.channel {channel!r} is unknown: use one of {', '.join(CHANNELS)}"
        )
    if surface not in SURFACES:
        raise ValidationFailed(
            f"{EVENT} properties.surface {surface!r} is unknown: use one of {', '.join(SURFACES)}"
        )
    if notice is not None and notice not in purpose.notices:
        raise ValidationFailed(
            f"{EVENT} properties.notice_version {notice!r} is not a notice of purpose"
            f" {purpose.id} (it has {purpose.notices or 'none'}): add it first"
        )
    if status == "granted" and purpose.separate_consent and not separate:
        raise ValidationFailed(
            f"purpose {purpose.id} needs separate consent (单独同意): send the grant with"
            " separate=true once the person agreed to this purpose on its own"
        )
    profile = int(event["profile_id"])
    if status == "granted" and actor != "guardian" and guardian_under is not None:
        age = _age(db, tenant, profile)
        if age is not None and age < guardian_under:
            raise ValidationFailed(
                f"the person is {age}, under {guardian_under}: only a guardian may consent"
                " for them; send the guardian's consent with actor='guardian'"
            )
    return _entry(event, people, purpose_id=purpose.id, channel=channel, status=status,
                  surface=surface, actor=actor, separate=separate, notice_version=notice,
                  evidence=evidence[:200] if evidence else None)  # fmt: skip


def _purpose(purposes: list[Purpose], ref: str, tenant: str) -> Purpose:
    """A purpose by id, or by a key one entity declares (as service.get_purpose)."""
    found = [p for p in purposes if p.id == ref] or [p for p in purposes if p.key == ref]
    if len(found) > 1:
        raise ValidationFailed(
            f"purpose {ref!r} is declared by several legal entities: name one of"
            f" {', '.join(p.id for p in found)}"
        )
    if not found:
        raise NotFound(
            f"Tenant {tenant} has no purpose {ref!r}: declared purposes are"
            f" {', '.join(p.id for p in purposes)}"
        )
    return found[0]


def _age(db: Session, tenant: str, profile: int) -> int | None:
    from quanyu.profiles.service import get_profile

    view = get_profile(db, tenant=tenant, profile_id=profile, history_limit=1)
    return service.age_on({k: t.value for k, t in view.traits.items()}, utcnow().date())


def _letter(tenant: str, event: dict[str, Any], reason: str) -> dict[str, Any]:
    payload = {"type": event["type"], "event": event["event"], "messageId": event["message_id"],
               "properties": orjson.loads(event["properties"] or "null")}  # fmt: skip
    return {
        "id": new_id("dl"), "tenant_id": tenant, "source_id": event["source_id"],
        "received_at": utcnow(), "message_id": event["message_id"], "event_type": event["type"],
        "event": event["event"], "code": "consent_invalid",
        "reason": f"The consent decision was not recorded: {reason}. The event itself is"
        f" stored; send a corrected {EVENT} event.",
        "rule": None, "disposition": "flagged", "status": "flagged",
        "payload": orjson.dumps(payload).decode(),
    }  # fmt: skip


def _drop(db: Session, tenant: str) -> int:
    """Delete the events the ``drop`` policy withholds; returns how many went."""
    held = withheld(db, tenant, policies=("drop",))
    if held.num_rows == 0:
        return 0
    db.register("consent_withheld", held)
    try:
        doomed = db.arrow(cq.WITHHELD_EVENTS, [tenant, tenant])
    finally:
        db.unregister("consent_withheld")
    if doomed.num_rows == 0:
        return 0
    db.with_table("consent_dropped", doomed, cq.DROP_EVENT_NODES, [tenant])
    db.with_table("consent_dropped", doomed, cq.DROP_EVENTS, [tenant])
    return int(doomed.num_rows)


class Capturer(Periodic):
    """A daemon thread capturing consent from events whenever identity resolved more
    (woken by :meth:`notify`, and every ``interval`` seconds regardless)."""

    failure = "consent capture failed; retrying on the next pass"

    def __init__(
        self, engine: Engine, *, interval: float = 5.0, on_change: Callable[[], None] | None = None
    ) -> None:
        super().__init__(interval=interval, name="quanyu-consent")
        self._engine = engine
        self._on_change = on_change

    def notify(self, *_: object) -> None:
        """Run a pass now (the resolver calls this after resolving events)."""
        self.poke()

    def run_once(self) -> int:
        """One pass over every tenant behind; returns the entries appended."""
        try:
            appended = capture_pending(self._engine)
        finally:
            self.passes += 1
        if appended and self._on_change is not None:
            self._on_change()  # subscribers hear of the new entries at once
        return appended
