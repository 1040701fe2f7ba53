"""Shipped tag templates: RFM, lifecycle, cross-brand buyer, channel preference,
favourite category, high-value member — and the default taxonomy they sit in.

A template is a set of tags written in the rule language (or expert SQL) with
parameters (windows, thresholds, the order event); instantiating it creates them in
a tenant, so they are ordinary tags a marketer can read and change afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quanyu.errors import NotFound, ValidationFailed
from quanyu.tags.models import CategoryCreate, TagCreate

CATEGORIES = [
    CategoryCreate(id="basic", name_zh="基础属性", name_en="Basic", position=1),
    CategoryCreate(id="behaviour", name_zh="行为", name_en="Behaviour", position=2),
    CategoryCreate(id="value", name_zh="价值", name_en="Value", position=3),
    CategoryCreate(id="lifecycle", name_zh="生命周期", name_en="Lifecycle", position=4),
    CategoryCreate(id="preference", name_zh="偏好", name_en="Preference", position=5),
    CategoryCreate(id="brand", name_zh="品牌", name_en="Brand", position=6),
]


@dataclass(frozen=True)
class Template:
    """A named set of tags with parameters and their defaults."""

    key: str
    name_zh: str
    name_en: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)

    def tags(self, values: dict[str, Any]) -> list[TagCreate]:
        """The template's tags with ``values`` filled in (defaults for the rest)."""
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise ValidationFailed(
                f"template {self.key!r} has no parameter {unknown[0]!r}:"
                f" its parameters are {', '.join(self.params) or 'none'}"
            )
        p = {**self.params, **values}
        p["order"] = _quote(str(p.get("order_event", "Order Completed")))
        return [TagCreate(**t) for t in _BUILDERS[self.key](p)]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rfm(p: dict[str, Any]) -> list[dict[str, Any]]:
    o, w = p["order"], p["window_days"]
    r_days = p["recency_days"]
    f_min = p["frequency_thresholds"]
    m_min = p["monetary_thresholds"]
    recency = " ".join(
        f"when last(event = {o}) >= ago({d}d) then {5 - i}" for i, d in enumerate(r_days)
    )
    frequency = " ".join(
        f"when count(event = {o}, within {w}d) >= {n} then {5 - i}" for i, n in enumerate(f_min)
    )
    monetary = " ".join(
        f"when sum(amount, event = {o}, within {w}d) >= {n} then {5 - i}"
        for i, n in enumerate(m_min)
    )
    high = 'tag("rfm_r") >= 3', 'tag("rfm_f") >= 3', 'tag("rfm_m") >= 3'
    segments = [
        ("important_value", "重要价值客户", (1, 1, 1)),
        ("important_development", "重要发展客户", (1, 0, 1)),
        ("important_retention", "重要保持客户", (0, 1, 1)),
        ("important_recall", "重要挽留客户", (0, 0, 1)),
        ("general_value", "一般价值客户", (1, 1, 0)),
        ("general_development", "一般发展客户", (1, 0, 0)),
        ("general_retention", "一般保持客户", (0, 1, 0)),
        ("general_recall", "一般挽留客户", (0, 0, 0)),
    ]
    whens = " ".join(
        "when "
        + " and ".join(h if bit else f"not {h}" for h, bit in zip(high, bits, strict=True))
        + f' then "{key}"'
        for key, _, bits in segments
    )
    names = "; ".join(f"{k} = {zh}" for k, zh, _ in segments)
    base = {"category_id": "value", "value_type": "number", "template": "rfm"}
    return [
        {**base, "key": "rfm_r", "name_zh": "R 近度分", "name_en": "RFM recency score",
         "description": f"5 = ordered within {r_days[0]} days … 1 = ever ordered",
         "rule": f"case {recency} when last(event = {o}) is not null then 1 end"},
        {**base, "key": "rfm_f", "name_zh": "F 频次分", "name_en": "RFM frequency score",
         "description": f"orders in {w} days against {f_min}",
         "rule": f"case {frequency} else 0 end"},
        {**base, "key": "rfm_m", "name_zh": "M 金额分", "name_en": "RFM monetary score",
         "description": f"order amount in {w} days against {m_min}",
         "rule": f"case {monetary} else 0 end"},
        {**base, "key": "rfm_segment", "name_zh": "RFM 客户分层", "name_en": "RFM segment",
         "value_type": "enum", "allowed_values": [k for k, _, _ in segments],
         "description": f"the classic 8 segments (3+ is high): {names}",
         "rule": f'case when tag("rfm_r") is null then null {whens} end'},
    ]  # fmt: skip


