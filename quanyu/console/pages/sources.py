"""The console's sources and keys: touchpoints, their write keys, the tenant's secret keys.

Every change goes through :mod:`quanyu.tenancy.service` with the signed-in user as the
actor, so it lands in the audit log like a change made through the API. A new key's secret
is in the answer to the form that made it and nowhere else: the page shows it once. A
revoked write key is also dropped from the ingestor's cache, so it stops working at once.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from quanyu.console import i18n
from quanyu.console.deps import Ctx, tenant_page
from quanyu.console.render import render
from quanyu.errors import Conflict, Forbidden, InvalidRequest, NotFound
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import CAPABILITIES, ApiKey, KeyCreate, SourceCreate, SourceKind

router = APIRouter()

Reader = Annotated[Ctx, tenant_page("tenancy", "read")]
Writer = Annotated[Ctx, tenant_page("tenancy", "write")]

i18n.register(
    {
        "sources.title": ("数据源与密钥", "Sources & keys"),
        "sources.sources": ("数据源", "Sources"),
        "sources.kind": ("类型", "Kind"),
        "sources.brand": ("品牌", "Brand"),
        "sources.all_brands": ("（集团，不限品牌）", "(group-wide, no brand)"),
        "sources.rate_limit": ("限速（事件/秒）", "Rate limit (events/s)"),
        "sources.rate_default": ("默认", "default"),
        "sources.created": ("创建于", "Created"),
        "sources.last_used": ("最近使用", "Last used"),
        "sources.revoked": ("已吊销", "Revoked"),
        "sources.active": ("有效", "Active"),
        "sources.never": ("从未", "never"),
        "sources.write_keys": ("写入密钥", "Write keys"),
        "sources.no_keys": ("没有有效的写入密钥。", "No active write key."),
        "sources.new_source": ("新建数据源", "New source"),
        "sources.new_write_key": ("新增密钥", "Add a key"),
        "sources.rotate": ("轮换", "Rotate"),
        "sources.revoke": ("吊销", "Revoke"),
        "sources.confirm_rotate": (
            "轮换会立即吊销密钥 {prefix}…，使用它的客户端将被拒绝。继续？",
            "Rotating revokes {prefix}… at once; clients still using it will be refused. Go on?",
        ),
        "sources.confirm_revoke": (
            "立即吊销密钥 {prefix}…？此操作不可撤销。",
            "Revoke {prefix}… now? This cannot be undone.",
        ),
        "sources.secret_keys": ("API 密钥（管理接口）", "Secret keys (management API)"),
        "sources.scopes": ("权限范围", "Scopes"),
        "sources.new_secret_key": ("新建 API 密钥", "New secret key"),
        "sources.read": ("读", "read"),
        "sources.write": ("写", "write"),
        "sources.admin_scope": ("admin（全部权限）", "admin (everything)"),
        "sources.no_secret_keys": ("还没有 API 密钥。", "No secret key yet."),
        "sources.fresh_title": ("新密钥：{label}", "New key: {label}"),
        "sources.fresh_warning": (
            "请立即复制并妥善保存。此密钥只显示这一次，离开本页后无法再次查看。",
            "Copy it now and store it safely. It is shown this once; it cannot be shown again.",
        ),
        "sources.rotated": (
            "旧密钥 {prefix}… 已吊销，立即失效。",
            "The old key {prefix}… is revoked and stopped working.",
        ),
        "sources.snippets": ("接入代码", "Snippets to paste"),
        "sources.snippets_for": (
            "数据源“{name}”的接入代码（已填入新密钥）",
            "Snippets for “{name}”, with the new key filled in",
        ),
        "sources.snippets_generic": (
            "把 YOUR_WRITE_KEY 换成数据源的写入密钥。服务器地址：{base}",
            "Replace YOUR_WRITE_KEY with the source's write key. Server: {base}",
        ),
        "sources.snippet_js": (
            "网站：analytics.js（analytics-next）",
            "Website: analytics.js (analytics-next)",
        ),
        "sources.snippet_python": (
            "服务端：Segment analytics-python",
            "Server: Segment analytics-python",
        ),
        "sources.snippet_wx": ("微信小程序：wx.request", "WeChat mini-program: wx.request"),
        "sources.read_only": (
            "你的角色只能查看数据源和密钥；新建、轮换或吊销需要管理员或运营角色。",
            "Your role may look at sources and keys; creating, rotating or revoking them takes"
            " an admin or operator.",
        ),
        "sources.secret_admin_only": (
            "只有管理员可以新建 API 密钥。",
            "Only an admin may create secret keys.",
        ),
    }
)


def _may_create_secret(ctx: Ctx) -> bool:
    """A tenant user needs the admin role to create secret keys (the API's rule)."""
    p = ctx.principal
    return ctx.allows("tenancy", "write") and (p.level != "tenant" or "admin" in p.scopes)


def _page(ctx: Ctx, *, status: int = 200, **extra: Any) -> HTMLResponse:
    db, tenant = ctx.db, ctx.tenant_id
    sources = tenancy.list_sources(db, tenant=tenant)
    keys = tenancy.list_keys(db, tenant=tenant)
    write_keys: dict[str, list[ApiKey]] = {s.id: [] for s in sources}
    for k in keys:
        if k.kind == "write" and k.source_id in write_keys:
            write_keys[k.source_id].append(k)
    for found in write_keys.values():
        found.sort(key=lambda k: (k.revoked_at is not None, k.created_at))
    base = str(ctx.request.base_url).rstrip("/")
    url = urlsplit(base)
    fresh = extra.get("fresh")
    fresh_key = fresh["secret"] if fresh and fresh["kind"] == "write" else None
    return render(
        ctx,
        "sources.html",
        status=status,
        sources=sources,
        brands={b.id: b.name for b in tenancy.list_brands(db, tenant=tenant)},
        write_keys=write_keys,
        secret_keys=[k for k in keys if k.kind == "secret"],
        kinds=[k.value for k in SourceKind],
        capabilities=CAPABILITIES,
        can_write=ctx.allows("tenancy", "write"),
        can_create_secret=_may_create_secret(ctx),
        base_url=base,
        api_host=f"{url.netloc}{url.path}/v1",
        protocol=url.scheme,
        snippet_key=fresh_key or "YOUR_WRITE_KEY",
        **extra,
    )


def _problem(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())


@router.get("/t/{tenant_id}/sources")
def sources_page(ctx: Reader) -> HTMLResponse:
    """Sources, their write keys, secret keys, and the snippets to paste."""
    return _page(ctx)


@router.post("/t/{tenant_id}/sources")
def create_source(
    ctx: Writer,
    name: Annotated[str, Form()],
    kind: Annotated[str, Form()] = SourceKind.server.value,
    brand_id: Annotated[str, Form()] = "",
    rate_limit: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Add a source; its first write key is shown once."""
    form = {"name": name, "kind": kind, "brand_id": brand_id, "rate_limit": rate_limit}
    try:
        body = SourceCreate.model_validate(
            {
                "name": name.strip(),
                "kind": kind,
                "brand_id": brand_id or None,
                "rate_limit": rate_limit.strip() or None,
            }
        )
        created = tenancy.create_source(ctx.db, body, tenant=ctx.tenant_id, actor=ctx.actor)
    except ValidationError as e:
        return _page(ctx, status=400, source_error=f"Invalid source: {_problem(e)}", form=form)
    except (Conflict, NotFound, InvalidRequest) as e:
        return _page(ctx, status=e.status, source_error=e.message, form=form)
    fresh = {
        "kind": "write",
        "label": f"{created.name} ({created.id})",
        "secret": created.write_key,
        "source_name": created.name,
    }
    return _page(ctx, status=201, fresh=fresh)


def _write_key_of(ctx: Ctx, source_id: str, key_id: str) -> ApiKey:
    """An active write key of this source. Raises NotFound or Conflict."""
    key = tenancy.get_key(ctx.db, key_id=key_id, tenant=ctx.tenant_id)
    if key.kind != "write" or key.source_id != source_id:
        raise NotFound(f"Source {source_id} has no write key {key_id!r}; reload the page.")
    if key.revoked_at is not None:
        raise Conflict(
            f"Write key {key.prefix}… was revoked already at {key.revoked_at:%Y-%m-%d %H:%M:%S}"
            " UTC; nothing was rotated. Add a new key instead."
        )
    return key


@router.post("/t/{tenant_id}/sources/{source_id}/keys")
def add_write_key(ctx: Writer, source_id: str) -> HTMLResponse:
    """Another write key for a source (deploy it, then revoke the old one)."""
    source = tenancy.get_source(ctx.db, tenant=ctx.tenant_id, source=source_id)
    key = tenancy.create_write_key(ctx.db, tenant=ctx.tenant_id, source=source_id, actor=ctx.actor)
    fresh = {
        "kind": "write",
        "label": f"{source.name} ({key.prefix}…)",
        "secret": key.secret,
        "source_name": source.name,
    }
    return _page(ctx, status=201, fresh=fresh)


@router.post("/t/{tenant_id}/sources/{source_id}/keys/{key_id}/rotate")
def rotate_write_key(ctx: Writer, source_id: str, key_id: str) -> HTMLResponse:
    """Replace a write key: a new one now, the old one revoked at once."""
    source = tenancy.get_source(ctx.db, tenant=ctx.tenant_id, source=source_id)
    old = _write_key_of(ctx, source_id, key_id)
    key = tenancy.create_write_key(ctx.db, tenant=ctx.tenant_id, source=source_id, actor=ctx.actor)
    tenancy.revoke_key(ctx.db, key_id=old.id, actor=ctx.actor, tenant=ctx.tenant_id)
    ctx.request.app.state.ingestor.forget_keys()
    fresh = {
        "kind": "write",
        "label": f"{source.name} ({key.prefix}…)",
        "secret": key.secret,
        "source_name": source.name,
        "replaced": old.prefix,
    }
    return _page(ctx, status=201, fresh=fresh)


@router.post("/t/{tenant_id}/keys/{key_id}/revoke")
def revoke_key(ctx: Writer, key_id: str) -> Response:
    """Revoke a write or secret key of the tenant; it stops working at once."""
    tenancy.revoke_key(ctx.db, key_id=key_id, actor=ctx.actor, tenant=ctx.tenant_id)
    ctx.request.app.state.ingestor.forget_keys()
    return RedirectResponse(ctx.url("sources") + f"#key-{key_id}", status_code=303)


@router.post("/t/{tenant_id}/keys")
def create_secret_key(
    ctx: Writer,
    name: Annotated[str, Form()],
    scopes: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    """A secret key of the tenant with the scopes ticked (none beyond the user's own)."""
    if not _may_create_secret(ctx):
        raise Forbidden(
            f"User {ctx.user.login} ({ctx.user.role}) may not create secret keys: that takes"
            " the admin role."
        )
    chosen = sorted(set(scopes or []))
    form = {"name": name, "scopes": chosen}
    beyond = [s for s in chosen if not _grantable(ctx, s)]
    if beyond:
        problem = f"You cannot grant {', '.join(beyond)}: a key gets no scope its creator lacks."
        return _page(ctx, status=403, key_error=problem, key_form=form)
    try:
        body = KeyCreate(name=name.strip(), scopes=chosen)
    except ValidationError as e:
        message = "Tick at least one scope." if not chosen else f"Invalid key: {_problem(e)}"
        return _page(ctx, status=400, key_error=message, key_form=form)
    created = tenancy.create_key(ctx.db, body, actor=ctx.actor, tenant=ctx.tenant_id)
    fresh = {
        "kind": "secret",
        "label": f"{created.name} ({created.prefix}…)",
        "secret": created.secret,
    }
    return _page(ctx, status=201, fresh=fresh)


def _grantable(ctx: Ctx, scope: str) -> bool:
    """Whether the user holds ``scope`` themselves (so may put it on a key)."""
    if scope == "admin":
        return "admin" in ctx.principal.scopes
    capability, _, access = scope.partition(":")
    if access == "write":
        return ctx.allows(capability, "write")
    return access == "read" and ctx.allows(capability, "read")
