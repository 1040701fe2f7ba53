"""GS1 check digits (GTIN, SSCC) and Digital Link URIs, read back with biip."""

from __future__ import annotations

import biip
import pytest

from quanyu.codes import gs1, packages, service
from quanyu.errors import ValidationFailed
from tests.codes.conftest import GTIN, Plant

VALID = ["4006381333931", "036000291452", "96385074", "6901234567892", "10614141000415"]


@pytest.mark.parametrize("gtin", VALID)
def test_valid_gtins_agree_with_biip(gtin: str) -> None:
    assert gs1.gtin14(gtin) == gtin.zfill(14)
    assert biip.parse(gtin).gtin is not None


@pytest.mark.parametrize("gtin", VALID)
def test_every_single_digit_error_in_a_gtin_is_caught(gtin: str) -> None:
    for pos in range(len(gtin)):
        for d in "0123456789":
            if d != gtin[pos]:
                with pytest.raises(ValidationFailed, match="check digit"):
                    gs1.gtin14(gtin[:pos] + d + gtin[pos + 1 :])


@pytest.mark.parametrize("bad", ["", "12345", "690123456789X", "123456789012345"])
def test_malformed_gtins_are_refused(bad: str) -> None:
    with pytest.raises(ValidationFailed, match="8, 12, 13 or 14 digits"):
        gs1.gtin14(bad)


def test_sscc_matches_the_gs1_example_and_biip() -> None:
    # GS1 General Specifications: (00) 1 0614141 123456789 7
    assert gs1.sscc(1, "0614141", 123456789) == "106141411234567897"
    for n in (1, 42, 999_999_999):
        value = gs1.sscc(0, "6901234", n)
        assert gs1.sscc_ok(value) and biip.parse(value).sscc is not None
        assert not gs1.sscc_ok(value[:-1] + str((int(value[-1]) + 1) % 10))
    with pytest.raises(ValidationFailed, match="company prefix"):
        gs1.sscc(0, "12", 1)
    with pytest.raises(ValidationFailed, match="does not fit"):
        gs1.sscc(0, "690123456789", 10_000)


def test_digital_links_parse_with_biip_to_gtin_and_serial(plant: Plant) -> None:
    order = plant.order(30)
    body, _ = packages.build(plant.db, plant.keys, tenant=plant.tenant, order_id=order)
    rows = [line.split(",") for line in body.decode().splitlines()[1:]]
    assert len(rows) == 30
    for _, serial, _, link, _ in rows:
        parsed = biip.parse(link).gs1_digital_link_uri
        assert parsed is not None
        values = {e.ai.ai: e.value for e in parsed.element_strings}
        assert values == {"01": gs1.gtin14(GTIN), "21": serial}
        assert link.startswith("https://t.brand.cn/01/")
        assert gs1.parse_link(link) == gs1.ParsedLink("t.brand.cn", gs1.gtin14(GTIN), serial)
    info = service.lookup(plant.db, plant.keys, tenant=plant.tenant, text=rows[0][3])
    assert info.serial == rows[0][1] and info.link == rows[0][3]


def test_upper_case_links_for_compact_qr(plant: Plant) -> None:
    from quanyu.codes.models import BrandCodesSettings

    service.set_brand(plant.db, BrandCodesSettings(short_domain="T.Brand.CN", uppercase=True),
                      tenant=plant.tenant, brand_id=plant.brand)  # fmt: skip
    order = plant.order(3)
    info = service.lookup(plant.db, plant.keys, tenant=plant.tenant, text=plant.codes(order)[0])
    assert info.link == info.link.upper() and info.link.startswith("HTTPS://T.BRAND.CN/01/")
    assert gs1.parse_link(info.link).serial == info.serial
    lower = packages.qr_image(info.link.lower().replace(info.serial.lower(), info.serial))
    upper = packages.qr_image(info.link)
    assert upper.startswith(b"\x89PNG") and len(upper) < len(lower)


@pytest.mark.parametrize(
    "uri",
    ["https://t.brand.cn/01/06901234567891/21/ABC", "https://t.brand.cn/21/ABC",
     "ftp://t.brand.cn/01/06901234567892/21/ABC", "https://t.brand.cn/01/06901234567892"],
)  # fmt: skip
def test_bad_links_are_refused(uri: str) -> None:
    with pytest.raises(ValidationFailed):
        gs1.parse_link(uri)


def test_short_domain_is_a_host_name() -> None:
    assert gs1.short_domain(" T.Brand.CN ") == "t.brand.cn"
    for bad in ("https://t.brand.cn", "t.brand.cn/x", "localhost", "a..cn"):
        with pytest.raises(ValidationFailed, match="host name"):
            gs1.short_domain(bad)
