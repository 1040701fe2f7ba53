"""The console's audiences pages: the list, the rule builder with its live count, an
audience with its size over time, exports and pushes, and the overlap of two or three.

Counts, snapshots, overlap, exports and pushes are the same service calls the REST API
makes (:mod:`quanyu.api.audiences`), so the console's numbers are the API's numbers. The
builder (:mod:`quanyu.audiences.builder`) only writes the rule text the service reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from quanyu.audiences import builder, export, service, stats
from quanyu.audiences.builder import Group, Row, RowError
from quanyu.audiences.consent_gate import CHANNELS
from quanyu.audiences.models import (
    Audience,
    AudienceCreate,
    AudienceDraft,
    AudienceUpdate,
    Count,
    PushRequest,
)
from quanyu.consent import service as consent
from quanyu.console import i18n, venn
from quanyu.console.deps import Ctx, tenant_page
from quanyu.console.render import render
from quanyu.delivery import service as delivery
from quanyu.delivery.models import DestinationCreate
from quanyu.errors import InvalidRequest, QuanyuError
from quanyu.identity import admin as identity
from quanyu.identity.models import format_oneid
from quanyu.identity.secrets import mask
from quanyu.identity.types import DEFAULT_TYPES
from quanyu.profiles.models import parse_oneid
from quanyu.tags import parse
from quanyu.tags import service as tags
from quanyu.tags.rules import RuleError
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import SourceKind

router = APIRouter()
Read = Annotated[Ctx, tenant_page("audiences", "read")]
Write = Annotated[Ctx, tenant_page("audiences", "write")]
_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}

i18n.register(
    {
        "audiences.title": ("人群", "Audiences"),
        "audiences.new": ("新建人群", "New audience"),
        "audiences.id": ("标识", "Id"),
        "audiences.description": ("说明", "Description"),
        "audiences.purpose": ("用途", "Purpose"),
        "audiences.channel": ("触达渠道", "Channel"),
        "audiences.brands": ("品牌范围", "Brand scope"),
        "audiences.all_brands": ("全部品牌", "All brands"),
        "audiences.size": ("人数", "Size"),
        "audiences.members": ("可触达人数", "Members"),
        "audiences.matched": ("符合规则", "Matched"),
        "audiences.excluded": ("因授权排除", "Excluded by consent"),
        "audiences.last": ("最近生成", "Last materialised"),
        "audiences.never": ("尚未生成", "never"),
        "audiences.refresh_hours": ("刷新间隔（小时）", "Refresh every (hours)"),
        "audiences.rule": ("规则", "Rule"),
        "audiences.edit_text": ("以文本编辑", "Edit as text"),
        "audiences.to_builder": ("回到可视化编辑", "Back to the builder"),
        "audiences.add_row": ("+ 条件", "+ condition"),
        "audiences.add_group": ("+ 条件组", "+ group"),
        "audiences.remove": ("删除", "Remove"),
        "audiences.and": ("且（全部满足）", "AND (all of)"),
        "audiences.or": ("或（任一满足）", "OR (any of)"),
        "audiences.not": ("取反 NOT", "NOT"),
        "audiences.kind.tag": ("标签", "Tag"),
        "audiences.kind.trait": ("属性", "Trait"),
        "audiences.kind.brand": ("品牌", "Brand"),
        "audiences.kind.channel": ("渠道", "Channel"),
        "audiences.kind.event": ("事件", "Event"),
        "audiences.kind.identifier": ("身份标识", "Identifier"),
        "audiences.kind.text": ("规则文本", "Rule text"),
        "audiences.op.has": ("有", "has"),
        "audiences.op.lacks": ("没有", "lacks"),
        "audiences.op.is set": ("有值", "is set"),
        "audiences.op.not set": ("无值", "is not set"),
        "audiences.op.in": ("属于", "in"),
        "audiences.op.not in": ("不属于", "not in"),
        "audiences.op.contains": ("包含", "contains"),
        "audiences.agg.count": ("次数", "count of"),
        "audiences.agg.sum": ("金额合计", "amount of"),
        "audiences.within": ("近（天）", "within days"),
        "audiences.value": ("值", "value"),
        "audiences.key.trait": ("属性名，如 city", "trait, e.g. city"),
        "audiences.key.event": ("事件名", "event name"),
        "audiences.text_help": ('例如 traits.city = "上海"', 'e.g. traits.city = "上海"'),
        "audiences.live": ("实时人数", "Live count"),
        "audiences.counting": ("计算中…", "Counting…"),
        "audiences.sentence": (
            "{matched} 人符合规则；{excluded} 人因缺少{channel}渠道的「{purpose}」授权被排除",
            "{matched} matched; {excluded} excluded for lack of {channel} consent ({purpose})",
        ),
        "audiences.sentence_any": (
            "{matched} 人符合规则；{excluded} 人因缺少「{purpose}」授权被排除",
            "{matched} matched; {excluded} excluded for lack of consent ({purpose})",
        ),
        "audiences.one_snapshot": (
            "目前只有一个快照；再生成一次即可看到变化曲线。",
            "One snapshot so far: the chart shows from the second one.",
        ),
        "audiences.count_now": ("按当前数据与授权重新计算", "Count now"),
        "audiences.count_now_help": (
            "上方数字来自最新快照；可按当前数据和授权状态重新计算人数、品牌与渠道分布及样例。",
            "The figures above are the latest snapshot's; count again with today's data and"
            " consents for the breakdown by brand and channel and a sample.",
        ),
        "audiences.reachable": ("{size} 人可触达", "{size} members can be reached"),
        "audiences.by_brand": ("按品牌", "By brand"),
        "audiences.by_channel": ("按来源渠道", "By source channel"),
        "audiences.sample": ("成员样例（已脱敏）", "Sample of members (masked)"),
        "audiences.phone": ("手机号", "Phone"),
        "audiences.took": ("用时 {ms} 毫秒 · {plan}", "took {ms} ms · answered by {plan}"),
        "audiences.row_error": ("条件有误", "A condition needs fixing"),
        "audiences.hint": ("选择条件后即时显示人数。", "Choose a condition to see the count."),
        "audiences.save": ("保存人群", "Save audience"),
        "audiences.saved": ("已保存。", "Saved."),
        "audiences.read_only": (
            "你的角色可以试算人群，但不能保存、生成或推送。",
            "Your role may explore and count audiences, but not save, materialise or push.",
        ),
        "audiences.copy": ("复制到编辑器", "Copy into the builder"),
        "audiences.edit": ("编辑", "Edit"),
        "audiences.editing": ("编辑人群", "Edit audience"),
        "audiences.delete": ("删除人群", "Delete audience"),
        "audiences.delete_confirm": (
            "删除此人群及其全部快照？已推送的记录会保留。",
            "Delete this audience and all its snapshots? Pushes made stay on record.",
        ),
        "audiences.deleted": ("已删除人群", "Deleted audience"),
        "audiences.materialise": ("立即生成快照", "Materialise now"),
        "audiences.size_over_time": ("人群规模变化", "Size over time"),
        "audiences.snapshots": ("快照", "Snapshots"),
        "audiences.snapshot": ("快照", "Snapshot"),
        "audiences.reason": ("原因", "Reason"),
        "audiences.export": ("导出", "Export"),
        "audiences.csv": ("下载 CSV", "Download CSV"),
        "audiences.parquet": ("下载 Parquet", "Download Parquet"),
        "audiences.identifier": ("标识类型", "Identifier"),
        "audiences.scope": ("范围（应用或品牌 ID）", "Scope (app or brand id)"),
        "audiences.push": ("推送到目的地", "Push to a destination"),
        "audiences.push_now": ("推送", "Push"),
        "audiences.destination": ("目的地", "Destination"),
        "audiences.batch_size": ("每批条数", "Batch size"),
        "audiences.pushed": ("推送已排队。", "The push is queued."),
        "audiences.pushes": ("推送记录", "Pushes"),
        "audiences.records": ("记录数", "Records"),
        "audiences.batches": ("批次", "Batches"),
        "audiences.outbox": ("投递状态", "Delivery (outbox)"),
        "audiences.attempts": ("尝试次数", "Attempts"),
        "audiences.reply": ("对方响应", "Reply"),
        "audiences.delivered_at": ("送达时间", "Delivered"),
        "audiences.add_destination": ("新增目的地", "Add a destination"),
        "audiences.url": ("地址（Webhook URL）", "Webhook URL"),
        "audiences.secret_once": (
            "签名密钥只显示这一次，请立即保存：",
            "The signing secret is shown this once; store it now:",
        ),
        "audiences.no_destinations": ("尚无目的地。", "No destination yet."),
        "audiences.overlap": ("人群重叠", "Overlap"),
        "audiences.compare": ("比较", "Compare"),
        "audiences.pick": ("选两到三个人群比较重叠", "Pick two or three audiences to compare"),
        "audiences.region": ("区域", "Region"),
        "audiences.only": ("仅", "only"),
        "audiences.overlap_note": (
            "按各人群最新快照计算；三个圆的面积只是近似，以表中数字为准。",
            "From each audience's latest snapshot; with three sets the areas are approximate:"
            " the table has the exact numbers.",
        ),
        "audiences.channel.sms": ("短信", "SMS"),
        "audiences.channel.wechat": ("微信", "WeChat"),
        "audiences.channel.email": ("邮件", "e-mail"),
        "audiences.channel.phone": ("电话", "phone"),
        "audiences.channel.ads": ("广告", "ads"),
        "audiences.channel.push": ("推送通知", "push"),
        "audiences.channel.pos": ("门店", "POS"),
        "audiences.channel.none": ("不触达（仅分析）", "none (analysis only)"),
    }
)


async def _pairs(request: Request) -> list[tuple[str, str]]:
    """The posted form's text fields, repeated names kept (csrf_guard read it already)."""
    return [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]


