"""The consent ledger: appending entries, and reading a person's state from them.

**The rule.** An entry covers every identifier its subject's person had when it was
recorded (``consent_subjects``). For one purpose and channel, each identifier's
*word* is the latest entry covering it (by ``decided_at``, then ``seq``) among the
entries for that channel and for every channel (``*``). A person's state is the most
restrictive word among their identifiers' words (withdrawn > denied > expired, unknown
> granted), and the state is *in conflict* when the words differ.

So a person who speaks once, as one person, speaks for all their identifiers; when two
people merge, each side keeps its own word and the stricter one wins until the merged
person speaks again (the conflict says to ask them); when a person is split, each side
reads its own identifiers' words, which are its own history. A person with no word is
``unknown``, which blocks every consent-based use.

A grant for a purpose that needs separate consent (单独同意) counts only when it was given
as separate consent; otherwise it reads as ``unknown``. A grant older than the purpose's
``valid_days`` reads as ``expired``.

:func:`states_of` applies the rule in Python to one person's entries (the 360 view, the
API); :data:`quanyu.consent.sql.STATES` applies it in SQL to a whole tenant
(enforcement). Tests hold the two to the same answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from quanyu.consent import sql as q
from quanyu.consent.models import RESTRICTIVENESS, Entry, State, Status
from quanyu.engine import Session
from quanyu.identity.models import format_oneid
from quanyu.ids import new_id, utcnow
from quanyu.ledger import service as merkle_log

LEDGER_COLUMNS = (
    "tenant_id", "seq", "id", "purpose_id", "channel", "status", "separate", "notice_version",
    "decided_at", "recorded_at", "surface", "actor", "evidence", "subject_key", "subject_type",
    "profile_id", "origin", "source_id", "message_id", "recorded_by", "leaf_hash",
)  # fmt: skip


@dataclass
class NewEntry:
    """A decision about to be appended. ``covers`` are the identifier keys it speaks
    for (the subject's person's identifiers; at least the subject's own key)."""

    purpose_id: str
    channel: str
    status: str
    decided_at: datetime
    surface: str
    actor: str
    subject_key: str
    subject_type: str
    profile_id: int | None
    origin: str
    recorded_by: str
    covers: list[str] = field(default_factory=list)
    separate: bool = False
    notice_version: str | None = None
    evidence: str | None = None
    source_id: str | None = None
    message_id: str | None = None


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON of an object of strings, integers, booleans and nulls
    with ASCII keys: members sorted, no insignificant whitespace, UTF-8."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def subject_digest(key: str) -> str:
    """What the ledger keeps of a subject: a SHA-256 of its identifier's graph key (the
    key itself, which for user ids and openids holds the value, stays in
    ``consent_subjects``, where an erasure can reach it without touching the ledger)."""
    if key.startswith("sha256:"):  # a stored entry's subject: digested already
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def leaf_hash(data: bytes) -> str:
    """RFC 9162 leaf hash, SHA-256(0x00 || data), in hex."""
    return hashlib.sha256(b"\x00" + data).hexdigest()


def leaf_data(tenant: str, seq: int, e: NewEntry, entry_id: str, recorded_at: datetime) -> bytes:
    """The canonical JSON a ledger entry's leaf hashes: the entry without personal data
    (the subject is a digest of its identifier's graph key)."""
    return canonical(
        {
            "kind": "consent",
            "tenant": tenant,
            "seq": seq,
            "id": entry_id,
            "purpose": e.purpose_id,
            "channel": e.channel,
            "status": e.status,
            "separate": e.separate,
            "notice": e.notice_version,
            "decided_at": _iso(e.decided_at),
            "recorded_at": _iso(recorded_at),
            "surface": e.surface,
            "actor": e.actor,
            "evidence": e.evidence,
            "subject": subject_digest(e.subject_key),
        }
    )


def naive(t: datetime) -> datetime:
    """``t`` as naive UTC (how the database stores times)."""
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="microseconds") + "Z"


@contextmanager
def appending(db: Session, tenant: str) -> Iterator[None]:
    """The transaction to append entries in: it holds the tenant's Merkle log lock, so
    the entries' leaves queue behind other appends to the log instead of conflicting.
    Every update of the tenant's ``consent_state`` row is made inside it too (settings,
    the capture cursor, canary seeds) or under its lock (:func:`row_lock`), so those
    queue rather than conflict as well."""
    with merkle_log.appending(db, tenant), db.transaction():
        yield


def row_lock(tenant: str) -> AbstractContextManager[bool]:
    """The lock :func:`appending` holds, for a single-statement update of the tenant's
    ``consent_state`` row made outside a transaction (committed before it is released)."""
    return merkle_log.log_lock(tenant)


