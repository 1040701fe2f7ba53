"""The console's profiles pages: find a person, see their 360 view, split a wrong merge.

Everything is read through the services the REST API's profile, identity, tags,
audiences and consent routes call, with PII masked as the API masks it. The search box
takes a phone in any spelling, an e-mail, an openid, unionid, member or user id, a name or
a OneID (:mod:`quanyu.profiles.finder`); results arrive live through htmx. A split unlinks
one identifier as ``DELETE /v1/tenants/{t}/identity/links`` does, after a confirmation
page, for roles with ``identity:write`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse

from quanyu.audiences import service as audiences
from quanyu.consent import person_view
from quanyu.consent import service as consent
from quanyu.console import i18n
from quanyu.console.deps import Ctx, tenant_page
from quanyu.console.render import render
from quanyu.errors import NotFound, ValidationFailed
from quanyu.identity.models import IdentifierRef, SplitResult, format_oneid
from quanyu.identity.service import Resolver
from quanyu.ingest.models import Event
from quanyu.profiles import finder, service, settings, summary
from quanyu.profiles import sql as profile_sql
from quanyu.profiles.models import ProfileView, parse_oneid
from quanyu.tags import service as tags
from quanyu.tenancy import service as tenancy

router = APIRouter()

Reader = Annotated[Ctx, tenant_page("profiles", "read")]
Splitter = Annotated[Ctx, tenant_page("identity", "write")]

#: Rows per timeline page, merge history page and code-scan list; people per search.
TIMELINE_PAGE = 20
HISTORY_PAGE = 20
SCANS_SHOWN = 10
LEDGER_SHOWN = 50
AUDIENCES_CHECKED = 50
RESULTS = 20
SCAN_EVENT = "Product Scanned"

i18n.register(
    {
        "profiles.title": ("用户画像", "Profiles"),
        "profiles.search_hint": (
            "输入手机号（任意格式）、邮箱、openid、unionid、会员号、用户 ID、姓名或 OneID。",
            "Type a phone (any format), e-mail, openid, unionid, member id, user id, name or"
            " OneID.",
        ),
        "profiles.search_placeholder": ("如 +86 138-0013-8000 或 王", "e.g. +86 138-0013-8000"),
        "profiles.kind": ("类型", "Type"),
        "profiles.kind.auto": ("自动识别", "Detect"),
        "profiles.kind.phone": ("手机号", "Phone"),
        "profiles.kind.email": ("邮箱", "E-mail"),
        "profiles.kind.openid": ("openid", "openid"),
        "profiles.kind.unionid": ("unionid", "unionid"),
        "profiles.kind.member_id": ("会员号", "Member id"),
        "profiles.kind.user_id": ("用户 ID", "User id"),
        "profiles.kind.name": ("姓名", "Name"),
        "profiles.kind.oneid": ("OneID", "OneID"),
        "profiles.kind.any": ("标识或姓名前缀", "id or name prefix"),
        "profiles.searched_as": ("按{kind}查找", "Searched as {kind}"),
        "profiles.person": ("用户", "Person"),
        "profiles.city": ("城市", "City"),
        "profiles.brands": ("品牌", "Brands"),
        "profiles.last_seen": ("最近活跃", "Last seen"),
        "profiles.first_seen": ("首次出现", "First seen"),
        "profiles.matched": ("匹配", "Matched"),
        "profiles.events": ("事件数", "Events"),
        "profiles.no_hits": ("没有找到。", "No one found."),
        "profiles.reason.not_found": (
            "没有用户拥有该{kind}（已按标准格式比对）。",
            "No person has this {kind} (compared in its normalised form).",
        ),
        "profiles.reason.invalid": ("这不是有效的{kind}：", "This is not a valid {kind}: "),
        "profiles.reason.no_prefix": (
            "没有以此开头的标识或姓名。手机号和邮箱以加密散列存储，须输入完整号码或地址。",
            "No identifier or name starts with this. Phones and e-mails are stored as keyed"
            " hashes: type the whole number or address.",
        ),
        "profiles.reason.gone": (
            "该 OneID 现已不存在（可能已合并到其他用户）：",
            "This OneID exists no more (it may have been merged into another): ",
        ),
        "profiles.view_as": ("视角", "View as"),
        "profiles.group_view": ("集团视角", "Group"),
        "profiles.identities": ("身份标识", "Identities"),
        "profiles.identities_note": (
            "每个标识来自哪些数据源、何时首次和最近出现；手机号和邮箱已脱敏。",
            "Where each identifier came from and when it was first and last seen; phones and"
            " e-mails are masked.",
        ),
        "profiles.id_type": ("类型", "Type"),
        "profiles.scope": ("范围", "Scope"),
        "profiles.value": ("值", "Value"),
        "profiles.sources": ("数据源", "Sources"),
        "profiles.split": ("拆分", "Split"),
        "profiles.traits": ("属性", "Traits"),
        "profiles.traits_note": (
            "每个属性保留的值、来源和胜出规则（存活规则）。",
            "The value each trait keeps, where it came from and the rule that chose it"
            " (survivorship).",
        ),
        "profiles.trait": ("属性", "Trait"),
        "profiles.source": ("来源", "Source"),
        "profiles.rule": ("规则", "Rule"),
        "profiles.brand_traits": ("品牌属性：{brand}", "Brand traits: {brand}"),
        "profiles.activity": ("品牌与渠道", "Brands and channels"),
        "profiles.brand": ("品牌", "Brand"),
        "profiles.channel": ("渠道", "Channel"),
        "profiles.last_event": ("最近事件", "Last event"),
        "profiles.tags": ("标签", "Tags"),
        "profiles.past_tags": ("曾有标签", "Earlier tags"),
        "profiles.since": ("自 {at}", "since {at}"),
        "profiles.audiences": ("所在人群", "Audiences"),
        "profiles.audience_in": ("在最近快照中", "in the latest snapshot"),
        "profiles.audience_out": ("不在", "not in"),
        "profiles.audience_unmade": ("尚未生成快照", "no snapshot yet"),
        "profiles.consent": ("授权同意", "Consent"),
        "profiles.consent_note": (
            "每个目的 × 渠道的当前状态（* 表示所有渠道），以及其依据的账本记录。",
            "The state per purpose × channel now (* is every channel) and the ledger entries"
            " it rests on.",
        ),
        "profiles.purpose": ("目的", "Purpose"),
        "profiles.status": ("状态", "Status"),
        "profiles.decided_at": ("决定时间", "Decided"),
        "profiles.ledger": ("账本记录", "Ledger entries"),
        "profiles.surface": ("场景", "Surface"),
        "profiles.actor": ("操作者", "Actor"),
        "profiles.scans": ("扫码记录", "Code scans"),
        "profiles.serial": ("码", "Code"),
        "profiles.verdict": ("结果", "Verdict"),
        "profiles.history": ("合并与拆分历史", "Merge and split history"),
        "profiles.change": ("变更", "Change"),
        "profiles.other": ("另一方", "Other"),
        "profiles.detail": ("说明", "Detail"),
        "profiles.kind_merge": ("合并", "merge"),
        "profiles.kind_split": ("拆分", "split"),
        "profiles.kind_rebuild": ("重建", "rebuild"),
        "profiles.timeline": ("事件时间线", "Timeline"),
        "profiles.event": ("事件", "Event"),
        "profiles.load_more": ("加载更多", "Load more"),
        "profiles.split_title": ("拆分 {oneid}", "Split {oneid}"),
        "profiles.split_explain": (
            "将移除标识 {identifier} 的所有关联，{oneid} 会按其余关联重新识别：可能拆成多个"
            "用户。保留最早标识的一方沿用 {oneid}；事件跟随各自的标识。相同关联以后再次出现"
            "也不会再合并。",
            "Every link of {identifier} will be removed and {oneid} resolved again from its"
            " other links: it may become several people. The piece with the oldest identifier"
            " keeps {oneid}; events follow their identifiers. The same link arriving again"
            " later will not merge them again.",
        ),
        "profiles.reason": ("原因（写入审计日志）", "Reason (kept in the audit log)"),
        "profiles.split_confirm": ("确认拆分", "Split now"),
        "profiles.split_done": ("已拆分", "Split done"),
        "profiles.split_result": (
            "已移除 {identifier} 的关联。{oneid} 现在是：",
            "The links of {identifier} are removed. {oneid} is now:",
        ),
        "profiles.split_same": (
            "其余关联仍把这些标识连在一起，所以仍是一个用户。",
            "Its other links still hold the identifiers together: it stays one person.",
        ),
        "profiles.back": ("返回 {oneid}", "Back to {oneid}"),
        "profiles.none": ("无", "None"),
        "profiles.loading": ("加载中…", "Loading…"),
        "profiles.status.granted": ("已同意", "granted"),
        "profiles.status.denied": ("已拒绝", "denied"),
        "profiles.status.withdrawn": ("已撤回", "withdrawn"),
        "profiles.status.expired": ("已过期", "expired"),
        "profiles.status.unknown": ("未知", "unknown"),
        "profiles.utc": ("时间均为 UTC", "Times in UTC"),
        "profiles.events_filed": ("归在此标识下的事件", "Events filed under this identifier"),
    }
)


def _short(at: datetime | None) -> str:
    """A stored (UTC) time to the minute, for tables (the full time is in a tooltip)."""
    return "–" if at is None else at.strftime("%Y-%m-%d %H:%M")


def _page(ctx: Ctx, template: str, **values: Any) -> HTMLResponse:
    """Render with what every profiles template uses: short times and display names."""
    return render(ctx, template, short=_short, names=_names(ctx), **values)


def _resolver(ctx: Ctx) -> Resolver:
    found: Resolver = ctx.request.app.state.resolver
    return found


def _names(ctx: Ctx) -> dict[str, str]:
    """Display names of the tenant's brands and sources, by id."""
    names = {b.id: b.name for b in tenancy.list_brands(ctx.db, tenant=ctx.tenant_id)}
    names |= {s.id: s.name for s in tenancy.list_sources(ctx.db, tenant=ctx.tenant_id)}
    return names


