"""The tags capability: the taxonomy, tag definitions, computation, history.

Plain functions ``(db, *, tenant, ...)``; ``api/``, ``cli.py`` and the audiences
capability call these, never the tables.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from quanyu.engine import DuplicateKey, Session, Statement
from quanyu.errors import Conflict, NotFound
from quanyu.ids import utcnow
from quanyu.profiles.settings import trait_rules as profile_trait_rules
from quanyu.tags import compute, expert, jsonform, parse, templates
from quanyu.tags import rules as r
from quanyu.tags import sql as q
from quanyu.tags.models import (
    Category,
    CategoryCreate,
    HistoryPoint,
    ProfileTag,
    RuleCheck,
    Tag,
    TagCreate,
    TagRun,
    TagUpdate,
    ValueCount,
)
from quanyu.tags.query import traits_query
from quanyu.tenancy.service import audit


def read_rule(rule: str | dict[str, Any] | Any, *, want: jsonform.Want = "condition") -> r.Node:
    """A rule from its text or JSON form, checked.

    Raises:
        RuleError: it does not parse or does not make sense (line and column for text).
    """
    if isinstance(rule, str):
        return parse.parse(rule, want=want)
    return jsonform.from_json(rule, want=want)


def _want(value_type: str) -> jsonform.Want:
    return "condition" if value_type == "boolean" else "value"


def check_rule(db: Session, rule: str | dict[str, Any], *, tenant: str) -> RuleCheck:
    """Parse and check a rule against the tenant's tags (that the tags it names exist)."""
    node = read_rule(rule, want="any")
    known = tag_types(db, tenant=tenant)
    missing = sorted(r.tag_refs(node) - set(known))
    if missing:
        raise r.RuleError(f'tag("{missing[0]}") does not exist: create it first, or fix the key')
    return RuleCheck(
        rule=jsonform.to_json(node), text=parse.to_text(node), uses_tags=sorted(r.tag_refs(node))
    )


# -- taxonomy -----------------------------------------------------------------------------
def create_category(db: Session, body: CategoryCreate, *, tenant: str, actor: str) -> Category:
    """Add a node to the taxonomy tree (its parent must exist)."""
    cats = {c.id for c in list_categories(db, tenant=tenant)}
    if body.parent_id is not None and body.parent_id not in cats:
        raise NotFound(f"parent category {body.parent_id!r} does not exist: create it first")
    cat = Category(**body.model_dump(), created_at=utcnow())
    try:
        with db.transaction():
            db.execute(q.INSERT_CATEGORY, [tenant, cat.id, cat.parent_id, cat.name_zh,
                                           cat.name_en, cat.position, cat.created_at])  # fmt: skip
            audit(db, actor=actor, action="tag_category.create", target=cat,
                  target_type="tag_category", target_id=cat.id, tenant=tenant)  # fmt: skip
    except DuplicateKey as e:
        raise Conflict(f"category {cat.id!r} exists already: pick another id") from e
    return cat


def list_categories(db: Session, *, tenant: str) -> list[Category]:
    """The taxonomy tree as a list (parents name their children through parent_id)."""
    rows = db.execute(q.LIST_CATEGORIES, [tenant])
    cols = ("id", "parent_id", "name_zh", "name_en", "position", "created_at")
    return [Category(**dict(zip(cols, row, strict=True))) for row in rows]


# -- tags ---------------------------------------------------------------------------------
_COLS = ("key", "category_id", "name_zh", "name_en", "description", "owner", "value_type",
         "allowed_values", "rule", "sql", "template", "refresh_seconds", "status",
         "created_at", "updated_at", "computed_at")  # fmt: skip


def _tag(row: tuple[Any, ...]) -> Tag:
    data = dict(zip(_COLS, row, strict=True))
    data["allowed_values"] = (
        orjson.loads(data["allowed_values"]) if data["allowed_values"] else None
    )
    rule = orjson.loads(data["rule"]) if data["rule"] else None
    data["rule"] = rule
    data["rule_text"] = parse.to_text(jsonform.from_json(rule)) if rule is not None else None
    return Tag(**data)


def tag_types(db: Session, *, tenant: str) -> dict[str, str]:
    """Each tag's value type, by key (one narrow read: live counts call it each time)."""
    return {str(k): str(v) for k, v in db.execute(q.TAG_TYPES, [tenant])}


def _definition(tag: Tag) -> compute.Definition:
    rule = jsonform.from_json(tag.rule) if tag.rule is not None else None
    return compute.Definition(
        tag.key, tag.value_type, rule, tag.sql, tuple(tag.allowed_values or ())
    )


def _validate(db: Session, tag: Tag, tenant: str) -> Tag:
    """Check a tag's rule or SQL, its references and that it makes no cycle."""
    if (tag.rule is None) == (tag.sql is None):
        raise r.RuleError("give a tag either a rule or sql, not both and not neither")
    if tag.sql is not None:
        expert.check(tag.sql)
    types = tag_types(db, tenant=tenant) | {tag.key: tag.value_type}
    definition = _definition(tag)
    missing = sorted(definition.refs() - set(types))
    if missing:
        raise r.RuleError(f'tag("{missing[0]}") does not exist: create it first, or fix the key')
    others = [_definition(t) for t in list_tags(db, tenant=tenant) if t.key != tag.key]
    compute.layers([*others, definition], set(types))  # raises on a cycle
    return tag


