"""The console's codes pages (one item, one code): products, orders and their printer
packages, codes per lifecycle state, the scan map, diversion per dealer and counterfeit
signals, and one code's full history with the ledger proof of each of its events.

Reads go through the codes, scans and ledger services the REST API calls
(``quanyu/api/codes.py``, ``scans.py``, ``ledger.py``) and the read-only summaries in
``quanyu/codes/overview.py`` and ``code_history.py``; a proof is checked with the
ledger's own verifier (:mod:`quanyu.ledger.checked`).
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from html import escape
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyu.codes import anomalies, code_history, overview, packages, service
from quanyu.codes.scan_models import DealerProductRow
from quanyu.codes.serials import ForgedCode, code_keys
from quanyu.console import i18n, scanmap
from quanyu.console.deps import Ctx, tenant_page
from quanyu.console.render import render
from quanyu.errors import NotFound, ValidationFailed
from quanyu.ids import utcnow
from quanyu.ledger import service as ledger
from quanyu.ledger.checked import check_ref

router = APIRouter()
Read = Annotated[Ctx, tenant_page("codes", "read")]
PERIODS = (1, 7, 30, 90, 365)
#: Leaf fields every code event has; the page shows the rest (order, dealer, region …).
_LEAF_PLUMBING = frozenset({"v", "type", "tenant", "event", "action", "at", "count"})
#: Bar colours per lifecycle state: the flow in blues and greens, the ends in greys and reds.
COLOURS = {
    "issued": "#b6c8e6", "printed": "#86a8dc", "activated": "#1f6feb", "aggregated": "#0b7285",
    "shipped": "#2e7d32", "received": "#66a86a", "redeemed": "#9c36b5", "voided": "#98a2b3",
    "recalled": "#c62828", "destroyed": "#667085",
}  # fmt: skip

i18n.register(
    {
        "codes.title": ("一物一码", "Codes"),
        "codes.lookup": ("查询一个码", "Look a code up"),
        "codes.lookup_hint": (
            "码、序列号、手输形式或 GS1 数字链接",
            "code, serial, typed form or GS1 Digital Link",
        ),  # fmt: skip
        "codes.open": ("查看", "Open"),
        "codes.products": ("产品", "Products"),
        "codes.gtin": ("GTIN", "GTIN"),
        "codes.brand": ("品牌", "Brand"),
        "codes.orders": ("生产订单与码包", "Production orders and packages"),
        "codes.order": ("订单", "Order"),
        "codes.product": ("产品", "Product"),
        "codes.level": ("层级", "Level"),
        "codes.quantity": ("数量", "Quantity"),
        "codes.generated": ("已生成", "Generated"),
        "codes.line_lot": ("产线 / 批次", "Line / lot"),
        "codes.states_bar": ("状态分布", "States"),
        "codes.package": ("码包", "Package"),
        "codes.download": ("下载 zip", "Download zip"),
        "codes.lifecycle": ("生命周期状态", "Lifecycle states"),
        "codes.total": ("码总数", "Codes"),
        "codes.scans_period": ("消费者扫码(近 {d} 天)", "Consumer scans (last {d} days)"),
        "codes.map": ("扫码城市分布", "Scans by city"),
        "codes.map_note": (
            "示意图:按城市经纬度定位,不含行政边界。",
            "Schematic: cities placed by latitude and longitude; no borders drawn.",
        ),  # fmt: skip
        "codes.map_all": ("扫码", "scans"),
        "codes.map_bad": ("非正品判定", "not genuine"),
        "codes.unknown_cities": ("无法定位的城市", "Cities not on the map"),
        "codes.no_city": ("未提供城市", "No city given"),
        "codes.no_scans": ("这段时间没有消费者扫码。", "No consumer scans in this period."),
        "codes.diversion": (
            "经销商窜货(门店与经销商扫码,区域内外)",
            "Diversion per dealer (dealer and store scans inside and outside the region)",
        ),  # fmt: skip
        "codes.inside": ("区域内", "inside"),
        "codes.outside": ("区域外", "outside"),
        "codes.region": ("授权区域", "Region"),
        "codes.dealer": ("经销商", "Dealer"),
        "codes.no_party_scans": (
            "这段时间没有经销商或门店扫码。",
            "No dealer or store scans in this period.",
        ),  # fmt: skip
        "codes.alerts": ("窜货告警与证据", "Diversion alerts and evidence"),
        "codes.n_diversion": ("窜货告警", "Diversion alerts"),
        "codes.cities": ("城市", "Cities"),
        "codes.signals": ("防伪信号", "Counterfeit signals"),
        "codes.no_alerts": ("暂无告警。", "No alerts."),
        "codes.kind": ("类型", "Kind"),
        "codes.severity": ("严重度", "Severity"),
        "codes.summary": ("摘要", "Summary"),
        "codes.evidence": ("证据", "Evidence"),
        "codes.period": ("时间", "Period"),
        "codes.detected": ("发现于", "Detected"),
        "codes.days": ("{d} 天", "{d} d"),
        "codes.code": ("码", "Code"),
        "codes.serial": ("序列号", "Serial"),
        "codes.typed": ("手输形式", "Typed form"),
        "codes.link": ("数字链接", "Digital Link"),
        "codes.state": ("状态", "State"),
        "codes.seq": ("打印序号", "Print position"),
        "codes.parent": ("包装于", "Packed in"),
        "codes.store": ("门店", "Store"),
        "codes.since": ("状态时间", "In this state since"),
        "codes.history": (
            "完整历史(生命周期事件与扫码)",
            "Full history (lifecycle events and scans)",
        ),  # fmt: skip
        "codes.when": ("时间", "When"),
        "codes.what": ("事件", "What"),
        "codes.who": ("执行者 / 扫码方", "By"),
        "codes.where": ("地点 / 内容", "Where / detail"),
        "codes.ledger": ("账本", "Ledger"),
        "codes.scan": ("扫码", "scan"),
        "codes.scans_total": ("共扫码 {n} 次", "Scans: {n}"),
        "codes.inner": ("内码", "inner code"),
        "codes.precise": ("含精确位置(已同意)", "precise location (consented)"),
        "codes.proofs": ("账本包含证明", "Ledger inclusion proofs"),
        "codes.event": ("事件", "Event"),
        "codes.proof.leaf": ("叶子序号", "Leaf index"),
        "codes.proof.size": ("树大小", "Tree size"),
        "codes.proof.root": ("根哈希", "Root hash"),
        "codes.proof.hashes": ("证明路径哈希", "Proof hashes"),
        "codes.proof.none": ("(无:树只有这一片叶子)", "(none: the tree is this one leaf)"),
        "codes.proof.ok": ("已对照签名检查点验证", "Verified against the signed checkpoint"),
        "codes.proof.bad": ("验证失败", "Verification failed"),
        "codes.proof.pending": (
            "叶子 #{i} 已写入账本(当前 {n} 片叶子),但尚无签名检查点覆盖它;服务器会定期签发检查点。",
            "Leaf #{i} is in the log ({n} leaves)"
            " but no signed checkpoint covers it yet; the server signs one"
            " every few minutes.",
        ),  # fmt: skip
        "codes.proof.sign": ("立即签发检查点", "Sign a checkpoint now"),
        "codes.proof.checkpoint": ("签名检查点", "Signed checkpoint"),
        "codes.proof.missing": (
            "账本中没有此记录的叶子。",
            "The log holds no leaf for this record.",
        ),
        "codes.dealer_report": ("经销商报告", "Dealer report"),
        "codes.back": ("返回一物一码", "Back to codes"),
        "codes.act.issue": ("生成", "issued"),
        "codes.act.print": ("打印", "printed"),
        "codes.act.activate": ("激活", "activated"),
        "codes.act.aggregate": ("装箱", "aggregated"),
        "codes.act.ship": ("发货", "shipped"),
        "codes.act.receive": ("门店收货", "received"),
        "codes.act.void": ("作废", "voided"),
        "codes.act.recall": ("召回", "recalled"),
        "codes.act.destroy": ("销毁", "destroyed"),
        "codes.act.reject": ("剔除", "rejected"),
        "codes.act.pack": ("装箱", "packed"),
        "codes.st.issued": ("已生成", "issued"),
        "codes.st.printed": ("已打印", "printed"),
        "codes.st.activated": ("已激活", "activated"),
        "codes.st.aggregated": ("已装箱", "aggregated"),
        "codes.st.shipped": ("已发货", "shipped"),
        "codes.st.received": ("门店已收货", "received"),
        "codes.st.redeemed": ("已兑奖", "redeemed"),
        "codes.st.voided": ("已作废", "voided"),
        "codes.st.recalled": ("已召回", "recalled"),
        "codes.st.destroyed": ("已销毁", "destroyed"),
        "codes.v.genuine": ("正品", "genuine"),
        "codes.v.not_released": ("未放行", "not released"),
        "codes.v.recalled": ("已召回", "recalled"),
        "codes.v.voided": ("已作废", "voided"),
        "codes.v.unknown": ("未知码", "unknown"),
        "codes.v.forged": ("伪造", "forged"),
        "codes.role.consumer": ("消费者", "consumer"),
        "codes.role.dealer": ("经销商", "dealer"),
        "codes.role.store": ("门店", "store"),
        "codes.ak.forged_burst": ("伪码集中扫描", "forged burst"),
        "codes.ak.distant_cities": ("异地同码", "distant cities"),
        "codes.ak.voided_scan": ("作废码被扫", "voided code scanned"),
        "codes.ak.unprinted_scan": ("未打印码被扫", "unprinted code scanned"),
        "codes.ak.unknown_code": ("未发行码", "unknown code"),
        "codes.ak.recycled_cap": ("回收瓶盖", "recycled cap"),
        "codes.ak.diversion": ("窜货", "diversion"),
        "codes.sev.high": ("高", "high"),
        "codes.sev.medium": ("中", "medium"),
        "codes.sev.low": ("低", "low"),
        "codes.lv.item": ("单品", "item"),
        "codes.lv.box": ("盒", "box"),
        "codes.lv.case": ("箱", "case"),
        "codes.lv.pallet": ("托盘", "pallet"),
        "codes.ek.scans": ("扫码次数", "scans"),
        "codes.ek.outside": ("区域外", "outside"),
        "codes.ek.outside_share": ("区域外占比", "outside share"),
        "codes.ek.outside_cities": ("区域外城市", "outside cities"),
        "codes.ek.cities": ("城市", "cities"),
        "codes.ek.count": ("次数", "count"),
        "codes.ek.city": ("城市", "city"),
        "codes.ek.ip": ("IP", "IP"),
        "codes.ek.samples": ("样本", "samples"),
        "codes.ek.verdict": ("判定", "verdict"),
        "codes.ek.state": ("状态", "state"),
        "codes.proof.statement": (
            "叶子 #{i} 包含在 {n} 片叶子的日志中,其根哈希由检查点签名。",
            "Leaf #{i} is in the log of {n} leaves whose root the checkpoint signs.",
        ),
    }
)


def _state_label(ctx: Ctx, state: str) -> str:
    label = ctx.t(f"codes.st.{state}")
    return state if label.startswith("codes.") else label


def _svg_open(width: int, height: int, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
            f' width="{width}" role="img" aria-label="{escape(label)}" class="bars">')  # fmt: skip


def lifecycle_svg(ctx: Ctx, counts: dict[str, int]) -> str:
    """Codes per lifecycle state as horizontal bars (inline SVG)."""
    rows = overview.ordered(counts)
    top = max((n for _, n in rows), default=0) or 1
    width, label_w, bar_h, gap = 560, 110, 18, 6
    height = max(1, len(rows)) * (bar_h + gap) + 4
    out = [_svg_open(width, height, ctx.t("codes.lifecycle"))]
    for i, (state, n) in enumerate(rows):
        y = i * (bar_h + gap) + 2
        w = max(2.0, (width - label_w - 80) * n / top)
        out.append(
            f'<g data-state="{escape(state)}"><title>{escape(_state_label(ctx, state))}: {n:,}'
            f'</title><text x="{label_w - 8}" y="{y + 13}" font-size="12" text-anchor="end"'
            f' fill="#344054">{escape(_state_label(ctx, state))}</text><rect x="{label_w}"'
            f' y="{y}" width="{w:.1f}" height="{bar_h}" rx="3"'
            f' fill="{COLOURS.get(state, "#98a2b3")}"/><text x="{label_w + w + 6:.1f}"'
            f' y="{y + 13}" font-size="12" fill="#1d2330">{n:,}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def stacked_svg(ctx: Ctx, counts: dict[str, int], width: int = 180) -> str:
    """One order's codes per state as a thin stacked bar (inline SVG)."""
    total = sum(counts.values()) or 1
    x, parts = 0.0, []
    for state, n in overview.ordered(counts):
        w = width * n / total
        parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="10"'
                     f' fill="{COLOURS.get(state, "#98a2b3")}"><title>'
                     f"{escape(_state_label(ctx, state))}: {n:,}</title></rect>")  # fmt: skip
        x += w
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 10" width="{width}"'
            f' height="10" class="stack">{"".join(parts)}</svg>')  # fmt: skip


