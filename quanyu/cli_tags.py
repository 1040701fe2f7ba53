"""CLI commands for tags, audiences and destinations (``quanyu tags …``, ``quanyu audiences …``).

Like the rest of the CLI they go through the server's API (or an in-process app when
no server runs) and print tables, or JSON with ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from quanyu.cli_common import JsonOpt, TenantOpt, client, err, out, resolve_tenant, show
from quanyu.errors import InvalidRequest

tags_app = typer.Typer(help="Tags: taxonomy, rules, templates, computation.", no_args_is_help=True)
audiences_app = typer.Typer(help="Audiences: counts, snapshots, exports.", no_args_is_help=True)
destinations_app = typer.Typer(
    help="Webhook destinations for audience pushes.", no_args_is_help=True
)

RuleArg = Annotated[
    str, typer.Argument(help='Rule text, e.g. \'tag("vip") and traits.city = "上海"\'')
]
PurposeOpt = Annotated[
    str, typer.Option(help="a declared purpose: marketing, ads_targeting, service, analysis …")
]
ChannelOpt = Annotated[str, typer.Option(help="sms, wechat, email, phone, ads, push, pos, none")]
BrandOpt = Annotated[list[str] | None, typer.Option("--brand", help="Only these brands.")]
_TAG_COLUMNS = ["key", "value_type", "status", "rule_text", "computed_at"]
_RUN_COLUMNS = ["run_id", "mode", "profiles", "added", "removed", "status", "finished_at"]


def _params(pairs: list[str] | None) -> dict[str, Any]:
    import json

    out_: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidRequest(f"{pair!r} is not KEY=VALUE: write e.g. --param window_days=180")
        try:
            out_[key] = json.loads(value)
        except ValueError:
            out_[key] = value
    return out_


@tags_app.command("list")
def tags_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Every tag with its rule."""
    with client() as c:
        show(c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/tags"), _TAG_COLUMNS, as_json=as_json)


@tags_app.command("create")
def tags_create(
    key: str,
    rule: Annotated[str | None, typer.Option(help="Rule text (or use --sql).")] = None,
    sql: Annotated[str | None, typer.Option(help="Expert SQL: SELECT profile_id, value …")] = None,
    name_zh: Annotated[str | None, typer.Option(help="Chinese name (default: the key).")] = None,
    name_en: Annotated[str | None, typer.Option(help="English name (default: the key).")] = None,
    value_type: Annotated[
        str, typer.Option("--type", help="boolean, enum, number, date")
    ] = "boolean",
    category: Annotated[str | None, typer.Option(help="Category id.")] = None,
    status: Annotated[str, typer.Option(help="draft, live or retired")] = "live",
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Define a tag by a rule or expert SQL."""
    body = {
        "key": key,
        "name_zh": name_zh or key,
        "name_en": name_en or key,
        "rule": rule,
        "sql": sql,
        "value_type": value_type,
        "category_id": category,
        "status": status,
    }
    with client() as c:
        made = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/tags", body)
        show(made, _TAG_COLUMNS, as_json=as_json)


@tags_app.command("check")
def tags_check(rule: RuleArg, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Parse and check a rule; print its canonical text and the tags it uses."""
    with client() as c:
        found = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/tags/check", {"rule": rule})
        show(found, ["text", "uses_tags"], as_json=as_json)


@tags_app.command("templates")
def tags_templates(as_json: JsonOpt = False) -> None:
    """The shipped templates and their parameters."""
    with client() as c:
        show(c.get("/v1/tag-templates"), ["key", "name_en", "name_zh", "params"], as_json=as_json)


@tags_app.command("add-template")
def tags_add_template(
    template: str,
    param: Annotated[list[str] | None, typer.Option(help="KEY=VALUE (JSON values)")] = None,
    status: str = "live",
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a template's tags (RFM, lifecycle, …) in the tenant."""
    body = {"params": _params(param), "status": status}
    with client() as c:
        made = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/tag-templates/{template}", body)
        show(made, _TAG_COLUMNS, as_json=as_json)


@tags_app.command("compute")
def tags_compute(
    key: Annotated[list[str] | None, typer.Option(help="Only these tags.")] = None,
    incremental: Annotated[bool, typer.Option(help="Only persons that changed.")] = False,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compute tags now."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        with err.status("Computing tags…"):
            run = c.post(f"/v1/tenants/{t}/tags/compute", {"keys": key, "incremental": incremental})
        show(run, _RUN_COLUMNS, as_json=as_json, title="Tag run")


@tags_app.command("counts")
def tags_counts(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """People per current value of every tag."""
    with client() as c:
        counts = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/tag-counts")
        rows = [{"tag": k, "value": v["value"], "people": v["people"]}
                for k, vs in counts.items() for v in vs]  # fmt: skip
        show(rows if not as_json else counts, ["tag", "value", "people"], as_json=as_json)


@tags_app.command("history")
def tags_history(
    key: str, days: int = 14, tenant: TenantOpt = None, as_json: JsonOpt = False
) -> None:
    """People per value of a tag at the end of each day."""
    with client() as c:
        points = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/tags/{key}/history", days=days)
        rows = [{"at": p["at"], **{v["value"]: v["people"] for v in p["counts"]}} for p in points]
        values = sorted({v["value"] for p in points for v in p["counts"]})
        show(rows if not as_json else points, ["at", *values], as_json=as_json)


# -- audiences ---------------------------------------------------------------------------------
def _draft(rule: str, brand: list[str] | None, purpose: str, channel: str) -> dict[str, Any]:
    return {"rule": rule, "brands": brand or None, "purpose": purpose, "channel": channel}


@audiences_app.command("count")
def audiences_count(rule: RuleArg, brand: BrandOpt = None, purpose: PurposeOpt = "marketing",
                    channel: ChannelOpt = "sms", tenant: TenantOpt = None,
                    as_json: JsonOpt = False) -> None:  # fmt: skip
    """Count an audience rule live: matched, excluded by consent, members, by brand."""
    with client() as c:
        found = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/audiences/count",
                       _draft(rule, brand, purpose, channel))  # fmt: skip
        show(found, ["matched", "excluded", "size", "by_brand", "took_ms"], as_json=as_json)


@audiences_app.command("create")
def audiences_create(id: str, rule: RuleArg, name: str | None = None, brand: BrandOpt = None,
                     purpose: PurposeOpt = "marketing", channel: ChannelOpt = "sms",
                     tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:  # fmt: skip
    """Save an audience."""
    body = {"id": id, "name": name or id, **_draft(rule, brand, purpose, channel)}
    with client() as c:
        made = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/audiences", body)
        show(made, ["id", "rule_text", "purpose", "channel"], as_json=as_json)


@audiences_app.command("update")
def audiences_update(id: str, rule: Annotated[str | None, typer.Option(help="A new rule.")] = None,
                     name: str | None = None, brand: BrandOpt = None,
                     purpose: Annotated[str | None, typer.Option(help="A new purpose.")] = None,
                     channel: Annotated[str | None, typer.Option(help="A new channel.")] = None,
                     tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:  # fmt: skip
    """Change a saved audience (only the options given)."""
    given = {"rule": rule, "name": name, "brands": brand or None, "purpose": purpose,
             "channel": channel}  # fmt: skip
    body = {k: v for k, v in given.items() if v is not None}
    with client() as c:
        made = c.patch(f"/v1/tenants/{resolve_tenant(c, tenant)}/audiences/{id}", body)
        show(made, ["id", "rule_text", "purpose", "channel", "updated_at"], as_json=as_json)


@audiences_app.command("delete")
def audiences_delete(id: str, tenant: TenantOpt = None) -> None:
    """Delete a saved audience and its snapshots."""
    with client() as c:
        c.delete(f"/v1/tenants/{resolve_tenant(c, tenant)}/audiences/{id}")
    out.print(f"Deleted audience {id}.")


@audiences_app.command("list")
def audiences_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Saved audiences."""
    with client() as c:
        found = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/audiences")
        show(found, ["id", "name", "rule_text", "purpose", "channel"], as_json=as_json)


@audiences_app.command("materialise")
def audiences_materialise(id: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Materialise an audience now (a snapshot)."""
    with client() as c:
        snap = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/audiences/{id}/snapshots")
        show(snap, ["snapshot_id", "size", "matched", "excluded", "created_at"], as_json=as_json)


@audiences_app.command("overlap")
def audiences_overlap(ids: list[str], tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Venn regions of two or three audiences."""
    with client() as c:
        found = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/audience-overlap", ids=ids)
        rows = [{"inside": " & ".join(r["inside"]), "size": r["size"]} for r in found["regions"]]
        show(rows if not as_json else found, ["inside", "size"], as_json=as_json)


@audiences_app.command("export")
def audiences_export(
    id: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (.csv/.parquet)")],
    identifier: Annotated[
        str, typer.Option(help="oneid, openid, phone_sha256, member_id …")
    ] = "oneid",
    scope: Annotated[str | None, typer.Option(help="App id (openid) or brand (member_id)")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Download the latest snapshot with the identifier a channel needs."""
    fmt = "parquet" if output.suffix == ".parquet" else "csv"
    with client() as c:
        data = c.download(f"/v1/tenants/{resolve_tenant(c, tenant)}/audiences/{id}/export",
                          identifier=identifier, scope=scope, format=fmt)  # fmt: skip
    output.write_bytes(data)
    out.print(f"Wrote {output} ({len(data):,} bytes)")


@audiences_app.command("push")
def audiences_push(id: str, destination: str, identifier: str = "oneid", scope: str | None = None,
                   tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:  # fmt: skip
    """Push the latest snapshot to a destination (signed webhooks in batches)."""
    body = {"destination_id": destination, "identifier": identifier, "scope": scope}
    with client() as c:
        made = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/audiences/{id}/push", body)
        show(made, ["push_id", "snapshot_id", "records", "batches"], as_json=as_json)


@destinations_app.command("create")
def destinations_create(
    name: str, url: str, tenant: TenantOpt = None, as_json: JsonOpt = False
) -> None:
    """Add a webhook destination; prints its signing secret once."""
    with client() as c:
        made = c.post(
            f"/v1/tenants/{resolve_tenant(c, tenant)}/destinations", {"name": name, "url": url}
        )
        show(made, ["id", "name", "url", "secret"], as_json=as_json)


@destinations_app.command("list")
def destinations_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Webhook destinations."""
    with client() as c:
        found = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/destinations")
        show(found, ["id", "name", "url", "enabled"], as_json=as_json)


@destinations_app.command("enable")
def destinations_enable(
    id: str,
    off: Annotated[bool, typer.Option("--off", help="Disable it instead.")] = False,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enable (or with --off disable) a destination."""
    with client() as c:
        made = c.patch(f"/v1/tenants/{resolve_tenant(c, tenant)}/destinations/{id}",
                       {"enabled": not off})  # fmt: skip
        show(made, ["id", "name", "url", "enabled"], as_json=as_json)


@destinations_app.command("delete")
def destinations_delete(id: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Delete a destination (its messages stay on record)."""
    with client() as c:
        gone = c.delete(f"/v1/tenants/{resolve_tenant(c, tenant)}/destinations/{id}")
        show(gone, ["id", "name", "url"], as_json=as_json)


@destinations_app.command("outbox")
def destinations_outbox(
    destination: Annotated[str | None, typer.Option(help="Only this destination.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, delivered, failed, skipped")] = None,
    limit: int = 50,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Outbox messages, newest first."""
    with client() as c:
        found = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/outbox",
                      destination_id=destination, status=status, limit=limit)  # fmt: skip
        cols = ["id", "topic", "status", "attempts", "last_status_code", "last_error"]
        show(found, cols, as_json=as_json)


@destinations_app.command("retry")
def destinations_retry(message: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Put a failed or skipped outbox message back in line."""
    with client() as c:
        made = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/outbox/{message}/retry")
        show(made, ["id", "status", "attempts", "next_attempt_at"], as_json=as_json)