def _search_values(ctx: Ctx, q: str, kind: str) -> dict[str, Any]:
    """What the results list shows for ``q`` read as ``kind`` (nothing for no text)."""
    if not q.strip():
        return {"q": q, "kind": kind, "found": None, "people": []}
    try:
        found = finder.find(
            ctx.db, _resolver(ctx), tenant=ctx.tenant_id, text=q, kind=kind, limit=RESULTS
        )
    except ValidationFailed as e:  # shown in the results, where the person is typing
        found = finder.Found(
            kind=kind if kind in finder.KINDS else "auto", note=e.message, reason="invalid"
        )
    glances = summary.glance(
        ctx.db, tenant=ctx.tenant_id, profile_ids=[h.profile_id for h in found.hits]
    )
    people: dict[int, dict[str, Any]] = {}
    for hit in found.hits:
        row = people.setdefault(
            hit.profile_id, {"hit": hit, "glance": glances.get(hit.profile_id), "matched": []}
        )
        row["matched"].append(hit)
    return {"q": q, "kind": kind, "found": found, "people": list(people.values())}


def _page_url(ctx: Ctx, q: str, kind: str) -> str:
    query = urlencode({"q": q, "type": kind}) if q.strip() else ""
    return ctx.url("profiles") + (f"?{query}" if query else "")


