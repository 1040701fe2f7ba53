"""GS1 identifiers and GS1 Digital Link URIs: GTIN, SSCC and check digits.

Pure functions. Links are built here and parsed with the ``biip`` library, so what we
print is read back by an independent GS1 parser before anyone relies on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import biip

from quanyu.errors import ValidationFailed

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_GTIN_LENGTHS = (8, 12, 13, 14)


def check_digit(payload: str) -> int:
    """The GS1 mod-10 check digit of ``payload`` (weights 3, 1, … from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return (10 - total % 10) % 10


def gtin14(gtin: str) -> str:
    """A GTIN-8, -12, -13 or -14 as the 14-digit form Digital Link uses.

    Raises:
        ValidationFailed: not 8, 12, 13 or 14 digits, or a wrong check digit.
    """
    text = gtin.strip()
    if not text.isdigit() or len(text) not in _GTIN_LENGTHS:
        raise ValidationFailed(f"GTIN {gtin!r} must be 8, 12, 13 or 14 digits (GTIN-8/12/13/14)")
    want = check_digit(text[:-1])
    if int(text[-1]) != want:
        raise ValidationFailed(
            f"GTIN {gtin!r} has check digit {text[-1]}, expected {want}: retype it"
            " from the product's barcode"
        )
    return text.zfill(14)


def sscc(extension: int, company_prefix: str, serial_ref: int) -> str:
    """An SSCC-18: extension digit, GS1 company prefix, serial reference, check digit.

    Raises:
        ValidationFailed: the prefix is not 6–12 digits, or the serial reference does
            not fit the digits the prefix leaves.
    """
    if not company_prefix.isdigit() or not 6 <= len(company_prefix) <= 12:
        raise ValidationFailed(
            f"GS1 company prefix {company_prefix!r} must be 6 to 12 digits: set the"
            " brand's prefix from its GS1 membership"
        )
    room = 16 - len(company_prefix)
    if not 0 <= extension <= 9 or not 0 <= serial_ref < 10**room:
        raise ValidationFailed(
            f"SSCC serial reference {serial_ref} does not fit {room} digits after prefix"
            f" {company_prefix}: the prefix's pallet numbers are used up"
        )
    body = f"{extension}{company_prefix}{serial_ref:0{room}d}"
    return body + str(check_digit(body))


def sscc_ok(value: str) -> bool:
    """Whether ``value`` is 18 digits with a correct check digit."""
    return len(value) == 18 and value.isdigit() and check_digit(value[:-1]) == int(value[-1])


def short_domain(domain: str) -> str:
    """A brand's short link domain, lower-cased and checked (``t.brand.cn``).

    Raises:
        ValidationFailed: not a plain DNS host name.
    """
    host = domain.strip().lower()
    if not _DOMAIN.match(host):
        raise ValidationFailed(
            f"short domain {domain!r} is not a host name: give it like t.brand.cn,"
            " without scheme or path"
        )
    return host


def digital_link(domain: str, gtin: str, serial: str, *, uppercase: bool = False) -> str:
    """``https://<domain>/01/<GTIN-14>/21/<serial>``, all upper case if ``uppercase``.

    Upper case lets a QR code use its alphanumeric mode (about 5.5 bits per character
    instead of 8), so the symbol is smaller; GS1 resolvers accept the upper-case form.
    """
    link = f"https://{domain}/01/{gtin}/21/{serial}"
    return link.upper() if uppercase else link


@dataclass(frozen=True)
class ParsedLink:
    """The parts of a Digital Link URI that name one serialised item."""

    domain: str
    gtin: str
    serial: str


def parse_link(uri: str) -> ParsedLink:
    """Parse and validate a Digital Link URI with ``biip`` (either case).

    Raises:
        ValidationFailed: not a Digital Link with a valid GTIN (01) and a serial (21).
    """
    text = uri.strip()
    low = re.sub(r"^HTTPS://", "https://", text, flags=re.IGNORECASE)
    m = re.match(r"^https://([^/]+)(/.*)$", low)
    if not m:
        raise ValidationFailed(f"{uri!r} is not an https Digital Link URI")
    domain, path = m.group(1).lower(), m.group(2)
    try:
        result = biip.parse(f"https://{domain}{path}")
    except biip.ParseError as e:
        raise ValidationFailed(f"{uri!r} is not a GS1 Digital Link URI: {e}") from e
    link = result.gs1_digital_link_uri
    if link is None:
        raise ValidationFailed(
            f"{uri!r} is not a GS1 Digital Link URI: {result.gs1_digital_link_uri_error}"
        )
    values = {e.ai.ai: e for e in link.element_strings}
    if "01" in values and values["01"].gtin is None:
        raise ValidationFailed(f"{uri!r} has an invalid GTIN: {values['01'].gtin_error}")
    if "01" not in values or "21" not in values or values["01"].gtin is None:
        raise ValidationFailed(
            f"{uri!r} lacks a valid GTIN (/01/) or a serial (/21/): a code's link names both"
        )
    return ParsedLink(domain, values["01"].value, values["21"].value)
