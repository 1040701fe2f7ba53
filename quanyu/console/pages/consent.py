"""The console's consent pages: legal entities and purposes, a person's consent ledger,
recording a decision, the propagation report of each change, and the PIPL request queue.

Everything is read and written through the consent services the REST API calls
(``quanyu/api/consent.py``, ``consent_subscribers.py``, ``privacy.py``): recording a
decision here is ``service.record`` exactly as ``POST …/consent/decisions`` does it, and
the delivery worker is woken the same way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from quanyu.consent import ledger, privacy, propagate, service
from quanyu.consent.models import CHANNELS, SURFACES, Decision, Purpose, Subject
from quanyu.consent.person_view import consent_of
from quanyu.console import i18n
from quanyu.console.deps import Ctx, tenant_page
from quanyu.console.render import render
from quanyu.delivery.models import MessageStatus
from quanyu.errors import NotFound, ValidationFailed
from quanyu.identity import admin as identity
from quanyu.ids import utcnow
from quanyu.ledger.checked import check_ref
from quanyu.profiles.models import parse_oneid
from quanyu.tenancy import service as tenancy

router = APIRouter()
Read = Annotated[Ctx, tenant_page("consent", "read")]
Write = Annotated[Ctx, tenant_page("consent", "write")]
#: How a person is looked up: by OneID, or by an identifier of one of these types.
LOOKUP_KINDS = ("profile", "phone", "email", "unionid", "openid", "member_id", "user_id")
DECIDABLE = ("withdrawn", "granted", "denied")

i18n.register(
    {
        "consent.title": ("授权同意", "Consent"),
        "consent.entities": ("法律主体与处理目的", "Legal entities and purposes"),
        "consent.entity_default": ("默认主体", "default entity"),
        "consent.credit_code": ("统一社会信用代码", "Unified social credit code"),
        "consent.brands": ("品牌", "Brands"),
        "consent.purpose": ("处理目的", "Purpose"),
        "consent.legal_basis": ("合法性基础", "Legal basis"),
        "consent.separate": ("单独同意", "Separate consent"),
        "consent.valid_days": ("有效期(天)", "Valid (days)"),
        "consent.retention_days": ("保存期(天)", "Retention (days)"),
        "consent.destinations": ("可达目的地", "Destinations"),
        "consent.any": ("不限", "any"),
        "consent.categories": ("Segment 类别", "Segment categories"),
        "consent.notices": ("告知文本版本", "Notice versions"),
        "consent.no_notice": ("无告知文本", "no notice text"),
        "consent.lookup": ("查询个人授权", "Look a person up"),
        "consent.lookup_by": ("按", "By"),
        "consent.lookup_value": ("值", "Value"),
        "consent.scope": ("作用域(应用或品牌)", "Scope (app or brand)"),
        "consent.kind.profile": ("OneID(如 P42)", "OneID (like P42)"),
        "consent.entry_lookup": ("按账本序号查看变更", "A change by ledger entry number"),
        "consent.open": ("打开", "Open"),
        "consent.person": ("个人授权账本", "Consent ledger of"),
        "consent.states": ("当前状态(目的 × 渠道)", "Current state (purpose × channel)"),
        "consent.history": ("账本记录", "Ledger entries"),
        "consent.no_history": (
            "此人尚无授权记录:需同意的目的一律视为未知(不可触达)。",
            "No entries yet: every consent-based purpose reads unknown (not reachable).",
        ),  # fmt: skip
        "consent.conflict": (
            "合并身份之间不一致,需重新征求",
            "merged identities disagree: ask again",
        ),  # fmt: skip
        "consent.seq": ("序号", "Seq"),
        "consent.channel": ("渠道", "Channel"),
        "consent.status": ("状态", "Status"),
        "consent.decided_at": ("决定时间", "Decided at"),
        "consent.recorded_at": ("记录时间", "Recorded at"),
        "consent.surface": ("采集场景", "Surface"),
        "consent.actor": ("决定人", "Actor"),
        "consent.origin": ("来源", "Origin"),
        "consent.leaf_hash": ("叶子哈希", "Leaf hash"),
        "consent.evidence": ("凭证(哈希,勿填个人信息)", "Evidence (a hash, no personal data)"),
        "consent.notice_version": ("告知版本", "Notice version"),
        "consent.record": ("记录一次决定", "Record a decision"),
        "consent.record_hint": (
            "记录后会立即通知所有关心此目的的触点。",
            "Every touchpoint that cares is told at once.",
        ),  # fmt: skip
        "consent.submit": ("记录", "Record"),
        "consent.read_only": (
            "你的角色只能查看授权,不能记录决定。",
            "Your role may read consent, not record decisions.",
        ),  # fmt: skip
        "consent.entry": ("账本记录", "Ledger entry"),
        "consent.propagation": (
            "传播报告:通知了谁、何时、是否确认",
            "Propagation: who was told, when, and their answer",
        ),  # fmt: skip
        "consent.subscriber": ("订阅方", "Subscriber"),
        "consent.message": ("消息 ID", "Message id"),
        "consent.attempts": ("尝试次数", "Attempts"),
        "consent.last_attempt": ("最近尝试", "Last attempt"),
        "consent.delivered_at": ("送达时间", "Delivered at"),
        "consent.answer": ("回复", "Answer"),
        "consent.complete": ("全部订阅方已确认", "Every subscriber acknowledged"),
        "consent.incomplete": ("尚未全部确认", "Not every subscriber has acknowledged yet"),
        "consent.nobody_told": (
            "没有订阅方关心这个目的,无人需要通知。",
            "No subscriber cares about this purpose: nobody to tell.",
        ),
        "consent.deleted_subscriber": ("(已删除)", "(deleted)"),
        "consent.proof": ("默克尔账本证明", "Merkle ledger proof"),
        "consent.subscribers": ("订阅方(触点)", "Subscribers (touchpoints)"),
        "consent.no_subscribers": (
            "尚无订阅方:用 API 注册触点后,变更会推送给它们。",
            "No subscribers yet: register touchpoints with the API to push changes to them.",
        ),  # fmt: skip
        "consent.all": ("全部", "all"),
        "consent.pipl": ("个人信息权利请求(PIPL)", "PIPL requests"),
        "consent.pipl_open": ("未完成", "open"),
        "consent.pipl_overdue": ("已逾期", "overdue"),
        "consent.kind": ("类型", "Kind"),
        "consent.received": ("收到", "Received"),
        "consent.due": ("截止", "Due"),
        "consent.completed": ("完成", "Completed"),
        "consent.days_left": ("剩 {n} 天", "{n} days left"),
        "consent.overdue_by": ("逾期 {n} 天", "overdue by {n} days"),
        "consent.no_requests": ("暂无请求。", "No requests yet."),
        "consent.req.access": ("查阅复制", "access"),
        "consent.req.correct": ("更正", "correct"),
        "consent.req.delete": ("删除", "delete"),
        "consent.not_needed": ("无需同意", "not needed"),
        "consent.st.granted": ("已同意", "granted"),
        "consent.st.withdrawn": ("已撤回", "withdrawn"),
        "consent.st.denied": ("已拒绝", "denied"),
        "consent.st.expired": ("已过期", "expired"),
        "consent.st.unknown": ("未知", "unknown"),
        "consent.st.pending": ("待送达", "pending"),
        "consent.st.delivered": ("已确认", "acknowledged"),
        "consent.st.failed": ("失败", "failed"),
        "consent.st.skipped": ("已跳过", "skipped"),
        "consent.st.received": ("已收到", "received"),
        "consent.st.completed": ("已完成", "completed"),
    }
)


i18n.register(
    {
        "consent.basis.consent": ("同意", "consent"),
        "consent.basis.contract": ("履行合同所必需", "contract"),
        "consent.basis.employment": ("人力资源管理所必需", "employment"),
        "consent.basis.legal_duty": ("履行法定职责或义务", "legal duty"),
        "consent.basis.emergency": ("应对突发事件", "emergency"),
        "consent.basis.news_reporting": ("新闻报道与舆论监督", "news reporting"),
        "consent.basis.public_information": ("已公开的个人信息", "public information"),
        "consent.ch.sms": ("短信", "SMS"),
        "consent.ch.wechat": ("微信订阅消息", "WeChat"),
        "consent.ch.email": ("邮件", "e-mail"),
        "consent.ch.phone": ("电话", "phone"),
        "consent.ch.ads": ("广告", "ads"),
        "consent.ch.push": ("推送", "push"),
        "consent.ch.pos": ("门店 POS", "POS"),
        "consent.ch.*": ("全部渠道", "all channels"),
        "consent.sf.mini_program": ("小程序", "mini-program"),
        "consent.sf.official_account": ("公众号", "official account"),
        "consent.sf.app": ("App", "app"),
        "consent.sf.web": ("网站", "web"),
        "consent.sf.pos": ("门店 POS", "POS"),
        "consent.sf.call_centre": ("客服中心", "call centre"),
        "consent.sf.qr_scan": ("扫码", "QR scan"),
        "consent.sf.paper_form": ("纸质表单", "paper form"),
        "consent.sf.api": ("API", "API"),
        "consent.sf.system": ("系统", "system"),
        "consent.ac.self": ("本人", "self"),
        "consent.ac.guardian": ("监护人", "guardian"),
        "consent.ac.agent": ("代理人", "agent"),
        "consent.ac.system": ("系统", "system"),
    }
)


def _purposes(ctx: Ctx) -> list[Purpose]:
    return service.list_purposes(ctx.db, tenant=ctx.tenant_id)


def purpose_name(ctx: Ctx, purposes: list[Purpose]) -> dict[str, str]:
    """Purpose id -> its name in the page's language."""
    return {p.id: p.name_zh if ctx.lang == "zh" else p.name_en for p in purposes}


