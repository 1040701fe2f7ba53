"""Unified profiles (the 360 view): a OneID's identities, traits, activity, timeline, history.

Reads what identity resolution wrote (``id_nodes``, ``event_nodes``,
``profile_changes``) and the events; writes nothing. A OneID is shown as ``P<n>``
where ``n`` is the profile number (the smallest node id of the person).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.engine import Session, Statement
from quanyu.errors import NotFound
from quanyu.identity.models import format_oneid
from quanyu.identity.normalize import InvalidIdentifier, normalize
from quanyu.identity.secrets import mask
from quanyu.identity.types import IdentityRules
from quanyu.ingest.models import Event, EventPage
from quanyu.profiles import sql as q
from quanyu.profiles.models import (
    Activity,
    Basics,
    Change,
    HistoryPage,
    Identity,
    LastEvent,
    ProfileView,
    TraitValue,
    check_limit,
    decode_cursor,
    encode_cursor,
    parse_oneid,
)
from quanyu.profiles.search import pii_trait_types, search
from quanyu.profiles.survivorship import Observation, Trait, TraitRules, view

__all__ = [
    "basics",
    "format_oneid",
    "get_profile",
    "history",
    "observations",
    "parse_oneid",
    "search",
    "timeline",
]
_MAX_HOPS = 64
#: Calls whose events can carry traits (group calls carry a company's, not the person's).
_TRAIT_TYPES = pa.array(["identify", "track", "page", "screen"])
#: What a fetch by key needs of each event.
_KEYS = pa.schema(
    [
        ("source_id", pa.string()),
        ("message_id", pa.string()),
        ("commit_seq", pa.int64()),
        ("timestamp", pa.timestamp("us")),
    ]
)
#: The timeline's order, newest first (descending on each).
_NEWEST_FIRST = ("timestamp", "message_id", "source_id")


def _missing(db: Session, tenant: str, n: int) -> NotFound:
    """NotFound for profile ``n``, naming the profile it was merged into if any."""
    at, hops = n, 0
    while (row := db.one(q.MERGED_INTO, [tenant, at])) is not None and hops < _MAX_HOPS:
        at, hops = int(row[0]), hops + 1
        if db.one(q.PROFILE_EXISTS, [tenant, at]) != (0,):
            return NotFound(
                f"OneID {format_oneid(n)} no longer exists: it was merged into"
                f" {format_oneid(at)}; look that one up instead"
            )
    return NotFound(f"OneID {format_oneid(n)} does not exist in this tenant: check the number")


#: Opens a sealed PII value (quanyu.identity.tokens.Tokenizer.open).
Reveal = Callable[[str], str]


def _shown(key: str, value: Any, reveal: Reveal | None = None) -> Any:
    """A trait value for display: PII identifiers carried as traits are masked (opened
    first with ``reveal`` when they are stored sealed)."""
    t = pii_trait_types().get(key)
    if t is None or value is None or isinstance(value, dict | list):
        return value
    if reveal is not None and isinstance(value, str):
        value = reveal(value)
    try:
        return mask(t, normalize(IdentityRules.default(), t, str(value)))
    except InvalidIdentifier:
        return mask(t, str(value))


def _traits(traits: dict[str, Trait], reveal: Reveal | None) -> dict[str, TraitValue]:
    return {
        k: TraitValue(value=_shown(k, t.value, reveal), source_id=t.source_id, at=t.at, rule=t.rule)
        for k, t in traits.items()
    }


def _fetch(db: Session, stmt: Statement, tenant: str, keys: pa.Table) -> list[tuple[Any, ...]]:
    """Rows of ``stmt`` (a fetch by key) for the events ``keys`` lists by source_id,
    message_id, commit_seq and timestamp."""
    if keys.num_rows == 0:
        return []
    windows = q.key_windows(
        keys.column("commit_seq").to_numpy(),
        keys.column("timestamp").to_numpy(),
        keys.column("message_id").to_numpy(),
    )
    db.register(q.KEYS_TABLE, keys.select(["source_id", "message_id", "commit_seq"]))
    try:
        return db.execute(stmt, [tenant, *windows])
    finally:
        db.unregister(q.KEYS_TABLE)


def _observed(
    db: Session, tenant: str, events: pa.Table
) -> tuple[list[Observation], dict[tuple[str, str], str | None]]:
    """The trait values ``events`` (rows of PROFILE_EVENTS) carried, oldest first, and
    the name of each event read on the way (by source and message id)."""
    keys = events.filter(pc.is_in(events.column("type"), _TRAIT_TYPES))
    out: list[Observation] = []
    names: dict[tuple[str, str], str | None] = {}
    rows = _fetch(db, q.TRAITS_BY_KEY, tenant, keys)
    for source_id, message_id, typ, name, traits, context, kind, brand_id, at in rows:
        names[source_id, message_id] = name
        bag = None
        if typ == "identify" and traits:
            bag = orjson.loads(traits)
        elif typ != "identify" and context and '"traits"' in context:
            ctx = orjson.loads(context)
            bag = ctx.get("traits") if isinstance(ctx, dict) else None
        if isinstance(bag, dict):
            out.extend(Observation(k, v, source_id, kind, brand_id, at) for k, v in bag.items())
    return out, names


def observations(db: Session, *, tenant: str, profile_id: int) -> list[Observation]:
    """Every trait value the profile's events carried, oldest first."""
    events = db.arrow(q.PROFILE_EVENTS, [tenant, tenant, profile_id])
    return _observed(db, tenant, events)[0]


