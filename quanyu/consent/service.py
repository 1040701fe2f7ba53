"""Consent services: legal entities, purposes and notices, recording decisions, a
person's current consent and history, the tenant's age gates.

Every tenant starts with one legal entity (``default``) declaring four purposes:
``marketing`` (consent), ``ads_targeting`` (separate consent: it gives data to ad
platforms), ``service`` (contract) and ``analysis`` (contract; collecting behaviour
rests on it, so withdrawing it stops events being used). Purpose ids are
``<entity id>.<key>``; where a key is declared by one entity only, the key alone names it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import orjson

from quanyu.consent import ledger
from quanyu.consent import sql as q
from quanyu.consent.ledger import NewEntry, Rules
from quanyu.consent.models import (
    CHANNELS,
    SURFACES,
    Decision,
    Entity,
    EntityCreate,
    Entry,
    Notice,
    NoticeCreate,
    Purpose,
    PurposeCreate,
    Recorded,
    Settings,
    State,
    Status,
)
from quanyu.engine import Session
from quanyu.errors import Conflict, NotFound, ValidationFailed
from quanyu.identity import sql as identity_sql
from quanyu.identity.service import Resolver
from quanyu.ids import new_id, utcnow
from quanyu.profiles.models import parse_oneid

DEFAULT_ENTITY = "default"
DEFAULT_PURPOSES = (
    PurposeCreate(key="marketing", name_zh="营销推广", name_en="Marketing", marketing=True,
                  categories=["marketing", "marketing_and_analytics"]),
    PurposeCreate(key="ads_targeting", name_zh="广告定向投放", name_en="Ads targeting",
                  separate_consent=True, marketing=True, categories=["advertising"]),
    PurposeCreate(key="service", name_zh="履约与客户服务", name_en="Service",
                  legal_basis="contract", categories=["functional"]),
    PurposeCreate(key="analysis", name_zh="用户分析", name_en="Analysis",
                  legal_basis="contract", collects=True, categories=["analytics"]),
)  # fmt: skip
#: GB 32100-2015 unified social credit code: 18 characters, last a check character.
_CREDIT = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_credit_code(code: str) -> None:
    """Refuse a unified social credit code whose form or check character is wrong."""
    if not _CREDIT.match(code):
        raise ValidationFailed(
            f"credit_code {code!r} is not a unified social credit code: 18 characters of"
            " digits and upper-case letters (no I, O, S, V, Z)"
        )
    total = sum(_CREDIT_CHARS.index(c) * w for c, w in zip(code[:17], _CREDIT_WEIGHTS, strict=True))
    expected = _CREDIT_CHARS[(31 - total % 31) % 31]
    if code[17] != expected:
        raise ValidationFailed(
            f"credit_code {code!r} has check character {code[17]!r}, but its first 17"
            f" characters give {expected!r}: check the code for a typo"
        )


# --- entities -----------------------------------------------------------------------------


def ensure_defaults(db: Session, *, tenant: str) -> None:
    """Give a tenant its default entity and purposes the first time it needs them."""
    if db.execute(q.LIST_ENTITIES, [tenant]):
        return
    now = utcnow()
    with db.transaction():
        db.execute(
            q.INSERT_ENTITY, [tenant, DEFAULT_ENTITY, "Default legal entity", None, True, now]
        )
        for p in DEFAULT_PURPOSES:
            _insert_purpose(db, tenant, DEFAULT_ENTITY, p, now)
        if db.one(q.NEXT_SEQ, [tenant]) is None:
            db.execute(q.INSERT_STATE, [tenant, 1, now])


def list_entities(db: Session, *, tenant: str) -> list[Entity]:
    """The tenant's legal entities with their brands."""
    ensure_defaults(db, tenant=tenant)
    brands: dict[str, list[str]] = {}
    for entity, brand in db.execute(q.ENTITY_BRANDS, [tenant]):
        brands.setdefault(entity, []).append(brand)
    return [
        Entity(
            id=r[0],
            name=r[1],
            credit_code=r[2],
            is_default=r[3],
            brands=brands.get(r[0], []),
            created_at=r[4],
        )  # fmt: skip
        for r in db.execute(q.LIST_ENTITIES, [tenant])
    ]