def create_tag(db: Session, body: TagCreate, *, tenant: str, actor: str,
               template: str | None = None) -> Tag:  # fmt: skip
    """Define a tag. Its rule is checked now (syntax, referenced tags, cycles)."""
    now = utcnow()
    node = read_rule(body.rule, want=_want(body.value_type)) if body.rule is not None else None
    tag = Tag(
        **body.model_dump(exclude={"rule"}),
        rule=jsonform.to_json(node) if node is not None else None,
        rule_text=parse.to_text(node) if node is not None else None,
        template=template, created_at=now, updated_at=now, computed_at=None,
    )  # fmt: skip
    _validate(db, tag, tenant)
    try:
        with db.transaction():
            db.execute(q.INSERT_TAG, [tenant, *_row(tag)])
            audit(db, actor=actor, action="tag.create", target=tag, target_type="tag",
                  target_id=tag.key, tenant=tenant)  # fmt: skip
    except DuplicateKey as e:
        raise Conflict(f"tag {tag.key!r} exists already: update it, or pick another key") from e
    return tag


def _row(tag: Tag) -> list[Any]:
    values = tag.model_dump()
    values["allowed_values"] = (
        orjson.dumps(tag.allowed_values).decode() if tag.allowed_values else None
    )
    values["rule"] = orjson.dumps(tag.rule).decode() if tag.rule is not None else None
    return [values[c] for c in _COLS]


def update_tag(db: Session, key: str, body: TagUpdate, *, tenant: str, actor: str) -> Tag:
    """Change a tag; a new rule is checked as on create."""
    before = get_tag(db, tenant=tenant, key=key)
    changes = body.model_dump(exclude_unset=True)
    if "rule" in changes and changes["rule"] is not None:
        node = read_rule(changes["rule"], want=_want(before.value_type))
        changes["rule"], changes["rule_text"], changes["sql"] = (
            jsonform.to_json(node),
            parse.to_text(node),
            None,
        )
    elif changes.get("sql"):
        changes["rule"] = changes["rule_text"] = None
    tag = before.model_copy(update={**changes, "updated_at": utcnow()})
    _validate(db, tag, tenant)
    with db.transaction():
        db.execute(q.DELETE_TAG, [tenant, key])
        db.execute(q.INSERT_TAG, [tenant, *_row(tag)])
        audit(db, actor=actor, action="tag.update", target=tag, before=before,
              target_type="tag", target_id=key, tenant=tenant)  # fmt: skip
    return tag


def list_tags(db: Session, *, tenant: str) -> list[Tag]:
    """Every tag of a tenant, by key."""
    return [_tag(row) for row in db.execute(q.LIST_TAGS, [tenant])]


def get_tag(db: Session, *, tenant: str, key: str) -> Tag:
    """One tag.

    Raises:
        NotFound: no tag has this key in the tenant.
    """
    row = db.one(q.GET_TAG, [tenant, key])
    if row is None:
        raise NotFound(f"tag {key!r} does not exist in this tenant: list tags to see the keys")
    return _tag(row)


# -- computation ----------------------------------------------------------------------------
def trait_rule_names(db: Session, *, tenant: str) -> dict[str, str]:
    """Per trait key, the survivorship the SQL applies: 'first' or 'latest'."""
    rules = profile_trait_rules(db, tenant=tenant)
    return {k: ("first" if v.rule == "first" else "latest") for k, v in rules.keys.items()}


def compute_tags(db: Session, *, tenant: str, keys: list[str] | None = None,
                 incremental: bool = False, now: datetime | None = None) -> TagRun:  # fmt: skip
    """Compute the live tags (or the named ones, whatever their status) of a tenant.

    ``incremental`` computes only the persons whose events or identity changed since
    the last fold; a full computation covers every person.
    """
    with _computing[tenant]:  # one computation of a tenant at a time (API and refresher)
        return _compute_tags(db, tenant=tenant, keys=keys, incremental=incremental, now=now)


_computing: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


def _compute_tags(db: Session, *, tenant: str, keys: list[str] | None, incremental: bool,
                  now: datetime | None) -> TagRun:  # fmt: skip
    tags = list_tags(db, tenant=tenant)
    chosen = [t for t in tags if (t.key in keys if keys else t.status == "live")]
    if keys:
        unknown = sorted(set(keys) - {t.key for t in tags})
        if unknown:
            raise NotFound(f"tag {unknown[0]!r} does not exist in this tenant")
    types: dict[str, str] = {t.key: t.value_type for t in tags}
    run_id, _, _, _ = compute.compute(
        db, [_definition(t) for t in chosen], tenant=tenant, tag_types=types,
        trait_rules=trait_rule_names(db, tenant=tenant), incremental=incremental, now=now,
    )  # fmt: skip
    return next(x for x in list_runs(db, tenant=tenant, limit=5) if x.run_id == run_id)


