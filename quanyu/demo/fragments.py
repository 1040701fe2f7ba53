"""JSON fragments rendered once and taken per row when the event columns are built.

``_Tables`` holds small per-kind, per-product and per-source strings; ``_Fragments`` holds
per-person strings laid out so that each output column needs a single take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from quanyu.demo.arrow_text import _lookup, _tpl
from quanyu.demo.people import _People
from quanyu.demo.reference import (
    _CAMPAIGNS,
    _CATALOG,
    _JUNK_ANON,
    _KINDS,
    _PROD_BRAND,
    _PROD_OFFSET,
    _PROD_PRICE,
    DEMO_BRANDS,
    DEMO_SOURCES,
)


def _gtin13(item: int) -> str:
    """A GTIN-13 under an invented China (69x) company prefix, with its check digit."""
    body = f"6901234{item:05d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


@dataclass(frozen=True)
class _Tables:
    """Small pre-rendered strings taken per row. JSON members start with their comma."""

    source_key: Any
    type: Any
    event: Any
    name: Any
    brand_open: Any  # per brand, then "{" for properties without a brand
    campaign_kv: Any  # per campaign
    campaign_ctx: Any  # per campaign
    landing_kv: Any  # per campaign * 3 + brand
    product_kv: Any  # per product
    product_obj: Any  # per product, no leading comma
    price_kv: Any  # per product
    gtin: Any  # per product
    app_ctx: Any  # per source; opens the context object
    app_id: Any  # per WeChat app: 3 mini-programs, then the official account


def _tables() -> _Tables:
    brands = [k for k, _ in DEMO_BRANDS]
    in_brand = np.arange(len(_CATALOG)) - _PROD_OFFSET[_PROD_BRAND]
    products = [
        f'"product_id":"{brands[b]}-{i + 1:03d}","sku":"{sku}","name":"{name}"'
        for (b, sku, name, _), i in zip(_CATALOG, in_brand, strict=True)
    ]
    apps = [
        f'{{"app":{{"name":"{s.name}"' + (f',"appId":"{s.app_id}"}}' if s.app_id else "}")
        for s in DEMO_SOURCES
    ]
    codes = [c for c, *_ in _CAMPAIGNS]
    return _Tables(
        source_key=pa.array([s.key for s in DEMO_SOURCES]),
        type=pa.array([t for t, _, _ in _KINDS]),
        event=pa.array([e for _, e, _ in _KINDS], type=pa.string()),
        name=pa.array([n for _, _, n in _KINDS], type=pa.string()),
        brand_open=pa.array([f'{{"brand":"{b}"' for b in brands] + ["{"]),
        campaign_kv=pa.array([f',"campaign":"{c}"' for c in codes]),
        campaign_ctx=pa.array(
            [
                f',"campaign":{{"name":"{c}","source":"wechat","medium":"official_account"}}'
                for c in codes
            ]
        ),
        landing_kv=pa.array(
            [
                f',"url":"https://h5.hanami-group.example/c/{c}?brand={b}"'
                for c in codes
                for b in brands
            ]
        ),
        product_kv=pa.array(["," + p for p in products]),
        product_obj=pa.array(products),
        price_kv=pa.array([f',"price":{p // 100}.{p % 100:02d}' for p in _PROD_PRICE]),
        gtin=pa.array([_gtin13(i + 1) for i in range(len(_CATALOG))]),
        app_ctx=pa.array(apps),
        app_id=pa.array([s.app_id for s in DEMO_SOURCES[:4]]),
    )


@dataclass(frozen=True)
class _Fragments:
    """Per-person strings rendered once, laid out so that each output needs one take.

    JSON members start with their comma; ``n`` is the number of people.
    """

    n: int
    user_id: Any  # 3n member ids (per brand), then n Tmall ouids
    anon_id: Any  # 3n device ids, then the junk values
    ext_head: Any  # 4n ',"externalIds":[{openid}' per WeChat app, then n closed Tmall lists
    ext_tail: Any  # n ',{unionid}]', then "]"
    traits: Any  # 3n ',"traits":{member}' per brand, then n Tmall traits
    member_kv: Any  # 3n '"member_id":..,"brand":..'
    device_ctx: Any  # 3n ',"device":{"id":..}'
    store_kv: Any  # n ',"store_id":..'


def _fragments(pp: _People, tb: _Tables, brand_ids: Mapping[str, str]) -> _Fragments:
    n = pp.n
    ids = '","collection":"users","encoding":"none"'
    # a member id names its brand as the tenant knows it (by id, once it has one)
    names = [brand_ids.get(k, k) for k, _ in DEMO_BRANDS]
    brand = _lookup(names, np.repeat(np.arange(3), n))
    member_kv = _tpl('"member_id":"%s","brand":"%s"', pp.member_id, brand)
    app_id = tb.app_id.take(pa.array(np.repeat(np.arange(4), n)))
    openid = _tpl(
        ',"externalIds":[{"id":"%s","type":"openid%s,"appId":"%s"}', pp.openid, ids, app_id
    )
    tmall = _tpl(',"externalIds":[{"id":"%s","type":"tmall_ouid%s}]', pp.ouid, ids)
    unionid = _tpl(',{"id":"%s","type":"unionid%s}]', pp.unionid, ids)
    tmall_traits = _tpl(',"traits":{"tmall_nick":"%s","ouid":"%s"}', pp.nick, pp.ouid)
    return _Fragments(
        n=n,
        user_id=pa.concat_arrays([pp.member_id, pp.ouid]),
        anon_id=pa.concat_arrays([pp.device, pa.array(_JUNK_ANON)]),
        ext_head=pa.concat_arrays([openid, tmall]),
        ext_tail=pa.concat_arrays([unionid, pa.array(["]"])]),
        traits=pa.concat_arrays([_tpl(',"traits":{%s}', member_kv), tmall_traits]),
        member_kv=member_kv,
        device_ctx=_tpl(',"device":{"id":"%s"}', pp.device),
        store_kv=_tpl(',"store_id":"%s"', pp.store),
    )