def _oneid(text: str) -> int:
    try:
        return parse_oneid(text)
    except ValidationFailed as e:
        raise NotFound(f"{e.message}; open a person from the consent page's lookup") from e


@router.get("/t/{tenant_id}/consent")
def overview(ctx: Read, lookup_error: str | None = None) -> HTMLResponse:
    """Entities and purposes, subscribers, the lookup forms and the PIPL queue."""
    return _overview(ctx, lookup_error=lookup_error)


def _overview(ctx: Ctx, status: int = 200, **extra: Any) -> HTMLResponse:
    db, tenant = ctx.db, ctx.tenant_id
    purposes = _purposes(ctx)
    requests = privacy.list_requests(db, tenant=tenant, limit=100)
    now = utcnow()
    return render(
        ctx,
        "consent.html",
        status=status,
        entities=service.list_entities(db, tenant=tenant),
        brands={b.id: b.name for b in tenancy.list_brands(db, tenant=tenant)},
        purposes=purposes,
        names=purpose_name(ctx, purposes),
        subscribers=propagate.list_subscribers(db, tenant=tenant),
        requests=sorted(requests, key=lambda r: not r.overdue),
        open_requests=sum(r.status != "completed" for r in requests),
        overdue=sum(r.overdue for r in requests),
        days={r.id: abs(r.due_at - now).days for r in requests},
        kinds=LOOKUP_KINDS,
        **extra,
    )