@router.get("/t/{tenant_id}/profiles")
def search_page(ctx: Reader, q: str = "", type: str = "auto") -> HTMLResponse:
    """The search box, with results when the URL carries a search."""
    values = _search_values(ctx, q, type)
    return _page(ctx, "profiles.html", kinds=finder.KINDS, **values)


@router.get("/t/{tenant_id}/profiles/results")
def search_results(ctx: Reader, q: str = "", type: str = "auto") -> HTMLResponse:
    """The results list alone (htmx, while typing); the address bar follows the search."""
    values = _search_values(ctx, q, type)
    response = _page(ctx, "profiles_results.html", **values)
    response.headers["HX-Replace-Url"] = _page_url(ctx, q, type)
    return response


def _event_label(e: Event) -> str:
    return e.event or e.name or e.type


def _event_detail(e: Event) -> str:
    """A short line of what an event said: its properties as ``key: value``, or an identify
    call's trait names (trait values may hold PII; the traits card shows them masked)."""
    if e.type == "identify":
        return ", ".join(sorted(e.traits or {}))
    return " · ".join(f"{k}: {_shown(v)}" for k, v in (e.properties or {}).items())


def _timeline_values(ctx: Ctx, oneid: str, cursor: str | None) -> dict[str, Any]:
    page = service.timeline(
        ctx.db, tenant=ctx.tenant_id, profile_id=oneid, cursor=cursor, limit=TIMELINE_PAGE
    )
    rows = [(e, _event_label(e), _event_detail(e)) for e in page.items]
    more = None
    if page.next_cursor:
        more = ctx.url(f"profiles/{oneid}/timeline?" + urlencode({"cursor": page.next_cursor}))
    return {"events": rows, "more": more}


def _history_values(ctx: Ctx, oneid: str, cursor: str | None) -> dict[str, Any]:
    page = service.history(
        ctx.db, tenant=ctx.tenant_id, profile_id=oneid, cursor=cursor, limit=HISTORY_PAGE
    )
    more = None
    if page.next_cursor:
        more = ctx.url(f"profiles/{oneid}/history?" + urlencode({"cursor": page.next_cursor}))
    return {"changes": page.items, "more_history": more}


