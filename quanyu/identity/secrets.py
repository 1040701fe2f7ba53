"""Keys for PII identifiers: keyed hashes to match on, AES-GCM to store raw values.

A leaked database file alone must not reveal a phone number. PII identifiers are
therefore matched by an HMAC of their normalised value, and the raw value is stored
AES-256-GCM encrypted (or not at all, per ``IdentityRules.pii_storage``). The keys
derive from one 32-byte master key that never lives in the database: it comes from
``QUANYU_MASTER_KEY`` (base64) or from the file ``<data dir>/master.key``.

Back up ``master.key`` apart from the database and keep it as private as the
database itself. Without it the hashes cannot be recomputed — a re-sent phone no
longer matches its profile — and encrypted values cannot be read: a restored
database with a new key has lost its PII identifiers. A backup holding both files
together protects nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from quanyu.errors import ConfigError, QuanyuError, ValidationFailed
from quanyu.identity.types import IdentityRules, Scope
from quanyu.ids import random_bytes

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
HASH_BYTES = 16
MASTER_KEY_ENV = "QUANYU_MASTER_KEY"
MASTER_KEY_FILE = "master.key"


class DecryptionFailed(QuanyuError):
    """A stored PII value does not decrypt: wrong master key, wrong tenant, or tampering."""

    code = "decryption_failed"


def _decode_key(text: str) -> bytes:
    value = text.strip()
    try:
        key = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except binascii.Error as e:
        raise ConfigError(
            f"{MASTER_KEY_ENV} is not base64 ({e}): set it to the output of"
            " `python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())'`"
        ) from e
    if len(key) != KEY_BYTES or len(set(key)) == 1:
        what = f"{len(key)} bytes" if len(key) != KEY_BYTES else "one byte repeated"
        raise ConfigError(
            f"{MASTER_KEY_ENV} decodes to {what}: it must be base64 of 32 random bytes"
        )
    return key


def _read_key_file(path: Path) -> bytes:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise ConfigError(
            f"master key file {path} is readable by other users: run `chmod 600 {path}`"
        )
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"master key file {path} holds {len(key)} bytes, not {KEY_BYTES}: restore it"
            " from your backup (a new key makes existing PII identifiers unreadable)"
        )
    return key


def _create_key_file(path: Path) -> None:
    """Write a fresh key to ``path`` unless another process got there first.

    The key is written to a file of our own (O_EXCL) and hard-linked into place, so
    ``path`` appears complete or not at all, and two processes never end up with
    different keys: the second link fails and that process reads the winner's file.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created the key first; everyone reads that one
    except OSError:
        # no hard links on this filesystem: still exclusive, but not all-or-nothing
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, tmp.read_bytes())
                os.fsync(fd)
            finally:
                os.close(fd)
    finally:
        tmp.unlink()


def load_master_key(data_dir: Path, *, environ: Mapping[str, str] | None = None) -> bytes:
    """The 32-byte master key: from ``QUANYU_MASTER_KEY``, else ``data_dir/master.key``.

    Args:
        data_dir: the data directory; the key file is created there (mode 0600) when
            neither the variable nor the file exists.
        environ: the environment to read (``os.environ`` by default).

    Returns:
        The raw key bytes.

    Raises:
        ConfigError: the variable is not base64 of 32 bytes, or the file is the wrong
            size or readable by other users.
    """
    env = os.environ if environ is None else environ
    if env.get(MASTER_KEY_ENV):
        return _decode_key(env[MASTER_KEY_ENV])
    path = data_dir / MASTER_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _create_key_file(path)
    return _read_key_file(path)


def _derive(master: bytes, purpose: str, tenant_id: str) -> bytes:
    info = f"quanyu/v1/{purpose}/tenant={tenant_id}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(master)


