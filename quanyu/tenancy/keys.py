"""Key material: generation and hashing. Plain keys are shown once and never stored."""

from __future__ import annotations

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
WRITE_PREFIX = "wk_"
SECRET_PREFIX = "sk_"


def generate(prefix: str) -> str:
    """A new key: ``prefix`` plus 32 random base62 characters (about 190 bits)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(32))


def digest(key: str) -> str:
    """The stored form of a key. Keys are random, so a plain SHA-256 suffices."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """The part of a key that lists may show."""
    return key[:9]
