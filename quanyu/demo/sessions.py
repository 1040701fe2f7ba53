"""Visits and their events: when, through which channel and brand, doing what.

Seasonality (618, Double 11, weekends), the campaign calendar, sign-ups and every per-visit
random choice are drawn here; the events of each visit then follow in timestamp order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from quanyu.demo.people import _People
from quanyu.demo.reference import (
    _CAMPAIGN_FACTOR,
    _CAMPAIGNS,
    _CONSENT_POS,
    _CST_S,
    _DAY_US,
    _HOURS_ONLINE,
    _HOURS_STORE,
    _K_CONSENT,
    _K_SIGNUP,
    _MINI,
    _OA,
    _PHONE_P_APP,
    _PHONE_P_TYPED,
    _POS,
    _PROD_COUNT,
    _PROD_OFFSET,
    _PROD_PRICE,
    _QR,
    _SLOT_KINDS,
    _SLOT_ORDER,
    _SLOT_VIEW,
    _SLOT_WIDTH,
    _TMALL,
    _US,
    Arr,
)


def _pick(rng: np.random.Generator, weights: Arr) -> Arr:
    """One column per row of ``weights``, drawn in proportion to the row's weights."""
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cdf[:, -1]
    out: Arr = np.minimum((u[:, None] >= cdf).sum(axis=1), weights.shape[1] - 1)
    return out


def _day_weights(start: datetime, days: int) -> Arr:
    """Relative activity per day: 618 and Double 11 peaks, smaller ones, busier weekends."""
    dates = np.datetime64((start + timedelta(seconds=_CST_S)).date(), "D") + np.arange(days)
    year = dates.astype("datetime64[Y]").astype("datetime64[M]")

    def peak(month: int, day: int, width: float, height: float) -> Arr:
        centre = (year + (month - 1)).astype("datetime64[D]") + (day - 1)
        dist = (dates - centre).astype(np.float64)
        out: Arr = height * np.exp(-0.5 * (dist / width) ** 2)
        return out

    weights = 1.0 + peak(6, 18, 7, 0.8) + peak(6, 18, 1, 2.5) + peak(11, 11, 7, 1.2)
    weights += peak(11, 11, 1, 4.0) + peak(3, 8, 2, 0.5) + peak(12, 12, 2, 0.6)
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    out: Arr = weights * np.where(weekday >= 5, 1.15, 1.0)
    return out


