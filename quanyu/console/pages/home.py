"""The console's home page of a tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from quanyu.console.deps import Ctx, tenant_page
from quanyu.console.render import render

router = APIRouter()


@router.get("/t/{tenant_id}/")
def home(ctx: Annotated[Ctx, tenant_page("ingest")]) -> HTMLResponse:
    return render(ctx, "home.html")
