"""One person's consent for a page that shows it all: the states of
:func:`quanyu.consent.service.states` and the entries of
:func:`quanyu.consent.service.history`, read once for both. Read-only.

Each identifier's entries come from the subjects' key index whatever the number of
identifiers (the services switch to one join past a few dozen), and the state rule is
the services' own, so both answers are the services' answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from quanyu.consent import ledger, service
from quanyu.consent.models import Entry, State
from quanyu.engine import Session


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
    found = ledger.person_entries(db, tenant, ledger.person_keys(db, tenant, profile_id))
    return PersonConsent(
        states=service.states_of(db, tenant=tenant, covered=found.covered, now=now),
        history=found.history[:limit],
        identifiers=found.identifiers,
    )
