"""Reference tables of the demo: brands and sources, catalogue, campaigns, names, cities.

Constants only, parsed once at import from compact text tables. Probabilities are numpy
arrays ready for ``Generator.choice``; indices into these tables are what the generator
draws, and the string modules render them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

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


_US = 1_000_000
_DAY_US = 86_400 * _US
_CST_S = 8 * 3600  # China Standard Time, UTC+8 all year


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
    ("track", "Consent Updated", None),
)
_K_CLICK, _K_LANDING, _K_SCAN, _K_AUTH, _K_HOME, _K_IDENTIFY = range(6)
_K_SIGNUP, _K_DETAIL, _K_VIEW, _K_ADD, _K_ORDER, _K_CONSENT = range(6, len(_KINDS))
# Consent decisions the touchpoints send (``Consent Updated`` properties), by variant:
# a mini-program's marketing grant on WeChat or SMS, its later withdrawal, and a counter
# sign-up's SMS grant. The surface comes from the source.
_CONSENT_KV = tuple(
    f',"purpose":"marketing","channel":"{c}","status":"{s}"'
    for s, c in (("granted", "wechat"), ("granted", "sms"), ("withdrawn", "wechat"),
                 ("withdrawn", "sms"), ("granted", "sms"))
)  # fmt: skip
_CONSENT_POS = 4
# Segment's consent object a share of mini-program users' SDKs send on every call.
_CONSENT_CTX = ',"consent":{"categoryPreferences":{"Analytics":true,"Advertising":false}}'

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
