"""The event table's columns, assembled from sessions and pre-rendered fragments.

No randomness here: each chunk of rows is independent, so chunks can be built in parallel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.demo.arrow_text import (
    _cat,
    _format_phones,
    _ints,
    _join,
    _lookup,
    _masked,
    _money,
    _names,
    _scatter,
    _tpl,
)
from quanyu.demo.fragments import _Fragments, _Tables
from quanyu.demo.people import _People
from quanyu.demo.reference import (
    _BRAND_CODES,
    _CHANNELS,
    _CITIES,
    _CONSENT_CTX,
    _CONSENT_KV,
    _GIVEN_PARTNER,
    _JUNK_EMAILS,
    _JUNK_PHONE,
    _K_ADD,
    _K_AUTH,
    _K_CLICK,
    _K_CONSENT,
    _K_DETAIL,
    _K_IDENTIFY,
    _K_LANDING,
    _K_ORDER,
    _K_SCAN,
    _K_SIGNUP,
    _K_VIEW,
    _MINI,
    _OA,
    _POS,
    _TMALL,
    Arr,
)
from quanyu.demo.sessions import _Events, _mix, _Sessions


def _identify_traits(pp: _People, fr: _Fragments, ss: _Sessions, sess: Arr) -> Any:
    """Traits of the identify call at sign-up, as the mini-program or the clerk sent them."""
    p, b = ss.person[sess], ss.brand[sess]
    g1 = np.where(ss.typo[sess], _GIVEN_PARTNER[pp.g1[p]], pp.g1[p])
    phone = _format_phones(pp.phone.take(pa.array(p)), ss.phone_fmt[sess])
    phone = pc.if_else(pa.array(ss.junk_phone[sess]), _JUNK_PHONE, phone)
    junk = ss.junk_email[sess]
    email = pc.if_else(
        pa.array(junk >= 0),
        _lookup(_JUNK_EMAILS, np.maximum(junk, 0)),
        _masked(pp.email, p, ss.email_given[sess]),
    )
    return _join(
        _tpl('{"name":"%s","phone":"%s"', _names(pp.sur[p], g1, pp.g2[p]), phone),
        _tpl(',"email":"%s"', email),
        _tpl(',"birthday":"%s"', _masked(pp.birthday, p, ss.bday_given[sess])),
        _tpl(
            ',"gender":"%s","city":"%s",%s,"tier":"bronze"}',
            _lookup(["male", "female"], pp.female[p].astype(np.int64)),
            _lookup([c[0] for c in _CITIES], pp.city[p]),
            fr.member_kv.take(pa.array(b * pp.n + p)),
        ),
    )


def _properties(
    fr: _Fragments, ss: _Sessions, tb: _Tables, sess: Arr, kind: Arr, product: Arr,
    consent: Arr,
) -> Any:  # fmt: skip
    p, ch, b, camp = ss.person[sess], ss.channel[sess], ss.brand[sess], ss.campaign[sess]
    scan = (kind == _K_SCAN) | (kind == _K_AUTH)
    serial = _cat(_lookup(_BRAND_CODES, b[scan]), _ints((sess[scan] * 7919 + 1234567) % 10**12, 12))
    gtin = tb.gtin.take(pa.array(product[scan]))
    is_auth = kind[scan] == _K_AUTH
    scan_kv = _tpl(
        '%s"https://id.hanami-group.example/01/%s/21/%s","serial":"%s","gtin":"%s"%s',
        _lookup([',"code":', ',"url":'], is_auth.astype(np.int64)),
        gtin,
        serial,
        serial,
        gtin,
        _lookup(["", ',"result":"genuine"'], is_auth.astype(np.int64)),
    )
    order = kind == _K_ORDER
    so = sess[order]
    order_kv = _tpl(
        ',"order_id":"%s%s","revenue":%s,"products":[{%s,"price":%s,"quantity":%s}]',
        _lookup(["MP", "OA", "TM", "POS", "QR"], ch[order]),
        _ints((so * 104_729 + 7_654_321) % 10**10, 10),  # distinct per session
        _money(ss.paid[so] * ss.qty[so]),
        tb.product_obj.take(pa.array(product[order])),
        _money(ss.paid[so]),
        _ints(ss.qty[so]),
    )
    signup = kind == _K_SIGNUP
    signup_kv = _tpl(
        ',"member_id":"%s","channel":"%s"',
        fr.user_id.take(pa.array(b[signup] * fr.n + p[signup])),
        _lookup(_CHANNELS, ch[signup]),
    )
    added = kind == _K_ADD
    priced = (kind == _K_VIEW) | added
    return _join(
        tb.brand_open.take(pa.array(np.where(kind == _K_IDENTIFY, 3, b))),
        _masked(tb.campaign_kv, camp, (kind == _K_CLICK) | (kind == _K_LANDING)),
        _masked(tb.landing_kv, camp * 3 + b, kind == _K_LANDING),
        _scatter(scan_kv, scan),
        _masked(tb.product_kv, product, (kind == _K_SCAN) | (kind == _K_DETAIL) | priced),
        _masked(tb.price_kv, product, priced),
        _scatter(_tpl(',"quantity":%s', _ints(ss.qty[sess[added]])), added),
        _scatter(order_kv, order),
        _masked(pa.array([',"currency":"CNY"']), np.zeros(len(kind), np.int64), priced | order),
        _scatter(signup_kv, signup),
        _masked(pa.array(_CONSENT_KV), consent, kind == _K_CONSENT),
        _masked(fr.store_kv, p, (ch == _POS) & (order | signup)),
        "}",
    )


def _context(
    pp: _People, fr: _Fragments, ss: _Sessions, tb: _Tables, sess: Arr, member: Arr
) -> Any:
    n = pp.n
    p, ch, b = ss.person[sess], ss.channel[sess], ss.brand[sess]
    pos, tmall = ch == _POS, ch == _TMALL
    sp = sess[pos]
    phone = _format_phones(pp.phone.take(pa.array(p[pos])), ss.phone_fmt[sp])
    phone = pc.if_else(pa.array(ss.junk_phone[sp]), _JUNK_PHONE, phone)
    member_kv = fr.member_kv.take(pa.array(b[pos] * n + p[pos]))
    pos_traits = _tpl(',"traits":{"phone":"%s",%s}', phone, member_kv)
    app = ss.openid_app[sess]
    wechat = app >= 0
    consent_sdk = (ch == _MINI) & (_mix(p * 3 + b) % 10 < 3)
    dev = ss.device[sess]
    # alternatives share one table and exclude each other per row: one take, no coalesce
    return _join(
        tb.app_ctx.take(pa.array(np.where(ch == _MINI, b, ch + 2))),
        _scatter(pos_traits, pos),
        _masked(fr.traits, np.where(tmall, 3 * n + p, b * n + p), (member & ~pos) | tmall),
        _masked(fr.ext_head, np.where(wechat, app * n + p, 4 * n + p), wechat | tmall),
        _masked(fr.ext_tail, np.where(ss.union[sess], p, n), wechat),
        _masked(fr.device_ctx, dev, dev >= 0),
        _masked(tb.campaign_ctx, ss.campaign[sess], ch == _OA),
        # a share of mini-program users' SDKs send Segment's consent object on every call
        _masked(pa.array([_CONSENT_CTX]), np.zeros(len(sess), np.int64), consent_sdk),
        ',"locale":"zh-CN"}',
    )


_EVENT_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("messageId", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("name", pa.string()),
        ("userId", pa.string()),
        ("anonymousId", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("context", pa.string()),
    ]
)


def _event_chunk(
    pp: _People,
    fr: _Fragments,
    ss: _Sessions,
    ev: _Events,
    tb: _Tables,
    lo: int,
    hi: int,
    seed: int,
) -> list[Any]:
    """The event columns for rows ``lo:hi``, in ``_EVENT_SCHEMA`` order."""
    sess, kind, product = ev.session[lo:hi], ev.kind[lo:hi], ev.product[lo:hi]
    p, ch, b = ss.person[sess], ss.channel[sess], ss.brand[sess]
    member = (ch == _POS) | ((ch == _MINI) & ss.logged[sess])
    dev, junk = ss.device[sess], ss.junk_anon[sess]
    identify, tmall = kind == _K_IDENTIFY, ch == _TMALL
    kinds = pa.array(kind)
    return [
        tb.source_key.take(pa.array(np.where(ch == _MINI, b, ch + 2))),
        _cat(f"demo-{seed}-", _ints(np.arange(lo, hi))),
        tb.type.take(kinds),
        tb.event.take(kinds),
        tb.name.take(kinds),
        _masked(fr.user_id, np.where(member, b * pp.n + p, 3 * pp.n + p), member | tmall),
        _masked(fr.anon_id, np.where(junk >= 0, 3 * pp.n + junk, dev), dev >= 0),
        pa.array(ev.ts[lo:hi], type=pa.timestamp("us", tz="UTC")),
        _properties(fr, ss, tb, sess, kind, product, ev.consent[lo:hi]),
        _scatter(_identify_traits(pp, fr, ss, sess[identify]), identify),
        _context(pp, fr, ss, tb, sess, member),
    ]