def _counts(column: pa.ChunkedArray) -> dict[str, int]:
    counts = pc.value_counts(column)
    return {
        str(v): int(c)
        for v, c in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
        if v is not None
    }


def _basics(
    db: Session, tenant: str, events: pa.Table, names: dict[tuple[str, str], str | None]
) -> Basics:
    """Basics of ``events`` (rows of PROFILE_EVENTS); ``names`` has the names of events
    already read, the others among the last events are fetched."""
    newest_first = events.sort_by([(c, "descending") for c in _NEWEST_FIRST])
    firsts = ("source_id", "message_id", "commit_seq", "type", "event", "timestamp")
    groups = (
        newest_first.group_by(["brand_id", "channel"], use_threads=False)
        .aggregate([("message_id", "count"), ("timestamp", "min")] + [(c, "first") for c in firsts])
        .to_pylist()
    )
    unnamed = [g for g in groups if (g["source_id_first"], g["message_id_first"]) not in names]
    if unnamed:
        keys = pa.table({c: [g[f"{c}_first"] for g in unnamed] for c in _KEYS.names}, _KEYS)
        names = names | {(r[0], r[1]): r[3] for r in _fetch(db, q.TRAITS_BY_KEY, tenant, keys)}
    brands: dict[str, Activity] = {}
    channels: dict[str, Activity] = {}
    for g in groups:
        key = (g["source_id_first"], g["message_id_first"])
        ev = LastEvent(
            source_id=key[0],
            message_id=key[1],
            type=g["type_first"],
            event=g["event_first"],
            name=names.get(key),
            timestamp=g["timestamp_first"],
        )
        for group, at in ((brands, g["brand_id"]), (channels, g["channel"])):
            if at is None:
                continue
            old = group.get(at)
            group[at] = Activity(
                events=int(g["message_id_count"]) + (old.events if old else 0),
                first_at=min(g["timestamp_min"], old.first_at) if old else g["timestamp_min"],
                last_at=max(ev.timestamp, old.last_at) if old else ev.timestamp,
                last_event=ev if old is None or _later(ev, old.last_event) else old.last_event,
            )
    by_type = _counts(events.column("type"))
    acts = list(channels.values())
    return Basics(
        first_seen=min((a.first_at for a in acts), default=None),
        last_seen=max((a.last_at for a in acts), default=None),
        events=sum(by_type.values()),
        by_type=dict(sorted(by_type.items())),
        by_event=dict(sorted(_counts(events.column("event")).items())),
        brands=dict(sorted(brands.items())),
        channels=dict(sorted(channels.items())),
    )


def basics(db: Session, *, tenant: str, profile_id: int) -> Basics:
    """First and last seen, event counts and the last event per brand and per channel."""
    return _basics(db, tenant, db.arrow(q.PROFILE_EVENTS, [tenant, tenant, profile_id]), {})


def _later(a: LastEvent, b: LastEvent) -> bool:
    return (a.timestamp, a.message_id, a.source_id) > (b.timestamp, b.message_id, b.source_id)