Posted = Annotated[list[tuple[str, str]], Depends(_pairs)]


# -- the editor's state -----------------------------------------------------------------------
@dataclass
class Editor:
    """What the audience editor holds: the rule (builder or text) and the definition."""

    mode: str = "builder"
    group: Group = field(default_factory=lambda: Group(items=[Row()]))
    text: str = ""
    brands: list[str] = field(default_factory=list)
    purpose: str = "marketing"
    channel: str = "sms"
    id: str = ""
    name: str = ""
    description: str = ""
    refresh_hours: str = "1"
    editing: str = ""  # the id of the saved audience being edited ("" for a new one)

    @classmethod
    def posted(cls, pairs: list[tuple[str, str]]) -> Editor:
        one = dict(pairs)
        ed = cls(
            mode="text" if one.get("mode") == "text" else "builder",
            group=builder.from_fields(one), text=one.get("rule_text", ""),
            brands=[v for k, v in pairs if k == "brands" and v],
            purpose=one.get("purpose") or "marketing", channel=one.get("channel") or "sms",
            id=one.get("id", "").strip(), name=one.get("name", "").strip(),
            description=one.get("description", ""), refresh_hours=one.get("refresh_hours", "1"),
        )  # fmt: skip
        if not ed.group.items and ed.mode == "builder":
            ed.group.items.append(Row())
        return ed

    def rule(self) -> str:
        """The rule text. Raises RowError (builder) or RuleError (it does not parse)."""
        text = self.text if self.mode == "text" else builder.to_text(self.group)
        if not text.strip():
            raise RuleError('the rule is empty: write a condition, such as tag("vip")')
        return parse.to_text(service.read_rule(text))

    def definition(self) -> dict[str, Any]:
        """What a saved audience holds besides its id. Raises RowError or RuleError (the
        rule) and ValueError (the refresh hours)."""
        return {
            "name": self.name, "description": self.description, "rule": self.rule(),
            "brands": self.brands or None, "purpose": self.purpose, "channel": self.channel,
            "refresh_seconds": _seconds(self.refresh_hours),
        }  # fmt: skip

    def draft(self) -> AudienceDraft:
        return AudienceDraft(rule=self.rule(), brands=self.brands or None,
                             purpose=self.purpose, channel=self.channel)  # fmt: skip