@router.get("/t/{tenant_id}/consent/purposes/{purpose_id}/notices")
def notices(ctx: Read, purpose_id: str) -> HTMLResponse:
    """The versions of a purpose's notice text (an htmx fragment)."""
    found = service.notices(ctx.db, tenant=ctx.tenant_id, purpose=purpose_id)
    return render(ctx, "consent_notices.html", notices=found)


@router.get("/t/{tenant_id}/consent/lookup")
def lookup(
    ctx: Read,
    kind: Annotated[str, Query()] = "profile",
    value: Annotated[str, Query()] = "",
    scope: Annotated[str, Query()] = "",
) -> Response:
    """Find a person by OneID or identifier and open their consent ledger."""
    value = value.strip()
    try:
        if not value:
            raise ValidationFailed("Type a OneID (like P42) or an identifier's value.")
        if kind == "profile":
            number = parse_oneid(value)
        else:
            resolver = ctx.request.app.state.resolver
            found = identity.find(ctx.db, resolver, tenant=ctx.tenant_id, type=kind,
                                  value=value, scope=scope.strip())  # fmt: skip
            number = parse_oneid(found[1].profile)
    except (ValidationFailed, NotFound) as e:
        return _overview(ctx, status=404 if isinstance(e, NotFound) else 422,
                         lookup_error=e.message, lookup=(kind, value, scope))  # fmt: skip
    return RedirectResponse(ctx.url(f"consent/people/P{number}"), status_code=303)


