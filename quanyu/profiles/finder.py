"""Finding people from one search box: a phone, an e-mail, an openid, a member id, a name …

:func:`detect` guesses what was typed; :func:`find` looks it up the way the API does.
PII identifiers (phone, e-mail) are stored only as keyed hashes, so they are found by
their whole value (:func:`quanyu.identity.admin.find`, which normalises "+86 138-…" and
"138 …" alike); other identifiers and names are found by prefix
(:func:`quanyu.profiles.search.search`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from quanyu.engine import Session
from quanyu.errors import NotFound, ValidationFailed
from quanyu.identity import admin
from quanyu.identity.models import format_oneid
from quanyu.identity.service import Resolver
from quanyu.profiles import sql as q
from quanyu.profiles.models import SearchHit, parse_oneid
from quanyu.profiles.search import search

Kind = Literal[
    "auto", "phone", "email", "openid", "unionid", "member_id", "user_id", "name", "oneid"
]
#: What a search box may be told the text is ("auto": guess with :func:`detect`).
KINDS: tuple[str, ...] = get_args(Kind)
#: Identifier types found by a prefix of their stored value.
_PREFIX_TYPES = frozenset({"openid", "unionid", "member_id", "user_id"})
_ONEID = re.compile(r"[Pp]\d{1,19}")
_PHONE = re.compile(r"[+\d\s\-().]+")
#: Digits a phone number has at least (a Chinese mobile has 11, others 7 and more).
_PHONE_DIGITS = 7


@dataclass
class Found:
    """What a search found: hits (one per person and matching field), what the text was
    taken for, and a note for the person searching when nothing or little matched."""

    kind: str
    hits: list[SearchHit] = field(default_factory=list)
    note: str | None = None
    #: Why ``note`` was given, for a translated message: "not_found" (no one has that
    #: phone or e-mail), "invalid" (not a valid one), "no_prefix" (nothing starts with
    #: the text), "gone" (the OneID exists no more).
    reason: str | None = None


def detect(text: str) -> str:
    """What ``text`` most likely is: "oneid", "email", "phone", or "any" (a prefix of an
    identifier or a name)."""
    t = text.strip()
    if _ONEID.fullmatch(t):
        return "oneid"
    if "@" in t and not t.startswith("@"):
        return "email"
    if _PHONE.fullmatch(t) and sum(c.isdigit() for c in t) >= _PHONE_DIGITS:
        # a long run of digits: a phone (member and user ids carry letters in practice;
        # a numeric one is still found: a phone nobody has falls back to a prefix search)
        return "phone" if "+" in t or sum(c.isdigit() for c in t) >= 11 else "any"
    return "any"


def _exact(db: Session, resolver: Resolver, tenant: str, kind: str, text: str) -> Found:
    try:
        _, ref = admin.find(db, resolver, tenant=tenant, type=kind, value=text)
    except NotFound as e:
        return Found(kind=kind, note=e.message, reason="not_found")
    except ValidationFailed as e:
        return Found(kind=kind, note=e.message, reason="invalid")
    number = parse_oneid(ref.profile)
    hit = SearchHit(
        oneid=ref.profile, profile_id=number, matched="identifier", field=kind, value=ref.value
    )
    return Found(kind=kind, hits=[hit])


def _oneid(db: Session, tenant: str, text: str) -> Found:
    number = parse_oneid(text)
    row = db.one(q.PROFILE_EXISTS, [tenant, number])
    oneid = format_oneid(number)
    if row is None or int(row[0]) == 0:
        return Found(
            kind="oneid",
            note=f"No person has OneID {oneid} now: it may have been merged into another;"
            " open it to see where it went.",
            reason="gone",
        )
    hit = SearchHit(
        oneid=oneid, profile_id=number, matched="identifier", field="oneid", value=oneid
    )
    return Found(kind="oneid", hits=[hit])


def _like(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


def _identifiers(db: Session, tenant: str, text: str, limit: int) -> list[SearchHit]:
    """Non-PII identifiers of any type starting with ``text`` (the identifier half of
    :func:`quanyu.profiles.search.search`, without its scan of every identify call)."""
    hits: dict[tuple[int, str], SearchHit] = {}
    for pid, typ, shown in db.execute(
        q.SEARCH_IDENTIFIERS, [tenant, _like(text), None, None, limit]
    ):
        hit = SearchHit(
            oneid=format_oneid(pid), profile_id=pid, matched="identifier", field=typ, value=shown
        )
        hits.setdefault((pid, typ), hit)
    return list(hits.values())


def _wordy(text: str) -> bool:
    """Text that reads as a name or a phrase (Chinese characters or spaces), not an id."""
    return " " in text or any(ord(c) > 0x2E7F for c in text)


def find(
    db: Session, resolver: Resolver, *, tenant: str, text: str, kind: str = "auto", limit: int = 20
) -> Found:
    """The people ``text`` names, read as ``kind`` (one of :data:`KINDS`).

    "auto" reads a OneID, an e-mail or a phone as such (a phone no one has is tried as
    the prefix of a numeric id); an id-like token is looked for among identifiers first,
    and among trait values (a scan of every identify call) only if no identifier starts
    with it; text with Chinese characters or spaces is looked for in both.

    Raises:
        ValidationFailed: ``kind`` is not one of :data:`KINDS`, ``text`` is empty, or
            ``limit`` is not 1 to 200.
    """
    if kind not in KINDS:
        raise ValidationFailed(f"search type {kind!r} is unknown: use one of {', '.join(KINDS)}")
    text = text.strip()
    if not text:
        raise ValidationFailed("the search text is empty: type a phone, id or name")
    chosen = detect(text) if kind == "auto" else kind
    if chosen == "oneid":
        return _oneid(db, tenant, text)
    if chosen in ("phone", "email"):
        found = _exact(db, resolver, tenant, chosen, text)
        if found.hits or kind != "auto" or chosen == "email":
            return found
        more = _identifiers(db, tenant, text, limit)  # a numeric member or user id?
        return Found(kind=chosen, hits=more) if more else found
    if chosen == "name":
        hits = search(db, tenant=tenant, prefix=text, limit=limit, trait="name").items
    elif chosen in _PREFIX_TYPES:
        hits = search(db, tenant=tenant, prefix=text, limit=limit, id_type=chosen).items
    elif _wordy(text):
        hits = search(db, tenant=tenant, prefix=text, limit=limit).items
    else:
        hits = _identifiers(db, tenant, text, limit)
        if not hits:
            hits = search(db, tenant=tenant, prefix=text, limit=limit).items
    if hits:
        return Found(kind=chosen, hits=hits)
    note = (
        f"Nothing starts with {text!r}. Phones and e-mails are matched whole (they are"
        " stored as keyed hashes): type the whole number or address."
    )
    return Found(kind=chosen, note=note, reason="no_prefix")