@dataclass(frozen=True)
class TenantKeys:
    """One tenant's identifier keys; the values are kept out of ``repr``."""

    tenant_id: str
    hmac_key: bytes = field(repr=False)
    enc_key: bytes = field(repr=False)
    _hmac: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hmac", hmac.new(self.hmac_key, digestmod=hashlib.sha256))

    def keyed_hash(self, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the tenant's identifier key.

        From a keyed copy rather than ``hmac.digest``, which gives up the interpreter
        lock on every call: beside a busy thread, getting it back cost milliseconds.
        """
        h = self._hmac.copy()
        h.update(message)
        return h.digest()

    @classmethod
    def derive(cls, master: bytes, tenant_id: str) -> TenantKeys:
        """Derive the tenant's HMAC and encryption keys from the master key (HKDF-SHA256).

        Raises:
            ConfigError: ``master`` is not 32 bytes.
            ValidationFailed: ``tenant_id`` is empty.
        """
        if len(master) != KEY_BYTES:
            raise ConfigError(f"master key is {len(master)} bytes: it must be {KEY_BYTES}")
        if not tenant_id:
            raise ValidationFailed("tenant_id '' is invalid: derive keys for a real tenant id")
        return cls(
            tenant_id,
            _derive(master, "identifier-hmac", tenant_id),
            _derive(master, "pii-encryption", tenant_id),
        )


def identifier_key(
    keys: TenantKeys, rules: IdentityRules, type_key: str, scope_value: str, normalized: str
) -> str:
    """The identity graph's node key of a normalised identifier.

    Non-PII: ``"type:scope:value"``. PII: ``"type:scope:h:"`` and the base64url
    HMAC-SHA256 of type, scope and value truncated to 16 bytes, so the key never holds
    the raw value. ``scope_value`` is the brand, app or source id of scoped types and
    is ignored (written as "") for group-scoped ones.

    Raises:
        ValidationFailed: a scoped type without a scope value, or a scope value
            holding ``:`` or NUL, which would make keys ambiguous.
    """
    t = rules.type_for(type_key)
    if t.scope is Scope.GROUP:
        scope_value = ""
    elif not scope_value or ":" in scope_value or "\x00" in scope_value:
        raise ValidationFailed(
            f"identifier {type_key} needs a {t.scope.value} id without ':' as scope, got"
            f" {scope_value!r}: pass the {t.scope.value} the identifier belongs to"
        )
    if not t.pii:
        return f"{t.key}:{scope_value}:{normalized}"
    message = f"{t.key}\x00{scope_value}\x00{normalized}".encode()
    digest = keys.keyed_hash(message)[:HASH_BYTES]
    return f"{t.key}:{scope_value}:h:" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def encrypt(keys: TenantKeys, plaintext: str, *, aad: bytes = b"") -> bytes:
    """AES-256-GCM encryption under the tenant key: 12-byte random nonce, then ciphertext.

    ``aad`` (associated data, such as the identifier key) is authenticated but not
    stored; ``decrypt`` must be given the same bytes.
    """
    nonce = random_bytes(NONCE_BYTES)
    return nonce + AESGCM(keys.enc_key).encrypt(nonce, plaintext.encode(), aad)


def decrypt(keys: TenantKeys, blob: bytes, *, aad: bytes = b"") -> str:
    """The plaintext of an ``encrypt`` blob.

    Raises:
        DecryptionFailed: the blob was encrypted under another key (another tenant or
            master key) or ``aad``, or it was altered.
    """
    failed = DecryptionFailed(
        f"PII value of tenant {keys.tenant_id} ({len(blob)} bytes) does not decrypt: it was"
        " encrypted under another master key, tenant or aad, or altered; restore the master"
        " key this database was written with"
    )
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise failed
    try:
        plain = AESGCM(keys.enc_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag as e:
        raise failed from e
    return plain.decode()


def mask(type_key: str, normalized: str) -> str:
    """A display form that hides most of the value: "+86 138****5678", "j***@example.cn".

    Phones (E.164) keep the country code, up to three leading and four trailing digits;
    e-mails keep the first character and the domain; anything else keeps its first and
    last character. The number of hidden characters is not shown.
    """
    if type_key == "phone" and normalized.startswith("+"):
        digits = normalized[1:]
        cc_len = 2 if digits.startswith("86") else _country_code_length(digits)
        cc, national = digits[:cc_len], digits[cc_len:]
        head, tail = (3, 4) if len(national) >= 10 else (2, 2) if len(national) >= 7 else (0, 2)
        return f"+{cc} {national[:head]}****{national[-tail:]}"
    if type_key == "email" and "@" in normalized:
        local, _, domain = normalized.rpartition("@")
        return f"{local[:1]}***@{domain}"
    return f"{normalized[:1]}***{normalized[-1:]}" if len(normalized) > 4 else "***"


def _country_code_length(digits: str) -> int:
    for n in (1, 2, 3):
        if int(digits[:n] or 0) in COUNTRY_CODE_TO_REGION_CODE:
            return n
    return 0
