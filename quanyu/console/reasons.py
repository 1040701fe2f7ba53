"""Reasons the capabilities give in English, said in the console's language.

The API answers in English (its clients log and match on the text); the console shows
a Chinese user the same facts in Chinese. What a reason says is rebuilt from its parts —
an alert's kind and evidence, a consent exclusion's pattern — so a reason this module
does not know is shown as the capability wrote it, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

#: Consent statuses as the gate names them (``consent <status>``).
_STATUS_ZH = {
    "granted": "已同意",
    "expired": "同意已过期",
    "unknown": "未知",
    "denied": "已拒绝",
    "withdrawn": "已撤回同意",
}
#: Consent exclusions (quanyu.consent.enforce.admit): pattern, then the Chinese.
_EXCLUSIONS_ZH: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"consent (\w+)"), lambda m: _STATUS_ZH.get(m[1], m[0])),
    (re.compile(r"no consent recorded \(unknown\)"), lambda m: "没有同意记录（未知）"),
    (re.compile(r"canary: opted out of everything"), lambda m: "已退出一切联系（全局退订）"),
    (
        re.compile(r"age unknown; marketing needs (\d+)\+"),
        lambda m: f"年龄未知；营销需年满 {m[1]} 岁",
    ),
    (re.compile(r"under (\d+): no marketing"), lambda m: f"未满 {m[1]} 岁：不做营销"),
    (
        re.compile(r"purpose (\S+) may not reach destination (\S+)"),
        lambda m: f"用途 {m[1]} 不得发往目的地 {m[2]}",
    ),
)
#: Why a snapshot was made (quanyu.audiences).
_SNAPSHOT_ZH = {
    "manual": "手动",
    "schedule": "定时刷新",
    "tags_changed": "所用标签有变化",
    "edited": "定义已修改",
}


def exclusion(reason: str, lang: str) -> str:
    """Why the consent gate kept people out of an audience."""
    if lang != "zh":
        return reason
    for pattern, say in _EXCLUSIONS_ZH:
        m = pattern.fullmatch(reason)
        if m:
            return say(m)
    return reason


def snapshot_reason(reason: str, lang: str) -> str:
    """Why a snapshot was made."""
    return _SNAPSHOT_ZH.get(reason, reason) if lang == "zh" else reason


def alert_summary(alert: Any, lang: str) -> str:
    """An anomaly alert's one-line summary (quanyu.codes.anomalies), from its evidence."""
    summary = str(alert.summary)
    if lang != "zh":
        return summary
    ev: Mapping[str, Any] = alert.evidence or {}
    kind, subject = alert.kind, alert.subject
    if kind == "forged_burst" and {"count", "ip", "city"} <= ev.keys():
        return f"从 IP {ev['ip']}（{ev['city']}）扫描了 {ev['count']} 个伪造码"
    if kind == "distant_cities" and "cities" in ev:
        return f"码 {subject} 短时间内在 {'、'.join(ev['cities'])} 被扫描（标签被复制？）"
    if kind in ("voided_scan", "unknown_code", "unprinted_scan", "recycled_cap") and "count" in ev:
        state = ev.get("state") or "数据库中没有"
        return f"码 {subject}（{state}）被扫描 {ev['count']} 次，结果为 {ev.get('verdict')}"
    if kind == "diversion" and {"outside", "scans", "region"} <= ev.keys():
        return (
            f"经销商 {ev.get('dealer_id', '')}：{ev.get('gtin', '')} 的 {ev['scans']} 次门店和"
            f"经销商扫码中，有 {ev['outside']} 次在其授权区域 {ev['region']} 之外"
        )
    return summary
