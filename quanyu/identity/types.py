"""Identifier types and the per-tenant rules of identity resolution. Pure: no I/O.

An identifier type says how values of one kind (phone, unionid, member id…) are
normalised, which values are junk, whether they are PII, and how many of them one
person may hold. ``IdentityRules`` gathers the types of one tenant and round-trips
through JSON so the store can keep one copy per tenant.

Limits follow Segment Unify: ``limit`` is the most identifiers of a type one person
may hold; an edge that would exceed it does not merge. ``limit_window_days`` narrows
the count to identifiers seen within that many days (a person who changed phones
twice in five years is fine with ``limit=2, limit_window_days=365``); ``None`` counts
every identifier ever seen. ``limit_per_scope`` makes the count per scope value: one
member id *per brand* rather than one member id in total (see ``limit_key``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Any, Literal, get_args

import phonenumbers

from quanyu.errors import NotFound, ValidationFailed

Normaliser = Literal["phone", "email", "text", "lower"]
PiiStorage = Literal["encrypted", "none"]
NORMALISERS: tuple[str, ...] = get_args(Normaliser)
PII_STORAGE: tuple[str, ...] = get_args(PiiStorage)
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")

#: Junk applied to every type, compared case-insensitively after normalisation.
JUNK_VALUES: tuple[str, ...] = (
    "null", "none", "nil", "undefined", "unknown", "0", "-", "n/a", "test", "", "[object object]",
)  # fmt: skip
#: Custom types that arrive in events without a declaration get this priority.
CUSTOM_PRIORITY = 5


class Scope(StrEnum):
    """Where an identifier's value is unique: the whole tenant, a brand, an app or a source."""

    GROUP = "group"
    BRAND = "brand"
    APP = "app"
    SOURCE = "source"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fail(key: object, field_name: str, value: object, fix: str) -> ValidationFailed:
    return ValidationFailed(f"identifier type {key!r}: {field_name}={value!r} is invalid; {fix}")


