"""Canonical identifier values: phones to E.164, e-mails lower-cased, junk blocked. Pure.

``normalize`` turns one raw value into the form the identity graph matches on, or
raises ``InvalidIdentifier`` with a stable ``reason``. ``normalize_many`` does the
same for a column of values, working out each distinct (type, value) pair once:
real traffic repeats the same identifier in thousands of events.

Chinese mobile numbers written the usual ways ("138 1234 5678", "+86-138…",
"0086 138…", "(+86)138…") take a regex fast path checked against the `phonenumbers`
metadata for Chinese mobiles, so it accepts exactly what `phonenumbers` would; every
other number goes through `phonenumbers` itself. Keep that library up to date: a
number range allocated after its release is rejected as ``invalid_phone``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.errors import ValidationFailed
from quanyu.identity.types import IdentifierType, IdentityRules

#: The stable reasons an identifier is refused.
BLOCKED = "blocked"
INVALID_TYPE = "invalid_type"
NOT_A_STRING = "not_a_string"
TOO_LONG = "too_long"
NOT_A_PHONE = "not_a_phone"
INVALID_PHONE = "invalid_phone"
NOT_AN_EMAIL = "not_an_email"
#: Longest identifier accepted, in characters after trimming.
MAX_LENGTH = 256

_FIXES = {
    BLOCKED: "it is a placeholder, not a person's identifier; send the real value or omit it",
    INVALID_TYPE: "name the type with a-z, 0-9 and _ (see canonical_type_key)",
    NOT_A_STRING: "send the identifier as a string",
    TOO_LONG: f"identifiers are at most {MAX_LENGTH} characters",
    NOT_A_PHONE: "send digits with a country code, such as +86 138 1234 5678",
    INVALID_PHONE: "the number does not exist in its numbering plan; check the digits",
    NOT_AN_EMAIL: "send an address like name@example.cn",
}


class InvalidIdentifier(ValidationFailed):
    """An identifier value that cannot be used: malformed, or a blocked placeholder.

    ``reason`` is one of the module's reason constants; ``rule`` names the blocking
    rule when ``reason`` is ``"blocked"``. With ``pii=True`` the message hides the raw
    value, so logs and stored messages never carry a phone number.
    """

    code = "invalid_identifier"

    def __init__(
        self, type_key: str, raw: object, reason: str, *, rule: str | None = None, pii: bool = False
    ) -> None:
        shown = f"<{len(raw)} characters hidden>" if pii and isinstance(raw, str) else repr(raw)
        blocked_by = f" by rule {rule}" if rule else ""
        super().__init__(
            f"identifier {type_key}={shown[:80]} is unusable ({reason}{blocked_by}):"
            f" {_FIXES.get(reason, 'check the value')}"
        )
        self.type_key = type_key
        self.raw = raw
        self.reason = reason
        self.rule = rule


# re.ASCII: \d would also take Arabic-Indic and other digits, which only phonenumbers maps
_PREFIX_CN = r"(?:(?:\(\+86\)|\+86|0086|86)[ -]?)?"
_PREFIX_PLUS = r"(?:\(\+86\)|\+86)[ -]?"
_GROUPS = r"(1\d\d)[ -]?(\d{4})[ -]?(\d{4})"
_FAST_CN = re.compile(_PREFIX_CN + _GROUPS, re.ASCII)  # the default region is CN: "86…", "138…" too
_FAST_PLUS = re.compile(_PREFIX_PLUS + _GROUPS, re.ASCII)  # elsewhere only an explicit +86


def _cn_mobile_pattern() -> re.Pattern[str]:
    """The pattern phonenumbers itself checks Chinese mobile numbers against."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    mobile = metadata.mobile if metadata is not None else None
    if mobile is None or mobile.national_number_pattern is None:
        raise RuntimeError("phonenumbers has no CN mobile metadata: reinstall phonenumbers")
    return re.compile(mobile.national_number_pattern, re.ASCII)


_CN_MOBILE = _cn_mobile_pattern()
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")


def _phone_fast(text: str, region: str) -> str | None:
    """E.164 of a Chinese mobile in a usual spelling, or None to ask phonenumbers."""
    m = (_FAST_CN if region == "CN" else _FAST_PLUS).fullmatch(text)
    if m is None:
        return None
    national = m.group(1) + m.group(2) + m.group(3)
    return "+86" + national if _CN_MOBILE.fullmatch(national) else None