def _choices(ctx: Ctx) -> dict[str, Any]:
    """What the editor's menus offer: tags, brands, purposes, channels, identifiers."""
    purposes = consent.list_purposes(ctx.db, tenant=ctx.tenant_id)
    keys = [p.key for p in purposes]
    return {
        "tag_list": tags.list_tags(ctx.db, tenant=ctx.tenant_id),
        "brands": {b.id: b.name for b in tenancy.list_brands(ctx.db, tenant=ctx.tenant_id)},
        "purposes": [(p.key if keys.count(p.key) == 1 else p.id, p) for p in purposes],
        "channels": CHANNELS, "source_kinds": [k.value for k in SourceKind],
        "id_types": [t.key for t in DEFAULT_TYPES], "ops": builder.OPS, "kinds": builder.KINDS,
    }  # fmt: skip


def _edit_page(ctx: Ctx, ed: Editor, error: str | None = None, status: int = 200) -> HTMLResponse:
    return render(ctx, "audiences_edit.html", status=status, ed=ed, error=error,
                  can_write=ctx.allows("audiences", "write"), **_choices(ctx))  # fmt: skip


@router.get("/t/{tenant_id}/audiences/new")
def new_audience(ctx: Read, copy: str | None = None) -> HTMLResponse:
    """The builder: empty, or holding a copy of a saved audience (``?copy=<id>``)."""
    ed = Editor()
    if copy:
        ed = _editor_of(service.get_audience(ctx.db, tenant=ctx.tenant_id, audience_id=copy))
        ed.id = f"{ed.id}-copy"[:64]
    return _edit_page(ctx, ed)