def _audiences(ctx: Ctx, profile_id: int) -> list[tuple[Any, bool | None]]:
    """Each audience (the first :data:`AUDIENCES_CHECKED`) and whether the person is in
    its latest snapshot (None: no snapshot yet; this page never makes one)."""
    out: list[tuple[Any, bool | None]] = []
    for aud in audiences.list_audiences(ctx.db, tenant=ctx.tenant_id)[:AUDIENCES_CHECKED]:
        snaps = audiences.snapshots(ctx.db, tenant=ctx.tenant_id, audience_id=aud.id, limit=1)
        if not snaps:
            out.append((aud, None))
            continue
        _, members = audiences.snapshot_members(
            ctx.db, tenant=ctx.tenant_id, snapshot_id=snaps[0].snapshot_id
        )
        out.append((aud, profile_id in members))
    return out


def _shown(value: Any) -> str:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return "–" if value is None else str(value)


def _view(ctx: Ctx, oneid: str, brand: str | None) -> ProfileView:
    return service.get_profile(
        ctx.db,
        tenant=ctx.tenant_id,
        profile_id=oneid,
        brand=brand or None,
        trait_rules=settings.trait_rules(ctx.db, tenant=ctx.tenant_id),
        history_limit=1,
        reveal=_resolver(ctx).reveal(ctx.tenant_id),
    )


#: Threads that read the 360 view's independent parts side by side (DuckDB releases the
#: interpreter while it reads, so two cores serve one page at once).
_SIDE = ThreadPoolExecutor(4, thread_name_prefix="quanyu-console-360")


def _aside(ctx: Ctx, read: Callable[[Ctx], Any]) -> Future[Any]:
    """Run ``read`` in a thread with a database session of its own."""

    def run() -> Any:
        with ctx.engine.connect() as db:
            return read(replace(ctx, db=db))

    return _SIDE.submit(run)


def _tags_of(ctx: Ctx, profile: int) -> tuple[list[Any], dict[str, str]]:
    names = {
        t.key: (t.name_zh if ctx.lang == "zh" else t.name_en)
        for t in tags.list_tags(ctx.db, tenant=ctx.tenant_id)
    }
    return tags.profile_tags(ctx.db, tenant=ctx.tenant_id, profile_id=profile), names


@router.get("/t/{tenant_id}/profiles/{profile_id}")
def profile_page(ctx: Reader, profile_id: str, brand: str | None = None) -> HTMLResponse:
    """The 360 view of one person; consent, code scans and the timeline arrive with htmx
    right after (each is a read of its own, run alongside)."""
    number = parse_oneid(profile_id)
    oneid = format_oneid(number)
    parts = {
        "tags": _aside(ctx, lambda c: _tags_of(c, number)),
        "audiences": _aside(ctx, lambda c: _audiences(c, number)),
        "history": _aside(ctx, lambda c: _history_values(c, oneid, None)),
    }
    view = _view(ctx, oneid, brand)
    tenant = ctx.tenant_id
    seen = summary.sightings(
        ctx.db, tenant=tenant, profile_id=view.profile_id, identities=view.identities
    )
    got = {k: f.result() for k, f in parts.items()}
    if view.profile_id != number:  # a merged-away OneID shows its survivor
        got = {
            "tags": _tags_of(ctx, view.profile_id),
            "audiences": _audiences(ctx, view.profile_id),
            "history": _history_values(ctx, format_oneid(view.profile_id), None),
        }
    tag_list, tag_names = got["tags"]
    member_brands = {i.scope for i in view.identities if i.type == "member_id"}
    return _page(
        ctx,
        "profiles_view.html",
        view=view,
        oneid=oneid,
        shown=_shown,
        brands=sorted(set(view.brands) | member_brands),
        seen=seen,
        may_split=ctx.allows("identity", "write") and len(view.identities) > 1,
        tags_now=[t for t in tag_list if t.valid_to is None],
        tags_before=[t for t in tag_list if t.valid_to is not None][:20],
        tag_names=tag_names,
        audiences=got["audiences"],
        brand_list=tenancy.list_brands(ctx.db, tenant=tenant),
        scan_event=SCAN_EVENT,
        scans=[],
        **got["history"],
    )


