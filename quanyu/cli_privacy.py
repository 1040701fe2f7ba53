"""CLI commands for PIPL requests (``quanyu privacy …``): log a data subject's access,
correction or deletion request (it is carried out at once), list and show requests
against their deadline, download an access export.

Like the rest of the CLI they go through the server's API and print tables, or JSON with
``--json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from quanyu.cli_common import JsonOpt, TenantOpt, client, out, resolve_tenant, show
from quanyu.errors import InvalidRequest

privacy_app = typer.Typer(
    help="PIPL requests: access and copy, correction, deletion.", no_args_is_help=True
)
_COLUMNS = ["id", "kind", "profile", "status", "received_at", "due_at", "overdue", "outcome"]


def _subject(identifier: str | None, profile: str | None) -> dict[str, Any]:
    """A subject from ``type:value`` or ``type:scope:value``, or a OneID."""
    if profile:
        return {"profile": profile}
    if not identifier:
        raise InvalidRequest(
            "Name the person: --identifier phone:13812345678 (type:scope:value for scoped"
            " ones, e.g. openid:wx_app_id:o6_bmj...) or --profile P42."
        )
    parts = identifier.split(":", 2)
    if len(parts) < 2:
        raise InvalidRequest(f"--identifier {identifier!r} is not type:value or type:scope:value.")
    if len(parts) == 2:
        return {"type": parts[0], "value": parts[1]}
    return {"type": parts[0], "scope": parts[1], "value": parts[2]}


def _traits(pairs: list[str] | None) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidRequest(f"--trait {pair!r} is not KEY=VALUE: write e.g. --trait city=上海")
        try:
            found[key] = json.loads(value)
        except ValueError:
            found[key] = value
    return found or None


@privacy_app.command("request")
def request(
    kind: Annotated[str, typer.Argument(help="access, correct or delete")],
    identifier: Annotated[
        str | None, typer.Option(help="type:value or type:scope:value, e.g. phone:138...")
    ] = None,
    profile: Annotated[str | None, typer.Option(help="a OneID instead, e.g. P42")] = None,
    trait: Annotated[
        list[str] | None, typer.Option(help="correct: KEY=VALUE to set (repeatable)")
    ] = None,
    detail: Annotated[str | None, typer.Option(help="a note; no personal data")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Log a request and carry it out (deletion erases the person everywhere)."""
    body = {"kind": kind, "subject": _subject(identifier, profile), "detail": detail,
            "traits": _traits(trait)}  # fmt: skip
    with client() as c:
        made = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/privacy/requests", body)
    show(made, _COLUMNS, as_json=as_json)


@privacy_app.command("list")
def list_(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Requests, newest first, with their deadline and whether they are overdue."""
    with client() as c:
        rows = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/privacy/requests")
    show(rows, _COLUMNS, as_json=as_json)


@privacy_app.command("show")
def show_(request_id: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """One request with its outcome."""
    with client() as c:
        got = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/privacy/requests/{request_id}")
    show(got, _COLUMNS, as_json=as_json)


@privacy_app.command("export")
def export(
    request_id: str,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="zip file (default: privacy-<id>.zip)")
    ] = None,
    tenant: TenantOpt = None,
) -> None:
    """Download an access request's export: export.json and a CSV per table, zipped."""
    with client() as c:
        path = f"/v1/tenants/{resolve_tenant(c, tenant)}/privacy/requests/{request_id}/export"
        blob = c.download(path)
    target = output or Path(f"privacy-{request_id}.zip")
    target.write_bytes(blob)
    out.print(f"Wrote {target} ({len(blob)} bytes).")