def append(db: Session, tenant: str, entries: Sequence[NewEntry]) -> list[Entry]:
    """Append entries in the caller's transaction (open it with :func:`appending`,
    around this call and whatever must commit with it). Numbers them densely per tenant
    and appends each entry's leaf (its hash only) to the tenant's Merkle log.

    Does not tell subscribers: :func:`quanyu.consent.service.record` and the event
    capture do, in the same transaction.
    """
    if not entries:
        return []
    now = utcnow()
    row = db.one(q.NEXT_SEQ, [tenant])
    first = int(row[0]) if row else 1
    if row is None:
        db.execute(q.INSERT_STATE, [tenant, first + len(entries), now])
    else:
        db.execute(q.SET_NEXT_SEQ, [first + len(entries), now, tenant])
    cols: dict[str, list[Any]] = {c: [] for c in LEDGER_COLUMNS}
    subjects: dict[str, list[Any]] = {"tenant_id": [], "seq": [], "key": []}
    stored: list[Entry] = []
    for i, e in enumerate(entries):
        seq = first + i
        entry_id = new_id("cst")
        leaf = leaf_hash(leaf_data(tenant, seq, e, entry_id, now))
        values = {
            "tenant_id": tenant, "seq": seq, "id": entry_id, "purpose_id": e.purpose_id,
            "channel": e.channel, "status": e.status, "separate": e.separate,
            "notice_version": e.notice_version, "decided_at": e.decided_at, "recorded_at": now,
            "surface": e.surface, "actor": e.actor, "evidence": e.evidence,
            "subject_key": subject_digest(e.subject_key), "subject_type": e.subject_type,
            "profile_id": e.profile_id, "origin": e.origin, "source_id": e.source_id,
            "message_id": e.message_id, "recorded_by": e.recorded_by, "leaf_hash": leaf,
        }  # fmt: skip
        for c in LEDGER_COLUMNS:
            cols[c].append(values[c])
        for key in dict.fromkeys([e.subject_key, *e.covers]):
            subjects["tenant_id"].append(tenant)
            subjects["seq"].append(seq)
            subjects["key"].append(key)
        stored.append(_entry(tuple(values[c] for c in LEDGER_COLUMNS[1:])))
    schema = pa.schema(
        [(c, pa.int64() if c in ("seq", "profile_id") else pa.string()) for c in LEDGER_COLUMNS]
    )
    schema = schema.set(schema.get_field_index("separate"), pa.field("separate", pa.bool_()))
    for c in ("decided_at", "recorded_at"):
        schema = schema.set(schema.get_field_index(c), pa.field(c, pa.timestamp("us")))
    db.with_table("staged_consent_ledger", pa.table(cols, schema=schema), q.INSERT_LEDGER)
    db.with_table("staged_consent_subjects", pa.table(subjects), q.INSERT_SUBJECTS)
    merkle_log.append(db, tenant, [
        merkle_log.Leaf("consent", f"consent:{e.seq}", bytes.fromhex(e.leaf_hash))
        for e in stored
    ])  # fmt: skip
    return stored


def _entry(r: tuple[Any, ...]) -> Entry:
    """An :class:`Entry` from a row in ``LEDGER_COLUMNS`` order, tenant left out."""
    (seq, entry_id, purpose, channel, status, separate, notice, decided, recorded, surface,
     actor, evidence, _key, subject_type, profile, origin, source, message, _by,
     leaf) = r  # fmt: skip
    return Entry.model_construct(  # the row's own values, typed as stored: no validation
        seq=seq, id=entry_id, purpose_id=purpose, channel=channel, status=status,
        separate=separate, notice_version=notice, decided_at=decided, recorded_at=recorded,
        surface=surface, actor=actor, evidence=evidence, subject_type=subject_type,
        profile=format_oneid(profile) if profile is not None else None, origin=origin,
        source_id=source, message_id=message, leaf_hash=leaf,
    )  # fmt: skip


# --- reading one person ------------------------------------------------------------------


class Covered(NamedTuple):
    """An entry as one identifier sees it (what :func:`states_of` reads). A named tuple:
    a capture pass makes one per identifier of every entry it reads or appends, and a
    tuple is made in a third of a frozen dataclass's time."""

    key: str
    seq: int
    purpose_id: str
    channel: str
    status: str
    separate: bool
    decided_at: datetime


@dataclass(frozen=True)
class Rules:
    """What a purpose's rules do to a grant: separate consent and validity."""

    separate_consent: bool
    valid_days: int | None


def effective(
    status: str, separate: bool, decided_at: datetime, rules: Rules, now: datetime
) -> Status:
    """An entry's word once its purpose's rules are applied."""
    if status != Status.granted:
        return Status(status)
    if rules.separate_consent and not separate:
        return Status.unknown
    if rules.valid_days is not None and decided_at + timedelta(days=rules.valid_days) < now:
        return Status.expired
    return Status.granted


