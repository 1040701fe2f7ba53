"""The capabilities' English reasons said in the console's language (pure; no browser)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from quanyu.console.reasons import alert_summary, exclusion, snapshot_reason


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        ("consent withdrawn", "已撤回同意"),
        ("consent denied", "已拒绝"),
        ("consent expired", "同意已过期"),
        ("no consent recorded (unknown)", "没有同意记录（未知）"),
        ("canary: opted out of everything", "已退出一切联系（全局退订）"),
        ("age unknown; marketing needs 18+", "年龄未知；营销需年满 18 岁"),
        ("under 14: no marketing", "未满 14 岁：不做营销"),
        ("purpose kao.marketing may not reach destination dst_1",
         "用途 kao.marketing 不得发往目的地 dst_1"),
    ],
)  # fmt: skip
def test_consent_exclusions_in_chinese(english: str, chinese: str) -> None:
    assert exclusion(english, "zh") == chinese
    assert exclusion(english, "en") == english


def test_an_unknown_reason_is_shown_as_written() -> None:
    assert exclusion("a reason added later", "zh") == "a reason added later"
    assert exclusion("consent something-new", "zh") == "consent something-new"
    assert snapshot_reason("edited", "zh") == "定义已修改"
    assert snapshot_reason("edited", "en") == "edited"
    assert snapshot_reason("backfill", "zh") == "backfill"


def _alert(kind: str, subject: str, evidence: dict[str, object]) -> SimpleNamespace:
    return SimpleNamespace(kind=kind, subject=subject, evidence=evidence, summary="english")


def test_alert_summaries_are_rebuilt_from_their_evidence() -> None:
    diversion = _alert("diversion", "d-gz|06901234567892", {
        "dealer_id": "d-gz", "gtin": "06901234567892", "scans": 40, "outside": 31,
        "region": "CN-GD"})  # fmt: skip
    said = alert_summary(diversion, "zh")
    assert said.startswith("经销商 d-gz：06901234567892 的 40 次") and "31 次" in said
    assert "CN-GD" in said and alert_summary(diversion, "en") == "english"
    copied = _alert("distant_cities", "K7Q2", {"cities": ["上海", "成都"], "scans": 3})
    assert alert_summary(copied, "zh") == "码 K7Q2 短时间内在 上海、成都 被扫描（标签被复制？）"
    forged = _alert("forged_burst", "1.2.3.4|杭州", {"ip": "1.2.3.4", "city": "杭州", "count": 9})
    assert alert_summary(forged, "zh") == "从 IP 1.2.3.4（杭州）扫描了 9 个伪造码"
    voided = _alert("voided_scan", "K7Q2", {"verdict": "voided", "state": None, "count": 2})
    assert alert_summary(voided, "zh") == "码 K7Q2（数据库中没有）被扫描 2 次，结果为 voided"
    # evidence it cannot read: the English summary, not a half-made sentence
    assert alert_summary(_alert("diversion", "x", {"scans": 1}), "zh") == "english"
