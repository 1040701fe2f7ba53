"""CLI commands for consent (``quanyu consent …``): purposes, decisions, a person's
consent, the decision log and canaries. Through the server's API like the rest."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from quanyu.cli_common import JsonOpt, TenantOpt, client, resolve_tenant, show
from quanyu.errors import InvalidRequest

consent_app = typer.Typer(
    help="Consent: purposes, decisions, a person's consent, enforcement.", no_args_is_help=True
)
SubjectArg = Annotated[
    str,
    typer.Argument(
        help="Who: a OneID (P42), or TYPE:VALUE, or TYPE:SCOPE:VALUE for app- or"
        " brand-scoped ids (phone:13812345678, openid:wx123:o6_abc)"
    ),
]


def subject(text: str) -> dict[str, Any]:
    """A subject from its command-line form."""
    if text[:1] == "P" and text[1:].isdigit():
        return {"profile": text}
    parts = text.split(":", 2)
    if len(parts) == 2:
        return {"type": parts[0], "value": parts[1]}
    if len(parts) == 3:
        return {"type": parts[0], "scope": parts[1], "value": parts[2]}
    raise InvalidRequest(
        f"subject {text!r} is neither a OneID (P42) nor TYPE:VALUE (phone:13812345678)"
    )


@consent_app.command("purposes")
def purposes(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Every declared purpose with its legal basis."""
    with client() as c:
        found = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/consent/purposes")
        cols = ["id", "name_en", "legal_basis", "separate_consent", "valid_days", "marketing"]
        show(found, cols, as_json=as_json)


@consent_app.command("entities")
def entities(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The legal entities and their brands."""
    with client() as c:
        found = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/consent/entities")
        show(found, ["id", "name", "credit_code", "brands"], as_json=as_json)


@consent_app.command("record")
def record(
    who: SubjectArg,
    status: Annotated[str, typer.Argument(help="granted, denied, withdrawn or expired")],
    purpose: Annotated[str, typer.Option(help="purpose key or id")] = "marketing",
    channel: Annotated[str, typer.Option(help="sms, wechat, email, phone, ads, push, pos, *")] = (
        "*"
    ),
    surface: Annotated[str, typer.Option(help="where it was captured")] = "api",
    separate: Annotated[bool, typer.Option(help="given as separate consent (单独同意)")] = False,
    actor: Annotated[str, typer.Option(help="self, guardian, agent")] = "self",
    evidence: Annotated[str | None, typer.Option(help="hash of the signed form")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record one consent decision; every subscriber is told."""
    body = {"decisions": [{"subject": subject(who), "purpose": purpose, "channel": channel,
                           "status": status, "surface": surface, "separate": separate,
                           "actor": actor, "evidence": evidence}]}  # fmt: skip
    with client() as c:
        made = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/consent/decisions", body)
        rows = [{**m["entry"], "told": len(m["subscribers"])} for m in made]
        show(rows, ["seq", "profile", "purpose_id", "channel", "status", "told"], as_json=as_json)


@consent_app.command("show")
def show_person(
    profile: Annotated[str, typer.Argument(help="a OneID, e.g. P42")],
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A person's consent now, and the ledger entries behind it."""
    with client() as c:
        found = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/profiles/{profile}/consent")
        if as_json:
            show(found, [], as_json=True)
            return
        show(found["states"], ["purpose_id", "channel", "status", "conflict", "decided_at"],
             title=f"{found['profile']}: consent now")  # fmt: skip
        show(found["history"], ["seq", "decided_at", "purpose_id", "channel", "status",
                                "surface", "actor"], title="ledger")  # fmt: skip


@consent_app.command("log")
def decision_log(
    profile: Annotated[str | None, typer.Option(help="only this OneID")] = None,
    decision: Annotated[str | None, typer.Option(help="allow or block")] = None,
    act_id: Annotated[str | None, typer.Option(help="one push, export or message id")] = None,
    limit: int = 100,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enforcement decisions, newest first."""
    params = {k: v for k, v in (("profile", profile), ("decision", decision),
                                ("act_id", act_id), ("limit", limit)) if v is not None}  # fmt: skip
    with client() as c:
        found = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/consent/decision-log", **params)
        cols = ["decided_at", "act", "profile", "purpose_id", "channel", "destination",
                "decision", "reason"]  # fmt: skip
        show(found, cols, as_json=as_json)


@consent_app.command("canaries")
def canaries(
    seed: Annotated[int, typer.Option(help="seed this many new canaries first")] = 0,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Seed canaries (synthetic opted-out people) and report every attempt to reach one."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        if seed:
            c.post(f"/v1/tenants/{t}/consent/canaries?count={seed}")
        found = c.get(f"/v1/tenants/{t}/consent/canaries/check")
        show(found, ["canaries", "allowed", "blocked", "ok"], as_json=as_json)
