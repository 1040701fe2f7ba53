"""CLI commands for console users (``quanyu users …``)."""

from __future__ import annotations

from typing import Annotated

import typer

from quanyu.cli_common import JsonOpt, TenantOpt, client, out, resolve_tenant, show

users_app = typer.Typer(
    help="Console users: who signs in to the web console.", no_args_is_help=True
)

_COLUMNS = ["id", "login", "name", "role", "tenant_id", "isv_id", "last_sign_in_at", "disabled_at"]
RoleOpt = Annotated[
    str, typer.Option(help="admin, marketer, analyst, operator or auditor.", show_default=True)
]


@users_app.command("create")
def users_create(
    login: str,
    role: RoleOpt = "admin",
    name: Annotated[str, typer.Option(help="Display name (default: the login).")] = "",
    isv: Annotated[str | None, typer.Option(help="Make an ISV user (sees its tenants).")] = None,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="QUANYU_USER_PASSWORD",
            help="At least 10 characters (prompted when not given).",
        ),
    ] = "",
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a console user in a tenant (default) or an ISV (--isv)."""
    body = {"login": login, "name": name, "password": password, "role": role}
    with client() as c:
        if isv:
            user = c.post(f"/v1/isvs/{isv}/users", json=body)
        else:
            tid = resolve_tenant(c, tenant)
            user = c.post(f"/v1/tenants/{tid}/users", json=body)
    show(user, _COLUMNS, as_json=as_json)
    if not as_json:
        out.print(f"{login} can sign in at the console: /console/sign-in")


@users_app.command("list")
def users_list(
    isv: Annotated[str | None, typer.Option(help="An ISV's users instead.")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Console users of a tenant or an ISV."""
    with client() as c:
        path = f"/v1/isvs/{isv}/users" if isv else f"/v1/tenants/{resolve_tenant(c, tenant)}/users"
        show(c.get(path), _COLUMNS, as_json=as_json)


@users_app.command("disable")
def users_disable(user_id: str, as_json: JsonOpt = False) -> None:
    """Disable a console user (their sessions end at their next request)."""
    with client() as c:
        show(c.post(f"/v1/users/{user_id}/disable"), _COLUMNS, as_json=as_json)
