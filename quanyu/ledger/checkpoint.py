"""Signed checkpoints: the C2SP tlog-checkpoint text in a C2SP signed note (Ed25519).

A checkpoint commits to a tree size and root hash::

    quanyu.local/<tenant id>
    1234
    <base64 root hash>

    — quanyu.local/<tenant id> <base64(4-byte key hash || Ed25519 signature)>

The origin and the key name are both ``quanyu.local/<tenant id>`` — a fixed pattern, no
setting, so a verifier can tell which tenant's log a checkpoint speaks for. The key
hash is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key) and the
signature covers the note text up to and including the newline before the blank line
(C2SP signed-note). Verifier keys are published as
``<name>+<key hash hex>+<base64(0x01 || public key)>``, the form Go's
``golang.org/x/mod/sumdb/note`` reads.

Each tenant's signing key derives from the master key with HKDF-SHA256 under its own
label, so the database file alone holds no private key and a restored database with
its master key signs with the same key. Pure apart from that derivation: verification
needs only the checkpoint text and the verifier key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from quanyu.ledger.merkle import HASH_SIZE

ORIGIN_PREFIX = "quanyu.local/"
ED25519 = 0x01
DASH = "\u2014 "  # an em dash and a space open every signature line
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


class CheckpointError(ValueError):
    """A checkpoint or verifier key is malformed, or its signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint says: the log (origin), its size and its root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The checkpoint text the signatures cover."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "".join(f"{line}\n" for line in [*lines, *self.extensions])


def origin(tenant: str) -> str:
    """The origin line (and key name) of a tenant's log."""
    return ORIGIN_PREFIX + tenant


def signing_key(master_key: bytes, tenant: str) -> Ed25519PrivateKey:
    """The tenant's checkpoint signing key, derived from the master key."""
    info = f"quanyu/v1/ledger-checkpoint-ed25519/tenant={tenant}".encode()
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_bytes(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_hash(name: str, public: bytes) -> bytes:
    """The signed-note key hash: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public).digest()[:4]


def verifier_key(name: str, public: bytes) -> str:
    """The published verifier key: ``<name>+<key hash hex>+<base64(0x01 || key)>``."""
    encoded = base64.b64encode(bytes([ED25519]) + public).decode()
    return f"{name}+{key_hash(name, public).hex()}+{encoded}"


def tenant_verifier_key(master_key: bytes, tenant: str) -> str:
    """The verifier key of a tenant's checkpoints."""
    return verifier_key(origin(tenant), public_bytes(signing_key(master_key, tenant).public_key()))


def parse_verifier_key(text: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """A verifier key's name, key hash and public key.

    Raises:
        CheckpointError: it is not ``<name>+<8 hex digits>+<base64>`` of an Ed25519 key.
    """
    parts = text.strip().split("+", 2)  # the base64 key may itself hold "+"
    if len(parts) != 3 or not parts[0] or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise CheckpointError(
            f"verifier key {text[:60]!r} is not <name>+<8 hex digits>+<base64 key>;"
            " copy it whole from GET /v1/tenants/{tenant}/ledger"
        )
    name, hash_hex, encoded = parts
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error as e:
        raise CheckpointError(f"the key part of verifier key {name!r} is not base64") from e
    if len(raw) != 33 or raw[0] != ED25519:
        raise CheckpointError(f"verifier key {name!r} is not an Ed25519 key (type 0x01, 32 bytes)")
    if key_hash(name, raw[1:]) != bytes.fromhex(hash_hex):
        raise CheckpointError(f"verifier key {name!r}: its key hash does not match its key")
    return name, bytes.fromhex(hash_hex), Ed25519PublicKey.from_public_bytes(raw[1:])


def sign(cp: Checkpoint, name: str, key: Ed25519PrivateKey) -> str:
    """The signed note of a checkpoint."""
    body = cp.body()
    stamp = key_hash(name, public_bytes(key.public_key())) + key.sign(body.encode())
    return f"{body}\n{DASH}{name} {base64.b64encode(stamp).decode()}\n"


def parse(text: str) -> tuple[Checkpoint, str, list[tuple[str, bytes]]]:
    """A note's checkpoint, the text its signatures cover, and its signature lines
    ``(name, key hash || signature)``, unverified.

    Raises:
        CheckpointError: the text is not a checkpoint in a signed note.
    """
    if "\r" in text or not text.endswith("\n"):
        raise CheckpointError("a signed note ends with a newline and has no carriage returns")
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise CheckpointError("the checkpoint has no blank line before its signatures")
    lines = body.split("\n")
    if len(lines) < 3 or not lines[0]:
        raise CheckpointError("a checkpoint's text is origin, tree size and root hash lines")
    if not _SIZE.match(lines[1]):
        raise CheckpointError(f"the tree size line {lines[1][:30]!r} is not a decimal number")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error as e:
        raise CheckpointError("the root hash line is not base64") from e
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"the root hash is {len(root)} bytes; SHA-256 gives {HASH_SIZE}")
    if any(not line for line in lines[3:]):
        raise CheckpointError("a checkpoint's extension lines must not be empty")
    found = []
    for line in sigs.rstrip("\n").split("\n"):
        if not line.startswith(DASH) or line.count(" ") != 2:
            raise CheckpointError(f"signature line {line[:40]!r} is not '— <name> <base64>'")
        name, _, encoded = line[len(DASH) :].partition(" ")
        try:
            stamp = base64.b64decode(encoded, validate=True)
        except binascii.Error as e:
            raise CheckpointError(f"the signature of {name!r} is not base64") from e
        if len(stamp) < 5:
            raise CheckpointError(f"the signature of {name!r} is too short")
        found.append((name, stamp))
    if not found:
        raise CheckpointError("the checkpoint carries no signature line")
    cp = Checkpoint(lines[0], int(lines[1]), root, tuple(lines[3:]))
    return cp, body + "\n", found


def open_signed(text: str, key: str) -> Checkpoint:
    """The checkpoint in ``text`` once a signature by ``key`` verifies.

    Raises:
        CheckpointError: the note is malformed, unsigned by that key, or altered.
    """
    name, khash, public = parse_verifier_key(key)
    cp, signed, sigs = parse(text)
    mine = [s for n, s in sigs if n == name and s[:4] == khash]
    if not mine:
        raise CheckpointError(
            f"the checkpoint has no signature by key {name!r}: check the verifier key is"
            " this log's (GET /v1/tenants/{tenant}/ledger)"
        )
    for stamp in mine:
        try:
            public.verify(stamp[4:], signed.encode())
        except InvalidSignature:
            continue
        return cp
    raise CheckpointError(
        f"the signature by {name!r} does not verify: the checkpoint text or the signature"
        " was altered"
    )