def diversion_svg(ctx: Ctx, rows: list[DealerProductRow], names: dict[str, str]) -> str:
    """Dealer and store scans per dealer and product, inside vs outside the dealer's
    region, as stacked horizontal bars; flagged rows in red type."""
    top = max((r.scans for r in rows), default=0) or 1
    width, label_w, bar_h, gap = 640, 230, 16, 10
    height = max(1, len(rows)) * (bar_h + gap) + 28
    out = [_svg_open(width, height, ctx.t("codes.diversion"))]
    for i, r in enumerate(rows):
        y = i * (bar_h + gap) + 4
        inside = r.scans - r.outside
        span = width - label_w - 90
        wi, wo = span * inside / top, span * r.outside / top
        colour = "#c62828" if r.flagged else "#344054"
        weight = ' font-weight="600"' if r.flagged else ""
        label = f"{names.get(r.dealer_id, r.dealer_id)} · {r.gtin or '–'}"
        out.append(
            f'<g data-dealer="{escape(r.dealer_id)}" data-flagged="{str(r.flagged).lower()}">'
            f"<title>{escape(label)}: {inside} {escape(ctx.t('codes.inside'))}, {r.outside}"
            f" {escape(ctx.t('codes.outside'))} ({r.outside_share:.0%})</title>"
            f'<text x="{label_w - 8}" y="{y + 12}" font-size="12" text-anchor="end"'
            f' fill="{colour}"{weight}>{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{wi:.1f}" height="{bar_h}" fill="#86a8dc"/>'
            f'<rect x="{label_w + wi:.1f}" y="{y}" width="{wo:.1f}" height="{bar_h}"'
            f' fill="#c62828"/><text x="{label_w + wi + wo + 6:.1f}" y="{y + 12}" font-size="12"'
            f' fill="{colour}">{r.outside}/{r.scans} ({r.outside_share:.0%})</text></g>'
        )
    y = len(rows) * (bar_h + gap) + 14
    out.append(f'<g font-size="11" fill="#475467"><rect x="{label_w}" y="{y - 9}" width="10"'
               f' height="10" fill="#86a8dc"/><text x="{label_w + 14}" y="{y}">'
               f'{escape(ctx.t("codes.inside"))}</text><rect x="{label_w + 80}" y="{y - 9}"'
               f' width="10" height="10" fill="#c62828"/><text x="{label_w + 94}" y="{y}">'
               f'{escape(ctx.t("codes.outside"))}</text></g></svg>')  # fmt: skip
    return "".join(out)