@dataclass(frozen=True)
class IdentifierType:
    """One kind of identifier and the rules that apply to its values.

    ``priority``: lower is stronger; edges are ordered by it, so when two edges compete
    for a limited slot the stronger identifier's edge is applied first.
    ``blocked_values`` are exact values compared after normalisation;
    ``blocked_patterns`` are regexes that must match the whole normalised value.
    """

    key: str
    scope: Scope
    priority: int
    limit: int | None = None
    limit_window_days: int | None = None
    blocked_values: tuple[str, ...] = ()
    blocked_patterns: tuple[str, ...] = ()
    pii: bool = False
    normaliser: Normaliser = "text"
    limit_per_scope: bool = False

    def __post_init__(self) -> None:
        def check(ok: bool, name: str, fix: str) -> None:
            if not ok:
                raise _fail(self.key, name, getattr(self, name), fix)

        check(
            isinstance(self.key, str) and bool(KEY_PATTERN.fullmatch(self.key)),
            "key",
            "use 1-32 chars of a-z, 0-9 and _, starting with a letter",
        )
        check(self.scope in tuple(Scope), "scope", f"use one of {[s.value for s in Scope]}")
        object.__setattr__(self, "scope", Scope(self.scope))
        check(_is_int(self.priority), "priority", "use an integer")
        check(
            self.limit is None or (_is_int(self.limit) and self.limit >= 1),
            "limit",
            "use an integer >= 1, or null for no limit",
        )
        window = self.limit_window_days
        check(
            window is None or (_is_int(window) and window >= 1 and self.limit is not None),
            "limit_window_days",
            "use days >= 1, together with a limit",
        )
        check(isinstance(self.pii, bool), "pii", "use true or false")
        check(isinstance(self.limit_per_scope, bool), "limit_per_scope", "use true or false")
        check(
            not (self.limit_per_scope and self.scope is Scope.GROUP),
            "limit_per_scope",
            "a group-scoped type has a single scope; set it false",
        )
        check(self.normaliser in NORMALISERS, "normaliser", f"use one of {list(NORMALISERS)}")
        for name in ("blocked_values", "blocked_patterns"):
            value = getattr(self, name)
            check(
                isinstance(value, list | tuple) and all(isinstance(v, str) for v in value),
                name,
                "use a list of strings",
            )
            object.__setattr__(self, name, tuple(value))
        for pattern in self.blocked_patterns:
            try:
                re.compile(pattern)
            except re.error as e:
                raise _fail(self.key, "blocked_patterns", pattern, f"fix the regex ({e})") from e

    @cached_property
    def blocked_set(self) -> frozenset[str]:
        """``blocked_values`` as a set, for O(1) checks."""
        return frozenset(self.blocked_values)

    @cached_property
    def blocked_regexes(self) -> tuple[re.Pattern[str], ...]:
        """``blocked_patterns`` compiled once."""
        return tuple(re.compile(p) for p in self.blocked_patterns)

    def to_dict(self) -> dict[str, Any]:
        """The type as JSON-able data (``key`` included)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["scope"] = self.scope.value
        out["blocked_values"] = list(self.blocked_values)
        out["blocked_patterns"] = list(self.blocked_patterns)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IdentifierType:
        """Build and validate a type from ``to_dict`` output; raises ValidationFailed."""
        if not isinstance(data, Mapping):
            raise _fail(None, "(type)", data, "use a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise _fail(
                data.get("key"), unknown[0], data[unknown[0]], f"remove it; known: {sorted(known)}"
            )
        missing = sorted({"key", "scope", "priority"} - set(data))
        if missing:
            raise _fail(data.get("key"), missing[0], None, "it is required")
        return cls(**data)


def limit_key(t: IdentifierType, scope_value: str) -> str:
    """The bucket a person's identifiers of type ``t`` are counted in against ``t.limit``.

    ``member_id`` limit 1 means one member id per brand: its bucket is
    ``"member_id:<brand>"``. Types without ``limit_per_scope`` count across scopes in
    one bucket named by the type key.
    """
    return f"{t.key}:{scope_value}" if t.limit_per_scope else t.key


_PHONE_JUNK = ("+8613800000000", "+8613800138000", "+8611111111111")
# a national number of six or more copies of one digit; for China that also catches
# "1" + ten copies (13333333333, 18888888888), placeholders typed into forms
_PHONE_REPEATED = r"\+\d{1,3}(\d)\1{5,}"
_EMAIL_JUNK = ("test@test.com", "a@a.com", "test@example.com")
_EMAIL_DOMAINS = r".*@(example\.(com|org)|test\.com)"

DEFAULT_TYPES: tuple[IdentifierType, ...] = (
    IdentifierType("user_id", Scope.SOURCE, 0, limit=1, limit_per_scope=True),
    IdentifierType("unionid", Scope.GROUP, 1, limit=1),
    IdentifierType(
        "phone",
        Scope.GROUP,
        2,
        limit=2,
        pii=True,
        normaliser="phone",
        blocked_values=_PHONE_JUNK,
        blocked_patterns=(_PHONE_REPEATED,),
    ),  # fmt: skip
    IdentifierType("member_id", Scope.BRAND, 3, limit=1, limit_per_scope=True),
    # Each app's openid is a different identifier; a person holds one per app they use,
    # so a count over the type would cap apps, not catch a conflict: no limit.
    IdentifierType("openid", Scope.APP, 4),
    IdentifierType(
        "email",
        Scope.GROUP,
        4,
        limit=3,
        pii=True,
        normaliser="email",
        blocked_values=_EMAIL_JUNK,
        blocked_patterns=(_EMAIL_DOMAINS,),
    ),  # fmt: skip
    IdentifierType(
        "device_id",
        Scope.GROUP,
        6,
        normaliser="lower",
        blocked_values=("00000000-0000-0000-0000-000000000000",),
    ),  # fmt: skip
    IdentifierType("anonymous_id", Scope.SOURCE, 7),
)


@lru_cache(maxsize=4096)
def custom_type(key: str) -> IdentifierType:
    """The type given to an undeclared identifier type seen in events."""
    return IdentifierType(key, Scope.GROUP, CUSTOM_PRIORITY)


@dataclass(frozen=True)
class IdentityRules:
    """A tenant's identifier types plus tenant-wide identity settings.

    ``pii_storage``: "encrypted" keeps PII raw values AES-encrypted beside their keyed
    hash; "none" keeps only the hash. ``default_region`` is the phone region assumed
    for numbers without a country code. ``junk_values`` are blocked for every type.
    """

    types: Mapping[str, IdentifierType]
    pii_storage: PiiStorage = "encrypted"
    default_region: str = "CN"
    junk_values: tuple[str, ...] = field(default=JUNK_VALUES)

    def __post_init__(self) -> None:
        if not isinstance(self.types, Mapping):
            raise ValidationFailed(f"rules.types={self.types!r} is invalid: use a mapping")
        for key, t in self.types.items():
            if not isinstance(t, IdentifierType) or t.key != key:
                raise ValidationFailed(
                    f"rules.types[{key!r}]={t!r} is invalid: map each key to the type of that key"
                )
        object.__setattr__(self, "types", MappingProxyType(dict(self.types)))
        if self.pii_storage not in PII_STORAGE:
            raise ValidationFailed(
                f"rules.pii_storage={self.pii_storage!r} is invalid: use one of {list(PII_STORAGE)}"
            )
        if self.default_region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValidationFailed(
                f"rules.default_region={self.default_region!r} is invalid: use an ISO 3166"
                " region code that phonenumbers supports, such as 'CN'"
            )
        junk = self.junk_values
        if not isinstance(junk, list | tuple) or not all(isinstance(v, str) for v in junk):
            raise ValidationFailed(
                f"rules.junk_values={self.junk_values!r} is invalid: use a list of strings"
            )
        object.__setattr__(self, "junk_values", tuple(self.junk_values))

    @cached_property
    def junk_set(self) -> frozenset[str]:
        """``junk_values`` case-folded, for case-insensitive O(1) checks."""
        return frozenset(v.casefold() for v in self.junk_values)

    @classmethod
    def default(cls) -> IdentityRules:
        """The shipped rules: the built-in types, PII encrypted, phones in China by default."""
        return cls({t.key: t for t in DEFAULT_TYPES})

    def with_type(self, t: IdentifierType) -> IdentityRules:
        """A copy with ``t`` added, or replacing the type of the same key."""
        return IdentityRules(
            {**self.types, t.key: t}, self.pii_storage, self.default_region, self.junk_values
        )

    def get(self, key: str) -> IdentifierType:
        """The declared type ``key``; raises NotFound naming the declared types."""
        try:
            return self.types[key]
        except KeyError:
            raise NotFound(
                f"identifier type {key!r} is not declared: use one of {sorted(self.types)}"
                " or declare it with a custom type"
            ) from None

    def type_for(self, key: str) -> IdentifierType:
        """The declared type ``key``, or a custom group-scoped one for an undeclared key.

        Raises ValidationFailed when ``key`` is not a valid type key; map free-form
        names from events through ``canonical_type_key`` first.
        """
        t = self.types.get(key)
        return t if t is not None else custom_type(key)

    def to_dict(self) -> dict[str, Any]:
        """The rules as JSON-able data; ``from_dict`` reads it back."""
        return {
            "pii_storage": self.pii_storage,
            "default_region": self.default_region,
            "junk_values": list(self.junk_values),
            "types": {k: t.to_dict() for k, t in self.types.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IdentityRules:
        """Build and validate rules from ``to_dict`` output; raises ValidationFailed."""
        if not isinstance(data, Mapping) or not isinstance(data.get("types"), Mapping):
            raise ValidationFailed(
                f"identity rules {data!r} are invalid: use an object with a 'types' object"
            )
        unknown = sorted(set(data) - {"types", "pii_storage", "default_region", "junk_values"})
        if unknown:
            raise ValidationFailed(f"identity rules field {unknown[0]!r} is unknown: remove it")
        types: dict[str, IdentifierType] = {}
        for key, spec in data["types"].items():
            if isinstance(spec, Mapping) and spec.get("key", key) != key:
                raise ValidationFailed(
                    f"identity rules types[{key!r}] has key {spec['key']!r}: make them equal"
                )
            types[key] = IdentifierType.from_dict(
                {"key": key, **spec} if isinstance(spec, Mapping) else spec
            )
        return cls(
            types,
            data.get("pii_storage", "encrypted"),
            data.get("default_region", "CN"),
            data.get("junk_values", JUNK_VALUES),
        )


def canonical_type_key(name: str) -> str:
    """A valid type key for a free-form type name from an event ("Tmall-ID" → "tmall_id").

    Lower-cases, turns runs of other characters into ``_``, prefixes ``x_`` when the
    name does not start with a letter and cuts at 32 characters. Raises
    ValidationFailed when nothing usable is left.
    """
    key = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
    if key and not key[0].isalpha():
        key = "x_" + key
    key = key[:32].rstrip("_")
    if not KEY_PATTERN.fullmatch(key):
        raise ValidationFailed(
            f"identifier type name {name!r} is unusable: use letters or digits in the name"
        )
    return key
