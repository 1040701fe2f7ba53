"""PII keys: the master key file, per-tenant HKDF keys, keyed identifier hashes, AES-GCM."""

from __future__ import annotations

import base64
import multiprocessing
import stat
from pathlib import Path

import pytest

from quanyu.errors import ConfigError, ValidationFailed
from quanyu.identity.secrets import (
    MASTER_KEY_ENV,
    DecryptionFailed,
    TenantKeys,
    decrypt,
    encrypt,
    identifier_key,
    load_master_key,
    mask,
)
from quanyu.identity.types import IdentityRules

RULES = IdentityRules.default()
MASTER = bytes(range(32))
KEYS = TenantKeys.derive(MASTER, "ten_1")


def test_master_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = load_master_key(data_dir, environ={})
    path = data_dir / "master.key"
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(data_dir, environ={}) == key
    assert [p.name for p in data_dir.iterdir()] == ["master.key"]  # no temp file left


def test_a_readable_or_truncated_key_file_is_refused(tmp_path: Path) -> None:
    load_master_key(tmp_path, environ={})
    path = tmp_path / "master.key"
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_master_key(tmp_path, environ={})
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(ConfigError, match="holds 5 bytes"):
        load_master_key(tmp_path, environ={})


def _load(data_dir: str) -> bytes:
    return load_master_key(Path(data_dir), environ={})


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        keys = pool.map(_load, [str(tmp_path)] * 24)
    assert len(set(keys)) == 1
    assert keys[0] == (tmp_path / "master.key").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]


def test_env_key_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file_key = load_master_key(tmp_path, environ={})
    env_key = bytes(range(100, 132))
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(env_key).decode())
    assert load_master_key(tmp_path) == env_key != file_key
    urlsafe = base64.urlsafe_b64encode(env_key).decode().rstrip("=")
    assert load_master_key(tmp_path, environ={MASTER_KEY_ENV: urlsafe}) == env_key


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("not base64!", "not base64"),
        (base64.b64encode(b"x" * 16).decode(), "16 bytes"),
        (base64.b64encode(bytes(32)).decode(), "one byte repeated"),
    ],
)
def test_malformed_env_key_is_refused(tmp_path: Path, value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as e:
        load_master_key(tmp_path, environ={MASTER_KEY_ENV: value})
    assert MASTER_KEY_ENV in e.value.message
    assert not (tmp_path / "master.key").exists()


def test_tenant_keys_are_stable_distinct_and_hidden() -> None:
    again = TenantKeys.derive(MASTER, "ten_1")
    other = TenantKeys.derive(MASTER, "ten_2")
    assert again == KEYS
    assert {KEYS.hmac_key, KEYS.enc_key, other.hmac_key, other.enc_key}.__len__() == 4
    assert TenantKeys.derive(bytes(range(1, 33)), "ten_1").hmac_key != KEYS.hmac_key
    # pinned: changing the derivation would orphan every stored hash and ciphertext
    assert KEYS.hmac_key.hex().startswith("82afae96c0c134c64708b4056a19783d")
    assert KEYS.enc_key.hex().startswith("6381c3bfe3f0fe7fdca177f333b4a4a1")
    assert KEYS.hmac_key.hex() not in repr(KEYS) and "ten_1" in repr(KEYS)
    with pytest.raises(ConfigError, match="31 bytes"):
        TenantKeys.derive(MASTER[:31], "ten_1")
    with pytest.raises(ValidationFailed):
        TenantKeys.derive(MASTER, "")


def test_pii_identifier_key_hides_the_phone() -> None:
    key = identifier_key(KEYS, RULES, "phone", "", "+8613812345678")
    assert key == identifier_key(KEYS, RULES, "phone", "br_ignored", "+8613812345678")
    assert key.startswith("phone::h:") and len(key) == len("phone::h:") + 22
    for fragment in ("13812345678", "+8613812345678", "1381234", "12345678"):
        assert fragment not in key
    assert key == "phone::h:dmC78Tza7pnNJRBTI4bjsQ"  # pinned, as the keys are
    assert identifier_key(KEYS, RULES, "phone", "", "+8613812345679") != key
    assert (
        identifier_key(TenantKeys.derive(MASTER, "ten_2"), RULES, "phone", "", "+8613812345678")
        != key
    )
    email = identifier_key(KEYS, RULES, "email", "", "li.lei@qq.com")
    assert "li.lei" not in email and email.startswith("email::h:")


def test_non_pii_keys_carry_type_scope_and_value() -> None:
    assert identifier_key(KEYS, RULES, "openid", "wxapp1", "oAbC") == "openid:wxapp1:oAbC"
    assert identifier_key(KEYS, RULES, "openid", "wxapp2", "oAbC") != "openid:wxapp1:oAbC"
    assert identifier_key(KEYS, RULES, "unionid", "", "uX") == "unionid::uX"
    assert identifier_key(KEYS, RULES, "member_id", "br_a", "M1") == "member_id:br_a:M1"
    assert identifier_key(KEYS, RULES, "loyalty_no", "", "L9") == "loyalty_no::L9"
    for bad_scope in ("", "br:a"):
        with pytest.raises(ValidationFailed, match="brand id"):
            identifier_key(KEYS, RULES, "member_id", bad_scope, "M1")


def test_encrypt_round_trips_with_a_fresh_nonce() -> None:
    blob = encrypt(KEYS, "+8613812345678")
    assert decrypt(KEYS, blob) == "+8613812345678"
    assert b"13812345678" not in blob and len(blob) == 12 + 14 + 16
    assert encrypt(KEYS, "+8613812345678") != blob
    assert decrypt(KEYS, encrypt(KEYS, "李雷 li.lei@qq.com")) == "李雷 li.lei@qq.com"
    with_aad = encrypt(KEYS, "x", aad=b"phone::h:abc")
    assert decrypt(KEYS, with_aad, aad=b"phone::h:abc") == "x"
    with pytest.raises(DecryptionFailed, match="aad"):
        decrypt(KEYS, with_aad)


@pytest.mark.parametrize("position", [0, 11, 12, 20, -1])
def test_tampering_is_detected(position: int) -> None:
    blob = bytearray(encrypt(KEYS, "+8613812345678"))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionFailed, match="does not decrypt"):
        decrypt(KEYS, bytes(blob))


def test_another_tenant_or_master_key_cannot_decrypt() -> None:
    blob = encrypt(KEYS, "+8613812345678")
    with pytest.raises(DecryptionFailed, match="tenant ten_2"):
        decrypt(TenantKeys.derive(MASTER, "ten_2"), blob)
    with pytest.raises(DecryptionFailed):
        decrypt(TenantKeys.derive(bytes(range(1, 33)), "ten_1"), blob)
    with pytest.raises(DecryptionFailed, match="5 bytes"):
        decrypt(KEYS, b"short")


@pytest.mark.parametrize(
    ("type_key", "value", "masked"),
    [
        ("phone", "+8613812345678", "+86 138****5678"),
        ("phone", "+16502530000", "+1 650****0000"),
        ("phone", "+85291234567", "+852 91****67"),
        ("email", "john.doe@example.cn", "j***@example.cn"),
        ("email", "j@qq.com", "j***@qq.com"),
        ("unionid", "oAbCdEf", "o***f"),
        ("unionid", "abc", "***"),
    ],
)
def test_mask(type_key: str, value: str, masked: str) -> None:
    assert mask(type_key, value) == masked