def _days(days: int) -> int:
    return days if days in PERIODS else 30


@router.get("/t/{tenant_id}/codes")
def codes_home(ctx: Read, days: int = 30, lookup_error: str | None = None) -> HTMLResponse:
    """Products, orders, lifecycle counts, the scan map, diversion and alerts."""
    return _home(ctx, days=_days(days), lookup_error=lookup_error)


def _home(ctx: Ctx, *, days: int, status: int = 200, **extra: Any) -> HTMLResponse:
    db, tenant = ctx.db, ctx.tenant_id
    since = utcnow() - timedelta(days=days)
    counts = overview.state_counts(db, tenant=tenant)
    cities = overview.scans_by_city(db, tenant=tenant, since=since)
    drawn = scanmap.render(
        [(c.city, c.scans, c.genuine) for c in cities],
        title=ctx.t("codes.map"),
        legend=(ctx.t("codes.map_all"), ctx.t("codes.map_bad")),
    )
    dealers = {d.id: d for d in service.list_dealers(db, tenant=tenant)}
    rows = anomalies.dealer_rows(db, tenant=tenant, since=since)
    alerts = anomalies.list_alerts(db, tenant=tenant, limit=100)
    products = service.list_products(db, tenant=tenant)
    orders = service.list_orders(db, tenant=tenant, limit=50)
    per_order = overview.order_state_counts(db, tenant=tenant, limit=50)
    return render(
        ctx,
        "codes.html",
        status=status,
        days=days,
        periods=PERIODS,
        counts=counts,
        total=sum(counts.values()),
        lifecycle=lifecycle_svg(ctx, counts),
        products=products,
        product_names={p.id: p.name for p in products},
        orders=orders,
        can_download=ctx.allows("codes", "write"),
        stacks={o: stacked_svg(ctx, c) for o, c in per_order.items()},
        per_order=per_order,
        map=drawn,
        scans=sum(c.scans for c in cities),
        dealers=dealers,
        diversion=diversion_svg(ctx, rows, {d.id: d.name for d in dealers.values()}),
        party_rows=rows,
        diversion_alerts=[a for a in alerts if a.kind == "diversion"],
        signals=[a for a in alerts if a.kind != "diversion"],
        **extra,
    )