def list_runs(db: Session, *, tenant: str, limit: int = 50) -> list[TagRun]:
    """The latest computations, newest first."""
    cols = ("run_id", "mode", "tags", "started_at", "finished_at", "profiles", "added",
            "removed", "status", "error")  # fmt: skip
    out = []
    for row in db.execute(q.LIST_RUNS, [tenant, limit]):
        data = dict(zip(cols, row, strict=True))
        data["tags"] = orjson.loads(data["tags"])
        out.append(TagRun(**data))
    return out


def history(db: Session, *, tenant: str, key: str, times: list[datetime]) -> list[HistoryPoint]:
    """People per value of a tag at each of ``times`` (e.g. each day's end)."""
    get_tag(db, tenant=tenant, key=key)
    table = pa.table({"at": pa.array(times, pa.timestamp("us"))})
    db.register("tag_times", table)
    try:
        rows = db.execute(q.COUNTS_AT, [tenant, key])
    finally:
        db.unregister("tag_times")
    points: dict[datetime, list[ValueCount]] = {t: [] for t in times}
    for at, value, people in rows:
        points.setdefault(at, []).append(ValueCount(value=value, people=people))
    return [HistoryPoint(at=at, counts=c) for at, c in sorted(points.items())]


def value_counts(db: Session, *, tenant: str) -> dict[str, list[ValueCount]]:
    """Current people per value of every tag."""
    out: dict[str, list[ValueCount]] = {}
    for key, value, people in db.execute(q.VALUE_COUNTS, [tenant]):
        out.setdefault(key, []).append(ValueCount(value=value, people=people))
    return out


def profile_tags(db: Session, *, tenant: str, profile_id: int) -> list[ProfileTag]:
    """A person's tags now (``valid_to`` None) and before, newest first."""
    rows = db.execute(q.PROFILE_TAGS, [tenant, profile_id])
    cols = ("key", "value", "num", "valid_from", "valid_to")
    return [ProfileTag(**dict(zip(cols, row, strict=True))) for row in rows]


# -- reads for audiences ----------------------------------------------------------------------
def current_values(db: Session, *, tenant: str, keys: list[str]) -> pa.Table:
    """Open values of the given tags: (tag_key, profile_id, value, num)."""
    return _with_keys(db, keys, q.CURRENT_VALUES, [tenant])


def _with_keys(db: Session, keys: list[str], stmt: Statement, params: list[Any]) -> pa.Table:
    db.register("tag_keys", pa.table({"key": pa.array(keys, pa.string())}))
    try:
        return db.arrow(stmt, params)
    finally:
        db.unregister("tag_keys")


def profile_sets(db: Session, *, tenant: str) -> tuple[pa.Table, pa.Table]:
    """(profile_id, brand_id) and (profile_id, channel): each person's brands and channels."""
    return db.arrow(q.PROFILE_BRANDS, [tenant]), db.arrow(q.PROFILE_CHANNELS, [tenant])


def trait_values(db: Session, *, tenant: str, keys: list[str]) -> pa.Table:
    """Each person's surviving value of each trait key: profile_id, then one column per key."""
    compiled = traits_query(keys, trait_rules=trait_rule_names(db, tenant=tenant))
    table = db.arrow(q.compiled_statement("tags.traits", compiled), compiled.params(tenant))
    return table.rename_columns(["profile_id", *keys])


def index_version(db: Session, *, tenant: str) -> tuple[int, ...]:
    """Changes whenever facts are folded or tags computed (audience indexes key on it)."""
    row = db.one(q.INDEX_VERSION, [tenant])
    return tuple(int(x) for x in row) if row else (0, 0, 0)


def add_template(
    db: Session,
    key: str,
    *,
    tenant: str,
    actor: str,
    params: dict[str, Any] | None = None,
    status: str = "live",
) -> list[Tag]:
    """Create a shipped template's tags (and the default taxonomy where missing)."""
    template = templates.get(key)
    bodies = template.tags(params or {})
    have = {c.id for c in list_categories(db, tenant=tenant)}
    for cat in templates.CATEGORIES:
        if cat.id not in have:
            create_category(db, cat, tenant=tenant, actor=actor)
    created = []
    for body in bodies:
        body = body.model_copy(update={"status": status})
        created.append(create_tag(db, body, tenant=tenant, actor=actor, template=key))
    return created


def pending(db: Session, *, tenant: str) -> bool:
    """Whether identity has resolved events or changed persons since the last fold."""
    folded = db.one(q.GET_STATE, [tenant])
    progress = db.one(q.IDENTITY_PROGRESS, [tenant])
    if progress is None:
        return False
    if folded is None:
        return bool(progress[0])
    return int(progress[0]) > int(folded[0]) or int(progress[1]) > int(folded[1])
