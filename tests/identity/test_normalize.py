"""Normalisation: phones to E.164 (fast path and phonenumbers agree), e-mails, junk."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quanyu.identity.normalize import (
    BLOCKED,
    INVALID_PHONE,
    INVALID_TYPE,
    NOT_A_PHONE,
    NOT_A_STRING,
    NOT_AN_EMAIL,
    TOO_LONG,
    InvalidIdentifier,
    _phone_fast,
    _phone_slow,
    normalize,
    normalize_many,
)
from quanyu.identity.types import IdentityRules

RULES = IdentityRules.default()
SPELLINGS = [
    "13812345678",
    "138 1234 5678",
    "138-1234-5678",
    "+8613812345678",
    "+86 138 1234 5678",
    "+86-138-1234-5678",
    "86 13812345678",
    "8613812345678",
    "0086 138 1234 5678",
    "0086-13812345678",
    "(+86)13812345678",
    "(+86) 138 1234 5678",
    " 13812345678\t",
    "１３８１２３４５６７８",
    "＋８６ １３８ １２３４ ５６７８",
]


def reason_of(type_key: str, raw: str, rules: IdentityRules = RULES) -> InvalidIdentifier:
    with pytest.raises(InvalidIdentifier) as e:
        normalize(rules, type_key, raw)
    return e.value


@pytest.mark.parametrize("raw", SPELLINGS)
def test_every_spelling_of_a_chinese_mobile_gives_one_e164(raw: str) -> None:
    assert normalize(RULES, "phone", raw) == "+8613812345678"


@pytest.mark.parametrize("raw", SPELLINGS[:12])
def test_usual_spellings_take_the_fast_path(raw: str) -> None:
    assert _phone_fast(raw.strip(), "CN") == "+8613812345678"


@given(
    national=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    prefix=st.sampled_from(["", "+86", "+86 ", "86", "0086-", "(+86)"]),
    sep=st.sampled_from(["", " ", "-"]),
)
@settings(max_examples=300, deadline=None)
def test_fast_path_agrees_with_phonenumbers(national: str, prefix: str, sep: str) -> None:
    raw = prefix + national[:3] + sep + national[3:7] + sep + national[7:]
    fast = _phone_fast(raw, "CN")
    try:
        slow: str | None = _phone_slow("phone", raw, raw, "CN")
    except InvalidIdentifier:
        slow = None
    assert fast is None or fast == slow  # fast path only ever answers as phonenumbers would
    if slow is not None:
        assert fast == slow, "a valid mobile in a usual spelling missed the fast path"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("010-12345678", "+861012345678"),
        ("(021) 6234 5678", "+862162345678"),
        ("+86 755 8888 1234", "+8675588881234"),
        ("+1 650 253 0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("00852 9123 4567", "+85291234567"),
    ],
)
def test_landlines_and_foreign_numbers_go_through_phonenumbers(raw: str, e164: str) -> None:
    assert _phone_fast(raw, "CN") is None
    assert normalize(RULES, "phone", raw) == e164


def test_default_region_applies_to_numbers_without_country_code() -> None:
    us = IdentityRules(RULES.types, default_region="US")
    assert normalize(us, "phone", "(650) 253-0000") == "+16502530000"
    assert normalize(us, "phone", "+86 138 1234 5678") == "+8613812345678"
    assert _phone_fast("86 13812345678", "US") is None  # "86…" is only Chinese in CN


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12345", INVALID_PHONE),
        ("+86 140 1234 5678", INVALID_PHONE),
        ("138123456789", INVALID_PHONE),
        ("call me", NOT_A_PHONE),
    ],
)
def test_unusable_phones_are_refused_without_echoing_the_number(raw: str, reason: str) -> None:
    err = reason_of("phone", raw)
    assert err.reason == reason and err.rule is None and err.code == "invalid_identifier"
    assert raw not in err.message and "hidden" in err.message


@pytest.mark.parametrize("type_key", ["phone", "email", "unionid", "device_id", "loyalty_no"])
@pytest.mark.parametrize("raw", ["null", "NULL", " Undefined ", "N/A", "[object Object]", "", "0"])
def test_junk_is_blocked_for_every_type_naming_the_rule(type_key: str, raw: str) -> None:
    err = reason_of(type_key, raw)
    assert err.reason == BLOCKED and err.rule == f"junk:{raw.strip().lower()!r}"
    assert "blocked" in err.message and err.rule in err.message


@pytest.mark.parametrize(
    ("type_key", "raw", "rule"),
    [
        ("phone", "13800000000", "blocked_value:'+8613800000000'"),
        ("phone", "+86 138 0013 8000", "blocked_value:'+8613800138000'"),
        ("phone", "188 8888 8888", r"blocked_pattern:\+\d{1,3}(\d)\1{5,}"),
        ("phone", "+1 888 888 8888", r"blocked_pattern:\+\d{1,3}(\d)\1{5,}"),
        ("email", "TEST@test.com", "blocked_value:'test@test.com'"),
        ("email", "a@a.com", "blocked_value:'a@a.com'"),
        ("email", "jane@Example.ORG", r"blocked_pattern:.*@(example\.(com|org)|test\.com)"),
        ("device_id", "00000000-0000-0000-0000-000000000000", "blocked_value:'00000000-0000"),
    ],
)
def test_type_specific_blocked_values_and_patterns(type_key: str, raw: str, rule: str) -> None:
    err = reason_of(type_key, raw)
    assert err.reason == BLOCKED and err.rule is not None and err.rule.startswith(rule)


def test_non_ascii_digits_leave_the_fast_path_but_still_normalise() -> None:
    arabic_indic = "138١٢٣٤٥٦٧٨"
    assert _phone_fast(arabic_indic, "CN") is None
    assert normalize(RULES, "phone", arabic_indic) == "+8613812345678"


def test_real_numbers_near_the_junk_pass() -> None:
    assert normalize(RULES, "phone", "13800138001") == "+8613800138001"
    assert normalize(RULES, "phone", "188 8888 8881") == "+8618888888881"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (" John.Doe@Example.CN ", "john.doe@example.cn"),
        ("ＬＩ．Ｌｅｉ＠ｑｑ．ｃｏｍ", "li.lei@qq.com"),
        ("wang+crm@mail.163.com", "wang+crm@mail.163.com"),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw: str, canonical: str) -> None:
    assert normalize(RULES, "email", raw) == canonical


@pytest.mark.parametrize(
    "raw", ["john", "john@localhost", "a@b@c.cn", "jo hn@x.cn", "@x.cn", "john@.cn", "j@x..cn"]
)
def test_malformed_email_is_refused(raw: str) -> None:
    assert reason_of("email", raw).reason == NOT_AN_EMAIL


def test_text_keeps_case_lower_folds_it() -> None:
    assert normalize(RULES, "unionid", " oAbC１２３ ") == "oAbC123"
    assert normalize(RULES, "device_id", "6F9619FF-8B86-D011-B42D-00C04FC964FF") == (
        "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    )
    assert normalize(RULES, "tmall_nick", "\u3000小明\u3000") == "小明"


def test_other_refusals() -> None:
    assert reason_of("unionid", "x" * 257).reason == TOO_LONG
    assert reason_of("Bad Type", "x").reason == INVALID_TYPE
    assert reason_of("unionid", 42).reason == NOT_A_STRING  # type: ignore[arg-type]


def test_normalize_many_matches_lists_and_arrow() -> None:
    types = ["phone", "phone", "email", "phone", "unionid", "Bad Type"]
    raws = ["+86 138 1234 5678", "13812345678", "A@Qq.com", "null", "o1", "x"]
    values, reasons = normalize_many(RULES, types, raws)
    assert values == ["+8613812345678", "+8613812345678", "a@qq.com", None, "o1", None]
    assert reasons == [None, None, None, BLOCKED, None, INVALID_TYPE]
    assert normalize_many(RULES, pa.array(types), pa.chunked_array([raws[:2], raws[2:]])) == (
        values,
        reasons,
    )
    assert normalize_many(RULES, ["phone"], pa.array([None], pa.string())) == (
        [None],
        [NOT_A_STRING],
    )
    assert normalize_many(RULES, [], []) == ([], [])
    with pytest.raises(ValueError, match="2 types for 1 values"):
        normalize_many(RULES, ["phone", "email"], ["x"])


RAW = st.one_of(
    st.sampled_from(SPELLINGS + ["null", "13800000000", "010-12345678", "a@b.cn", "test@test.com"]),
    st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
    st.text(max_size=12),
)


@given(rows=st.lists(st.tuples(st.sampled_from(["phone", "email", "openid", "device_id"]), RAW)))
@settings(max_examples=200, deadline=None)
def test_normalize_many_agrees_with_normalize_row_by_row(rows: list[tuple[str, str]]) -> None:
    values, reasons = normalize_many(RULES, [t for t, _ in rows], [r for _, r in rows])
    for (type_key, raw), value, reason in zip(rows, values, reasons, strict=True):
        try:
            assert (value, reason) == (normalize(RULES, type_key, raw), None)
        except InvalidIdentifier as e:
            assert (value, reason) == (None, e.reason)
