"""Serial codes: random draws, Crockford base32, keyed tags and hand-typing check characters.

A code is 80 bits from the OS's secure generator, written as 16 Crockford base32
characters. The printed serial appends a 4-character tag (20 bits of a keyed PRF of the
code), so a scan of an invented code is rejected by :func:`verify` alone — a pure
function of the text and the tenant's keys, no database read. A forger guessing tags
succeeds once in 2**20 tries; the per-IP rate limit of the scan endpoint makes that
useless, and a 4-character tag keeps code plus tag within GS1 AI (21)'s 20 characters.

The PRF is AES-CMAC over one 16-byte block (the code's 10 bytes and a 6-byte domain
label), which for single-block messages is ``AES_k(m xor K1)``: one AES-ECB call over
the whole batch computes every tag, where an HMAC per code would cost 3 µs each in
Python (30 s for 10 million). The inner code under the cap is itself a PRF of the outer
code under its own key — reproducible for reprints, never stored — and the database
holds only a keyed hash of it (CMAC under a third key) to find it on redemption.

Keys derive from the master key with HKDF-SHA256, info
``quanyu/v1/codes-<purpose>/tenant=<id>``, distinct from every other capability's.
"""

from __future__ import annotations

import functools
import hmac
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from quanyu.errors import ConfigError, QuanyuError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_BYTES = 10
CODE_CHARS = 16
TAG_CHARS = 4
SERIAL_CHARS = CODE_CHARS + TAG_CHARS
_ISO_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_OUTER, _INNER, _HASH = b"qouter", b"qinner", b"qihash"
_FORGIVE = str.maketrans("OIL", "011")

U8 = npt.NDArray[np.uint8]

_ENC = np.frombuffer(ALPHABET.encode(), np.uint8)
# ten bits -> two ASCII characters, packed so that memory order is first, second
_PAIR = (_ENC[np.arange(1024) >> 5].astype(np.uint16)) | (
    _ENC[np.arange(1024) & 31].astype(np.uint16) << 8
)
_DEC = np.full(256, 255, np.uint8)
for _i, _c in enumerate(ALPHABET):
    _DEC[ord(_c)] = _i
    _DEC[ord(_c.lower())] = _i
for _c, _v in (("O", 0), ("I", 1), ("L", 1)):  # Crockford's forgiving reads
    _DEC[ord(_c)] = _DEC[ord(_c.lower())] = _v


class ForgedCode(QuanyuError):
    """The text is not a code this tenant issued: bad characters, length, check or tag."""

    code = "forged_code"
    status = 422


@dataclass(frozen=True)
class CodeKeys:
    """One tenant's code keys (AES-128 for tags and inner codes); values kept out of repr."""

    tenant_id: str
    tag_key: bytes = field(repr=False)
    inner_key: bytes = field(repr=False)
    hash_key: bytes = field(repr=False)
    sign_key: bytes = field(repr=False)

    @classmethod
    def derive(cls, master: bytes, tenant_id: str) -> CodeKeys:
        """Derive the tenant's code keys from the 32-byte master key (HKDF-SHA256).

        Raises:
            ConfigError: the master key is not 32 bytes or the tenant id is empty.
        """
        if len(master) != 32 or not tenant_id:
            raise ConfigError("code keys need the 32-byte master key and a tenant id")

        def kdf(purpose: str, n: int) -> bytes:
            info = f"quanyu/v1/codes-{purpose}/tenant={tenant_id}".encode()
            return HKDF(algorithm=hashes.SHA256(), length=n, salt=None, info=info).derive(master)

        return cls(tenant_id, kdf("tag", 16), kdf("inner", 16), kdf("inner-hash", 16),
                   kdf("package-signing", 32))  # fmt: skip


def _cmac_blocks(key: bytes, blocks: U8) -> U8:
    """AES-CMAC of each row of ``blocks`` (N x 16, one complete block per message)."""
    ecb = Cipher(algorithms.AES(key), modes.ECB())
    ell = int.from_bytes(ecb.encryptor().update(bytes(16)))
    k1 = (ell << 1) & ((1 << 128) - 1)
    if ell >> 127:
        k1 ^= 0x87
    masked = blocks ^ np.frombuffer(k1.to_bytes(16), np.uint8)
    out = ecb.encryptor().update(masked.tobytes())
    return np.frombuffer(out, np.uint8).reshape(-1, 16)


def _with_label(raw: U8, label: bytes) -> U8:
    blocks = np.empty((len(raw), 16), np.uint8)
    blocks[:, :CODE_BYTES] = raw
    blocks[:, CODE_BYTES:] = np.frombuffer(label, np.uint8)
    return blocks


def draw(n: int) -> U8:
    """``n`` fresh codes as raw bytes (n x 10) from the OS's secure generator."""
    return np.frombuffer(os.urandom(CODE_BYTES * n), np.uint8).reshape(n, CODE_BYTES).copy()