def _lifecycle(p: dict[str, Any]) -> list[dict[str, Any]]:
    o, new, active, dormant = p["order"], p["new_days"], p["active_days"], p["dormant_days"]
    rule = (
        f"case when last(event = {o}) is null then null"
        f' when first(event = {o}) >= ago({new}d) then "new"'
        f" when last(event = {o}) >= ago({new}d) and count(event = {o}, within {dormant}d)"
        f' = count(event = {o}, within {new}d) then "won_back"'
        f' when last(event = {o}) >= ago({active}d) then "active"'
        f' when last(event = {o}) >= ago({dormant}d) then "dormant"'
        ' else "churned" end'
    )
    return [{
        "key": "lifecycle", "name_zh": "生命周期阶段", "name_en": "Lifecycle stage",
        "category_id": "lifecycle", "value_type": "enum", "template": "lifecycle",
        "allowed_values": ["new", "active", "dormant", "churned", "won_back"],
        "description": f"new: first order within {new} days; won back: ordered within {new}"
                       f" days after none for {dormant}; active: within {active}; dormant:"
                       f" within {dormant}; churned: longer ago",
        "rule": rule,
    }]  # fmt: skip


def _cross_brand(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [{
        "key": "cross_brand_buyer", "name_zh": "跨品牌购买", "name_en": "Cross-brand buyer",
        "category_id": "brand", "value_type": "boolean", "template": "cross_brand_buyer",
        "description": f"ordered from {p['min_brands']}+ brands of the group",
        "rule": f"distinct(brand, event = {p['order']}) >= {p['min_brands']}",
    }]  # fmt: skip


def _channel_preference(p: dict[str, Any]) -> list[dict[str, Any]]:
    sql = (
        "SELECT profile_id, arg_max(channel, (n, channel)) FROM (SELECT profile_id, channel,"
        " count(*) AS n"
        f" FROM events WHERE channel IS NOT NULL AND ts >= now() - INTERVAL {int(p['window_days'])}"
        " DAY GROUP BY profile_id, channel) AS c GROUP BY profile_id"
    )
    return [{
        "key": "channel_preference", "name_zh": "渠道偏好", "name_en": "Channel preference",
        "category_id": "preference", "value_type": "enum", "template": "channel_preference",
        "description": f"the channel with most events in {p['window_days']} days", "sql": sql,
    }]  # fmt: skip


def _favourite_category(p: dict[str, Any]) -> list[dict[str, Any]]:
    order = p["order_event"].replace("'", "''")
    sql = (
        "SELECT profile_id, arg_max(category, (n, category)) FROM (SELECT profile_id,"
        " json_extract_string(properties, '$.category') AS category, count(*) AS n FROM events"
        f" WHERE event IN ('{order}', 'Product Viewed', 'Product Added')"
        " GROUP BY profile_id, category) AS c WHERE category IS NOT NULL GROUP BY profile_id"
    )
    return [{
        "key": "favourite_category", "name_zh": "偏好品类", "name_en": "Favourite category",
        "category_id": "preference", "value_type": "enum", "template": "favourite_category",
        "description": "the product category a person ordered or looked at most", "sql": sql,
    }]  # fmt: skip


def _high_value(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [{
        "key": "high_value_member", "name_zh": "高价值会员", "name_en": "High-value member",
        "category_id": "value", "value_type": "boolean", "template": "high_value_member",
        "description": f"a member who spent {p['min_amount']}+ in {p['window_days']} days",
        "rule": f"identifier(\"member_id\") and sum(amount, event = {p['order']},"
                f" within {p['window_days']}d) >= {p['min_amount']}",
    }]  # fmt: skip


_BUILDERS = {
    "rfm": _rfm,
    "lifecycle": _lifecycle,
    "cross_brand_buyer": _cross_brand,
    "channel_preference": _channel_preference,
    "favourite_category": _favourite_category,
    "high_value_member": _high_value,
}
_ORDER = {"order_event": "Order Completed"}
TEMPLATES = {
    t.key: t
    for t in [
        Template("rfm", "RFM 模型", "RFM", "recency, frequency, monetary scores and the 8 segments",
                 {**_ORDER, "window_days": 365, "recency_days": [30, 90, 180, 365],
                  "frequency_thresholds": [10, 5, 3, 2, 1],
                  "monetary_thresholds": [5000, 2000, 1000, 300, 0.01]}),
        Template("lifecycle", "生命周期", "Lifecycle stage", "new, active, dormant, churned,"
                 " won back", {**_ORDER, "new_days": 30, "active_days": 90, "dormant_days": 180}),
        Template("cross_brand_buyer", "跨品牌购买", "Cross-brand buyer",
                 "bought from several brands of the group", {**_ORDER, "min_brands": 2}),
        Template("channel_preference", "渠道偏好", "Channel preference",
                 "the channel a person uses most", {"window_days": 365}),
        Template("favourite_category", "偏好品类", "Favourite category",
                 "the category a person buys or browses most", dict(_ORDER)),
        Template("high_value_member", "高价值会员", "High-value member",
                 "members who spend a lot", {**_ORDER, "min_amount": 2000, "window_days": 365}),
    ]
}  # fmt: skip


def get(key: str) -> Template:
    """A shipped template. Raises NotFound naming the available ones."""
    if key not in TEMPLATES:
        raise NotFound(f"template {key!r} does not exist: use one of {', '.join(TEMPLATES)}")
    return TEMPLATES[key]
