"""Identifier types and rules: defaults, validation, limits buckets, JSON round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from quanyu.errors import NotFound, ValidationFailed
from quanyu.identity.types import (
    CUSTOM_PRIORITY,
    IdentifierType,
    IdentityRules,
    Scope,
    canonical_type_key,
    limit_key,
)

RULES = IdentityRules.default()


def test_default_types_carry_the_documented_rules() -> None:
    phone, email = RULES.get("phone"), RULES.get("email")
    assert (phone.scope, phone.limit, phone.pii, phone.normaliser) == (
        Scope.GROUP,
        2,
        True,
        "phone",
    )
    assert (email.limit, email.pii, email.normaliser) == (3, True, "email")
    assert "+8613800138000" in phone.blocked_values
    assert RULES.get("unionid").limit == 1 and RULES.get("unionid").scope is Scope.GROUP
    assert RULES.get("openid").scope is Scope.APP and RULES.get("openid").limit is None
    assert RULES.get("member_id").limit_per_scope and RULES.get("member_id").scope is Scope.BRAND
    assert RULES.get("device_id").scope is Scope.GROUP and RULES.get("device_id").limit is None
    assert RULES.get("anonymous_id").scope is Scope.SOURCE
    assert RULES.get("user_id").priority == 0
    assert not any(RULES.get(k).pii for k in ("unionid", "openid", "member_id", "device_id"))
    assert RULES.pii_storage == "encrypted" and RULES.default_region == "CN"
    priorities = [t.priority for t in RULES.types.values()]
    assert min(priorities) == RULES.get("user_id").priority
    assert max(priorities) == RULES.get("anonymous_id").priority


def test_limit_key_counts_member_ids_per_brand_and_phones_in_one_bucket() -> None:
    member = RULES.get("member_id")
    assert limit_key(member, "br_a") == "member_id:br_a"
    assert limit_key(member, "br_a") != limit_key(member, "br_b")
    phone = RULES.get("phone")
    assert limit_key(phone, "") == limit_key(phone, "anything") == "phone"


@pytest.mark.parametrize(
    ("kwargs", "field", "shown"),
    [
        ({"key": "Phone"}, "key", "'Phone'"),
        ({"key": "1phone"}, "key", "'1phone'"),
        ({"key": "a" * 33}, "key", "aaaa"),
        ({"scope": "planet"}, "scope", "'planet'"),
        ({"priority": "2"}, "priority", "'2'"),
        ({"priority": True}, "priority", "True"),
        ({"limit": 0}, "limit", "0"),
        ({"limit": 2, "limit_window_days": 0}, "limit_window_days", "0"),
        ({"limit_window_days": 30}, "limit_window_days", "30"),
        ({"blocked_patterns": ("(unclosed",)}, "blocked_patterns", "'(unclosed'"),
        ({"blocked_values": "null"}, "blocked_values", "'null'"),
        ({"normaliser": "upper"}, "normaliser", "'upper'"),
        ({"pii": "yes"}, "pii", "'yes'"),
        ({"limit_per_scope": True}, "limit_per_scope", "True"),
    ],
)
def test_bad_type_fields_are_refused_naming_field_value_and_fix(
    kwargs: dict[str, Any], field: str, shown: str
) -> None:
    spec: dict[str, Any] = {"key": "loyalty", "scope": "group", "priority": 3, **kwargs}
    with pytest.raises(ValidationFailed) as e:
        IdentifierType(**spec)
    assert f"{field}=" in e.value.message and shown in e.value.message
    assert ";" in e.value.message  # the fix follows the problem
    assert e.value.code == "validation_failed" and e.value.status == 400


def test_window_and_scope_fields_are_kept() -> None:
    t = IdentifierType("loyalty", "brand", 3, limit=1, limit_window_days=365, limit_per_scope=True)  # type: ignore[arg-type]
    assert t.scope is Scope.BRAND and t.limit_window_days == 365
    assert limit_key(t, "br_x") == "loyalty:br_x"


def test_rules_round_trip_through_json() -> None:
    custom = IdentifierType(
        "tmall_nick",
        Scope.BRAND,
        4,
        limit=1,
        limit_window_days=90,
        blocked_values=("guest",),
        blocked_patterns=(r"tb\d+",),
        normaliser="lower",
        limit_per_scope=True,
    )
    rules = IdentityRules(
        {**RULES.types, custom.key: custom}, pii_storage="none", default_region="HK"
    )
    data = json.loads(json.dumps(rules.to_dict()))
    again = IdentityRules.from_dict(data)
    assert again == rules
    assert again.get("tmall_nick") == custom
    assert IdentityRules.from_dict(RULES.to_dict()) == RULES


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.pop("types"), "'types'"),
        (lambda d: d.update(colour="red"), "'colour'"),
        (lambda d: d.update(pii_storage="plain"), "'plain'"),
        (lambda d: d.update(default_region="XX"), "'XX'"),
        (lambda d: d.update(junk_values="null"), "junk_values"),
        (lambda d: d["types"]["phone"].update(limit=-1), "limit=-1"),
        (lambda d: d["types"]["phone"].update(colour=1), "colour"),
        (lambda d: d["types"]["phone"].pop("scope"), "scope=None"),
        (lambda d: d["types"]["phone"].update(key="email"), "'email'"),
        (lambda d: d["types"].update(bad=[1, 2]), "use a JSON object"),
    ],
)
def test_from_dict_refuses_bad_rules(mutate: Any, needle: str) -> None:
    data = json.loads(json.dumps(RULES.to_dict()))
    mutate(data)
    with pytest.raises(ValidationFailed) as e:
        IdentityRules.from_dict(data)
    assert needle in e.value.message


def test_get_names_declared_types_and_type_for_makes_custom_ones() -> None:
    with pytest.raises(NotFound) as e:
        RULES.get("wechat_nick")
    assert "'wechat_nick'" in e.value.message and "phone" in e.value.message
    custom = RULES.type_for("wechat_nick")
    assert (custom.scope, custom.pii, custom.limit) == (Scope.GROUP, False, None)
    assert (custom.priority, custom.normaliser) == (CUSTOM_PRIORITY, "text")
    assert RULES.type_for("phone") is RULES.get("phone")
    with pytest.raises(ValidationFailed, match="Tmall-ID"):
        RULES.type_for("Tmall-ID")


def test_with_type_adds_and_replaces_without_touching_the_original() -> None:
    strict_phone = IdentifierType("phone", Scope.GROUP, 2, limit=1, pii=True, normaliser="phone")
    rules = RULES.with_type(strict_phone)
    assert rules.get("phone").limit == 1 and RULES.get("phone").limit == 2
    assert set(rules.types) == set(RULES.types)
    with pytest.raises(TypeError):
        rules.types["x"] = strict_phone  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "key"),
    [("Tmall-ID", "tmall_id"), ("  JD Pin ", "jd_pin"), ("123", "x_123"), ("会员", None)],
)
def test_canonical_type_key(name: str, key: str | None) -> None:
    if key is None:
        with pytest.raises(ValidationFailed, match="unusable"):
            canonical_type_key(name)
    else:
        assert canonical_type_key(name) == key
        assert IdentityRules.default().type_for(key).key == key
