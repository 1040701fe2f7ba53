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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DEMO_BRANDS", "DEMO_SOURCES", "DemoData", "DemoSource", "generate"]

Arr = npt.NDArray[Any]


@dataclass(frozen=True)
class DemoSource:
    """A touchpoint that demo events and member records arrive through.

    Attributes:
        key: source key used in the ``source`` columns, e.g. ``"lumi_mini_program"``.
        name: display name.
        kind: one of ``mini_program``, ``official_account``, ``tmall``, ``pos``, ``qr``.
        brand: brand key, or None for a group-level source.
        app_id: the WeChat app id of a WeChat source; openids are issued per app id.
    """

    key: str
    name: str
    kind: str
    brand: str | None
    app_id: str | None = None


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


DEMO_BRANDS: tuple[tuple[str, str], ...] = (
    ("lumi", "Lumi Skincare"),
    ("petal", "Petal Baby Care"),
    ("pure", "Pure Home Care"),
)

# Order matters: source b < 3 is brand b's mini-program, then one source per other channel.
DEMO_SOURCES: tuple[DemoSource, ...] = (
    DemoSource(
        "lumi_mini_program",
        "Lumi WeChat mini-program",
        "mini_program",
        "lumi",
        "wx3c5e8a1f2b7d9041",
    ),
    DemoSource(
        "petal_mini_program",
        "Petal WeChat mini-program",
        "mini_program",
        "petal",
        "wx8d21f0c4e6a35b97",
    ),
    DemoSource(
        "pure_mini_program",
        "Pure WeChat mini-program",
        "mini_program",
        "pure",
        "wx61b9e2d7c0f4a853",
    ),
    DemoSource(
        "hanami_official_account",
        "Hanami Group WeChat official account",
        "official_account",
        None,
        "wx0f7a4c92e1d6b538",
    ),
    DemoSource("hanami_tmall", "Hanami Tmall flagship store", "tmall", None),
    DemoSource("hanami_pos", "Hanami counter POS (member cards)", "pos", None),
    DemoSource("hanami_qr", "Hanami product QR codes", "qr", None),
)


def _words(text: str) -> list[str]:
    return text.split()


def _records(text: str, sep: str | None = None) -> list[list[str]]:
    """Parse a compact reference table: records split by lines or ';', fields by ``sep``."""
    rows = (r.strip() for line in text.strip().splitlines() for r in line.split(";"))
    return [[f.strip() for f in r.split(sep)] for r in rows if r]


_MINI, _OA, _TMALL, _POS, _QR = range(5)  # channels; source = brand if mini else channel + 2
_CHANNELS = ("mini_program", "official_account", "tmall", "pos", "qr")
_DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
_US = 1_000_000
_DAY_US = 86_400 * _US
_CST_S = 8 * 3600  # China Standard Time, UTC+8 all year
_CHUNK = 1 << 19  # rows per string-building task: bounded memory, both cores busy

_BRAND_CODES = ("LM", "PT", "PR")
_BRAND_WEIGHT = np.array([0.45, 0.25, 0.30])
_CHANNEL_WEIGHT = np.array([0.50, 0.12, 0.15, 0.15, 0.08])  # mini, OA, Tmall, POS, QR
_OPENID_PREFIX = (b"o6_bmj", b"oPtl3x", b"oXq9Lp", b"oGrpA7")  # per app: 3 minis, then OA

_CATALOG = [
    (int(b), sku, name, int(fen))
    for b, sku, name, fen in _records(
        """
    0 | LM-UV50-50G    | Lumi UV Aqua Essence SPF50 50g   | 8900
    0 | LM-CLN-120G    | Lumi Foaming Cleanser 120g       | 5900
    0 | LM-TNR-150ML   | Lumi Hydrating Toner 150ml       | 12900
    0 | LM-SRM-30ML    | Lumi Brightening Serum 30ml      | 29900
    0 | LM-CRM-50G     | Lumi Night Cream 50g             | 25900
    0 | LM-MSK-5P      | Lumi Sheet Mask 5 pack           | 9900
    0 | LM-PORE-10P    | Lumi Pore Strips 10 pack         | 3990
    0 | LM-GIFT-SET    | Lumi Skincare Gift Set           | 49900
    1 | PT-TAPE-NB90   | Petal Tape Diapers NB 90 pcs     | 15900
    1 | PT-TAPE-M64    | Petal Tape Diapers M 64 pcs      | 15900
    1 | PT-PANT-L54    | Petal Pull-ups L 54 pcs          | 16900
    1 | PT-PANT-XL44   | Petal Pull-ups XL 44 pcs         | 16900
    1 | PT-NIGHT-XXL26 | Petal Overnight Pants XXL 26 pcs | 12900
    1 | PT-WIPE-80X6   | Petal Baby Wipes 80 x 6          | 6900
    1 | PT-WASH-300ML  | Petal Baby Wash 300ml            | 5900
    2 | PR-LIQ-3KG     | Pure Laundry Liquid 3kg          | 4990
    2 | PR-LIQ-RF2KG   | Pure Laundry Liquid Refill 2kg   | 3290
    2 | PR-POD-36      | Pure Laundry Pods 36 pcs         | 5990
    2 | PR-PWD-2KG     | Pure Concentrated Powder 2kg     | 3990
    2 | PR-SOFT-1L     | Pure Fabric Softener 1L          | 2990
    2 | PR-DISH-1KG    | Pure Dish Liquid 1kg             | 1990
    2 | PR-BLCH-600ML  | Pure Oxygen Bleach 600ml         | 2490
""",
        "|",
    )
]
_PROD_BRAND = np.array([c[0] for c in _CATALOG])
_PROD_PRICE = np.array([c[3] for c in _CATALOG], dtype=np.int64)  # list price, fen
_PROD_COUNT = np.bincount(_PROD_BRAND, minlength=len(DEMO_BRANDS))
_PROD_OFFSET = np.concatenate([[0], np.cumsum(_PROD_COUNT)[:-1]])

