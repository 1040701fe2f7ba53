"""The console's tags pages: the taxonomy tree, a tag with its rule editor, live checks of
a rule while it is typed, computing a tag now, and how many people had it over time.

Everything goes through :mod:`quanyu.tags.service`, as the REST API does; the live count
of a yes/no rule is the ``matched`` of :func:`quanyu.audiences.service.count` (the people
the rule matches, before any consent exclusion: a tag describes, it reaches nobody).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from quanyu.audiences import service as audiences
from quanyu.audiences.models import AudienceDraft
from quanyu.consent import service as consent
from quanyu.console import i18n
from quanyu.console.deps import Ctx, tenant_page
from quanyu.console.render import render
from quanyu.errors import InvalidRequest, QuanyuError
from quanyu.ids import utcnow
from quanyu.tags import service
from quanyu.tags.models import Category, Tag, TagCreate, TagUpdate, ValueCount
from quanyu.tags.rules import RuleError
from quanyu.tenancy import service as tenancy

router = APIRouter()
Read = Annotated[Ctx, tenant_page("tags", "read")]
Write = Annotated[Ctx, tenant_page("tags", "write")]
HISTORY_DAYS = 30
SERIES = 6  # most values a history chart draws (the largest now)

i18n.register(
    {
        "tags.title": ("标签体系", "Tag taxonomy"),
        "tags.new": ("新建标签", "New tag"),
        "tags.key": ("标识", "Key"),
        "tags.name_zh": ("中文名", "Chinese name"),
        "tags.name_en": ("英文名", "English name"),
        "tags.description": ("说明", "Description"),
        "tags.category": ("分类", "Category"),
        "tags.uncategorised": ("未分类", "Uncategorised"),
        "tags.owner": ("归属", "Owner"),
        "tags.owner_group": ("集团", "Group"),
        "tags.value_type": ("值类型", "Value type"),
        "tags.type.boolean": ("是/否", "yes/no"),
        "tags.type.enum": ("枚举", "enumerated"),
        "tags.type.number": ("数值", "number"),
        "tags.type.date": ("日期", "date"),
        "tags.allowed": ("可选值（逗号分隔）", "Allowed values (comma-separated)"),
        "tags.status": ("状态", "Status"),
        "tags.status.draft": ("草稿", "draft"),
        "tags.status.live": ("已上线", "live"),
        "tags.status.retired": ("已停用", "retired"),
        "tags.people": ("人数", "People"),
        "tags.computed_at": ("最近计算", "Last computed"),
        "tags.never": ("尚未计算", "never"),
        "tags.refresh_hours": ("全量刷新间隔（小时）", "Full refresh every (hours)"),
        "tags.rule": ("规则", "Rule"),
        "tags.rule_help": (
            '例如 count(event = "Order Completed", within 90d) >= 2 and traits.city = "上海"',
            'e.g. count(event = "Order Completed", within 90d) >= 2 and traits.city = "上海"',
        ),
        "tags.sql": ("专家 SQL", "Expert SQL"),
        "tags.save": ("保存标签", "Save tag"),
        "tags.saved": ("已保存。", "Saved."),
        "tags.compute": ("立即计算", "Compute now"),
        "tags.computed": (
            "计算完成：第 {run} 次运行，{profiles} 人，新增 {added}，移除 {removed}。",
            "Computed: run {run}, {profiles} people, {added} added, {removed} removed.",
        ),
        "tags.read_only": (
            "你的角色只能查看标签，不能保存或计算。",
            "Your role may look at tags but not save or compute them.",
        ),
        "tags.check.ok": ("规则正确", "The rule is valid"),
        "tags.check.reads": ("规范写法", "Reads as"),
        "tags.check.count": (
            "现在有 {n} 人符合此规则",
            "{n} people match this rule now",
        ),
        "tags.check.after": (
            "非是/否标签的人数在计算后按取值统计。",
            "People per value are counted when the tag is computed.",
        ),
        "tags.check.empty": ("输入规则后即时检查。", "Type a rule to check it as you go."),
        "tags.check.at": ("第 {line} 行，第 {column} 列", "line {line}, column {column}"),
        "tags.history": ("标签人数变化", "People with this tag over time"),
        "tags.history_none": ("尚无计算记录。", "No computation yet."),
        "tags.values": ("当前取值分布", "Values now"),
        "tags.value": ("取值", "Value"),
        "tags.runs": ("计算记录", "Computations"),
        "tags.run": ("运行", "Run"),
        "tags.mode": ("方式", "Mode"),
        "tags.added": ("新增", "Added"),
        "tags.removed": ("移除", "Removed"),
        "tags.template": ("模板", "Template"),
        "tags.edit": ("编辑", "Edit"),
        "tags.back": ("返回标签体系", "Back to the taxonomy"),
    }
)


async def _form(request: Request) -> dict[str, str]:
    """The posted form's text fields (read once; csrf_guard read it already)."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


