"""Finding profiles by a prefix of an identifier or a trait value, or by an exact identifier.

Identifiers are matched on the value ``id_nodes`` keeps for non-PII types; PII types
(phone, e-mail) keep only a keyed hash and ciphertext, so they can be found by exact
value alone (``quanyu.identity.admin.find``). Traits are matched in the JSON text of identify
events: a scan per call, see ``search``.
"""

from __future__ import annotations

from functools import lru_cache

import orjson

from quanyu.engine import Session
from quanyu.errors import ValidationFailed
from quanyu.identity.models import format_oneid
from quanyu.identity.types import IdentityRules
from quanyu.ingest.normalize import ID_KEYS
from quanyu.profiles import sql as q
from quanyu.profiles.models import SearchHit, SearchResult, check_limit


@lru_cache(maxsize=1)
def pii_trait_types() -> dict[str, str]:
    """Trait keys that carry a PII identifier (phone, e-mail ...), mapped to its type."""
    pii = {k for k, t in IdentityRules.default().types.items() if t.pii}
    return {key: t for key, t in ID_KEYS.items() if t in pii}


def _like(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def search(
    db: Session,
    *,
    tenant: str,
    prefix: str,
    limit: int = 20,
    id_type: str | None = None,
    trait: str | None = None,
) -> SearchResult:
    """Profiles with an identifier or a trait value starting with ``prefix``.

    Identifiers (skipped when ``trait`` is given): case-sensitive prefix of the stored
    value of non-PII identifiers (user ids, unionids, openids, member ids ...), of type
    ``id_type`` if given. PII identifiers (phone, e-mail) are stored only as a keyed
    hash and ciphertext, so no prefix matches them: only an exact lookup works, by
    the identifier's graph key (``quanyu.identity.admin.find``).

    Traits (skipped when ``id_type`` is given): case-insensitive prefix of a top-level
    string trait (``trait`` if given) of any identify event, so a value the person once
    had matches as well as the surviving one. Costs a scan of every identify event of
    the tenant per call (a LIKE over the JSON text, then a check in Python of at most
    ``10 * limit`` matching events, newest first, resolved or not, so a very common
    prefix may return fewer hits than exist). Traits text pretty-printed over several lines is not
    matched. PII identifier traits (phone, e-mail) are never searched.

    Raises:
        ValidationFailed: empty prefix, bad limit, or ``trait`` names a PII trait.
    """
    text = prefix.strip()
    check_limit(limit, 200)
    if not text:
        raise ValidationFailed("search prefix is empty: give at least one character")
    if trait is not None and trait in pii_trait_types():
        raise ValidationFailed(
            f"trait {trait!r} holds PII and cannot be searched by prefix: look the person up"
            " by the exact identifier"
        )
    hits: dict[tuple[int, str, str], SearchHit] = {}
    if trait is None:
        for pid, typ, shown in db.execute(
            q.SEARCH_IDENTIFIERS, [tenant, _like(text) + "%", id_type, id_type, limit]
        ):
            hit = SearchHit(
                oneid=format_oneid(pid),
                profile_id=pid,
                matched="identifier",
                field=typ,
                value=shown,
            )
            hits.setdefault((pid, "identifier", typ), hit)
    if id_type is None and len(hits) < limit:
        key = orjson.dumps(trait).decode() if trait is not None else '"'
        needle = _like(orjson.dumps(text).decode()[1:-1].lower())
        tight, loose = (f'%{_like(key.lower())}:{gap}"{needle}%' for gap in ("", " "))
        pii = pii_trait_types()
        for pid, traits in db.execute(q.SEARCH_TRAITS, [tenant, tight, loose, limit * 10]):
            bag = orjson.loads(traits)
            for k, v in bag.items() if isinstance(bag, dict) else ():
                ok = isinstance(v, str) and v.lower().startswith(text.lower())
                if ok and k not in pii and (trait is None or k == trait):
                    hit = SearchHit(
                        oneid=format_oneid(pid), profile_id=pid, matched="trait", field=k, value=v
                    )
                    hits.setdefault((pid, "trait", k), hit)
    return SearchResult(items=list(hits.values())[:limit])