# code, price factor, local-date window (MMDD, inclusive); member day is every 18th
_CAMPAIGNS = [
    (c, float(f), int(a), int(b))
    for c, f, a, b in _records("""
    always_on 1.0 0 0; member_day 0.95 0 0; new_year 0.95 0101 0120
    womens_day_38 0.9 0301 0308; 618_presale 0.9 0520 0615; 618 0.8 0616 0620
    double11_presale 0.9 1020 1109; double11 0.8 1110 1112; double12 0.9 1201 1212
""")
]
_CAMPAIGN_FACTOR = np.array([c[1] for c in _CAMPAIGNS])

_SURNAMES = _records("""
    王 wang 7.1; 李 li 7.0; 张 zhang 6.7; 刘 liu 5.4; 陈 chen 4.5; 杨 yang 3.1; 黄 huang 2.2
    赵 zhao 2.0; 吴 wu 1.9; 周 zhou 1.9; 徐 xu 1.3; 孙 sun 1.3; 马 ma 1.2; 朱 zhu 1.2
    胡 hu 1.1; 郭 guo 1.1; 何 he 1.0; 林 lin 1.0; 高 gao 1.0; 罗 luo 0.9; 郑 zheng 0.9
    梁 liang 0.9; 谢 xie 0.7; 宋 song 0.6; 唐 tang 0.6; 许 xu 0.6; 韩 han 0.5; 冯 feng 0.5
    邓 deng 0.5; 曹 cao 0.5; 彭 peng 0.5; 曾 zeng 0.5; 肖 xiao 0.5; 田 tian 0.4; 董 dong 0.4
    潘 pan 0.4; 袁 yuan 0.4; 蔡 cai 0.4; 蒋 jiang 0.4; 余 yu 0.4
""")
_SURNAME_P = np.array([float(w) for *_, w in _SURNAMES]) / sum(float(w) for *_, w in _SURNAMES)

# Given-name characters in homophone pairs (index i and i ^ 1): a typo swaps a character for
# its partner, the way a clerk or an input method gets a name wrong: 王小明 → 王晓明.
_GIVEN_PAIRS = _records("""
    小 晓 xiao; 明 铭 ming; 静 婧 jing; 丽 莉 li; 华 桦 hua; 伟 玮 wei; 芳 方 fang; 婷 亭 ting
    娜 纳 na; 杰 洁 jie; 敏 闽 min; 燕 艳 yan; 强 蔷 qiang; 磊 蕾 lei; 军 君 jun; 洋 阳 yang
    勇 咏 yong; 霞 侠 xia; 平 萍 ping; 刚 钢 gang; 英 瑛 ying; 红 虹 hong; 梅 玫 mei; 慧 惠 hui
    琪 淇 qi; 欣 馨 xin; 宇 雨 yu; 涛 韬 tao; 浩 皓 hao; 佳 嘉 jia; 怡 宜 yi; 思 斯 si
    晨 辰 chen; 子 梓 zi; 文 雯 wen; 婉 琬 wan
""")
_GIVEN = [c for a, b, _ in _GIVEN_PAIRS for c in (a, b)]
_GIVEN_PINYIN = [py for _, _, py in _GIVEN_PAIRS for _ in range(2)]
_GIVEN_PARTNER = np.arange(len(_GIVEN)) ^ 1

