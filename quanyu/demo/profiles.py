"""Member (CRM) records as a profile import file would carry them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.demo.arrow_text import _cat, _format_phones, _ints, _lookup, _masked, _names
from quanyu.demo.people import _People
from quanyu.demo.reference import (
    _BRAND_CODES,
    _CITIES,
    _DAY_US,
    _GIVEN_PARTNER,
    _JUNK_EMAILS,
    _JUNK_PHONE,
    _MINI,
    _PHONE_P_TYPED,
    _SLOT_ORDER,
    _TIER_POINTS,
    _TIERS,
    _TMALL,
    DEMO_BRANDS,
    DEMO_SOURCES,
    Arr,
)
from quanyu.demo.sessions import _Sessions


def _profiles(
    rng: np.random.Generator, pp: _People, ss: _Sessions, seed: int, start_us: int, days: int
) -> tuple[pa.Table, Arr]:
    """Member records: one per sign-up plus ~3% duplicates. Returns (table, person per row)."""
    n = pp.n
    signed = np.flatnonzero(ss.signup)
    paying = (ss.counts[:, _SLOT_ORDER] > 0) & ss.logged & (ss.channel != _TMALL)
    spend = np.bincount(
        (ss.brand * n + ss.person)[paying], weights=(ss.paid * ss.qty)[paying], minlength=3 * n
    )
    person, brand = ss.person[signed], ss.brand[signed]
    via_mini = ss.channel[signed] == _MINI
    # a duplicate is a second card opened at a counter, the name keyed in differently
    dup = np.flatnonzero(rng.random(len(signed)) < 0.03)
    p = np.concatenate([person, person[dup]])
    b = np.concatenate([brand, brand[dup]])
    is_dup = np.arange(len(p)) >= len(signed)
    rows, n_dup = len(p), len(dup)
    no_dup = np.zeros(n_dup, dtype=bool)

    created = np.concatenate([ss.begin[signed], start_us + rng.integers(0, days * _DAY_US, n_dup)])
    points = np.concatenate(
        [100 + spend[brand * n + person].astype(np.int64) // 100, rng.integers(0, 300, n_dup)]
    )
    bound = via_mini | (pp.cand_mini[person, brand] & (rng.random(len(signed)) < 0.5))
    bound = np.concatenate([bound, no_dup])  # a WeChat identity is on the record
    phone = _format_phones(pp.phone.take(pa.array(p)), rng.choice(6, rows, p=_PHONE_P_TYPED))
    phone = pc.if_else(pa.array(rng.random(rows) < 0.004), _JUNK_PHONE, phone)
    junk = np.where(rng.random(rows) < 0.004, rng.integers(0, 3, rows), -1)
    email = pc.if_else(
        pa.array(junk >= 0),
        _lookup(_JUNK_EMAILS, np.maximum(junk, 0)),
        _masked(pp.email, p, rng.random(rows) < 0.7),
    )
    g1, g2 = pp.g1[p], pp.g2[p]
    typo = rng.random(rows) < 0.01
    g1 = np.where(typo | (is_dup & (g2 < 0)), _GIVEN_PARTNER[g1], g1)
    g2 = np.where(is_dup & (g2 >= 0), _GIVEN_PARTNER[np.maximum(g2, 0)], g2)
    dup_no = _ints(10**7 + n + np.arange(n_dup), 8)  # beyond every original member number
    member_id = pa.concat_arrays(
        [
            pp.member_id.take(pa.array(brand * n + person)),
            _cat(_lookup(_BRAND_CODES, b[is_dup]), dup_no),
        ]
    )
    app = np.where(bound, b, 0)
    columns = {
        "source": _lookup(
            [s.key for s in DEMO_SOURCES], np.where(np.concatenate([via_mini, no_dup]), b, 5)
        ),
        "member_id": member_id,
        "brand": _lookup([k for k, _ in DEMO_BRANDS], b),
        "phone": phone,
        "email": email,
        "unionid": _masked(pp.unionid, p, bound),
        "openid": _masked(pp.openid, app * n + p, bound),
        "app_id": _masked(pa.array([s.app_id for s in DEMO_SOURCES[:3]]), app, bound),
        "name": _names(pp.sur[p], g1, g2),
        "gender": _masked(
            pa.array(["male", "female"]), pp.female[p].astype(np.int64), rng.random(rows) >= 0.08
        ),
        "birthday": pa.array(pp.birth_days[p], type=pa.int32(), mask=rng.random(rows) < 0.35).cast(
            pa.date32()
        ),
        "city": _masked(pa.array([c[0] for c in _CITIES]), pp.city[p], rng.random(rows) >= 0.05),
        "tier": _lookup(_TIERS, np.searchsorted(_TIER_POINTS, points, side="right")),
        "points": pa.array(points, type=pa.int64()),
        "created_at": pa.array(created, type=pa.timestamp("us", tz="UTC")),
    }
    order = pa.array(np.argsort(created, kind="stable"))
    table = pa.table(
        {"record_id": _cat(f"crm-{seed}-", _ints(np.arange(rows)))}
        | {k: v.take(order) for k, v in columns.items()}
    )
    return table, p[order.to_numpy()]