def encode(raw: U8) -> U8:
    """Crockford base32 of each 10-byte row: an n x 16 array of ASCII characters."""
    n = len(raw)
    b = raw.reshape(n * 2, 5).astype(np.uint16)  # two 40-bit halves, four 10-bit groups each
    out = np.empty((n * 2, 4), np.uint16)
    out[:, 0] = _PAIR[(b[:, 0] << 2) | (b[:, 1] >> 6)]
    out[:, 1] = _PAIR[((b[:, 1] & 63) << 4) | (b[:, 2] >> 4)]
    out[:, 2] = _PAIR[((b[:, 2] & 15) << 6) | (b[:, 3] >> 2)]
    out[:, 3] = _PAIR[((b[:, 3] & 3) << 8) | b[:, 4]]
    return out.reshape(n, 8).view(np.uint8).reshape(n, CODE_CHARS)


def decode(chars: U8) -> U8:
    """The 10-byte rows of n x 16 Crockford characters (forgiving O/I/L and lower case).

    Raises:
        ForgedCode: a character outside Crockford's alphabet.
    """
    values = _DEC[chars]
    if (values == 255).any():
        bad = bytes(chars[(values == 255).any(axis=1)][0]).decode("ascii", "replace")
        raise ForgedCode(f"code {bad!r} has characters outside Crockford base32 ({ALPHABET})")
    words = np.zeros((len(chars), 2), np.uint64)
    for j in range(8):
        words = (words << np.uint64(5)) | values[:, j::8].astype(np.uint64)
    out = np.zeros((len(chars), 2, 8), np.uint8)
    out.view(">u8").reshape(-1, 2)[:] = words
    return out[:, :, 3:].reshape(-1, CODE_BYTES).copy()


_DEC_ONE = {chr(c): int(v) for c, v in enumerate(_DEC) if v != 255}


def decode_one(chars: str) -> bytes:
    """:func:`decode` of one 16-character code, without numpy (a scan decodes one).

    Raises:
        ForgedCode: a character outside Crockford's alphabet, or not 16 of them.
    """
    value = 0
    for ch in chars:
        d = _DEC_ONE.get(ch)
        if d is None or len(chars) != CODE_CHARS:
            raise ForgedCode(f"code {chars!r} has characters outside Crockford base32 ({ALPHABET})")
        value = (value << 5) | d
    return value.to_bytes(CODE_BYTES, "big")


def encode_one(raw: bytes) -> str:
    """:func:`encode` of one 10-byte code, without numpy."""
    v = int.from_bytes(raw, "big")
    return "".join(ALPHABET[(v >> shift) & 31] for shift in range(75, -1, -5))


@functools.lru_cache(maxsize=4096)
def _single_block(key: bytes) -> tuple[Cipher[modes.ECB], int]:
    """The key's AES-ECB cipher and CMAC subkey K1 (computed once per key)."""
    ecb = Cipher(algorithms.AES(key), modes.ECB())
    ell = int.from_bytes(ecb.encryptor().update(bytes(16)))
    k1 = (ell << 1) & ((1 << 128) - 1)
    return ecb, k1 ^ 0x87 if ell >> 127 else k1


_encryptors = threading.local()


def tag_one(key: bytes, raw: bytes, *, inner: bool = False) -> str:
    """:func:`tags` of one code: the same 4 characters, at a scan's cost."""
    ecb, k1 = _single_block(key)
    block = int.from_bytes(raw + (_INNER if inner else _OUTER)) ^ k1
    # An ECB context encrypts each block alone and is never finalised, so one per key
    # and thread serves every tag (contexts are not shared between threads).
    mine: dict[bytes, Any] | None = getattr(_encryptors, "by_key", None)
    if mine is None:
        mine = _encryptors.by_key = {}
    enc = mine.get(key)
    if enc is None:
        if len(mine) > 4096:
            mine.clear()
        enc = mine[key] = ecb.encryptor()
    prf = enc.update(block.to_bytes(16))
    bits = (prf[0] << 12) | (prf[1] << 4) | (prf[2] >> 4)
    return "".join(ALPHABET[(bits >> shift) & 31] for shift in (15, 10, 5, 0))


def _tag_chars(prf: U8) -> U8:
    bits = (
        (prf[:, 0].astype(np.uint32) << 12)
        | (prf[:, 1].astype(np.uint32) << 4)
        | (prf[:, 2].astype(np.uint32) >> 4)
    )
    shifts = np.array([15, 10, 5, 0], np.uint32)
    return _ENC[((bits[:, None] >> shifts) & 31).astype(np.intp)]


def tags(keys: CodeKeys, raw: U8, *, inner: bool = False) -> U8:
    """The 4-character tag (n x 4 ASCII) of each outer (or inner) code."""
    return _tag_chars(_cmac_blocks(keys.tag_key, _with_label(raw, _INNER if inner else _OUTER)))