@router.get("/t/{tenant_id}/profiles/{profile_id}/consent")
def consent_card(ctx: Reader, profile_id: str) -> HTMLResponse:
    """The person's consent now and the ledger entries behind it (as
    ``GET …/profiles/{id}/consent``), for the 360 view."""
    number = parse_oneid(profile_id)
    purposes = {
        p.id: (p.name_zh if ctx.lang == "zh" else p.name_en)
        for p in consent.list_purposes(ctx.db, tenant=ctx.tenant_id)
    }
    said = person_view.consent_of(
        ctx.db, tenant=ctx.tenant_id, profile_id=number, limit=LEDGER_SHOWN
    )  # the services' answers, read through the subjects' index
    return _page(
        ctx, "profiles_consent.html", purposes=purposes, states=said.states, ledger=said.history
    )


@router.get("/t/{tenant_id}/profiles/{profile_id}/scans")
def scans_card(ctx: Reader, profile_id: str) -> HTMLResponse:
    """The person's latest code scans (their "Product Scanned" events), for the 360 view."""
    oneid = format_oneid(parse_oneid(profile_id))
    page = service.timeline(
        ctx.db, tenant=ctx.tenant_id, profile_id=oneid, event=SCAN_EVENT, limit=SCANS_SHOWN
    )
    return _page(ctx, "profiles_scans.html", scans=page.items)


@router.get("/t/{tenant_id}/profiles/{profile_id}/timeline")
def timeline_rows(ctx: Reader, profile_id: str, cursor: str | None = None) -> HTMLResponse:
    """A page of timeline rows, newest first (htmx: the first page, then "load more")."""
    oneid = format_oneid(parse_oneid(profile_id))
    return _page(ctx, "profiles_timeline.html", **_timeline_values(ctx, oneid, cursor))


@router.get("/t/{tenant_id}/profiles/{profile_id}/history")
def history_rows(ctx: Reader, profile_id: str, cursor: str | None = None) -> HTMLResponse:
    """More merge and split history rows (htmx "load more")."""
    oneid = format_oneid(parse_oneid(profile_id))
    values = _history_values(ctx, oneid, cursor)
    return _page(ctx, "profiles_history.html", **values)


def _identifier(ctx: Ctx, oneid: str, node: int) -> IdentifierRef:
    """The identifier ``node`` of the person ``oneid`` (masked), or NotFound."""
    for found, id_type, _scope, _value, masked, *_ in ctx.db.execute(
        profile_sql.PROFILE_NODES, [ctx.tenant_id, parse_oneid(oneid)]
    ):
        if int(found) == node:
            return IdentifierRef(type=id_type, value=masked, profile=oneid)
    raise NotFound(
        f"{oneid} has no identifier numbered {node} (it may have been split off already):"
        f" reload {oneid}'s page and pick one of its identities."
    )


@router.get("/t/{tenant_id}/profiles/{profile_id}/split")
def split_form(ctx: Splitter, profile_id: str, node: Annotated[int, Query(ge=0)]) -> HTMLResponse:
    """Ask before unlinking an identifier: what will happen, and why (for the audit log)."""
    ctx.require("profiles", "read")
    oneid = format_oneid(parse_oneid(profile_id))
    ref = _identifier(ctx, oneid, node)
    return _page(ctx, "profiles_split.html", oneid=oneid, node=node, ref=ref, result=None)


@router.post("/t/{tenant_id}/profiles/{profile_id}/split")
def split(
    ctx: Splitter,
    profile_id: str,
    node: Annotated[int, Form(ge=0)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> HTMLResponse:
    """Unlink one identifier of the person, as ``DELETE …/identity/links`` does, and show
    the people it became."""
    ctx.require("profiles", "read")
    oneid = format_oneid(parse_oneid(profile_id))
    ref = _identifier(ctx, oneid, node)
    pieces = _resolver(ctx).unlink(
        ctx.tenant_id, node, actor=ctx.actor, reason=reason.strip() or None
    )
    result = SplitResult(unlinked=ref, profiles=[format_oneid(p) for p in pieces])
    tenancy.audit(
        ctx.db,
        actor=ctx.actor,
        action="identity.unlink",
        target=result,
        target_type="identifier",
        target_id=f"{ref.type}:{ref.value}",
        tenant=ctx.tenant_id,
    )
    glances = summary.glance(ctx.db, tenant=ctx.tenant_id, profile_ids=pieces)
    return _page(
        ctx,
        "profiles_split.html",
        oneid=oneid,
        node=node,
        ref=ref,
        result=result,
        pieces=[(format_oneid(p), glances.get(p)) for p in pieces],
        **_history_values(ctx, oneid, None),
    )