def create_entity(
    db: Session, body: EntityCreate, *, tenant: str, brand_ids: set[str], actor: str
) -> Entity:
    """Add a legal entity and move the brands it runs to it.

    Args:
        brand_ids: the tenant's brands (a brand not among them is refused).
    """
    ensure_defaults(db, tenant=tenant)
    if body.credit_code is not None:
        check_credit_code(body.credit_code)
    unknown = sorted(set(body.brands) - brand_ids)
    if unknown:
        raise ValidationFailed(
            f"brands {unknown} are not brands of tenant {tenant}: list them with"
            f" GET /v1/tenants/{tenant}/brands"
        )
    if any(e.name == body.name for e in list_entities(db, tenant=tenant)):
        raise Conflict(f"Tenant {tenant} has a legal entity named {body.name!r} already.")
    entity_id = new_id("ent")
    with db.transaction():
        db.execute(
            q.INSERT_ENTITY, [tenant, entity_id, body.name, body.credit_code, False, utcnow()]
        )
        for brand in body.brands:
            db.execute(q.DELETE_BRAND_ENTITY, [tenant, brand])
            db.execute(q.INSERT_BRAND_ENTITY, [tenant, brand, entity_id])
        db.execute(q.BUMP_CONFIG, [tenant])
        made = next(e for e in list_entities(db, tenant=tenant) if e.id == entity_id)
        _audit(db, tenant, actor, "consent.entity.create", made, "legal_entity", entity_id)
    return made


def _audit(
    db: Session, tenant: str, actor: str, action: str, target: Any, kind: str, target_id: str,
    before: Any = None,
) -> None:  # fmt: skip
    from quanyu.tenancy.service import audit

    audit(db, actor=actor, action=action, target=target, target_type=kind, target_id=target_id,
          tenant=tenant, before=before)  # fmt: skip


def entity_of_brands(db: Session, *, tenant: str, brands: list[str] | None) -> str:
    """The legal entity that runs all of ``brands`` (the default entity for none).

    Raises:
        ValidationFailed: the brands belong to different entities.
    """
    ensure_defaults(db, tenant=tenant)
    return entity_for({b: e for e, b in db.execute(q.ENTITY_BRANDS, [tenant])}, brands)


def entity_for(mapped: dict[str, str], brands: list[str] | None) -> str:
    """:func:`entity_of_brands` given the brand -> entity map."""
    found = {mapped.get(b, DEFAULT_ENTITY) for b in brands or []} or {DEFAULT_ENTITY}
    if len(found) > 1:
        raise ValidationFailed(
            f"brands {sorted(brands or [])} belong to different legal entities"
            f" ({', '.join(sorted(found))}): consent to one entity does not cover another,"
            " so target one entity's brands at a time"
        )
    return str(found.pop())


# --- purposes -----------------------------------------------------------------------------


def _insert_purpose(db: Session, tenant: str, entity: str, p: PurposeCreate, now: datetime) -> str:
    purpose_id = f"{entity}.{p.key}"
    db.execute(
        q.INSERT_PURPOSE,
        [tenant, purpose_id, entity, p.key, p.name_zh, p.name_en, p.legal_basis,
         p.separate_consent, p.valid_days, p.retention_days,
         orjson.dumps(p.destinations).decode() if p.destinations is not None else None,
         p.on_withdrawal, p.collects, p.marketing,
         orjson.dumps([c.lower() for c in p.categories]).decode(), now, now],
    )  # fmt: skip
    if p.notice:
        db.execute(q.INSERT_NOTICE, [tenant, purpose_id, "1", p.notice, now])
    return purpose_id


