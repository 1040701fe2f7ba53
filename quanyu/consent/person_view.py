"""One person's consent for a page that shows it all: the states of
:func:`quanyu.consent.service.states` and the entries of
:func:`quanyu.consent.service.history`, read together and fast. Read-only.

The services each join the person's identifiers to every subject row of the tenant,
which costs a scan of ``consent_subjects`` per call (about 80 ms each at 100,000
people). Here each identifier's entries come from the key's index, the entries are read
once for both answers, and the state rule is the ledger's own
(:func:`quanyu.consent.ledger.state_of`), so both answers are the services' answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from quanyu.consent import ledger, service
from quanyu.consent import person_view_sql as q
from quanyu.consent.ledger import Covered
from quanyu.consent.models import Entry, State
from quanyu.engine import Session
from quanyu.identity.models import format_oneid
from quanyu.ids import utcnow

_STAGED = "staged_person_seqs"


def _entry(r: tuple[Any, ...]) -> Entry:
    (seq, entry_id, purpose, channel, status, separate, notice, decided, recorded, surface,
     actor, evidence, subject_type, profile, origin, source, message, leaf) = r  # fmt: skip
    return Entry(
        seq=seq, id=entry_id, purpose_id=purpose, channel=channel, status=status,
        separate=separate, notice_version=notice, decided_at=decided, recorded_at=recorded,
        surface=surface, actor=actor, evidence=evidence, subject_type=subject_type,
        profile=format_oneid(profile) if profile is not None else None, origin=origin,
        source_id=source, message_id=message, leaf_hash=leaf,
    )  # fmt: skip


@dataclass(frozen=True)
class PersonConsent:
    """What :func:`consent_of` read: ``identifiers`` is 0 for a person never seen (or
    erased by a PIPL deletion)."""

    states: list[State]
    history: list[Entry]
    identifiers: int


def consent_of(
    db: Session, *, tenant: str, profile_id: int, limit: int = 1000, now: datetime | None = None
) -> PersonConsent:
    """A person's states (every purpose; channels they have a word for, and ``*``) and
    the ledger entries covering their identifiers, newest first (at most ``limit``)."""
    pairs: list[tuple[str, int]] = []
    keys = db.execute(q.PERSON_KEYS, [tenant, profile_id])
    for (key,) in keys:
        pairs.extend((key, int(seq)) for (seq,) in db.execute(q.SUBJECT_SEQS, [key, tenant]))
    entries: dict[int, Entry] = {}
    if pairs:
        seqs = sorted({seq for _, seq in pairs})
        db.register(_STAGED, pa.table({"seq": pa.array(seqs, pa.int64())}))
        try:
            entries = {int(r[0]): _entry(r) for r in db.execute(q.ENTRIES, [tenant])}
        finally:
            db.unregister(_STAGED)
    covered = [
        Covered(key=key, seq=seq, purpose_id=e.purpose_id, channel=e.channel, status=e.status,
                separate=e.separate, decided_at=e.decided_at)
        for key, seq in pairs
        if (e := entries.get(seq)) is not None
    ]  # fmt: skip
    at = now or utcnow()
    states: list[State] = []
    for p in service.list_purposes(db, tenant=tenant):
        channels = sorted({c.channel for c in covered if c.purpose_id == p.id} | {"*"})
        states.extend(ledger.state_of(covered, p.id, c, service.rules_of(p), at) for c in channels)
    history = sorted(entries.values(), key=lambda e: (e.decided_at, e.seq), reverse=True)
    return PersonConsent(states=states, history=history[:limit], identifiers=len(keys))