_CITIES = _records("""
    上海 SH 9.0; 北京 BJ 8.5; 广州 GZ 6.0; 深圳 SZ 6.0; 杭州 HZ 4.5; 成都 CD 4.5; 南京 NJ 3.5
    武汉 WH 3.5; 苏州 SU 3.0; 重庆 CQ 3.5; 西安 XA 2.5; 天津 TJ 2.5; 长沙 CS 2.0; 郑州 ZZ 2.0
    青岛 QD 1.5; 宁波 NB 1.5; 厦门 XM 1.2; 合肥 HF 1.2; 福州 FZ 1.0; 沈阳 SY 1.2
""")
_CITY_P = np.array([float(w) for *_, w in _CITIES]) / sum(float(w) for *_, w in _CITIES)
_EMAIL_DOMAINS = _words("qq.com 163.com 126.com sina.com outlook.com icloud.com gmail.com")
_EMAIL_P = np.array([0.45, 0.2, 0.1, 0.05, 0.08, 0.07, 0.05])
_PHONE_PREFIXES = np.array(
    _words(
        "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
        "180 181 182 183 185 186 187 188 189 191 193 195 198 199"
    ),
    dtype=np.int64,
)
# (prefix, separator after 3 digits, after 7): 13812345678, +8613812345678,
# +86 138 1234 5678, 138-1234-5678, 138 1234 5678, 86-13812345678
_PHONE_FORMATS = (
    ("", "", ""),
    ("+86", "", ""),
    ("+86 ", " ", " "),
    ("", "-", "-"),
    ("", " ", " "),
    ("86-", "", ""),
)
_PHONE_P_APP = np.array([0.80, 0.12, 0.02, 0.02, 0.02, 0.02])  # WeChat phone authorisation
_PHONE_P_TYPED = np.array([0.55, 0.10, 0.10, 0.10, 0.10, 0.05])  # keyed in by clerk or form
_JUNK_PHONE = "13800000000"
_JUNK_EMAILS = ("test@test.com", "null", "undefined")
_JUNK_ANON = ("undefined", "null")
_HOURS_ONLINE = np.array(
    _words("3 1.5 .8 .5 .5 .8 2 5 8 10 11 12 14 12 10 10 10 11 12 15 19 22 19 10"), dtype=np.float64
)
_HOURS_STORE = np.array(
    _words("0 0 0 0 0 0 0 0 0 0 6 9 10 9 9 10 10 10 11 12 12 9 0 0"), dtype=np.float64
)
_TIERS = ("bronze", "silver", "gold", "platinum")
_TIER_POINTS = np.array([500, 2000, 5000])

# Event kinds: (type, event, name).
_KINDS: tuple[tuple[str, str | None, str | None], ...] = (
    ("track", "Campaign Clicked", None),
    ("page", None, "Campaign Landing"),
    ("track", "Code Scanned", None),
    ("page", None, "Product Authenticity"),
    ("screen", None, "Home"),
    ("identify", None, None),
    ("track", "Member Signed Up", None),
    ("screen", None, "Product Detail"),
    ("track", "Product Viewed", None),
    ("track", "Product Added", None),
    ("track", "Order Completed", None),
)
_K_CLICK, _K_LANDING, _K_SCAN, _K_AUTH, _K_HOME, _K_IDENTIFY = range(6)
_K_SIGNUP, _K_DETAIL, _K_VIEW, _K_ADD, _K_ORDER = range(6, len(_KINDS))
# A session is a run of slots in this order; a slot repeats 0..k times and each repeat
# emits one or two kinds (a product view is a Product Detail screen plus Product Viewed).
_SLOT_KINDS = np.array(
    [
        [_K_CLICK, -1],
        [_K_LANDING, -1],
        [_K_SCAN, -1],
        [_K_AUTH, -1],
        [_K_HOME, -1],
        [_K_IDENTIFY, _K_SIGNUP],
        [_K_DETAIL, _K_VIEW],
        [_K_ADD, -1],
        [_K_ORDER, -1],
    ]
)
_SLOT_WIDTH = (_SLOT_KINDS >= 0).sum(axis=1)
_SLOT_VIEW, _SLOT_ORDER = 6, 8

_B64 = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_STR_NULL = pa.scalar(None, pa.string())


# --------------------------------------------------------------------------- string helpers


def _cat(*parts: Any) -> Any:
    """Concatenate string arrays and literals element-wise; null where any part is null."""
    return pc.binary_join_element_wise(*parts, "")


def _tpl(template: str, *values: Any) -> Any:
    """Fill each ``%s`` of ``template`` with a string array, element-wise (null propagates)."""
    literals = template.split("%s")
    parts = [x for lit, v in zip(literals[:-1], values, strict=True) for x in (lit, v)]
    return _cat(*(x for x in [*parts, literals[-1]] if not isinstance(x, str) or x))


def _join(*parts: Any) -> Any:
    """Concatenate element-wise, leaving out null parts.

    Every call passes a part that is never null: Arrow's "skip" join drops rows whose
    inputs are all null (seen with pyarrow 26), which would misalign the column.
    """
    return pc.binary_join_element_wise(*parts, "", null_handling="skip")