def _editor_of(aud: Audience) -> Editor:
    """The editor holding a saved audience's definition."""
    return Editor(group=builder.from_node(service.read_rule(aud.rule)), text=aud.rule_text,
                  brands=aud.brands or [], purpose=aud.purpose, channel=aud.channel,
                  id=aud.id, name=aud.name, description=aud.description,
                  refresh_hours=f"{aud.refresh_seconds / 3600:g}")  # fmt: skip


@router.get("/t/{tenant_id}/audiences/{audience_id}/edit")
def edit_audience(ctx: Write, audience_id: str) -> HTMLResponse:
    """The builder holding a saved audience, to change it."""
    ed = _editor_of(service.get_audience(ctx.db, tenant=ctx.tenant_id, audience_id=audience_id))
    ed.editing = audience_id
    return _edit_page(ctx, ed)


@router.post("/t/{tenant_id}/audiences/{audience_id}/edit")
def save_edit(ctx: Write, audience_id: str, pairs: Posted) -> Response:
    """Save the changed definition (the next refresh materialises it)."""
    ed = Editor.posted(pairs)
    ed.id = ed.editing = audience_id
    return _saving(ctx, ed, lambda d: service.update_audience(
        ctx.db, audience_id, AudienceUpdate(**d), tenant=ctx.tenant_id, actor=ctx.actor,
    ).id)  # fmt: skip


@router.post("/t/{tenant_id}/audiences/{audience_id}/delete")
def delete(ctx: Write, audience_id: str) -> Response:
    """Delete the audience and its snapshots."""
    service.delete_audience(ctx.db, audience_id, tenant=ctx.tenant_id, actor=ctx.actor)
    return RedirectResponse(ctx.url(f"audiences?deleted={audience_id}"), status_code=303)