Posted = Annotated[dict[str, str], Depends(_form)]


# -- the taxonomy ---------------------------------------------------------------------------
@dataclass
class Node:
    """A category of the tree with its tags and sub-categories."""

    category: Category | None
    tags: list[Tag]
    children: list[Node]


def _tree(categories: list[Category], tags: list[Tag]) -> list[Node]:
    ids = {c.id for c in categories}
    nodes = {c.id: Node(c, [], []) for c in categories}
    loose = Node(None, [], [])
    for tag in tags:
        (nodes[tag.category_id] if tag.category_id in ids else loose).tags.append(tag)
    roots: list[Node] = []
    for c in sorted(categories, key=lambda c: (c.position, c.id)):
        parent = nodes.get(c.parent_id) if c.parent_id else None
        (parent.children if parent else roots).append(nodes[c.id])
    return roots + ([loose] if loose.tags else [])


def _people(counts: list[ValueCount], value_type: str) -> int | None:
    """People with the tag: those whose yes/no value is true, or who have any value."""
    if not counts:
        return None
    if value_type == "boolean":
        return sum(c.people for c in counts if c.value == "true")
    return sum(c.people for c in counts)


@router.get("/t/{tenant_id}/tags")
def taxonomy(ctx: Read) -> HTMLResponse:
    tags = service.list_tags(ctx.db, tenant=ctx.tenant_id)
    counts = service.value_counts(ctx.db, tenant=ctx.tenant_id)
    people = {t.key: _people(counts.get(t.key, []), t.value_type) for t in tags}
    return render(
        ctx, "tags.html", tree=_tree(service.list_categories(ctx.db, tenant=ctx.tenant_id), tags),
        people=people, counts=counts, brands=_brand_names(ctx), can_write=_can_write(ctx),
    )  # fmt: skip


def _brand_names(ctx: Ctx) -> dict[str, str]:
    return {b.id: b.name for b in tenancy.list_brands(ctx.db, tenant=ctx.tenant_id)}


def _can_write(ctx: Ctx) -> bool:
    return ctx.allows("tags", "write")


# -- a tag ------------------------------------------------------------------------------------
def _editor(ctx: Ctx, tag: Tag | None, form: dict[str, Any], error: str | None = None,
            status: int = 200, **extra: Any) -> HTMLResponse:  # fmt: skip
    return render(
        ctx, "tags_tag.html", status=status, tag=tag, form=form, error=error,
        categories=service.list_categories(ctx.db, tenant=ctx.tenant_id),
        brands=_brand_names(ctx), can_write=_can_write(ctx), **extra,
    )  # fmt: skip


def _form_of(tag: Tag) -> dict[str, Any]:
    return {
        "key": tag.key, "name_zh": tag.name_zh, "name_en": tag.name_en,
        "description": tag.description, "category_id": tag.category_id or "",
        "owner": tag.owner, "value_type": tag.value_type, "status": tag.status,
        "allowed_values": ", ".join(tag.allowed_values or []), "rule": tag.rule_text or "",
        "sql": tag.sql or "", "refresh_hours": _hours(tag.refresh_seconds),
    }  # fmt: skip


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:g}"


