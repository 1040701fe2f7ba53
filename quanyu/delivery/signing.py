"""Standard Webhooks signatures (https://www.standardwebhooks.com), and sealed secrets.

Every request carries three headers::

    webhook-id: msg_0190f3a2c41b9e77d2a1           (unique per message; dedupe on it)
    webhook-timestamp: 1614265330                  (unix seconds of this attempt)
    webhook-signature: v1,<base64 HMAC-SHA256>     (of "{id}.{timestamp}.{body}")

keyed with the base64-decoded part of the destination's ``whsec_...`` secret. Any
Standard Webhooks library verifies them; :func:`verify` is the same check for
receivers written in Python. Pure functions: no I/O.

:class:`SecretBox` keeps secrets encrypted at rest under a key derived from the
master key (see :mod:`quanyu.identity.secrets`), bound to tenant and destination.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from quanyu.errors import QuanyuError, ValidationFailed
from quanyu.ids import random_bytes

SECRET_PREFIX = "whsec_"
#: Random bytes in a new secret (the specification asks for 24 to 64).
SECRET_BYTES = 32
#: Seconds a timestamp may differ from the receiver's clock (the specification's 5 min).
TOLERANCE = 300
_NONCE = 12


class SignatureInvalid(QuanyuError):
    """A webhook's headers are missing, stale, or signed with another secret or body."""

    code = "signature_invalid"
    status = 401


class SecretUnreadable(QuanyuError):
    """A stored destination secret does not decrypt under this master key."""

    code = "secret_unreadable"


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: base64-decode what follows the ``whsec_`` prefix.

    Raises:
        ValidationFailed: the secret is empty or not base64.
    """
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as e:
        raise ValidationFailed(
            f"webhook secret {secret[:10]}... is not base64 after {SECRET_PREFIX!r}: pass the"
            " secret exactly as it was shown when the destination was created"
        ) from e
    if not key:
        raise ValidationFailed("webhook secret is empty: pass the destination's whsec_ secret")
    return key


def _bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value: ``v1,`` and the base64 HMAC-SHA256 of
    ``"{msg_id}.{timestamp}.{body}"`` (body as sent, byte for byte)."""
    message = f"{msg_id}.{timestamp}.".encode() + _bytes(body)
    digest = hmac.new(secret_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance: int = TOLERANCE,
    *,
    now: float | None = None,
) -> str:
    """Check a received webhook; return its ``webhook-id``.

    Header names are matched case-insensitively. The signature header may hold
    several space-separated signatures (during a secret rotation); one valid ``v1``
    signature suffices.

    Raises:
        SignatureInvalid: a header is missing, the timestamp is more than
            ``tolerance`` seconds from ``now`` (default: the clock), or no signature
            matches the body.
    """
    found = {k.lower(): v for k, v in headers.items()}
    msg_id = found.get("webhook-id", "")
    stamp = found.get("webhook-timestamp", "")
    signatures = found.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise SignatureInvalid(
            "webhook lacks webhook-id, webhook-timestamp or webhook-signature: send all three"
        )
    try:
        timestamp = int(stamp)
    except ValueError as e:
        raise SignatureInvalid(f"webhook-timestamp {stamp!r} is not unix seconds") from e
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > tolerance:
        raise SignatureInvalid(
            f"webhook-timestamp {timestamp} is {clock - timestamp:+.0f} s from this clock, beyond"
            f" {tolerance} s: a replay, or a clock to set right"
        )
    expected = base64.b64decode(sign(secret, msg_id, timestamp, body)[3:])
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(expected, given):
            return msg_id
    raise SignatureInvalid(
        f"no v1 signature of webhook {msg_id} matches its body: wrong secret, or the body"
        " was changed (verify the raw bytes, before any JSON parsing)"
    )


class SecretBox:
    """Encrypts destination secrets (AES-256-GCM) under a per-tenant key from the master key."""

    def __init__(self, master_key: bytes) -> None:
        self._master = master_key
        self._keys: dict[str, AESGCM] = {}

    def _cipher(self, tenant: str) -> AESGCM:
        found = self._keys.get(tenant)
        if found is None:
            info = f"quanyu/v1/webhook-secret/tenant={tenant}".encode()
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
                self._master
            )
            found = self._keys[tenant] = AESGCM(key)
        return found

    def seal(self, tenant: str, destination_id: str, secret: str) -> bytes:
        """The secret encrypted for one destination: a random nonce, then ciphertext."""
        nonce = random_bytes(_NONCE)
        aad = f"{tenant}/{destination_id}".encode()
        return nonce + self._cipher(tenant).encrypt(nonce, secret.encode(), aad)

    def open(self, tenant: str, destination_id: str, sealed: bytes) -> str:
        """The secret of a :meth:`seal` blob.

        Raises:
            SecretUnreadable: sealed under another master key, tenant or destination.
        """
        aad = f"{tenant}/{destination_id}".encode()
        try:
            plain = self._cipher(tenant).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except (InvalidTag, ValueError) as e:
            raise SecretUnreadable(
                f"the signing secret of destination {destination_id} does not decrypt: the"
                " master key changed since it was created; restore that key, or delete the"
                " destination and create it again (the receiver needs the new secret)"
            ) from e
        return plain.decode()