def _campaigns(begin_us: Arr) -> Arr:
    """The campaign running on each instant's China-local date."""
    local = ((begin_us + _CST_S * _US) // _DAY_US).astype("datetime64[D]")
    month = local.astype("datetime64[M]")
    dom = (local - month.astype("datetime64[D]")).astype(np.int64) + 1
    mmdd = (month.astype(np.int64) % 12 + 1) * 100 + dom
    out: Arr = np.where(dom == 18, 1, 0)
    for i, (_, _, first, last) in enumerate(_CAMPAIGNS):
        if first:
            out = np.where((mmdd >= first) & (mmdd <= last), i, out)
    return out


@dataclass(frozen=True)
class _Sessions:
    """One visit through one channel; every per-visit random choice is drawn here."""

    person: Arr
    channel: Arr
    brand: Arr
    begin: Arr  # epoch microseconds
    campaign: Arr
    signup: Arr  # the member's first identified visit: identify + Member Signed Up
    logged: Arr  # the visit carries a userId
    device: Arr  # device index, -1 without a device
    union: Arr  # the visit carries the unionid (only ever with an openid)
    openid_app: Arr  # WeChat app whose openid the visit carries, -1 for none
    product: Arr
    qty: Arr
    paid: Arr  # unit price paid, fen
    counts: Arr  # (sessions, slots)
    phone_fmt: Arr
    junk_phone: Arr
    email_given: Arr
    junk_email: Arr  # index into _JUNK_EMAILS, -1 for none
    bday_given: Arr
    typo: Arr
    junk_anon: Arr  # index into _JUNK_ANON, -1 for none


def _random_product(rng: np.random.Generator, brand: Arr) -> Arr:
    """A product of each brand, skewed towards its first (best-selling) items."""
    rank = (rng.random(len(brand)) ** 1.7 * _PROD_COUNT[brand]).astype(np.int64)
    out: Arr = _PROD_OFFSET[brand] + rank
    return out


def _make_sessions(
    rng: np.random.Generator, pp: _People, start: datetime, start_us: int, days: int
) -> _Sessions:
    n = pp.n
    # heavy-tailed visits per person (a few heavy users, many light ones); a person's first
    # visits cover every channel they use, so channel overlaps are as common as intended
    used = pp.channel_w > 0
    n_used = used.sum(axis=1)
    n_visits = np.maximum(1 + np.minimum(rng.lognormal(1.6, 1.0, n), 300).astype(int), n_used)
    person = np.repeat(np.arange(n), n_visits)
    size = len(person)
    rank = np.arange(size) - np.repeat(np.cumsum(n_visits) - n_visits, n_visits)
    covering = np.argsort(~used, axis=1, kind="stable")[person, np.minimum(rank, 4)]
    channel = np.where(rank < n_used[person], covering, _pick(rng, pp.channel_w[person]))
    is_mini, is_oa, is_pos, is_qr = (channel == c for c in (_MINI, _OA, _POS, _QR))
    brand_w = pp.brand_w[person]
    brand = _pick(rng, np.where(is_mini[:, None], brand_w * pp.mini_b[person], brand_w))

    day_w = _day_weights(start, days)
    cdf = np.cumsum(day_w) / day_w.sum()
    lo = np.concatenate([[0.0], cdf])[pp.start_day[person]]
    day = np.searchsorted(cdf, lo + rng.random(size) * (1.0 - lo), side="right")
    hour = np.where(
        is_pos,
        rng.choice(24, size, p=_HOURS_STORE / _HOURS_STORE.sum()),
        rng.choice(24, size, p=_HOURS_ONLINE / _HOURS_ONLINE.sum()),
    )
    secs = (hour * 3600 + rng.integers(0, 3600, size) - _CST_S) % 86_400
    begin = start_us + np.minimum(day, days - 1) * _DAY_US + secs * _US
    begin += rng.integers(0, _US, size)

    # A member signs up on their first visit at a counter, or in a mini-program they
    # register in; later visits there carry the member id.
    cand = pp.cand_mini[person, brand]
    capable = np.flatnonzero(is_pos | (is_mini & cand))
    key = person * 3 + brand
    ordered = capable[np.lexsort((begin[capable], key[capable]))]
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = key[ordered][1:] != key[ordered][:-1]
    signup = np.zeros(size, dtype=bool)
    signup[ordered[first]] = True
    logged_out = rng.random(size) < 0.1
    logged = is_pos | (channel == _TMALL) | (is_mini & cand & (signup | ~logged_out))

    has_dev = is_mini | is_oa | is_qr
    slot = (rng.random(size) * pp.n_dev[person]).astype(np.int64)
    in_wechat = is_qr & pp.wechat[person] & (rng.random(size) < 0.6)  # scanned in WeChat
    campaign = _campaigns(begin)
    product = _random_product(rng, brand)
    qty = rng.choice([1, 2, 3, 4, 6], size, p=[0.68, 0.2, 0.07, 0.03, 0.02])
    paid = np.round(_PROD_PRICE[product] * _CAMPAIGN_FACTOR[campaign] / 10).astype(np.int64)

    counts = np.zeros((size, len(_SLOT_KINDS)), dtype=np.int64)
    counts[:, 0] = is_oa & (rng.random(size) < 0.7)
    counts[:, 1] = is_oa
    counts[:, 2] = is_qr
    counts[:, 3] = is_qr & (rng.random(size) < 0.8)
    counts[:, 4] = is_mini
    counts[:, 5] = signup
    counts[:, _SLOT_VIEW] = np.where(is_mini, rng.geometric(0.4, size), 0)
    added = is_mini & (rng.random(size) < 0.35)
    counts[:, 7] = added
    counts[:, _SLOT_ORDER] = (added & (rng.random(size) < 0.55)) | (channel == _TMALL) | is_pos

    return _Sessions(
        person=person,
        channel=channel,
        brand=brand,
        begin=begin,
        campaign=campaign,
        signup=signup,
        logged=logged,
        device=np.where(has_dev, pp.dev_map[slot * n + person], -1),
        union=(is_mini & (rng.random(size) < 0.85)) | is_oa | in_wechat,
        openid_app=np.select([is_mini, is_oa | in_wechat], [brand, 3], default=-1),
        product=product,
        qty=qty,
        paid=paid * 10,
        counts=counts,
        phone_fmt=np.where(
            is_mini, rng.choice(6, size, p=_PHONE_P_APP), rng.choice(6, size, p=_PHONE_P_TYPED)
        ),
        junk_phone=rng.random(size) < np.where(is_pos, 0.005, 0.003),
        email_given=pp.has_email[person] & (rng.random(size) < 0.8),
        junk_email=np.where(rng.random(size) < 0.004, rng.integers(0, 3, size), -1),
        bday_given=rng.random(size) < 0.6,
        typo=rng.random(size) < 0.01,
        junk_anon=np.where(has_dev & (rng.random(size) < 0.003), rng.integers(0, 2, size), -1),
    )


@dataclass(frozen=True)
class _Events:
    """Events in timestamp order, pointing back at their session."""

    session: Arr
    kind: Arr
    product: Arr
    ts: Arr
    consent: Arr  # index into _CONSENT_KV for Consent Updated events, -1 elsewhere


def _make_events(rng: np.random.Generator, ss: _Sessions, end_us: int) -> _Events:
    n_sessions, n_slots = ss.counts.shape
    slot = np.repeat(np.tile(np.arange(n_slots, dtype=np.int8), n_sessions), ss.counts.ravel())
    session = np.repeat(np.arange(n_sessions), ss.counts.sum(axis=1))
    browsing = (slot == _SLOT_VIEW) & (rng.random(len(slot)) < 0.55)
    product = np.where(browsing, _random_product(rng, ss.brand[session]), ss.product[session])

    reps = _SLOT_WIDTH[slot]
    session, slot, product = (np.repeat(a, reps) for a in (session, slot, product))
    sub = np.arange(len(session)) - np.repeat(np.cumsum(reps) - reps, reps)
    kind = _SLOT_KINDS[slot, sub]

    elapsed = np.cumsum(rng.integers(2 * _US, 90 * _US, len(session)))
    first = np.searchsorted(session, np.arange(n_sessions))
    ts = np.minimum(ss.begin[session] + elapsed - elapsed[first][session], end_us - 1)
    order = np.argsort(ts, kind="stable")
    none = np.full(len(order), -1, dtype=np.int64)
    return _Events(session[order], kind[order], product[order], ts[order], none)


def _mix(x: Arr) -> Arr:
    """A fixed scramble of integers (Knuth's multiplicative hash), for choices that must
    not draw from the random stream."""
    out: Arr = (x.astype(np.uint64) * np.uint64(2654435761) + np.uint64(40503)) % np.uint64(1 << 32)
    return out.astype(np.int64)


def _add_consent(ss: _Sessions, ev: _Events, end_us: int) -> _Events:
    """Consent decisions as the touchpoints send them: about 60% of mini-program members
    grant marketing (on WeChat or SMS) as they sign up, about 8% of those withdraw it 1-45
    days later, and every counter sign-up grants SMS marketing.

    Chosen by a hash of person and brand, not the random stream, so every other column
    stays as it was.
    """
    at = np.flatnonzero(ev.kind == _K_SIGNUP)
    sess = ev.session[at]
    h = _mix(ss.person[sess] * 3 + ss.brand[sess])
    mini = (ss.channel[sess] == _MINI) & (h % 100 < 60)
    pos = ss.channel[sess] == _POS
    grant = mini | pos
    variant = np.where(pos, _CONSENT_POS, (h // 100) % 2)
    later = ev.ts[at] + (1 + (h // 200) % 45) * _DAY_US
    quit_ = mini & ((h // 10_000) % 100 < 8) & (later < end_us)
    session = np.concatenate([ev.session, sess[grant], sess[quit_]])
    ts = np.concatenate([ev.ts, np.minimum(ev.ts[at][grant] + 1, end_us - 1), later[quit_]])
    kind = np.concatenate([ev.kind, np.full(grant.sum() + quit_.sum(), _K_CONSENT, ev.kind.dtype)])
    product = np.concatenate([ev.product, ss.product[sess[grant]], ss.product[sess[quit_]]])
    consent = np.concatenate([ev.consent, variant[grant], variant[quit_] + 2])
    order = np.argsort(ts, kind="stable")
    return _Events(session[order], kind[order], product[order], ts[order], consent[order])