def list_purposes(db: Session, *, tenant: str) -> list[Purpose]:
    """Every purpose of every entity of the tenant."""
    ensure_defaults(db, tenant=tenant)
    notices: dict[str, list[str]] = {}
    for purpose_id, version, _text, _at in db.execute(q.LIST_NOTICES, [tenant]):
        notices.setdefault(purpose_id, []).append(version)
    return [
        Purpose(
            id=r[0],
            entity_id=r[1],
            key=r[2],
            name_zh=r[3],
            name_en=r[4],
            legal_basis=r[5],
            separate_consent=r[6],
            valid_days=r[7],
            retention_days=r[8],
            destinations=orjson.loads(r[9]) if r[9] is not None else None,
            on_withdrawal=r[10],
            collects=r[11],
            marketing=r[12],
            categories=orjson.loads(r[13]),
            notices=notices.get(r[0], []),
            created_at=r[14],
        )  # fmt: skip
        for r in db.execute(q.LIST_PURPOSES, [tenant])
    ]


def create_purpose(db: Session, body: PurposeCreate, *, tenant: str, actor: str) -> Purpose:
    """Declare a purpose for one of the tenant's entities."""
    entity = body.entity_id or DEFAULT_ENTITY
    if entity not in {e.id for e in list_entities(db, tenant=tenant)}:
        raise NotFound(
            f"Tenant {tenant} has no legal entity {entity!r}: list them with"
            f" GET /v1/tenants/{tenant}/consent/entities"
        )
    purpose_id = f"{entity}.{body.key}"
    if any(p.id == purpose_id for p in list_purposes(db, tenant=tenant)):
        raise Conflict(f"Legal entity {entity} declares purpose {body.key!r} already.")
    with db.transaction():
        _insert_purpose(db, tenant, entity, body, utcnow())
        db.execute(q.BUMP_CONFIG, [tenant])
        made = get_purpose(db, tenant=tenant, ref=purpose_id)
        _audit(db, tenant, actor, "consent.purpose.create", made, "purpose", purpose_id)
    return made


def get_purpose(db: Session, *, tenant: str, ref: str, entity: str | None = None) -> Purpose:
    """A purpose by id (``<entity>.<key>``), or by key within ``entity`` or, without
    one, when a single entity declares the key.

    Raises:
        NotFound: no such purpose.
        ValidationFailed: several entities declare the key.
    """
    return find_purpose(list_purposes(db, tenant=tenant), tenant=tenant, ref=ref, entity=entity)


def find_purpose(
    purposes: list[Purpose], *, tenant: str, ref: str, entity: str | None = None
) -> Purpose:
    """:func:`get_purpose` among ``purposes``."""
    found = [p for p in purposes if p.id == ref]
    if not found:
        found = [p for p in purposes if p.key == ref and entity in (None, p.entity_id)]
    if len(found) > 1:
        raise ValidationFailed(
            f"purpose {ref!r} is declared by several legal entities: name one of"
            f" {', '.join(p.id for p in found)}"
        )
    if not found:
        raise NotFound(
            f"Tenant {tenant} has no purpose {ref!r}"
            + (f" for legal entity {entity}" if entity else "")
            + f": declared purposes are {', '.join(p.id for p in purposes)}"
        )
    return found[0]


def add_notice(db: Session, body: NoticeCreate, *, tenant: str, purpose: str, actor: str) -> Notice:
    """Add a version of a purpose's notice text."""
    p = get_purpose(db, tenant=tenant, ref=purpose)
    if db.one(q.GET_NOTICE, [tenant, p.id, body.version]):
        raise Conflict(f"Purpose {p.id} has notice version {body.version!r} already.")
    now = utcnow()
    made = Notice(purpose_id=p.id, version=body.version, text=body.text, created_at=now)
    with db.transaction():
        db.execute(q.INSERT_NOTICE, [tenant, p.id, body.version, body.text, now])
        _audit(db, tenant, actor, "consent.notice.create", made, "purpose", p.id)
    return made


def notices(db: Session, *, tenant: str, purpose: str) -> list[Notice]:
    """Every version of a purpose's notice, oldest first."""
    p = get_purpose(db, tenant=tenant, ref=purpose)
    return [
        Notice(purpose_id=r[0], version=r[1], text=r[2], created_at=r[3])
        for r in db.execute(q.LIST_NOTICES, [tenant])
        if r[0] == p.id
    ]


def rules_of(p: Purpose) -> Rules:
    """What a purpose does to grants."""
    return Rules(separate_consent=p.separate_consent, valid_days=p.valid_days)


# --- settings -----------------------------------------------------------------------------


