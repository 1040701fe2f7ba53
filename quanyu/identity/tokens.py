"""PII tokens: identifier values sealed where events are stored.

A phone number or e-mail an event carries as an identifier is replaced, in the stored
event, by ``qy1:`` and its deterministic AES-SIV encryption under a per-tenant key
derived from the master key (never stored in the database). Deterministic, so equal
values give equal tokens (as the keyed hash already reveals) and a bulk import seals
each distinct value once; the resolver opens tokens to normalise and match them.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from quanyu.errors import ValidationFailed

TOKEN_PREFIX = "qy1:"
_AAD = [b"quanyu-pii-token"]


class Tokenizer:
    """Seals and opens one tenant's PII tokens."""

    __slots__ = ("_siv",)

    def __init__(self, key: bytes) -> None:
        self._siv = AESSIV(key)

    @classmethod
    def derive(cls, master: bytes, tenant_id: str) -> Tokenizer:
        """The tenant's tokenizer (AES-256-SIV key from HKDF-SHA256 of the master key)."""
        info = f"quanyu/v1/pii-token/tenant={tenant_id}".encode()
        key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=info).derive(master)
        return cls(key)

    def seal(self, value: str) -> str:
        """The token of ``value`` (the same value always gives the same token)."""
        if value.startswith(TOKEN_PREFIX):
            return value  # sealed already (a replayed or re-imported event)
        sealed = self._siv.encrypt(value.encode(), _AAD)
        return TOKEN_PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def open(self, value: str) -> str:
        """The value of a token; other text is returned as it is.

        Raises:
            ValidationFailed: a token this tenant's key did not seal.
        """
        if not value.startswith(TOKEN_PREFIX):
            return value
        body = value[len(TOKEN_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return self._siv.decrypt(raw, _AAD).decode()
        except (binascii.Error, InvalidTag, ValueError) as e:
            raise ValidationFailed(
                f"The token {value[:16]}… was not sealed by this tenant's key: it cannot be"
                " opened (was the master key replaced?)."
            ) from e
