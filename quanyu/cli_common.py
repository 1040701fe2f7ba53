"""What every CLI module shares: consoles, the API client, the tenant option, tables."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from quanyu.client import Client, connect
from quanyu.config import get_settings
from quanyu.errors import NotFound

out = Console()
err = Console(stderr=True)

TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        "-t",
        envvar="QUANYU_TENANT",
        help="Tenant id (default: the only tenant, if there is one).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@contextmanager
def client() -> Iterator[Client]:
    with connect(get_settings()) as c:
        yield c


def resolve_tenant(c: Client, tenant: str | None) -> str:
    """The tenant named, or the only one there is."""
    if tenant:
        return tenant
    found = c.get("/v1/tenants")
    if len(found) == 1:
        return str(found[0]["id"])
    names = ", ".join(f"{t['id']} ({t['name']})" for t in found) or "none yet"
    raise NotFound(f"Name a tenant with --tenant (or QUANYU_TENANT); tenants: {names}.")


def show(rows: Any, columns: Sequence[str], *, as_json: bool = False, title: str = "") -> None:
    """Print rows as a table (or JSON)."""
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    if isinstance(rows, dict):
        rows = [rows]
    table = Table(title=title or None)
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)