def _masked(values: Any, index: Arr, mask: Arr | None = None) -> Any:
    """``values.take(index)``, null wherever ``mask`` is False."""
    idx = pa.array(index, type=pa.int64(), mask=None if mask is None else ~mask)
    return values.take(idx)


def _scatter(subset: Any, mask: Arr) -> Any:
    """Spread ``subset`` (one value per True in ``mask``) to full length, null elsewhere."""
    return _masked(subset, np.cumsum(mask) - 1, mask)


def _lookup(values: Sequence[str], index: Arr) -> Any:
    """A small list of strings taken by index."""
    return pa.array(values, type=pa.string()).take(pa.array(index, type=pa.int64()))


def _ints(values: Arr, width: int = 0) -> Any:
    out = pc.cast(pa.array(values, type=pa.int64()), pa.string())
    return pc.utf8_lpad(out, width=width, padding="0") if width else out


def _money(fen: Arr) -> Any:
    """Fen amounts as JSON numbers with two decimals: 12990 → 129.90."""
    return _cat(_ints(fen // 100), ".", _ints(fen % 100, 2))


def _fixed_strings(chars: Arr) -> Any:
    """One ASCII string per row of a uint8 matrix, built straight from its buffer."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8).tobytes()
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def _tokens(rng: np.random.Generator, n: int, length: int, prefix: bytes) -> Any:
    body = _B64[rng.integers(0, len(_B64), (n, length - len(prefix)))]
    head = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (n, len(prefix)))
    return _fixed_strings(np.hstack([head, body]))


def _uuids(rng: np.random.Generator, n: int) -> Any:
    hexes = _HEX[rng.integers(0, 16, (n, 32))]
    hexes[:, 12] = ord("4")  # version 4
    hexes[:, 16] = np.frombuffer(b"89ab", dtype=np.uint8)[rng.integers(0, 4, n)]  # RFC 4122
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    parts = (
        hexes[:, :8],
        dash,
        hexes[:, 8:12],
        dash,
        hexes[:, 12:16],
        dash,
        hexes[:, 16:20],
        dash,
        hexes[:, 20:],
    )
    return _fixed_strings(np.hstack(parts))


def _format_phones(canonical: Any, fmt: Arr) -> Any:
    """Render 11-digit phones in the format chosen per row (see ``_PHONE_FORMATS``)."""
    pre, sep1, sep2 = (_lookup([f[i] for f in _PHONE_FORMATS], fmt) for i in range(3))
    head = pc.utf8_slice_codeunits(canonical, 0, 3)
    mid = pc.utf8_slice_codeunits(canonical, 3, 7)
    return _cat(pre, head, sep1, mid, sep2, pc.utf8_slice_codeunits(canonical, 7, 11))


def _names(sur: Arr, g1: Arr, g2: Arr) -> Any:
    """Chinese names from surname and given-character indices (g2 = -1: one character)."""
    second = pc.fill_null(_masked(pa.array(_GIVEN), np.maximum(g2, 0), g2 >= 0), "")
    return _cat(_lookup([s[0] for s in _SURNAMES], sur), _lookup(_GIVEN, g1), second)


def _pick(rng: np.random.Generator, weights: Arr) -> Arr:
    """One column per row of ``weights``, drawn in proportion to the row's weights."""
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cdf[:, -1]
    out: Arr = np.minimum((u[:, None] >= cdf).sum(axis=1), weights.shape[1] - 1)
    return out


# --------------------------------------------------------------------------- lookup tables


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


# --------------------------------------------------------------------------- consumers


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


def _fragments(pp: _People, tb: _Tables) -> _Fragments:
    n = pp.n
    ids = '","collection":"users","encoding":"none"'
    brand = _lookup([k for k, _ in DEMO_BRANDS], np.repeat(np.arange(3), n))
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


# --------------------------------------------------------------------------- sessions


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


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class _Events:
    """Events in timestamp order, pointing back at their session."""

    session: Arr
    kind: Arr
    product: Arr
    ts: Arr


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
    return _Events(session[order], kind[order], product[order], ts[order])


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
    fr: _Fragments, ss: _Sessions, tb: _Tables, sess: Arr, kind: Arr, product: Arr
) -> Any:
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
        _properties(fr, ss, tb, sess, kind, product),
        _scatter(_identify_traits(pp, fr, ss, sess[identify]), identify),
        _context(pp, fr, ss, tb, sess, member),
    ]


# --------------------------------------------------------------------------- member records


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


# --------------------------------------------------------------------------- entry point


def generate(
    consumers: int = 100_000, *, seed: int = 42, start: datetime | None = None, days: int = 365
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

    # No randomness below: chunks are independent and Arrow kernels release the GIL.
    tb = _tables()
    fr = _fragments(pp, tb)
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
