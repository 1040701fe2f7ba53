"""Rendering console pages: one Jinja2 environment, the layout's shared values, filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from quanyu.console import i18n, reasons
from quanyu.console.deps import Ctx, language

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _num(value: object) -> str:
    """12408 → "12,408"; None → "–"."""
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


def _dt(value: object) -> str:
    """A stored (naive UTC) time as "2026-11-27 06:31:05 UTC"."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    return "–" if value is None else str(value)


TEMPLATES.env.filters["num"] = _num
TEMPLATES.env.filters["dt"] = _dt


@dataclass(frozen=True)
class NavItem:
    key: str
    path: str
    capability: str


#: The pages of a tenant, in the order of the menu, each shown to roles that may read it.
NAV = (
    NavItem("nav.home", "", "ingest"),
    NavItem("nav.sources", "sources", "tenancy"),
    NavItem("nav.profiles", "profiles", "profiles"),
    NavItem("nav.tags", "tags", "tags"),
    NavItem("nav.audiences", "audiences", "audiences"),
    NavItem("nav.consent", "consent", "consent"),
    NavItem("nav.codes", "codes", "codes"),
    NavItem("nav.audit", "audit", "tenancy"),
)


def render(ctx: Ctx, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A page (or an htmx fragment) of the signed-in user's tenant."""
    nav = (
        [
            (ctx.t(item.key), ctx.url(item.path), item.path)
            for item in NAV
            if ctx.allows(item.capability, "read")
        ]
        if ctx.tenant is not None
        else []
    )
    context = {"ctx": ctx, "t": ctx.t, "csrf": ctx.session.csrf, "nav": nav,
               "say": _Say(ctx.lang), **values}  # fmt: skip
    return TEMPLATES.TemplateResponse(ctx.request, template, context, status_code=status)


@dataclass(frozen=True)
class _Say:
    """The capabilities' English reasons in the page's language (``say.exclusion(r)``)."""

    lang: str

    def exclusion(self, reason: str) -> str:
        return reasons.exclusion(reason, self.lang)

    def snapshot(self, reason: str) -> str:
        return reasons.snapshot_reason(reason, self.lang)

    def alert(self, alert: Any) -> str:
        return reasons.alert_summary(alert, self.lang)


def render_public(
    request: Request, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page shown without a session (sign-in, errors before sign-in)."""
    lang = language(request)
    context = {"ctx": None, "t": i18n.translator(lang), "lang": lang, "nav": [], **values}
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status)