def _seconds(hours: str) -> int:
    """Refresh hours as seconds (at least a minute). Raises ValueError on a non-number."""
    return max(60, round(float(hours or "1") * 3600))


@router.post("/t/{tenant_id}/audiences/builder")
def edit_builder(ctx: Read, pairs: Posted) -> HTMLResponse:
    """Add or remove a row or group, or switch between the builder and the text."""
    ed = Editor.posted(pairs)
    action = dict(pairs).get("action", "")
    error = None
    if action == "to-text":
        try:
            ed.text, ed.mode = ed.rule(), "text"
        except (RowError, RuleError) as e:
            error = e.message
    elif action == "to-builder":
        try:
            ed.group, ed.mode = builder.from_node(service.read_rule(ed.text)), "builder"
        except RuleError as e:
            error = e.message
    elif ed.mode == "builder":
        ed.group = builder.apply(ed.group, action)
    return render(ctx, "audiences_builder.html", ed=ed, error=error, oob=True,
                  **_choices(ctx))  # fmt: skip


@router.post("/t/{tenant_id}/audiences/count")
def live_count(ctx: Read, pairs: Posted) -> HTMLResponse:
    """The live count of the rule being edited, or what is wrong with it."""
    ed = Editor.posted(pairs)
    try:
        draft = ed.draft()
        found = service.count(ctx.db, draft, tenant=ctx.tenant_id)
    except RowError as e:
        blank = _blank(ed.group, e.path)
        return render(ctx, "audiences_count.html", error=e.message, path=e.path, blank=blank)
    except RuleError as e:
        lines = ed.text.split("\n") if ed.mode == "text" else []
        shown = lines[e.line - 1] if e.line and 0 < e.line <= len(lines) else None
        return render(ctx, "audiences_count.html", error=e.message, line=e.line, column=e.column,
                      shown=shown)  # fmt: skip
    except QuanyuError as e:
        return render(ctx, "audiences_count.html", error=e.message)
    return render(ctx, "audiences_count.html", count=found, draft=draft,
                  sample=_sample(ctx, found), **_labels(ctx))  # fmt: skip


def _blank(group: Group, path: str) -> bool:
    """Whether the row at ``path`` is untouched (a hint then, not an error)."""
    try:
        item = builder.find(group, path)
    except KeyError:
        return False
    return isinstance(item, Row) and not item.key.strip() and not item.value.strip()


def _labels(ctx: Ctx) -> dict[str, Any]:
    brands = {b.id: b.name for b in tenancy.list_brands(ctx.db, tenant=ctx.tenant_id)}
    purposes = {p.key: p for p in consent.list_purposes(ctx.db, tenant=ctx.tenant_id)}
    return {"brand_names": brands, "purpose_of": purposes}


def _sample(ctx: Ctx, found: Count) -> list[tuple[str, str]]:
    """The sample's OneIDs with each one's phone, masked (or a dash)."""
    ids = [parse_oneid(p) for p in found.sample]
    if not ids:
        return []
    phones = identity.identifier_values(
        ctx.db, ctx.request.app.state.resolver, tenant=ctx.tenant_id,
        profile_ids=pa.array(ids, pa.int64()), type="phone",
    )  # fmt: skip
    shown = {
        int(p): mask("phone", str(v))
        for p, v in zip(
            phones.column("profile_id").to_pylist(), phones.column("value").to_pylist(), strict=True
        )  # fmt: skip
    }
    return [(format_oneid(i), shown.get(i, "–")) for i in ids]


@router.post("/t/{tenant_id}/audiences")
def save(ctx: Write, pairs: Posted) -> Response:
    ed = Editor.posted(pairs)
    return _saving(ctx, ed, lambda d: service.create_audience(
        ctx.db, AudienceCreate(id=ed.id, **d), tenant=ctx.tenant_id, actor=ctx.actor,
    ).id)  # fmt: skip