def inner_codes(keys: CodeKeys, raw: U8) -> U8:
    """The inner (under-the-cap) code of each outer code, as raw 10-byte rows."""
    return _cmac_blocks(keys.inner_key, _with_label(raw, _INNER))[:, :CODE_BYTES].copy()


def inner_hashes(keys: CodeKeys, inner_raw: U8) -> U8:
    """The stored keyed hash (16 bytes) of each inner code; the code itself is never stored."""
    return _cmac_blocks(keys.hash_key, _with_label(inner_raw, _HASH))


def check_char(text: str) -> str:
    """The ISO 7064 MOD 37-36 check character of ``text`` (over 0-9A-Z)."""
    p = 36
    for ch in text.upper():
        s = (p + _ISO_ALPHABET.index(ch)) % 36 or 36
        p = (2 * s) % 37
    return _ISO_ALPHABET[(37 - p) % 36]


def check_ok(text: str) -> bool:
    """Whether ``text`` ends with its correct MOD 37-36 check character."""
    body, ch = text[:-1].upper(), text[-1:].upper()
    ok = all(c in _ISO_ALPHABET for c in body) and ch in _ISO_ALPHABET
    return ok and len(text) > 1 and check_char(body) == ch


def typed_form(serial: str) -> str:
    """The hand-typing form: groups of four and the check character, K7Q2-…-TAG1-X."""
    groups = "-".join(serial[i : i + 4] for i in range(0, len(serial), 4))
    return f"{groups}-{check_char(serial)}"


@dataclass(frozen=True)
class Verified:
    """A serial whose tag is genuine: the canonical 16-character code and 4-character tag."""

    code: str
    tag: str
    inner: bool


def verify(keys: CodeKeys, text: str, *, inner: bool = False) -> Verified:
    """Check a scanned or typed serial against the tenant's key, without any database read.

    Accepts the 20-character serial (code then tag), any case, with hyphens or spaces,
    Crockford's O/I/L readings, and an optional trailing MOD 37-36 check character.

    Raises:
        ForgedCode: wrong length, characters, check character or tag.
    """
    compact = text.replace("-", "").replace(" ", "").upper()
    if len(compact) == SERIAL_CHARS + 1:
        compact = compact[:SERIAL_CHARS].translate(_FORGIVE) + compact[SERIAL_CHARS:]
        if not check_ok(compact):
            raise ForgedCode(f"code {text!r} fails its check character: it was mistyped; retype it")
        compact = compact[:-1]
    if len(compact) != SERIAL_CHARS:
        raise ForgedCode(
            f"code {text!r} has {len(compact)} characters: a serial is {SERIAL_CHARS}"
            f" (code and tag), or {SERIAL_CHARS + 1} with the check character"
        )
    head = compact[:CODE_CHARS]
    raw = decode_one(head)
    # a code without Crockford's forgiven letters (O, I, L) is its own canonical form
    canon = head if head.translate(_FORGIVE) == head else encode_one(raw)
    want = tag_one(keys.tag_key, raw, inner=inner)
    got = compact[CODE_CHARS:].translate(_FORGIVE)
    if not hmac.compare_digest(want, got):
        raise ForgedCode(f"code {text!r} has no valid tag: it was not issued by this brand")
    return Verified(canon, want, inner)


def verify_many(keys: CodeKeys, texts: list[str]) -> list[str]:
    """The canonical codes of many compact texts of one length: 16 (bare code, no tag to
    check) or 20 (serial, tag checked). Vectorised: one AES call for the whole list.

    Raises:
        ForgedCode: a text of another length, bad characters, or a serial with a bad tag.
    """
    if not texts:
        return []
    width = len(texts[0])
    if width not in (CODE_CHARS, SERIAL_CHARS) or any(len(t) != width for t in texts):
        raise ForgedCode(
            f"codes must all be {CODE_CHARS} characters (bare) or {SERIAL_CHARS} (serial);"
            f" got {texts[0]!r} and others of other lengths"
        )
    chars = np.frombuffer("".join(texts).encode("ascii", "replace"), np.uint8).reshape(-1, width)
    raw = decode(np.ascontiguousarray(chars[:, :CODE_CHARS]))
    if width == SERIAL_CHARS:
        got = _DEC[chars[:, CODE_CHARS:]]
        bad = (got == 255).any(axis=1) | (_DEC[tags(keys, raw)] != got).any(axis=1)
        if bad.any():
            first = texts[int(np.argmax(bad))]
            raise ForgedCode(
                f"code {first!r} has no valid tag: it was not issued by this brand"
                + (f" ({int(bad.sum())} such codes in the list)" if bad.sum() > 1 else "")
            )
    return encode(raw).view(f"S{CODE_CHARS}").reshape(-1).astype(str).tolist()


@functools.lru_cache(maxsize=1024)
def code_keys(master: bytes, tenant_id: str) -> CodeKeys:
    """:meth:`CodeKeys.derive`, cached: scans and bulk calls derive keys per request."""
    return CodeKeys.derive(master, tenant_id)