@router.get("/t/{tenant_id}/codes/lookup")
def lookup(ctx: Read, code: Annotated[str, Query()] = "") -> Response:
    """Open a code's page from whatever form of it was typed or scanned."""
    keys = code_keys(ctx.request.app.state.master_key, ctx.tenant_id)
    try:
        if not code.strip():
            raise ValidationFailed("Type or paste a code, its serial or its Digital Link.")
        info = service.lookup(ctx.db, keys, tenant=ctx.tenant_id, text=code)
    except (ForgedCode, NotFound, ValidationFailed) as e:
        return _home(ctx, days=30, status=e.status, lookup_error=e.message, typed=code)
    return RedirectResponse(ctx.url(f"codes/c/{info.code}"), status_code=303)


@router.get("/t/{tenant_id}/codes/c/{code}")
def code_page(ctx: Read, code: str) -> HTMLResponse:
    """One code: where it stands, every lifecycle event and scan, and each event's proof."""
    db, tenant = ctx.db, ctx.tenant_id
    master = ctx.request.app.state.master_key
    info = service.lookup(db, code_keys(master, tenant), tenant=tenant, text=code)
    product = service.get_product(db, tenant=tenant, product_id=info.product_id)
    events = code_history.events(db, tenant=tenant, code=info.code, order_id=info.order_id,
                                 seq=info.seq)  # fmt: skip
    proofs = {e.id: check_ref(db, tenant, f"code-event:{e.id}", master_key=master,
                              leaf_data=e.leaf) for e in events}  # fmt: skip
    total, scans = code_history.scans(db, tenant=tenant, code=info.code)
    context = {e.id: {k: v for k, v in orjson.loads(e.leaf).items() if k not in _LEAF_PLUMBING}
               for e in events}  # fmt: skip
    timeline: list[tuple[Any, str, Any]] = [(e.at, "event", e) for e in events]
    timeline += [(s.scanned_at, "scan", s) for s in scans]
    timeline.sort(key=lambda item: item[0])
    return render(ctx, "codes_code.html", info=info, product=product, events=events,
                  proofs=proofs, scans_total=total, timeline=timeline, context=context,
                  latest=events[-1].id if events else None,
                  state_label=_state_label(ctx, info.state))  # fmt: skip


