"""The demo's true consumers: names, contacts, channels, brands, devices and identifiers.

Every per-person random choice is drawn here, in one pass over the shared random stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.demo.arrow_text import _STR_NULL, _cat, _ints, _lookup, _masked, _tokens, _uuids
from quanyu.demo.reference import (
    _BRAND_CODES,
    _BRAND_WEIGHT,
    _CHANNEL_WEIGHT,
    _CITIES,
    _CITY_P,
    _EMAIL_DOMAINS,
    _EMAIL_P,
    _GIVEN,
    _GIVEN_PINYIN,
    _OPENID_PREFIX,
    _PHONE_PREFIXES,
    _SURNAME_P,
    _SURNAMES,
    DEMO_BRANDS,
    Arr,
)


@dataclass(frozen=True)
class _People:
    """The true consumers. Identifier arrays are indexed ``block * n + person``."""

    n: int
    sur: Arr
    g1: Arr
    g2: Arr  # -1 for a one-character given name
    female: Arr
    birth_days: Arr  # days since the epoch
    city: Arr
    has_email: Arr
    wechat: Arr
    cand_mini: Arr  # (n, 3): registers as a member in that brand's mini-program
    mini_b: Arr  # (n, 3): uses that brand's mini-program
    channel_w: Arr  # (n, 5)
    brand_w: Arr  # (n, 3)
    start_day: Arr  # first day the person is active
    n_dev: Arr
    dev_map: Arr  # device slot (slot * n + person) -> device index; family tablets repeat
    phone: Any  # canonical 11 digits
    email: Any  # null without an email
    birthday: Any  # ISO date text
    store: Any  # home counter id
    device: Any  # 3n
    unionid: Any
    openid: Any  # 4n: per mini-program app, then the official account
    ouid: Any
    nick: Any
    member_id: Any  # 3n: per brand


def _make_people(rng: np.random.Generator, n: int, start: datetime, days: int) -> _People:
    sur = rng.choice(len(_SURNAMES), n, p=_SURNAME_P)
    g1 = rng.integers(0, len(_GIVEN), n)
    g2 = np.where(rng.random(n) < 0.72, rng.integers(0, len(_GIVEN), n), -1)
    female = rng.random(n) < 0.78
    age_years = np.clip(rng.normal(33.0, 7.5, n), 18.0, 68.0)
    epoch_day = (start.date() - datetime(1970, 1, 1).date()).days
    birth_days = (epoch_day - age_years * 365.25).astype(np.int32)
    city = rng.choice(len(_CITIES), n, p=_CITY_P)
    store_no = rng.integers(1, 25, n)
    # suffixes are distinct and never 0, so phones are unique and never 13800000000
    phone_no = rng.choice(_PHONE_PREFIXES, n) * 10**8 + rng.choice(10**8 - 1, n, replace=False)
    phone_no += 1

    has_email = rng.random(n) < 0.4
    domain = rng.choice(len(_EMAIL_DOMAINS), n, p=_EMAIL_P)
    handle_no = rng.permutation(n) + 100  # distinct, so every email is distinct
    qq_no = 10**8 + handle_no * 9000 + rng.integers(0, 9000, n)
    pinyin = _cat(
        _lookup([s[1] for s in _SURNAMES], sur),
        _lookup(_GIVEN_PINYIN, g1),
        pc.fill_null(_masked(pa.array(_GIVEN_PINYIN), np.maximum(g2, 0), g2 >= 0), ""),
    )
    handle = pc.if_else(pa.array(domain == 0), _ints(qq_no), _cat(pinyin, _ints(handle_no)))
    email = _cat(handle, "@", _lookup(_EMAIL_DOMAINS, domain))

    wechat = rng.random(n) < 0.75
    uses_mini = wechat & (rng.random(n) < 0.82)
    uses_pos = np.where(uses_mini, rng.random(n) < 0.5, rng.random(n) < 0.4)
    follows_oa = wechat & (rng.random(n) < 0.5)
    uses_tmall = rng.random(n) < 0.35
    scans_qr = rng.random(n) < 0.2
    uses_tmall |= ~(uses_mini | uses_pos | follows_oa | uses_tmall | scans_qr)
    uses = np.column_stack([uses_mini, follows_oa, uses_tmall, uses_pos, scans_qr])
    channel_w = uses * _CHANNEL_WEIGHT * rng.gamma(2.0, 0.5, (n, 5))

    # 1-3 brands, weighted sampling without replacement (Efraimidis-Spirakis keys)
    keys = rng.random((n, 3)) ** (1.0 / _BRAND_WEIGHT)
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    brands = rank < rng.choice([1, 2, 3], n, p=[0.5, 0.33, 0.17])[:, None]
    mini_b = uses_mini[:, None] & brands & ((rank == 0) | (rng.random((n, 3)) < 0.55))
    cand_mini = mini_b & (rng.random((n, 3)) < 0.85)
    brand_w = brands * rng.gamma(2.0, 0.5, (n, 3))
    start_day = np.where(rng.random(n) < 0.6, 0, rng.integers(0, max(1, int(days * 0.9)), n))

    n_dev = rng.choice([1, 2, 3], n, p=[0.55, 0.33, 0.12])
    dev_map = np.arange(3 * n)
    # family tablets: a host's first device is also the last device of 1-2 other people
    order = rng.permutation(n)
    hosts = order[: n // 100]
    family = rng.choice([1, 2], len(hosts), p=[0.7, 0.3])
    others = order[len(hosts) : len(hosts) + int(family.sum())]
    n_dev[others] = np.maximum(n_dev[others], 2)
    dev_map[(n_dev[others] - 1) * n + others] = np.repeat(hosts, family)

    member_no = [rng.permutation(n) + 10**7 for _ in DEMO_BRANDS]
    nick_no = 10**9 + rng.permutation(n) * 9973 + rng.integers(0, 9973, n)
    return _People(
        n=n,
        sur=sur,
        g1=g1,
        g2=g2,
        female=female,
        birth_days=birth_days,
        city=city,
        has_email=has_email,
        wechat=wechat,
        cand_mini=cand_mini,
        mini_b=mini_b,
        channel_w=channel_w,
        brand_w=brand_w,
        start_day=start_day,
        n_dev=n_dev,
        dev_map=dev_map,
        phone=_ints(phone_no),
        email=pc.if_else(pa.array(has_email), email, _STR_NULL),
        birthday=pc.cast(pa.array(birth_days, type=pa.int32()).cast(pa.date32()), pa.string()),
        store=_cat(_lookup([c[1] for c in _CITIES], city), _ints(store_no, 3)),
        device=_uuids(rng, 3 * n),
        unionid=_tokens(rng, n, 28, b"oHnmG"),
        openid=pa.concat_arrays([_tokens(rng, n, 28, p) for p in _OPENID_PREFIX]),
        ouid=_tokens(rng, n, 24, b"AAH"),
        nick=_cat("tb", _ints(nick_no)),
        member_id=pa.concat_arrays(
            [_cat(code, _ints(no, 8)) for code, no in zip(_BRAND_CODES, member_no, strict=True)]
        ),
    )
