"""Deterministic demo data for the fictional Hanami Group: three brands, seven touchpoints.

`generate` builds a period of events from the brands' WeChat mini-programs, the group's
official account, a Tmall store, counter POS with member cards and product QR scans; the
member (CRM) records a profile import file would carry; and the ground truth naming the real
consumer behind every row, so identity resolution can be scored against it.

Every random choice is drawn up front by numpy from one ``PCG64(seed)`` stream; strings are
then assembled column-wise with pyarrow compute from pre-rendered JSON fragments. No Python
loop runs per row, and equal arguments always give identical tables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from quanyu.demo.events import _EVENT_SCHEMA, _event_chunk
from quanyu.demo.fragments import _fragments, _tables
from quanyu.demo.people import _make_people
from quanyu.demo.profiles import _profiles
from quanyu.demo.reference import _DAY_US, DEMO_BRANDS, DEMO_SOURCES, DemoSource
from quanyu.demo.sessions import _add_consent, _make_events, _make_sessions

__all__ = ["DEMO_BRANDS", "DEMO_SOURCES", "DemoData", "DemoSource", "generate"]


@dataclass(frozen=True)
class DemoData:
    """A generated dataset.

    Attributes:
        events: Segment-style events in the bulk-import layout, sorted by timestamp.
        profiles: member records as a profile import file would have them.
        truth: ``record_kind`` ('event' or 'profile'), ``record_id`` (messageId or profile
            ``record_id``) and ``person_id``, the true consumer behind every row.
    """

    events: pa.Table
    profiles: pa.Table
    truth: pa.Table


_DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
_CHUNK = 1 << 19  # rows per string-building task: bounded memory, both cores busy


def generate(
    consumers: int = 100_000,
    *,
    seed: int = 42,
    start: datetime | None = None,
    days: int = 365,
    brand_ids: Mapping[str, str] | None = None,
) -> DemoData:
    """Generate the Hanami Group demo dataset.

    About 30 events per consumer, heavy-tailed (a few heavy users, many light ones) and
    seasonal (peaks around 618 and Double 11). Identifiers overlap as they do in practice: one
    unionid across a person's WeChat apps but an openid per app, member ids shared by a
    brand's mini-program and counters, phones in several formats, family tablets shared by
    2-3 people, junk values such as ``13800000000`` or ``"undefined"``, and duplicate member
    records whose name differs by a homophone.

    Args:
        consumers: number of true consumers (``person_id`` 0..consumers-1).
        seed: seed of the single random stream; equal arguments give equal tables.
        start: first instant of the period (default 2024-01-01T00:00Z); naive means UTC.
        days: length of the period in days.
        brand_ids: the tenant's brand id of each brand key (lumi, petal, pure), written
            where member ids name their brand; the keys themselves by default.

    Returns:
        The events, the member records and the ground truth for both.

    Raises:
        ValueError: ``consumers`` or ``days`` is below 1.
    """
    if consumers < 1:
        raise ValueError(f"consumers must be at least 1, got {consumers}; pass e.g. 2000")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}; pass e.g. 365")
    start = _DEFAULT_START if start is None else start
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    start_us = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    rng = np.random.Generator(np.random.PCG64(seed))

    pp = _make_people(rng, consumers, start, days)
    ss = _make_sessions(rng, pp, start, start_us, days)
    ev = _make_events(rng, ss, start_us + days * _DAY_US)
    profiles, profile_person = _profiles(rng, pp, ss, seed, start_us, days)
    ev = _add_consent(ss, ev, start_us + days * _DAY_US)  # draws nothing from rng

    # No randomness below: chunks are independent and Arrow kernels release the GIL.
    tb = _tables()
    fr = _fragments(pp, tb, brand_ids or {})
    total = len(ev.ts)

    def chunk(lo: int) -> list[Any]:
        return _event_chunk(pp, fr, ss, ev, tb, lo, min(lo + _CHUNK, total), seed)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        chunks = list(pool.map(chunk, range(0, total, _CHUNK)))
    events = pa.table(
        [
            pa.chunked_array([c[i] for c in chunks], type=f.type)
            for i, f in enumerate(_EVENT_SCHEMA)
        ],
        schema=_EVENT_SCHEMA,
    )
    truth = pa.table(
        {
            "record_kind": pa.chunked_array(
                [pa.repeat("event", total), pa.repeat("profile", len(profile_person))],
                type=pa.string(),
            ),
            "record_id": pa.chunked_array(
                events["messageId"].chunks + profiles["record_id"].chunks, type=pa.string()
            ),
            "person_id": pa.chunked_array([ss.person[ev.session], profile_person], type=pa.int64()),
        }
    )
    return DemoData(events=events, profiles=profiles, truth=truth)