def _saving(ctx: Ctx, ed: Editor, save: Callable[[dict[str, Any]], str]) -> Response:
    """Save the editor's definition with ``save`` (it returns the audience id): to the
    audience's page, or back to the editor with what was wrong."""
    try:
        saved = save(ed.definition())
    except ValueError as e:  # a bad number of hours, or the model refused a field
        return _edit_page(ctx, ed, _invalid(e), status=422)
    except QuanyuError as e:
        return _edit_page(ctx, ed, e.message, status=422)
    return RedirectResponse(ctx.url(f"audiences/{saved}?saved=1"), status_code=303)


def _invalid(e: ValueError) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
    return f"refresh every … hours must be a number: {e}"


# -- the list and the overlap ----------------------------------------------------------------
@router.get("/t/{tenant_id}/audiences")
def audience_list(ctx: Read, deleted: str | None = None) -> HTMLResponse:
    found = service.list_audiences(ctx.db, tenant=ctx.tenant_id)
    return render(ctx, "audiences.html", audiences=found, deleted=deleted,
                  latest=stats.latest_snapshots(ctx.db, tenant=ctx.tenant_id),
                  can_write=ctx.allows("audiences", "write"), **_labels(ctx))  # fmt: skip


@router.get("/t/{tenant_id}/audiences/overlap")
def overlap(ctx: Read, ids: Annotated[list[str], Query()] = []) -> HTMLResponse:  # noqa: B006
    """Two or three audiences' latest snapshots as a Venn diagram and a table."""
    chosen = [i for i in dict.fromkeys(ids) if i]
    everyone = service.list_audiences(ctx.db, tenant=ctx.tenant_id)
    values: dict[str, Any] = {"audiences": everyone, "chosen": chosen}
    if chosen:
        if not 2 <= len(chosen) <= 3:
            raise InvalidRequest(f"pick two or three audiences to compare, not {len(chosen)}")
        found = service.overlap(ctx.db, tenant=ctx.tenant_id, audience_ids=chosen)
        names = {a.id: a.name for a in everyone}
        regions = {tuple(chosen.index(a) for a in r.inside): r.size for r in found.regions}
        values |= {
            "result": found, "names": names,
            "svg": venn.svg([names[a] for a in chosen], [found.sizes[a] for a in chosen],
                            regions),
        }  # fmt: skip
    return render(ctx, "audiences_overlap.html", **values)


# -- one audience -----------------------------------------------------------------------------
@router.get("/t/{tenant_id}/audiences/{audience_id}")
def audience_page(
    ctx: Read, audience_id: str, saved: bool = False, push: str | None = None
) -> HTMLResponse:
    return _audience_page(ctx, audience_id, saved=saved, push_id=push)


def _audience_page(ctx: Ctx, audience_id: str, **extra: Any) -> HTMLResponse:
    aud = service.get_audience(ctx.db, tenant=ctx.tenant_id, audience_id=audience_id)
    snaps = service.snapshots(ctx.db, tenant=ctx.tenant_id, audience_id=audience_id, limit=100)
    report = delivery.delivery_report(ctx.db, tenant=ctx.tenant_id, key=f"audience:{aud.id}")
    ed = Editor(mode="text", text=aud.rule_text, brands=aud.brands or [], purpose=aud.purpose,
                channel=aud.channel)  # fmt: skip
    return render(
        ctx, "audiences_audience.html", aud=aud, snaps=snaps, chart=_size_chart(ctx, snaps),
        ed=ed, report=report, messages=report.messages[-10:][::-1],
        pushes=stats.pushes(ctx.db, tenant=ctx.tenant_id, audience_id=aud.id),
        destinations=delivery.list_destinations(ctx.db, tenant=ctx.tenant_id),
        can_write=ctx.allows("audiences", "write"), id_kinds=list(export.KINDS), **extra,
        **_labels(ctx),
    )  # fmt: skip