def get_settings(db: Session, *, tenant: str) -> Settings:
    """The tenant's age gates."""
    ensure_defaults(db, tenant=tenant)
    row = db.one(q.GET_SETTINGS, [tenant])
    return Settings(guardian_under=row[0], marketing_min_age=row[1]) if row else Settings()


def set_settings(db: Session, body: Settings, *, tenant: str, actor: str) -> Settings:
    """Set the tenant's age gates."""
    before = get_settings(db, tenant=tenant)
    with ledger.appending(db, tenant):  # the lock every consent_state update holds
        db.execute(q.SET_SETTINGS, [body.guardian_under, body.marketing_min_age, utcnow(), tenant])
        db.execute(q.BUMP_CONFIG, [tenant])
        _audit(db, tenant, actor, "consent.settings.update", body, "tenant", tenant, before)
    return get_settings(db, tenant=tenant)


def age_on(traits: dict[str, Any], today: date) -> int | None:
    """A person's age in whole years from a ``birthday`` (YYYY-MM-DD) or ``age`` trait."""
    birthday = traits.get("birthday")
    if isinstance(birthday, str):
        try:
            born = date.fromisoformat(birthday[:10])
        except ValueError:
            born = None
        if born is not None:
            return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    age = traits.get("age")
    if isinstance(age, int | float) and not isinstance(age, bool):
        return int(age)
    if isinstance(age, str) and age.isdigit():
        return int(age)
    return None


# --- recording ------------------------------------------------------------------------------


def _subject(
    db: Session, resolver: Resolver, tenant: str, decision: Decision
) -> tuple[str, str, int | None]:
    """(identifier key, identifier type, OneID or None when the identifier is new)."""
    s = decision.subject
    if s.profile is not None:
        try:
            number = parse_oneid(s.profile)
        except ValueError as e:
            raise ValidationFailed(
                f"subject.profile {s.profile!r} is not a OneID like 'P42'"
            ) from e
        row = db.one(q.PROFILE_ROOT, [tenant, number])
        if row is None:
            raise NotFound(f"Tenant {tenant} has no person {s.profile}.")
        return str(row[0]), str(row[1]), number
    if not s.type or s.value is None:
        raise ValidationFailed(
            "subject needs an identifier (type and value, and scope for app- or brand-scoped"
            " ones) or a profile (a OneID like 'P42')"
        )
    key = resolver.node_key(db, tenant, s.type, s.value, s.scope)
    rows = [r for r in db.execute(identity_sql.FIND_NODE, [key]) if r[0] == tenant]
    return key, rows[0][3] if rows else s.type, int(rows[0][2]) if rows else None


def _check(
    db: Session, tenant: str, d: Decision, purpose: Purpose, profile: int | None,
    settings: Settings,
) -> None:  # fmt: skip
    if d.channel not in CHANNELS:
        raise ValidationFailed(
            f"channel {d.channel!r} is unknown: use one of {', '.join(CHANNELS)}"
        )
    if d.surface not in SURFACES:
        raise ValidationFailed(
            f"surface {d.surface!r} is unknown: use one of {', '.join(SURFACES)}"
        )
    if d.notice_version is not None and not db.one(
        q.GET_NOTICE, [tenant, purpose.id, d.notice_version]
    ):
        raise ValidationFailed(
            f"notice_version {d.notice_version!r} is not a notice of purpose {purpose.id}:"
            f" add it with POST /v1/tenants/{tenant}/consent/purposes/{purpose.id}/notices"
        )
    if d.status == "granted" and purpose.separate_consent and not d.separate:
        raise ValidationFailed(
            f"purpose {purpose.id} needs separate consent (单独同意): record the grant with"
            " separate=true once the person agreed to this purpose on its own"
        )
    if settings.guardian_under is None or profile is None or d.actor == "guardian":
        return
    if d.status != "granted":
        return  # anyone may refuse or withdraw
    age = _profile_age(db, tenant, profile)
    if age is not None and age < settings.guardian_under:
        raise ValidationFailed(
            f"the person is {age}, under {settings.guardian_under}: only a guardian may"
            " consent for them; record the guardian's consent with actor='guardian'"
        )


