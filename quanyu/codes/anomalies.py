"""Anomalies in scans: counterfeit signals and channel diversion (窜货).

Counterfeit signals come from consumer scans: forged tags (counted per source IP and
city), one outer code scanned in several distant cities within a day (copied labels),
scans of voided or never-printed codes, codes with a genuine tag the database never
issued, and recycled caps (an inner code presented after its case was recalled).

Diversion is judged on dealer and store scans only, aggregated per dealer and product:
consumers buy in one city and drink in another, so a single consumer scan far from the
dealer's region says nothing; a store stocking a dealer's cases outside that dealer's
authorised region does. :func:`detect` writes one alert per (kind, subject) with its
evidence; running it again adds only what is new.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from quanyu.codes import scan_sql as q
from quanyu.codes.scan_models import Alert, DealerProductRow, DealerReport, DetectResult
from quanyu.engine import Session
from quanyu.ids import new_id, utcnow

# city: (province, lat, lon) for the main cities; a city may also be named in pinyin.
CITIES: dict[str, tuple[str, float, float]] = {
    "北京": ("北京", 39.904, 116.407), "上海": ("上海", 31.230, 121.474),
    "天津": ("天津", 39.084, 117.201), "重庆": ("重庆", 29.563, 106.551),
    "广州": ("广东", 23.129, 113.264), "深圳": ("广东", 22.543, 114.058),
    "东莞": ("广东", 23.021, 113.752), "佛山": ("广东", 23.022, 113.122),
    "成都": ("四川", 30.573, 104.066), "绵阳": ("四川", 31.468, 104.679),
    "宜宾": ("四川", 28.752, 104.643), "泸州": ("四川", 28.872, 105.442),
    "贵阳": ("贵州", 26.647, 106.630), "遵义": ("贵州", 27.725, 106.927),
    "昆明": ("云南", 25.039, 102.718), "南宁": ("广西", 22.817, 108.366),
    "杭州": ("浙江", 30.274, 120.155), "宁波": ("浙江", 29.868, 121.544),
    "温州": ("浙江", 27.994, 120.699), "南京": ("江苏", 32.060, 118.797),
    "苏州": ("江苏", 31.299, 120.585), "无锡": ("江苏", 31.491, 120.312),
    "合肥": ("安徽", 31.821, 117.227), "福州": ("福建", 26.075, 119.306),
    "厦门": ("福建", 24.480, 118.089), "南昌": ("江西", 28.682, 115.858),
    "武汉": ("湖北", 30.593, 114.305), "长沙": ("湖南", 28.228, 112.939),
    "郑州": ("河南", 34.747, 113.625), "济南": ("山东", 36.651, 117.120),
    "青岛": ("山东", 36.067, 120.383), "石家庄": ("河北", 38.042, 114.515),
    "太原": ("山西", 37.870, 112.549), "西安": ("陕西", 34.342, 108.940),
    "兰州": ("甘肃", 36.061, 103.834), "西宁": ("青海", 36.617, 101.778),
    "银川": ("宁夏", 38.487, 106.231), "乌鲁木齐": ("新疆", 43.825, 87.617),
    "拉萨": ("西藏", 29.652, 91.172), "呼和浩特": ("内蒙古", 40.842, 111.749),
    "沈阳": ("辽宁", 41.806, 123.431), "大连": ("辽宁", 38.914, 121.615),
    "长春": ("吉林", 43.817, 125.324), "哈尔滨": ("黑龙江", 45.803, 126.535),
    "海口": ("海南", 20.044, 110.199), "三亚": ("海南", 18.253, 109.512),
}  # fmt: skip
PINYIN = {
    "beijing": "北京", "shanghai": "上海", "tianjin": "天津", "chongqing": "重庆",
    "guangzhou": "广州", "shenzhen": "深圳", "dongguan": "东莞", "foshan": "佛山",
    "chengdu": "成都", "mianyang": "绵阳", "yibin": "宜宾", "luzhou": "泸州",
    "guiyang": "贵阳", "zunyi": "遵义", "kunming": "昆明", "nanning": "南宁",
    "hangzhou": "杭州", "ningbo": "宁波", "wenzhou": "温州", "nanjing": "南京",
    "suzhou": "苏州", "wuxi": "无锡", "hefei": "合肥", "fuzhou": "福州", "xiamen": "厦门",
    "nanchang": "南昌", "wuhan": "武汉", "changsha": "长沙", "zhengzhou": "郑州",
    "jinan": "济南", "qingdao": "青岛", "shijiazhuang": "石家庄", "taiyuan": "太原",
    "xian": "西安", "xi'an": "西安", "lanzhou": "兰州", "xining": "西宁",
    "yinchuan": "银川", "urumqi": "乌鲁木齐", "lhasa": "拉萨", "hohhot": "呼和浩特",
    "shenyang": "沈阳", "dalian": "大连", "changchun": "长春", "harbin": "哈尔滨",
    "haikou": "海口", "sanya": "三亚",
    "guangdong": "广东", "sichuan": "四川", "guizhou": "贵州", "yunnan": "云南",
    "guangxi": "广西", "zhejiang": "浙江", "jiangsu": "江苏", "anhui": "安徽",
    "fujian": "福建", "jiangxi": "江西", "hubei": "湖北", "hunan": "湖南", "henan": "河南",
    "shandong": "山东", "hebei": "河北", "shanxi": "山西", "shaanxi": "陕西", "gansu": "甘肃",
    "qinghai": "青海", "ningxia": "宁夏", "xinjiang": "新疆", "tibet": "西藏",
    "xizang": "西藏", "inner mongolia": "内蒙古", "neimenggu": "内蒙古", "liaoning": "辽宁",
    "jilin": "吉林", "heilongjiang": "黑龙江", "hainan": "海南",
}  # fmt: skip
_SUFFIX = re.compile(r"(省|市|自治区|壮族自治区|回族自治区|维吾尔自治区|特别行政区)$")


def place(name: str | None) -> str | None:
    """A city or province name in its canonical Chinese form (pinyin and 省/市 accepted)."""
    if not name:
        return None
    text = name.strip()
    text = PINYIN.get(text.lower().removesuffix(" shi").removesuffix(" city"), text)
    return _SUFFIX.sub("", text) or text


def distance_km(a: str, b: str) -> float | None:
    """Great-circle distance between two known cities (None if either is unknown)."""
    pa_, pb = CITIES.get(a), CITIES.get(b)
    if pa_ is None or pb is None:
        return None
    la1, lo1, la2, lo2 = map(math.radians, (pa_[1], pa_[2], pb[1], pb[2]))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def in_region(city: str | None, region: str | None) -> bool | None:
    """Whether ``city`` lies in ``region`` (cities and/or provinces, comma-separated);
    None when either is missing or the city is unknown and not named in the region."""
    c = place(city)
    if c is None or not region:
        return None
    parts = {place(p) for p in re.split(r"[,，;；/、]", region) if p.strip()}
    if c in parts:
        return True
    known = CITIES.get(c)
    return None if known is None else known[0] in parts


@dataclass(frozen=True)
class Thresholds:
    """When a signal becomes an alert."""

    forged_per_origin: int = 5
    distant_cities: int = 3
    distant_km: float = 500.0
    distant_window: timedelta = timedelta(hours=24)
    diversion_share: float = 0.2
    diversion_min_scans: int = 3


def _far_apart(cities: list[str], km: float, n: int) -> list[str] | None:
    known = [c for c in cities if c in CITIES][:12]
    for combo in itertools.combinations(known, n):
        if all((distance_km(a, b) or 0) >= km for a, b in itertools.combinations(combo, 2)):
            return list(combo)
    return None


def _distant(rows: list[tuple[Any, ...]], t: Thresholds) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    by_code: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in rows:
        by_code[r[0]].append(r)
    for code, scans in by_code.items():
        for i, first in enumerate(scans):
            window = [s for s in scans[i:] if s[3] - first[3] <= t.distant_window]
            cities = list(dict.fromkeys(place(s[2]) or "" for s in window))
            combo = _far_apart(cities, t.distant_km, t.distant_cities)
            if combo:
                found.append({"code": code, "gtin": first[1], "cities": combo,
                              "first_at": first[3], "last_at": window[-1][3],
                              "scans": len(window)})  # fmt: skip
                break
    return found


def dealer_rows(
    db: Session, *, tenant: str, since: datetime, t: Thresholds | None = None
) -> list[DealerProductRow]:
    """Dealer and store scans per dealer and product, inside and outside the region."""
    t = t or Thresholds()
    acc: dict[tuple[str, str | None], dict[str, Any]] = {}
    for dealer, gtin, region, city, _party, _role, n, *_ in db.execute(
        q.PARTY_SCANS, [tenant, since]
    ):
        a = acc.setdefault((dealer, gtin), {"region": region, "scans": 0, "outside": {}})
        a["scans"] += int(n)
        if in_region(city, region) is False:
            a["outside"][city] = a["outside"].get(city, 0) + int(n)
    out = []
    for (dealer, gtin), a in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        outside = sum(a["outside"].values())
        share = outside / a["scans"] if a["scans"] else 0.0
        flagged = outside >= t.diversion_min_scans and share >= t.diversion_share
        out.append(DealerProductRow(dealer_id=dealer, gtin=gtin, region=a["region"],
                                    scans=a["scans"], outside=outside,
                                    outside_share=round(share, 4), outside_cities=a["outside"],
                                    flagged=flagged))  # fmt: skip
    return out


def _candidates(db: Session, tenant: str, since: datetime, t: Thresholds) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []

    def add(kind: str, subject: str, severity: str, summary: str, evidence: dict[str, Any],
            first: datetime | None, last: datetime | None, dealer: str | None = None,
            gtin: str | None = None) -> None:  # fmt: skip
        made.append({"kind": kind, "subject": subject, "severity": severity, "summary": summary,
                     "evidence": evidence, "first_at": first, "last_at": last,
                     "dealer_id": dealer, "gtin": gtin})  # fmt: skip

    for ip, city, n, first, last, samples in db.execute(
        q.FORGED_BY_ORIGIN, [tenant, since, t.forged_per_origin]
    ):
        add("forged_burst", f"{ip}|{city}", "high" if n >= 4 * t.forged_per_origin else "medium",
            f"{n} forged codes scanned from IP {ip} in {city}",
            {"ip": ip, "city": city, "count": n, "samples": samples}, first, last)  # fmt: skip
    for d in _distant(db.execute(q.CONSUMER_CITIES, [tenant, since, tenant, since]), t):
        add("distant_cities", d["code"], "high",
            f"code {d['code']} scanned in {', '.join(d['cities'])} within"
            f" {t.distant_window.total_seconds() / 3600:g} h (a copied label?)",
            {"cities": d["cities"], "scans": d["scans"]}, d["first_at"], d["last_at"],
            gtin=d["gtin"])  # fmt: skip
    for code, gtin, verdict, state, n, first, last, cities in db.execute(
        q.BAD_STATE_SCANS, [tenant, since]
    ):
        kind = {"voided": "voided_scan", "unknown": "unknown_code"}.get(verdict, "unprinted_scan")
        if verdict == "recalled":
            kind = "recycled_cap"
        add(kind, code, "high", f"code {code} ({state or 'not in the database'}) scanned {n}"
            f" time(s) with verdict {verdict}", {"verdict": verdict, "state": state,
            "count": n, "cities": [c for c in cities if c]}, first, last, gtin=gtin)  # fmt: skip
    for row in dealer_rows(db, tenant=tenant, since=since, t=t):
        if row.flagged:
            add("diversion", f"{row.dealer_id}|{row.gtin}", "high" if row.outside_share >= 0.5
                else "medium", f"dealer {row.dealer_id}: {row.outside} of {row.scans} store and"
                f" dealer scans of {row.gtin} outside its region {row.region}",
                row.model_dump(), None, None, row.dealer_id, row.gtin)  # fmt: skip
    return made


def detect(
    db: Session, *, tenant: str, since: datetime, thresholds: Thresholds | None = None
) -> DetectResult:
    """Scan the history since ``since`` for signals; store the new alerts."""
    t = thresholds or Thresholds()
    now = utcnow()
    seen = {(k, s) for k, s in db.execute(q.ALERT_KEYS, [tenant])}
    by_kind: dict[str, int] = defaultdict(int)
    with db.transaction():
        for a in _candidates(db, tenant, since, t):
            if (a["kind"], a["subject"]) in seen:
                continue
            seen.add((a["kind"], a["subject"]))
            db.execute(q.INSERT_ALERT, [tenant, new_id("alert"), a["kind"], a["subject"],
                       a["dealer_id"], a["gtin"], a["severity"], a["summary"],
                       orjson.dumps(a["evidence"], default=str).decode(), a["first_at"],
                       a["last_at"], now])  # fmt: skip
            by_kind[a["kind"]] += 1
    return DetectResult(new_alerts=sum(by_kind.values()), by_kind=dict(by_kind))


def _alert(r: tuple[Any, ...]) -> Alert:
    return Alert(id=r[0], kind=r[1], subject=r[2], dealer_id=r[3], gtin=r[4], severity=r[5],
                 summary=r[6], evidence=orjson.loads(r[7]), first_at=r[8], last_at=r[9],
                 detected_at=r[10])  # fmt: skip


def list_alerts(
    db: Session, *, tenant: str, kind: str | None = None, dealer: str | None = None,
    limit: int = 100,
) -> list[Alert]:  # fmt: skip
    """Alerts, newest first, optionally of one kind or about one dealer."""
    rows = db.execute(q.LIST_ALERTS, [tenant, kind, kind, dealer, dealer, limit])
    return [_alert(r) for r in rows]


def dealer_report(db: Session, *, tenant: str, dealer: str, since: datetime) -> DealerReport:
    """One dealer's products: party scans inside and outside its region, and its alerts."""
    rows = [r for r in dealer_rows(db, tenant=tenant, since=since) if r.dealer_id == dealer]
    return DealerReport(dealer_id=dealer, rows=rows,
                        alerts=list_alerts(db, tenant=tenant, dealer=dealer))  # fmt: skip