def _size_chart(ctx: Ctx, snaps: list[Any]) -> dict[str, Any] | None:
    if len(snaps) < 2:  # one point makes no line (and no sensible time axis)
        return None
    ordered = snaps[::-1]
    return {
        "x": [int((s.created_at - datetime(1970, 1, 1)).total_seconds()) for s in ordered],
        "series": [
            {"label": ctx.t("audiences.members"), "values": [s.size for s in ordered]},
            {"label": ctx.t("audiences.matched"), "values": [s.matched for s in ordered]},
        ],
    }


@router.post("/t/{tenant_id}/audiences/{audience_id}/materialise")
def materialise(ctx: Write, audience_id: str) -> Response:
    service.materialise(ctx.db, tenant=ctx.tenant_id, audience_id=audience_id)
    return RedirectResponse(ctx.url(f"audiences/{audience_id}"), status_code=303)


@router.get("/t/{tenant_id}/audiences/{audience_id}/export")
def export_file(
    ctx: Read, audience_id: str, format: str = "csv", identifier: str = "oneid",
    scope: str | None = None,
) -> Response:  # fmt: skip
    """The latest snapshot as a CSV or Parquet download (as the API's export)."""
    if format not in _TYPES:
        raise InvalidRequest(f"format {format!r} is unknown: use csv or parquet")
    snap, _ = service.latest_members(ctx.db, tenant=ctx.tenant_id, audience_id=audience_id)
    table = export.rows(ctx.db, ctx.request.app.state.resolver, tenant=ctx.tenant_id,
                        snapshot_id=snap.snapshot_id, identifier=identifier,
                        scope=scope or None)  # fmt: skip
    name = f"{audience_id}-{snap.snapshot_id}.{format}"
    return Response(
        export.to_bytes(table, format), media_type=_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "X-Snapshot-Id": str(snap.snapshot_id)},
    )  # fmt: skip


@router.post("/t/{tenant_id}/audiences/{audience_id}/push")
def push(ctx: Write, audience_id: str, pairs: Posted) -> Response:
    """Queue the latest snapshot for a destination; the page then shows the outbox."""
    form = dict(pairs)
    try:
        body = PushRequest(
            destination_id=form.get("destination_id", ""),
            identifier=form.get("identifier") or "oneid",  # type: ignore[arg-type]
            scope=form.get("scope") or None, batch_size=int(form.get("batch_size") or 1000),
        )  # fmt: skip
    except (ValidationError, ValueError) as e:
        return _audience_page(ctx, audience_id, push_error=_invalid(e))
    try:
        made = export.push(ctx.db, ctx.request.app.state.resolver, body, tenant=ctx.tenant_id,
                           audience_id=audience_id, actor=ctx.actor)  # fmt: skip
    except QuanyuError as e:
        return _audience_page(ctx, audience_id, push_error=e.message)
    ctx.request.app.state.deliverer.notify()
    return RedirectResponse(ctx.url(f"audiences/{audience_id}?push={made.push_id}"), 303)


@router.post("/t/{tenant_id}/audiences/{audience_id}/destinations")
def add_destination(ctx: Write, audience_id: str, pairs: Posted) -> Response:
    """Add a webhook destination; its signing secret is shown this once."""
    form = dict(pairs)
    try:
        body = DestinationCreate(name=form.get("name", ""), url=form.get("url", ""))  # type: ignore[arg-type]
        made = export.add_destination(ctx.db, body, tenant=ctx.tenant_id,
                                      master_key=ctx.request.app.state.master_key,
                                      actor=ctx.actor, allow_private=ctx.request.app.state
                                      .settings.webhook_allow_private_networks)  # fmt: skip
    except ValidationError as e:
        return _audience_page(ctx, audience_id, destination_error=_invalid(e))
    except QuanyuError as e:
        return _audience_page(ctx, audience_id, destination_error=e.message)
    return _audience_page(ctx, audience_id, new_destination=made)
