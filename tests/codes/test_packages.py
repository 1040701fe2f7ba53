"""Printer packages: the CSV's contents, the signed manifest verifying, and tampering
with the file, the manifest or the key detected."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest

from quanyu.codes import lifecycle_sql, packages, serials
from quanyu.codes.models import Manifest, Selector
from quanyu.codes.packages import TamperedPackage
from quanyu.codes.serials import CodeKeys
from tests.codes.conftest import Plant


def test_package_lists_every_code_with_tag_check_link_and_inner_code(plant: Plant) -> None:
    order = plant.order(50)
    body, manifest = packages.build(plant.db, plant.keys, tenant=plant.tenant, order_id=order)
    lines = body.decode().splitlines()
    assert lines[0] == "seq,serial,check,link,inner"
    rows = [line.split(",") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == list(range(1, 51))
    assert [r[1][:16] for r in rows] == plant.codes(order)
    assert (manifest.count, manifest.first, manifest.last) == (50, rows[0][1], rows[-1][1])
    for _, serial, check, _, inner in rows:
        assert serials.verify(plant.keys, serial).code == serial[:16]
        assert check == serials.check_char(serial)
        assert serials.verify(plant.keys, inner, inner=True)
        try:
            serials.verify(plant.keys, inner)  # an inner code is no outer code
            raise AssertionError(f"inner code {inner} verified as an outer code")
        except serials.ForgedCode:
            pass
    # the stored inner hash finds the bottle from its inner code; the code is not stored
    raw = serials.decode(np.frombuffer(rows[7][4][:16].encode(), np.uint8)[None])
    hashed = bytes(serials.inner_hashes(plant.keys, raw)[0])
    key = int.from_bytes(hashed[:8], "big", signed=True)
    from quanyu.engine import statement

    stmt = statement(
        "test.by_inner",
        "SELECT code FROM codes WHERE tenant_id = ? AND inner_key = ? AND inner_hash = ?",
    )
    assert plant.db.execute(stmt, [plant.tenant, key, hashed]) == [(rows[7][1][:16],)]
    assert rows[7][4][:16] not in body.decode().replace(rows[7][4], "")


def test_range_package_and_no_inner_column_for_cases(plant: Plant) -> None:
    order = plant.order(20)
    body, m = packages.build(
        plant.db, plant.keys, tenant=plant.tenant, order_id=order, seq_from=5, seq_to=9
    )
    assert m.count == 5 and body.decode().splitlines()[1].startswith("5,")
    case_body, _ = packages.build(
        plant.db, plant.keys, tenant=plant.tenant, order_id=plant.order(2, "case")
    )
    assert case_body.decode().splitlines()[0] == "seq,serial,check,link"
    # building again gives the same bytes: a lost package is fetched again, not regenerated
    again, m2 = packages.build(
        plant.db, plant.keys, tenant=plant.tenant, order_id=order, seq_from=5, seq_to=9
    )
    assert again == body and m2.sha256 == m.sha256


def _pkg(plant: Plant) -> tuple[bytes, Manifest, str]:
    body, manifest = packages.build(
        plant.db, plant.keys, tenant=plant.tenant, order_id=plant.order(10)
    )
    return body, manifest, packages.public_key(plant.keys)[0]


def test_manifest_verifies_and_survives_the_zip(plant: Plant) -> None:
    body, manifest, key = _pkg(plant)
    packages.verify_package(manifest, body, key)
    with zipfile.ZipFile(io.BytesIO(packages.zipped(body, manifest))) as z:
        shipped = json.loads(z.read("manifest.json"))
        packages.verify_package(shipped, z.read(manifest.file), key)
    assert (
        shipped["algorithm"] == "Ed25519"
        and shipped["key_id"] == packages.public_key(plant.keys)[1]
    )


def test_any_change_to_the_file_is_detected(plant: Plant) -> None:
    body, manifest, key = _pkg(plant)
    for i in (0, len(body) // 2, len(body) - 2):
        changed = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
        with pytest.raises(TamperedPackage, match="SHA-256"):
            packages.verify_package(manifest, changed, key)
    with pytest.raises(TamperedPackage, match="SHA-256"):
        packages.verify_package(manifest, body[: body.rindex(b"\n", 0, len(body) - 1) + 1], key)


@pytest.mark.parametrize(
    "field,value",
    [("count", 9), ("first", "X"), ("last", "Y"), ("lot", "other"), ("order_id", "ord_x")],
)
def test_any_change_to_the_manifest_is_detected(plant: Plant, field: str, value: object) -> None:
    body, manifest, key = _pkg(plant)
    forged = manifest.model_copy(update={field: value})
    with pytest.raises(TamperedPackage, match="not signed"):
        packages.verify_package(forged, body, key)


def test_a_re_hashed_file_with_a_manifest_signed_by_another_key_is_refused(plant: Plant) -> None:
    body, manifest, key = _pkg(plant)
    evil = body.replace(manifest.first.encode(), b"0" * 20)
    other = CodeKeys.derive(plant.master, "ten_other")
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = manifest.model_copy(update={"sha256": hashlib.sha256(evil).hexdigest()})
    signature = Ed25519PrivateKey.from_private_bytes(other.sign_key).sign(
        packages.canonical(forged.model_dump(exclude={"signature"}))
    )
    forged.signature = base64.b64encode(signature).decode()
    with pytest.raises(TamperedPackage, match="not signed by key"):
        packages.verify_package(forged, evil, key)
    packages.verify_package(forged, evil, packages.public_key(other)[0])  # its own key: fine


def test_qr_images(plant: Plant) -> None:
    link = "https://t.brand.cn/01/06901234567892/21/ABCDEFGHJKMNPQRS1234"
    assert packages.qr_image(link).startswith(b"\x89PNG")
    svg = packages.qr_image(link, kind="svg").decode()
    assert "<svg" in svg
    with pytest.raises(Exception, match="not png or svg"):
        packages.qr_image(link, kind="gif")


def test_printed_codes_can_be_marked_from_the_package_range(plant: Plant) -> None:
    order = plant.order(8)
    from quanyu.codes import lifecycle

    lifecycle.print_codes(
        plant.db,
        plant.keys,
        tenant=plant.tenant,
        sel=Selector(order_id=order, seq_from=1, seq_to=4),
        actor="printer",
    )
    rows = plant.db.execute(lifecycle_sql.SELECT_RANGE, [plant.tenant, order, 1, 8])
    assert sorted(r[2] for r in rows) == ["issued"] * 4 + ["printed"] * 4
