"""Code packages (码包) for printers, their signed manifests, and QR images.

A package is one CSV file per order (one line, one lot): ``seq,serial,check,link`` and
``inner`` when the order has inner codes, built column-wise from the stored codes (tags
and inner codes are recomputed from the tenant's keys; inner codes are never stored).

The manifest names the file, its row count, first and last serial and SHA-256, and is
signed with Ed25519. The signing key is derived from the master key (HKDF-SHA256, info
``quanyu/v1/codes-package-signing/tenant=<id>``, used as the Ed25519 seed), so only the
server can sign; a printer holds just the public key (``GET .../codes/package-key``) and
checks a package with :func:`verify_package` or these steps: (1) SHA-256 of the file
equals ``sha256``; (2) the Ed25519 signature (base64) verifies over the manifest's
canonical JSON without its ``signature`` field (sorted keys, no whitespace, UTF-8).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import segno
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from quanyu.codes import gs1, serials, service
from quanyu.codes import sql as q
from quanyu.codes.events import canonical
from quanyu.codes.generate import string_array
from quanyu.codes.models import Manifest
from quanyu.codes.serials import U8, CodeKeys
from quanyu.engine import Session
from quanyu.errors import QuanyuError, ValidationFailed

MAX_QR = 20
_ISO = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)
_ISO_VALUE = np.zeros(256, np.int64)
_ISO_VALUE[_ISO] = np.arange(36)


class TamperedPackage(QuanyuError):
    """A package's file or manifest does not match its signature."""

    code = "tampered_package"
    status = 422


def _private(keys: CodeKeys) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(keys.sign_key)


def public_key(keys: CodeKeys) -> tuple[str, str]:
    """The package-signing public key (base64 of the 32 raw bytes) and its key id."""
    raw = _private(keys).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode(), hashlib.sha256(raw).hexdigest()[:16]


def check_chars(serial_chars: U8) -> U8:
    """The MOD 37-36 check character of each row of ASCII characters, vectorised."""
    p = np.full(len(serial_chars), 36, np.int64)
    for j in range(serial_chars.shape[1]):
        s = (p + _ISO_VALUE[serial_chars[:, j]]) % 36
        s[s == 0] = 36
        p = (2 * s) % 37
    return _ISO[(37 - p) % 36]


def _chars(column: pa.ChunkedArray, width: int) -> U8:
    col = column.combine_chunks().cast(pa.string())
    n = len(col)
    data = np.frombuffer(col.buffers()[2], np.uint8)
    start = int(np.frombuffer(col.buffers()[1], np.int32)[col.offset])
    return data[start : start + n * width].reshape(n, width)


def build(
    db: Session,
    keys: CodeKeys,
    *,
    tenant: str,
    order_id: str,
    seq_from: int = 1,
    seq_to: int | None = None,
) -> tuple[bytes, Manifest]:
    """The order's package file (CSV bytes) and its signed manifest.

    Raises:
        NotFound: no such order, or its brand has no code settings.
        ValidationFailed: the range holds no codes.
    """
    order = service.get_order(db, tenant=tenant, order_id=order_id)
    product = service.get_product(db, tenant=tenant, product_id=order.product_id)
    brand = service.brand_settings(db, tenant=tenant, brand_id=product.brand_id)
    last = seq_to or order.generated
    table = db.arrow(q.ORDER_CODES, [tenant, order_id, seq_from, last])
    n = table.num_rows
    if n == 0:
        raise ValidationFailed(
            f"order {order_id} has no codes in seq {seq_from}..{last}: generate them first"
        )
    code_chars = _chars(table.column("code"), serials.CODE_CHARS)
    raw = serials.decode(np.ascontiguousarray(code_chars))
    serial = np.concatenate([code_chars, serials.tags(keys, raw)], axis=1)
    prefix = gs1.digital_link(brand.short_domain, product.gtin, "", uppercase=brand.uppercase)
    link = np.concatenate([np.broadcast_to(np.frombuffer(prefix.encode(), np.uint8),
                                           (n, len(prefix))), serial], axis=1)  # fmt: skip
    cols = {
        "seq": table.column("seq"),
        "serial": string_array(serial),
        "check": string_array(check_chars(serial)[:, None]),
        "link": string_array(link),
    }
    if order.inner_codes and order.level == "item":
        inner = serials.inner_codes(keys, raw)
        cols["inner"] = string_array(
            np.concatenate([serials.encode(inner), serials.tags(keys, inner, inner=True)], axis=1)
        )
    sink = io.BytesIO()
    sink.write((",".join(cols) + "\n").encode())
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    pacsv.write_csv(pa.table(cols), sink, options)
    body = sink.getvalue()
    first_serial = bytes(serial[0]).decode()
    last_serial = bytes(serial[-1]).decode()
    manifest = Manifest(
        order_id=order_id, line=order.line, lot=order.lot, gtin=product.gtin,
        file=f"{order_id}-{order.line}-{seq_from}-{seq_from + n - 1}.csv", count=n,
        first=first_serial, last=last_serial, sha256=hashlib.sha256(body).hexdigest(),
        key_id=public_key(keys)[1],
    )  # fmt: skip
    signature = _private(keys).sign(canonical(manifest.model_dump(exclude={"signature"})))
    manifest.signature = base64.b64encode(signature).decode()
    return body, manifest


def verify_package(
    manifest: Manifest | dict[str, object], body: bytes, public_key_b64: str
) -> None:
    """Check a package as a printer would: the file's hash and the manifest's signature.

    Raises:
        TamperedPackage: the file or the manifest was changed, or another key signed it.
    """
    m = manifest if isinstance(manifest, Manifest) else Manifest.model_validate(manifest)
    if hashlib.sha256(body).hexdigest() != m.sha256:
        raise TamperedPackage(
            f"package file {m.file} does not match its manifest's SHA-256: the file was"
            " changed or truncated; download the package again"
        )
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    try:
        key.verify(base64.b64decode(m.signature), canonical(m.model_dump(exclude={"signature"})))
    except InvalidSignature as e:
        raise TamperedPackage(
            f"manifest of {m.file} is not signed by key {m.key_id}: it was altered or"
            " comes from elsewhere; do not print it"
        ) from e


def qr_image(link: str, *, kind: str = "png", scale: int = 4) -> bytes:
    """A QR code of ``link`` as PNG or SVG bytes (alphanumeric mode when upper case)."""
    if kind not in ("png", "svg"):
        raise ValidationFailed(f"QR format {kind!r} is not png or svg")
    out = io.BytesIO()
    segno.make(link, error="m", micro=False).save(out, kind=kind, scale=scale, border=2)
    return out.getvalue()


def manifest_json(manifest: Manifest) -> str:
    """The manifest as the JSON file shipped beside the package."""
    return json.dumps(manifest.model_dump(), indent=2, sort_keys=True)


def zipped(body: bytes, manifest: Manifest) -> bytes:
    """The package as a zip: the CSV file and ``manifest.json`` beside it."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(manifest.file, body)
        z.writestr("manifest.json", manifest_json(manifest))
    return out.getvalue()