def state_of(
    covered: Iterable[Covered], purpose_id: str, channel: str, rules: Rules, now: datetime
) -> State:
    """One person's state for a purpose and channel from the entries covering their
    identifiers (the rule in the module docstring)."""
    now = naive(now)
    words: dict[str, Covered] = {}
    for c in covered:
        if c.purpose_id != purpose_id or c.channel not in (channel, "*") or c.decided_at > now:
            continue
        best = words.get(c.key)
        if best is None or (c.decided_at, c.seq) > (best.decided_at, best.seq):
            words[c.key] = c
    if not words:
        return State(purpose_id=purpose_id, channel=channel, status=Status.unknown,
                     conflict=False, entry_seq=None, decided_at=None)  # fmt: skip
    distinct = {w.seq: w for w in words.values()}
    said = [(seq, effective(w.status, w.separate, w.decided_at, rules, now))
            for seq, w in distinct.items()]  # fmt: skip
    seq, status = max(said, key=lambda s: (RESTRICTIVENESS[s[1]], s[0]))
    return State(
        purpose_id=purpose_id,
        channel=channel,
        status=status,
        conflict=len({s for _, s in said}) > 1,
        entry_seq=seq,
        decided_at=distinct[seq].decided_at,
    )


#: Up to this many identifiers, a person's entries are found through the subjects' key
#: index one identifier at a time (about a millisecond each); beyond, one join reads the
#: subjects table whole (~80 ms at 100,000 people), which is then the cheaper way.
_BY_KEY = 20
_STAGED_SEQS = "staged_person_seqs"


@dataclass(frozen=True)
class PersonEntries:
    """The entries covering a person's identifiers: as each identifier sees them, and
    once each, newest first. ``identifiers`` is 0 for a person never seen (or erased)."""

    identifiers: int
    covered: list[Covered]
    history: list[Entry]


def person_keys(db: Session, tenant: str, profile_id: int) -> list[str]:
    """The keys of the person's identifiers now."""
    return [str(k) for (k,) in db.execute(q.PERSON_KEYS, [tenant, profile_id])]


def person_entries(db: Session, tenant: str, keys: list[str]) -> PersonEntries:
    """The entries covering ``keys``, each identifier looked up through the key index."""
    pairs = [(k, int(seq)) for k in keys for (seq,) in db.execute(q.SUBJECT_SEQS, [k, tenant])]
    entries: dict[int, Entry] = {}
    if pairs:
        db.register(_STAGED_SEQS, pa.table({"seq": pa.array(sorted({s for _, s in pairs}))}))
        try:
            entries = {int(r[0]): _entry(r) for r in db.execute(q.ENTRIES_BY_SEQ, [tenant])}
        finally:
            db.unregister(_STAGED_SEQS)
    covered = [
        Covered(key=key, seq=seq, purpose_id=e.purpose_id, channel=e.channel, status=e.status,
                separate=e.separate, decided_at=e.decided_at)
        for key, seq in pairs
        if (e := entries.get(seq)) is not None
    ]  # fmt: skip
    history = sorted(entries.values(), key=lambda e: (e.decided_at, e.seq), reverse=True)
    return PersonEntries(identifiers=len(keys), covered=covered, history=history)


def covered_for(db: Session, tenant: str, profile_id: int) -> list[Covered]:
    """Every entry covering one person's identifiers, as each identifier sees it."""
    keys = person_keys(db, tenant, profile_id)
    if len(keys) <= _BY_KEY:
        return person_entries(db, tenant, keys).covered
    return [
        Covered(
            key=r[0],
            seq=int(r[1]),
            purpose_id=r[2],
            channel=r[3],
            status=r[4],
            separate=bool(r[5]),
            decided_at=r[6],
        )  # fmt: skip
        for r in db.execute(q.COVERED_FOR_PROFILE, [tenant, profile_id, tenant, tenant])
    ]


def history(db: Session, tenant: str, profile_id: int, limit: int = 1000) -> list[Entry]:
    """Every entry covering one person's identifiers now, newest first."""
    keys = person_keys(db, tenant, profile_id)
    if len(keys) <= _BY_KEY:
        return person_entries(db, tenant, keys).history[:limit]
    rows = db.execute(q.HISTORY_FOR_PROFILE, [tenant, profile_id, tenant, tenant, limit])
    return [_entry(r) for r in rows]


def get_entry(db: Session, tenant: str, seq: int) -> Entry | None:
    """One entry by its number."""
    row = db.one(q.GET_ENTRY, [tenant, seq])
    return _entry(row) if row else None