def _profile_age(db: Session, tenant: str, profile: int) -> int | None:
    from quanyu.profiles.service import get_profile

    view = get_profile(db, tenant=tenant, profile_id=profile, history_limit=1)
    return age_on({k: t.value for k, t in view.traits.items()}, utcnow().date())


def record(
    db: Session, resolver: Resolver, decisions: list[Decision], *, tenant: str, actor: str
) -> list[Recorded]:
    """Record decisions and, in the same transaction, tell every subscriber that cares.

    Raises:
        ValidationFailed: a bad channel, surface or notice version, a grant for a
            separate-consent purpose not given separately, or a child's own grant where a
            guardian must consent. Nothing is recorded then.
        NotFound: an unknown purpose or person.
    """
    from quanyu.consent import enforce, propagate

    if not decisions:
        raise ValidationFailed("no decisions given: send at least one")
    entries: list[NewEntry] = []
    now = utcnow()
    for d in decisions:
        ctx = enforce.context(db, tenant=tenant)  # purposes and settings, cached per version
        purpose = ctx.purpose(tenant, d.purpose, None)
        key, id_type, profile = _subject(db, resolver, tenant, d)
        _check(db, tenant, d, purpose, profile, ctx.settings)
        covers = [r[0] for r in db.execute(q.PROFILE_KEYS, [tenant, profile])] if profile else []
        decided = ledger.naive(d.decided_at) if d.decided_at else now
        entries.append(
            NewEntry(
                purpose_id=purpose.id,
                channel=d.channel,
                status=d.status,
                decided_at=decided,
                surface=d.surface,
                actor=d.actor,
                subject_key=key,
                subject_type=id_type,
                profile_id=profile,
                origin="api",
                recorded_by=actor,
                covers=covers,
                separate=d.separate,
                notice_version=d.notice_version,
                evidence=d.evidence,
            )  # fmt: skip
        )
    with ledger.appending(db, tenant):
        stored = ledger.append(db, tenant, entries)
        told = propagate.announce(db, tenant, stored)
    return [Recorded(entry=e, subscribers=told.get(e.seq, [])) for e in stored]


# --- reading ----------------------------------------------------------------------------------


def states(
    db: Session, *, tenant: str, profile_id: int, now: datetime | None = None
) -> list[State]:
    """A person's current consent for every purpose, on every channel they have a word
    for (and ``*``); purposes with no word read ``unknown``."""
    return states_of(db, tenant=tenant, covered=ledger.covered_for(db, tenant, profile_id),
                     now=now)  # fmt: skip


def states_of(
    db: Session, *, tenant: str, covered: list[ledger.Covered], now: datetime | None = None
) -> list[State]:
    """The states of :func:`states` from the entries covering a person's identifiers."""
    at = now or utcnow()
    out: list[State] = []
    for p in list_purposes(db, tenant=tenant):
        channels = sorted({c.channel for c in covered if c.purpose_id == p.id} | {"*"})
        out.extend(ledger.state_of(covered, p.id, c, rules_of(p), at) for c in channels)
    return out


def state(
    db: Session, *, tenant: str, profile_id: int, purpose: str, channel: str,
    now: datetime | None = None,
) -> State:  # fmt: skip
    """A person's current consent for one purpose and channel."""
    p = get_purpose(db, tenant=tenant, ref=purpose)
    covered = ledger.covered_for(db, tenant, profile_id)
    return ledger.state_of(covered, p.id, channel, rules_of(p), now or utcnow())


def ledger_size(db: Session, *, tenant: str) -> int:
    """How many entries the tenant's consent ledger holds."""
    row = db.one(q.NEXT_SEQ, [tenant])
    return int(row[0]) - 1 if row else 0


def history(db: Session, *, tenant: str, profile_id: int, limit: int = 1000) -> list[Entry]:
    """Every ledger entry covering the person's identifiers, newest first."""
    return ledger.history(db, tenant, profile_id, limit)


def unknown_state(purpose_id: str, channel: str) -> State:
    return State(purpose_id=purpose_id, channel=channel, status=Status.unknown, conflict=False,
                 entry_seq=None, decided_at=None)  # fmt: skip