def _person(ctx: Ctx, oneid: str, status: int = 200, **extra: Any) -> HTMLResponse:
    number = _oneid(oneid)
    purposes = _purposes(ctx)
    view = consent_of(ctx.db, tenant=ctx.tenant_id, profile_id=number, limit=200)
    if view.identifiers == 0:
        raise NotFound(
            f"Tenant {ctx.tenant_id} has no person P{number} (never seen, or erased by a PIPL"
            " deletion): look the person up by an identifier instead."
        )
    states = view.states
    channels = sorted({s.channel for s in states}, key=lambda c: (c != "*", c))
    grid = {(s.purpose_id, s.channel): s for s in states}
    return render(
        ctx,
        "consent_person.html",
        status=status,
        oneid=f"P{number}",
        purposes=purposes,
        names=purpose_name(ctx, purposes),
        channels=channels,
        grid=grid,
        history=view.history,
        can_record=ctx.allows("consent", "write"),
        all_channels=CHANNELS,
        surfaces=SURFACES,
        decidable=DECIDABLE,
        **extra,
    )


@router.get("/t/{tenant_id}/consent/people/{oneid}")
def person(ctx: Read, oneid: str) -> HTMLResponse:
    """A person's consent now (purpose × channel) and the ledger entries behind it."""
    return _person(ctx, oneid)


@router.post("/t/{tenant_id}/consent/people/{oneid}/decisions")
def record(
    ctx: Write,
    oneid: str,
    purpose: Annotated[str, Form()],
    channel: Annotated[str, Form()],
    status: Annotated[str, Form()],
    surface: Annotated[str, Form()] = "call_centre",
    actor: Annotated[str, Form()] = "self",
    separate: Annotated[bool, Form()] = False,
    notice_version: Annotated[str, Form()] = "",
    evidence: Annotated[str, Form()] = "",
) -> Response:
    """Record one decision for the person (as ``POST …/consent/decisions``), then show
    the change's propagation report."""
    number = _oneid(oneid)
    form = {"purpose": purpose, "channel": channel, "status": status, "surface": surface,
            "actor": actor, "separate": separate, "notice_version": notice_version,
            "evidence": evidence}  # fmt: skip
    try:
        try:
            decision = Decision.model_validate(
                {**form, "subject": Subject(profile=f"P{number}"),
                 "notice_version": notice_version.strip() or None,
                 "evidence": evidence.strip() or None}
            )  # fmt: skip
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            raise ValidationFailed(f"The decision is incomplete or wrong: {problems}") from e
        resolver = ctx.request.app.state.resolver
        made = service.record(ctx.db, resolver, [decision], tenant=ctx.tenant_id,
                              actor=ctx.actor)  # fmt: skip
    except (ValidationFailed, NotFound) as e:
        return _person(ctx, oneid, status=e.status, form_error=e.message, form=form)
    ctx.request.app.state.deliverer.notify()
    return RedirectResponse(ctx.url(f"consent/entries/{made[0].entry.seq}"), status_code=303)


@router.get("/t/{tenant_id}/consent/entry")
def entry_lookup(ctx: Read, seq: Annotated[str, Query()] = "") -> Response:
    """Open a ledger entry by its number."""
    if not seq.strip().isdigit():
        return _overview(ctx, status=422, entry_error="Type the entry's number, like 17.")
    return RedirectResponse(ctx.url(f"consent/entries/{int(seq)}"), status_code=303)


def _entry_values(ctx: Ctx, seq: int) -> dict[str, Any]:
    report = propagate.report(ctx.db, tenant=ctx.tenant_id, seq=seq)
    return {"report": report, "pending": report.counts.get(MessageStatus.pending, 0) > 0}


@router.get("/t/{tenant_id}/consent/entries/{seq}")
def entry(ctx: Read, seq: int) -> HTMLResponse:
    """One change: the entry, who was told of it and what they answered, and its proof."""
    found = ledger.get_entry(ctx.db, ctx.tenant_id, seq)
    if found is None:
        raise NotFound(
            f"Tenant {ctx.tenant_id} has no consent ledger entry {seq}: entries are numbered"
            " from 1; open a person's ledger to find theirs."
        )
    purposes = _purposes(ctx)
    proof = check_ref(ctx.db, ctx.tenant_id, f"consent:{seq}",
                      master_key=ctx.request.app.state.master_key)  # fmt: skip
    return render(ctx, "consent_entry.html", entry=found, names=purpose_name(ctx, purposes),
                  proof=proof, **_entry_values(ctx, seq))  # fmt: skip


@router.get("/t/{tenant_id}/consent/entries/{seq}/report")
def entry_report(ctx: Read, seq: int) -> HTMLResponse:
    """The propagation report alone (the entry page polls it while messages are pending)."""
    return render(ctx, "consent_report.html", **_entry_values(ctx, seq))