@router.get("/t/{tenant_id}/tags/new")
def new_tag(ctx: Write) -> HTMLResponse:
    form = {"owner": "group", "value_type": "boolean", "status": "draft", "refresh_hours": "24"}
    return _editor(ctx, None, form)


@router.post("/t/{tenant_id}/tags/validate")
def validate(
    ctx: Read,
    rule: Annotated[str, Form()] = "",
    value_type: Annotated[str, Form()] = "boolean",
) -> HTMLResponse:
    """The rule editor's live check: the syntax error with its place, or the rule as it
    reads and how many people it matches now."""
    values: dict[str, Any] = {"rule": rule}
    if not rule.strip():
        return render(ctx, "tags_check.html", empty=True, **values)
    try:
        service.read_rule(rule, want="condition" if value_type == "boolean" else "value")
        checked = service.check_rule(ctx.db, rule, tenant=ctx.tenant_id)
    except RuleError as e:
        return render(ctx, "tags_check.html", error=e, lines=_excerpt(rule, e), **values)
    people = _live_count(ctx, rule) if value_type == "boolean" else None
    return render(ctx, "tags_check.html", checked=checked, people=people, **values)


def _excerpt(text: str, e: RuleError) -> list[tuple[int, str, bool]]:
    """The lines around the error, the offending one flagged (its caret goes under it)."""
    if e.line is None:
        return []
    lines = text.split("\n")
    first = max(1, e.line - 1)
    return [(n, lines[n - 1], n == e.line) for n in range(first, min(len(lines), e.line) + 1)]


def _live_count(ctx: Ctx, rule: str) -> int | None:
    """People a yes/no rule matches now (the audience engine's count, before consent)."""
    purposes = consent.list_purposes(ctx.db, tenant=ctx.tenant_id)
    if not purposes:
        return None
    keys = [p.key for p in purposes]
    purpose = "analysis" if "analysis" in keys else keys[0]
    draft = AudienceDraft(rule=rule, brands=None, purpose=purpose, channel="none")
    return audiences.count(ctx.db, draft, tenant=ctx.tenant_id).matched


@router.post("/t/{tenant_id}/tags")
def create(ctx: Write, form: Posted) -> Response:
    return _create(ctx, form)


def _split(text: str) -> list[str] | None:
    values = [v.strip() for v in text.split(",") if v.strip()]
    return values or None


def _refresh(text: str) -> int:
    try:
        hours = float(text or "24")
    except ValueError:
        raise InvalidRequest(
            f"refresh every {text!r} hours is not a number: write e.g. 24"
        ) from None
    return max(60, round(hours * 3600))


def _create(ctx: Ctx, form: dict[str, str]) -> Response:
    try:
        body = TagCreate(
            key=form.get("key", "").strip(), name_zh=form.get("name_zh", "").strip(),
            name_en=form.get("name_en", "").strip(), description=form.get("description", ""),
            category_id=form.get("category_id") or None, owner=form.get("owner") or "group",
            value_type=form.get("value_type") or "boolean",  # type: ignore[arg-type]
            allowed_values=_split(form.get("allowed_values", "")),
            rule=form.get("rule") or None, sql=form.get("sql") or None,
            refresh_seconds=_refresh(form.get("refresh_hours", "")),
            status=form.get("status") or "draft",  # type: ignore[arg-type]
        )  # fmt: skip
        tag = service.create_tag(ctx.db, body, tenant=ctx.tenant_id, actor=ctx.actor)
    except (QuanyuError, ValidationError) as e:
        return _editor(ctx, None, form, error=_message(e), status=422)
    return RedirectResponse(ctx.url(f"tags/{tag.key}?saved=1"), status_code=303)


def _message(e: Exception) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
    return e.message if isinstance(e, QuanyuError) else str(e)