@router.get("/t/{tenant_id}/codes/c/{code}/qr.svg")
def code_qr(ctx: Read, code: str) -> Response:
    """The QR image of the code's Digital Link."""
    keys = code_keys(ctx.request.app.state.master_key, ctx.tenant_id)
    info = service.lookup(ctx.db, keys, tenant=ctx.tenant_id, text=code)
    return Response(_qr(info.link), media_type="image/svg+xml",
                    headers={"Cache-Control": "private, max-age=86400"})  # fmt: skip


@lru_cache(maxsize=512)
def _qr(link: str) -> bytes:
    """A link's QR image (30 ms to draw; a link names one code, so it never goes stale)."""
    return packages.qr_image(link, kind="svg", scale=3)


@router.post("/t/{tenant_id}/codes/ledger/checkpoint")
def sign_checkpoint(
    ctx: Annotated[Ctx, tenant_page("ledger", "write")], next: Annotated[str, Form()] = ""
) -> Response:
    """Sign a checkpoint of the tenant's log now (as ``POST …/ledger/checkpoints``)."""
    with ctx.db.transaction():
        ledger.checkpoint(ctx.db, ctx.tenant_id, ctx.request.app.state.master_key)
    back = next if next.startswith(ctx.url()) else ctx.url("codes")
    return RedirectResponse(back, status_code=303)


@router.get("/t/{tenant_id}/codes/orders/{order_id}/package")
def package(ctx: Annotated[Ctx, tenant_page("codes", "write")], order_id: str) -> Response:
    """The order's printer package (zip of the CSV and its signed manifest), as the API
    builds it. Only roles that run the codes get it: it holds the inner (reward) codes."""
    keys = code_keys(ctx.request.app.state.master_key, ctx.tenant_id)
    body, manifest = packages.build(ctx.db, keys, tenant=ctx.tenant_id, order_id=order_id)
    name = manifest.file.removesuffix(".csv") + ".zip"
    return Response(packages.zipped(body, manifest), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get("/t/{tenant_id}/codes/dealers/{dealer_id}")
def dealer(ctx: Read, dealer_id: str, days: int = 30) -> HTMLResponse:
    """One dealer: its scans per product inside and outside its region, and its alerts."""
    days = _days(days)
    found = service.get_dealer(ctx.db, tenant=ctx.tenant_id, dealer_id=dealer_id)
    report = anomalies.dealer_report(ctx.db, tenant=ctx.tenant_id, dealer=dealer_id,
                                     since=utcnow() - timedelta(days=days))  # fmt: skip
    chart = diversion_svg(ctx, report.rows, {found.id: found.name})
    return render(ctx, "codes_dealer.html", dealer=found, report=report, chart=chart,
                  days=days, periods=PERIODS)  # fmt: skip
