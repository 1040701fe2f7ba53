"""People at a glance (for a list of search hits) and where each identifier was seen.

A glance is what a results list shows of a person without building the whole 360 view:
name and city from the newest identify calls, brands, last seen and the number of events.
Sightings say, per identifier, which sources carried it and when it was first and last
seen. Both read what identity resolution wrote; neither writes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field

from quanyu.engine import Session
from quanyu.identity.models import format_oneid
from quanyu.profiles import sql as pq
from quanyu.profiles import summary_sql as q
from quanyu.profiles.models import Identity

#: The most people one glance call takes.
MOST_PEOPLE = 200
#: Identify calls read at most per person for the name and city (newest first): the
#: newest may carry neither (a counter that only sent a phone).
IDENTIFY_CALLS = 3
_PEOPLE = pa.schema([("profile_id", pa.int64())])
_NODES = pa.schema([("node_id", pa.int64()), ("profile_id", pa.int64())])


class Glance(BaseModel):
    """A person in a results list."""

    oneid: str
    profile_id: int
    name: str | None = Field(description="From the newest identify call that has one.")
    city: str | None = Field(description="From the newest identify call that has one.")
    brands: list[str] = Field(description="Brand ids of their events and of their member ids.")
    last_seen: datetime | None
    events: int


class Sighting(BaseModel):
    """Where one identifier of a person was seen."""

    node_id: int
    sources: list[str] = Field(description="Source ids, the one it was first seen in first.")
    first_seen: datetime
    last_seen: datetime = Field(
        description="The latest event filed under it or link to it (events hang on a person's"
        " strongest identifier, so a weaker one may have been carried later)."
    )
    events: int = Field(description="Events filed under this identifier.")
    links: int = Field(description="Live links to the person's other identifiers.")


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _traits_of(db: Session, tenant: str, calls: pa.Table) -> dict[tuple[str, str], Any]:
    """The traits of ``calls`` (rows of PEOPLE_EVENTS), by source and message id."""
    out: dict[tuple[str, str], Any] = {}
    # a fetch binds WINDOWS ranges of each kind: with no more keys than that, each key
    # gets ranges of its own and only its rows are read whole (scattered keys sharing
    # ranges make DuckDB read much of the table's JSON)
    for start in range(0, calls.num_rows, pq.WINDOWS):
        keys = calls.slice(start, pq.WINDOWS)
        windows = pq.key_windows(
            keys.column("commit_seq").to_numpy(),
            keys.column("timestamp").to_numpy(),
            keys.column("message_id").to_numpy(),
        )
        db.register(pq.KEYS_TABLE, keys.select(["source_id", "message_id", "commit_seq"]))
        try:
            rows = db.execute(pq.TRAITS_BY_KEY, [tenant, *windows])
        finally:
            db.unregister(pq.KEYS_TABLE)
        for source_id, message_id, _type, _name, traits, *_ in rows:
            out[source_id, message_id] = orjson.loads(traits) if traits else None
    return out


def _names(db: Session, tenant: str, events: pa.Table) -> dict[int, tuple[str | None, str | None]]:
    """(name, city) per person: each from their newest identify call that has it, among
    their last :data:`IDENTIFY_CALLS` (read newest first, older ones only while a value
    is missing: each read costs a fetch from the events table)."""
    calls = events.filter(pc.equal(events.column("type"), "identify")).sort_by(
        [("profile_id", "ascending"), ("timestamp", "descending"), ("message_id", "descending")]
    )
    people = calls.column("profile_id").to_pylist()
    rank = [0] * len(people)
    for i in range(1, len(people)):
        rank[i] = rank[i - 1] + 1 if people[i] == people[i - 1] else 0
    out: dict[int, tuple[str | None, str | None]] = {}
    for depth in range(IDENTIFY_CALLS):
        wanted = [
            i for i, p in enumerate(people) if rank[i] == depth and None in out.get(p, (None, None))
        ]
        if not wanted:
            break
        batch = calls.take(pa.array(wanted, pa.int64()))
        traits = _traits_of(db, tenant, batch)
        for i in wanted:
            bag = traits.get((calls["source_id"][i].as_py(), calls["message_id"][i].as_py()))
            bag = bag if isinstance(bag, dict) else {}
            name, city = out.get(people[i], (None, None))
            out[people[i]] = (name or _text(bag.get("name")), city or _text(bag.get("city")))
    return out


def glance(db: Session, *, tenant: str, profile_ids: Sequence[int]) -> dict[int, Glance]:
    """A glance at each of ``profile_ids`` that exists (at most :data:`MOST_PEOPLE`).

    Raises:
        ValueError: more than :data:`MOST_PEOPLE` people asked for at once.
    """
    wanted = sorted(set(profile_ids))
    if len(wanted) > MOST_PEOPLE:
        raise ValueError(f"glance takes at most {MOST_PEOPLE} people, got {len(wanted)}")
    if not wanted:
        return {}
    db.register(q.PEOPLE_TABLE, pa.table({"profile_id": wanted}, _PEOPLE))
    try:
        nodes = db.execute(q.PEOPLE_NODES, [tenant])
    finally:
        db.unregister(q.PEOPLE_TABLE)
    staged = pa.table(
        {"node_id": [int(r[1]) for r in nodes], "profile_id": [int(r[0]) for r in nodes]},
        _NODES,
    )
    db.register(q.NODES_TABLE, staged)
    try:
        events = db.arrow(q.PEOPLE_EVENTS, [tenant])
    finally:
        db.unregister(q.NODES_TABLE)
    brands: dict[int, set[str]] = {}
    for person, _node, id_type, scope in nodes:
        found = brands.setdefault(int(person), set())
        if id_type == "member_id" and scope:
            found.add(scope)
    stats = (
        events.group_by("profile_id", use_threads=False)
        .aggregate([("timestamp", "max"), ("message_id", "count")])
        .to_pylist()
    )
    seen = {int(r["profile_id"]): (r["timestamp_max"], int(r["message_id_count"])) for r in stats}
    pairs = events.select(["profile_id", "brand_id"]).filter(pc.is_valid(events["brand_id"]))
    for person, brand in zip(
        pairs.column("profile_id").to_pylist(), pairs.column("brand_id").to_pylist(), strict=True
    ):
        brands.setdefault(int(person), set()).add(brand)
    names = _names(db, tenant, events)
    return {
        p: Glance(
            oneid=format_oneid(p),
            profile_id=p,
            name=names.get(p, (None, None))[0],
            city=names.get(p, (None, None))[1],
            brands=sorted(brands[p]),
            last_seen=seen.get(p, (None, 0))[0],
            events=seen.get(p, (None, 0))[1],
        )
        for p in wanted
        if p in brands
    }


def sightings(
    db: Session, *, tenant: str, profile_id: int, identities: Sequence[Identity]
) -> dict[int, Sighting]:
    """Where each of a person's ``identities`` (from the 360 view) was seen, by node id."""
    sources: dict[int, dict[str, int]] = {i.node_id: {} for i in identities}
    first = {i.node_id: i.first_seen for i in identities}
    last = dict(first)
    events = dict.fromkeys(first, 0)
    links = dict.fromkeys(first, 0)

    def note(node: int, source: str | None, weight: int, lo: datetime, hi: datetime) -> None:
        if node not in sources:
            return  # the far end of a link: another person's identifier, or a new one
        if source is not None:
            sources[node][source] = sources[node].get(source, 0) + weight
        first[node], last[node] = min(first[node], lo), max(last[node], hi)

    for node, source, n, lo, hi in db.execute(q.NODE_EVENTS, [tenant, tenant, profile_id]):
        note(int(node), source, int(n), lo, hi)
        if int(node) in events:
            events[int(node)] += int(n)
    for a, b, source, lo, hi, n in db.execute(q.NODE_LINKS, [tenant, tenant, profile_id]):
        for node in {int(a), int(b)}:
            note(node, source, 0, lo, hi)
            if node in links:
                links[node] += int(n)
    out = {}
    for i in identities:
        by_count = sorted(sources[i.node_id].items(), key=lambda kv: (-kv[1], kv[0]))
        named = [s for s, _ in by_count if s != i.source_id]
        out[i.node_id] = Sighting(
            node_id=i.node_id,
            sources=([i.source_id] if i.source_id else []) + named,
            first_seen=first[i.node_id],
            last_seen=last[i.node_id],
            events=events[i.node_id],
            links=links[i.node_id],
        )
    return out