@router.get("/t/{tenant_id}/tags/{key}")
def tag_page(ctx: Read, key: str, saved: bool = False, run: int | None = None) -> HTMLResponse:
    tag = service.get_tag(ctx.db, tenant=ctx.tenant_id, key=key)
    return _editor(ctx, tag, _form_of(tag), saved=saved, **_facts(ctx, tag, run))


def _facts(ctx: Ctx, tag: Tag, run_id: int | None) -> dict[str, Any]:
    """The tag's counts now, its history chart and the computations that included it."""
    runs = [
        r for r in service.list_runs(ctx.db, tenant=ctx.tenant_id, limit=50) if tag.key in r.tags
    ]
    now = utcnow()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # from the day the tag was made (when nobody had it yet), at most HISTORY_DAYS back
    made = tag.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(day - timedelta(days=HISTORY_DAYS - 1), made)
    times = {day - timedelta(days=d) for d in range(HISTORY_DAYS)}
    times = {t for t in times if t >= start} | {r.finished_at for r in runs if r.finished_at}
    points = service.history(ctx.db, tenant=ctx.tenant_id, key=tag.key, times=sorted(times | {now}))
    current = points[-1].counts if points else []
    return {
        "runs": runs[:10], "values": sorted(current, key=lambda c: -c.people),
        "people": _people(current, tag.value_type), "chart": _chart(ctx, tag, points),
        "just_run": next((r for r in runs if r.run_id == run_id), None),
    }  # fmt: skip


def _chart(ctx: Ctx, tag: Tag, points: list[Any]) -> dict[str, Any] | None:
    """A uPlot spec: people per value (the largest few) at each time."""
    if not points or not any(p.counts for p in points):
        return None
    latest = {c.value: c.people for c in points[-1].counts}
    if tag.value_type == "boolean":
        shown = ["true"]
    else:
        shown = sorted(latest, key=lambda v: -latest[v])[:SERIES]
    series = [
        {
            "label": ctx.t("tags.people") if v == "true" else v,
            "values": [next((c.people for c in p.counts if c.value == v), 0) for p in points],
        }
        for v in shown
    ]
    return {"x": [_unix(p.at) for p in points], "series": series}


def _unix(at: datetime) -> int:
    return int((at - datetime(1970, 1, 1)).total_seconds())


@router.post("/t/{tenant_id}/tags/{key}")
def update(ctx: Write, key: str, form: Posted) -> Response:
    before = service.get_tag(ctx.db, tenant=ctx.tenant_id, key=key)
    values = dict(form)
    try:
        changes: dict[str, Any] = {
            "name_zh": values.get("name_zh", before.name_zh).strip(),
            "name_en": values.get("name_en", before.name_en).strip(),
            "description": values.get("description", before.description),
            "category_id": values.get("category_id") or None,
            "owner": values.get("owner") or before.owner,
            "allowed_values": _split(values.get("allowed_values", "")),
            "refresh_seconds": _refresh(values.get("refresh_hours", "")),
            "status": values.get("status") or before.status,
        }
        if before.sql is not None and values.get("sql"):
            changes["sql"] = values["sql"]
        elif values.get("rule", "").strip():
            changes["rule"] = values["rule"]
        service.update_tag(ctx.db, key, TagUpdate(**changes), tenant=ctx.tenant_id,
                           actor=ctx.actor)  # fmt: skip
    except (QuanyuError, ValidationError) as e:
        values["key"], values["value_type"] = key, before.value_type
        return _editor(ctx, before, values, error=_message(e), status=422,
                       **_facts(ctx, before, None))  # fmt: skip
    return RedirectResponse(ctx.url(f"tags/{key}?saved=1"), status_code=303)


@router.post("/t/{tenant_id}/tags/{key}/compute")
def compute_now(ctx: Write, key: str) -> Response:
    """Compute this tag now (in full), then show the tag with the run's figures."""
    run = service.compute_tags(ctx.db, tenant=ctx.tenant_id, keys=[key])
    return RedirectResponse(ctx.url(f"tags/{key}?run={run.run_id}"), status_code=303)