def get_profile(
    db: Session,
    *,
    tenant: str,
    profile_id: int | str,
    brand: str | None = None,
    trait_rules: TraitRules | None = None,
    history_limit: int = 10,
    reveal: Reveal | None = None,
) -> ProfileView:
    """The 360 view of one OneID: identities, surviving traits, activity, latest changes.

    Args:
        profile_id: the profile number or its ``"P<n>"`` form.
        brand: show the brand view of this brand (its own brand-scoped traits and the
            shared group traits); None shows the group view.
        trait_rules: survivorship rules; None applies ``latest`` to every trait.

    Raises:
        NotFound: no identifier has this profile number (the message names the
            profile it was merged into, if any), or ``brand`` is not the tenant's.
        ValidationFailed: ``profile_id`` is not a OneID.
    """
    n = parse_oneid(profile_id)
    check_limit(history_limit)
    if brand is not None and db.one(q.BRAND_EXISTS, [tenant, brand]) == (0,):
        raise NotFound(f"brand {brand!r} does not exist in this tenant: check the brand id")
    nodes = db.execute(q.PROFILE_NODES, [tenant, n])
    if not nodes:
        raise _missing(db, tenant, n)
    events = db.arrow(q.PROFILE_EVENTS, [tenant, tenant, n])
    observed, names = _observed(db, tenant, events)
    traits = view(observed, trait_rules or TraitRules(), brand)
    act = _basics(db, tenant, events, names)
    return ProfileView(
        oneid=format_oneid(n),
        profile_id=n,
        brand=brand,
        identities=[
            Identity(
                node_id=r[0], type=r[1], scope=r[2], value=r[4], source_id=r[5], first_seen=r[6]
            )
            for r in nodes
        ],
        traits=_traits(traits.traits, reveal),
        brand_traits={b: _traits(t, reveal) for b, t in traits.by_brand.items()},
        brands=list(act.brands),
        basics=act,
        history=_history(db, tenant, n, None, history_limit).items,
    )


def _event(r: tuple[Any, ...]) -> Event:
    return Event.model_validate(
        {
            k: (orjson.loads(v) if v else None) if k in q.JSON_FIELDS else v
            for k, v in zip(q.EVENT_FIELDS, r, strict=True)
        }
    )


def timeline(
    db: Session,
    *,
    tenant: str,
    profile_id: int | str,
    type: str | None = None,
    event: str | None = None,
    brand: str | None = None,
    source: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> EventPage:
    """The profile's events, newest first (by event time), filtered and paged by cursor.

    ``event`` matches a track event's name or a page/screen name. Events move with
    their identifiers, so a merge or split between two pages can move events in or
    out of later pages.

    Raises:
        NotFound: the profile does not exist. ValidationFailed: bad OneID, cursor or limit.
    """
    n = parse_oneid(profile_id)
    check_limit(limit)
    at, after_id, after_source = decode_cursor(cursor, str, str) if cursor else (None, None, None)
    named = [] if event is None else [event, event]
    page = db.execute(
        q.TIMELINE_PAGE if event is None else q.TIMELINE_PAGE_NAMED,
        [tenant, tenant, n, *named, type, type, brand, brand, source, source]
        + [at, at, at, after_id, after_id, after_source, limit + 1],
    )
    if not page and cursor is None and db.one(q.PROFILE_EXISTS, [tenant, n]) == (0,):
        raise _missing(db, tenant, n)
    keys = pa.Table.from_pylist(
        [dict(zip(_KEYS.names, r, strict=True)) for r in page[:limit]], _KEYS
    )
    items = [_event(r) for r in _fetch(db, q.EVENTS_BY_KEY, tenant, keys)]
    last = page[limit - 1] if len(page) > limit else None
    nxt = encode_cursor(last[3].isoformat(), last[1], last[0]) if last else None
    return EventPage(items=items, next_cursor=nxt)


_CHANGE_FIELDS = (
    "change_id",
    "changed_at",
    "kind",
    "edge_id",
    "node_id",
    "source_id",
    "message_id",
    "actor",
    "detail",
)


def history(
    db: Session, *, tenant: str, profile_id: int | str, cursor: str | None = None, limit: int = 50
) -> HistoryPage:
    """Merges, splits and rebuilds that involved the OneID, newest first.

    Lists changes where the profile absorbed or lost a part and where it was itself
    absorbed (so a merged-away OneID still shows where it went). Changes of the
    profiles it absorbed, before they were absorbed, are under their own OneIDs.

    Raises:
        NotFound: the profile never existed. ValidationFailed: bad OneID, cursor or limit.
    """
    n = parse_oneid(profile_id)
    check_limit(limit)
    page = _history(db, tenant, n, cursor, limit)
    if not page.items and cursor is None and db.one(q.PROFILE_EXISTS, [tenant, n]) == (0,):
        raise _missing(db, tenant, n)
    return page


def _history(db: Session, tenant: str, n: int, cursor: str | None, limit: int) -> HistoryPage:
    at, after = decode_cursor(cursor, int) if cursor else (None, None)
    rows = db.execute(q.HISTORY, [tenant, n, n, at, at, at, after, limit + 1])
    items = [
        Change(
            **dict(zip(_CHANGE_FIELDS, (r[0], r[1], r[2], *r[5:]), strict=True)),
            oneid=format_oneid(r[3]),
            other_oneid=None if r[4] is None else format_oneid(r[4]),
        )
        for r in rows[:limit]
    ]
    last = items[-1] if len(rows) > limit else None
    return HistoryPage(
        items=items,
        next_cursor=encode_cursor(last.changed_at.isoformat(), last.change_id) if last else None,
    )