def _phone_slow(type_key: str, raw: str, text: str, region: str) -> str:
    """E.164 through phonenumbers; raises InvalidIdentifier for impossible numbers."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as e:
        raise InvalidIdentifier(type_key, raw, NOT_A_PHONE, pii=True) from e
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier(type_key, raw, INVALID_PHONE, pii=True)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _canonical(t: IdentifierType, rules: IdentityRules, raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidIdentifier(t.key, raw, NOT_A_STRING, pii=t.pii)
    # full-width digits and letters come from Chinese input methods
    text = (raw if raw.isascii() else unicodedata.normalize("NFKC", raw)).strip()
    if len(text) > MAX_LENGTH:
        raise InvalidIdentifier(t.key, raw, TOO_LONG, pii=t.pii)
    folded = text.casefold()
    if folded in rules.junk_set:
        raise InvalidIdentifier(t.key, raw, BLOCKED, rule=f"junk:{folded!r}", pii=t.pii)
    if t.normaliser == "phone":
        value = _phone_fast(text, rules.default_region) or _phone_slow(
            t.key, raw, text, rules.default_region
        )
    elif t.normaliser == "email":
        value = text.lower()
        if not _EMAIL.fullmatch(value):
            raise InvalidIdentifier(t.key, raw, NOT_AN_EMAIL, pii=t.pii)
    elif t.normaliser == "lower":
        value = text.lower()
    else:
        value = text
    if value in t.blocked_set:
        raise InvalidIdentifier(t.key, raw, BLOCKED, rule=f"blocked_value:{value!r}", pii=t.pii)
    for regex in t.blocked_regexes:
        if regex.fullmatch(value):
            rule = f"blocked_pattern:{regex.pattern}"
            raise InvalidIdentifier(t.key, raw, BLOCKED, rule=rule, pii=t.pii)
    return value


def normalize(rules: IdentityRules, type_key: str, raw: str) -> str:
    """The canonical form of ``raw`` as an identifier of type ``type_key``.

    Args:
        rules: the tenant's identity rules (types, junk list, default phone region).
        type_key: a declared type, or any valid key (an undeclared one is a custom type).
        raw: the value as sent.

    Returns:
        E.164 for phones, the lower-cased address for e-mails, the NFKC-normalised
        trimmed text (lower-cased for ``lower`` types) otherwise.

    Raises:
        InvalidIdentifier: the value is malformed or blocked; ``reason`` says which and
            ``rule`` names the blocking rule.
    """
    try:
        t = rules.type_for(type_key)
    except ValidationFailed as e:
        raise InvalidIdentifier(type_key, raw, INVALID_TYPE) from e
    return _canonical(t, rules, raw)


def normalize_many(
    rules: IdentityRules, type_keys: Sequence[str] | pa.Array, raws: Sequence[str] | pa.Array
) -> tuple[list[str | None], list[str | None]]:
    """``normalize`` over a column of (type, value) rows, each distinct pair worked out once.

    The pairs are deduplicated by Arrow hashing, so the per-row cost is C code; Python
    runs once per distinct pair.

    Args:
        rules: the tenant's identity rules.
        type_keys: the type of each row, as a sequence or an Arrow string array.
        raws: the raw value of each row (same length), as a sequence or an Arrow array;
            a null is refused as ``not_a_string``.

    Returns:
        (values, reasons): per row the canonical value or None, and None or the reason
        ``normalize`` would raise with.

    Raises:
        ValueError: the two columns differ in length.
    """
    if len(type_keys) != len(raws):
        raise ValueError(f"normalize_many got {len(type_keys)} types for {len(raws)} values")
    if len(raws) == 0:
        return [], []
    types = _encoded(type_keys)
    values = _encoded(raws)
    width = len(values.dictionary)
    pair_codes = types.indices.to_numpy().astype(np.int64) * width + values.indices.to_numpy()
    pairs = pc.dictionary_encode(pa.array(pair_codes))
    type_names = types.dictionary.to_pylist()
    raw_values = values.dictionary.to_pylist()
    canonical = np.empty(len(pairs.dictionary), dtype=object)
    reasons = np.empty(len(pairs.dictionary), dtype=object)
    for i, code in enumerate(pairs.dictionary.to_pylist()):
        try:
            canonical[i] = normalize(rules, type_names[code // width], raw_values[code % width])
        except InvalidIdentifier as e:
            reasons[i] = e.reason
    rows = pairs.indices.to_numpy()
    return canonical[rows].tolist(), reasons[rows].tolist()


def _encoded(column: Sequence[str] | pa.Array) -> pa.DictionaryArray:
    """``column`` dictionary-encoded in one chunk, a null being a dictionary entry of its own."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    elif not isinstance(column, pa.Array):
        column = pa.array(column, pa.string())
    return pc.dictionary_encode(column, null_encoding="encode")
