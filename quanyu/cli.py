"""The ``quanyu`` command line: thin commands over the REST API (see :mod:`quanyu.client`)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from quanyu.cli_common import JsonOpt, TenantOpt, client, err, out, resolve_tenant, show
from quanyu.client import Client
from quanyu.config import get_settings
from quanyu.errors import InvalidRequest, NotFound, QuanyuError

app = typer.Typer(
    help="Quanyu: omnichannel customer data platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
isvs = typer.Typer(help="ISVs (service providers).", no_args_is_help=True)
tenants = typer.Typer(help="Tenants (brand groups).", no_args_is_help=True)
brands = typer.Typer(help="Brands of a tenant.", no_args_is_help=True)
sources = typer.Typer(help="Sources (touchpoints) and their write keys.", no_args_is_help=True)
keys = typer.Typer(help="Secret keys for the management API.", no_args_is_help=True)
events = typer.Typer(help="Stored events.", no_args_is_help=True)
dead = typer.Typer(help="Dead letters: rejected messages and their reasons.", no_args_is_help=True)
import_app = typer.Typer(help="Bulk import from CSV, JSON Lines or Parquet.", no_args_is_help=True)
for sub, name in (
    (isvs, "isvs"),
    (tenants, "tenants"),
    (brands, "brands"),
    (sources, "sources"),
    (keys, "keys"),
    (events, "events"),
    (dead, "dead-letters"),
    (import_app, "import"),
):
    app.add_typer(sub, name=name)


def progress_bar(label: ProgressColumn, *extra: ProgressColumn) -> Progress:
    """The CLI's progress bar on stderr: a label, the bar, done/total, time, then ``extra``."""
    return Progress(
        label, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), *extra, console=err
    )


# --- server and demo --------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Run the API server (and background workers) on the data dir."""
    import uvicorn

    from quanyu.api.app import create_app
    from quanyu.observability import configure_logging
    from quanyu.store import running_server

    settings = get_settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    other = running_server(settings)
    if other and other.get("pid") != os.getpid():
        raise QuanyuError(
            f"A Quanyu server (pid {other['pid']}) already serves {settings.data_dir} at"
            f" {other['url']}; use it, or stop it first."
        )
    configure_logging(settings.log_level)
    # The writer thread needs the GIL briefly, and many times, inside each DuckDB call;
    # the default 5 ms switch interval would make it queue behind request parsing each
    # time. 0.1 ms measured ~8 % more events/s than 0.5 ms on /v1/batch (2 cores).
    sys.setswitchinterval(0.0001)
    logging.getLogger("quanyu").info(
        "Quanyu serving %s (OpenAPI docs at %s/docs); Ctrl-C stops it",
        settings.base_url,
        settings.base_url,
        extra={"fields": {"url": settings.base_url, "data_dir": str(settings.data_dir)}},
    )
    uvicorn.run(
        create_app(settings, announce=True),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def demo(
    consumers: Annotated[int, typer.Option(help="How many consumers to generate.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same data.")] = 42,
    start: Annotated[
        str | None, typer.Option(help="First day, YYYY-MM-DD (default: a year before today).")
    ] = None,
    reset: Annotated[bool, typer.Option(help="Load a fresh demo even if one exists.")] = False,
) -> None:
    """Load a demo brand group (three brands, seven touchpoints, a year of events)."""
    from datetime import UTC, datetime, timedelta

    from quanyu.demo.load import load, save_keys

    settings = get_settings()
    keys_file = settings.data_dir / "demo-keys.json"
    if keys_file.exists() and not reset:
        out.print(f"The demo is loaded already ({keys_file}); --reset loads another.")
        _print_demo(json.loads(keys_file.read_text()), settings.base_url)
        return
    first = (
        datetime.fromisoformat(start).replace(tzinfo=UTC)
        if start
        else datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        - timedelta(days=365)
    )
    with progress_bar(TextColumn("{task.description}")) as progress:

        def step(description: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(description, total=total)
            return lambda n: progress.advance(task, n)

        with client() as c:
            result = load(
                c,
                folder=settings.data_dir / "demo",
                consumers=consumers,
                seed=seed,
                start=first,
                step=step,
            )
            resolving = step("Resolving identities (OneID)", 1)
            resolved = c.post(f"/v1/tenants/{result.tenant_id}/identity/resolve")
            score = _evaluate(c, result.tenant_id, Path(result.files["truth"]))
            captured = c.post(f"/v1/tenants/{result.tenant_id}/consent/capture")
            resolving(1)
            tagging = step("Tags and audiences", 1)
            run = _demo_tags(c, result.tenant_id)
            tagging(1)
    save_keys(result, keys_file)
    for label, summary in (("events", result.events), ("member records", result.profiles)):
        if summary:
            out.print(
                f"{label}: read {summary.read:,}, loaded {summary.loaded:,},"
                f" duplicates {summary.duplicates:,}, rejected {summary.rejected_total:,}"
                + (f" (see {summary.rejected_file})" if summary.rejected_file else "")
            )
    out.print(
        f"OneID: {score['profiles']:,} people from {score['records']:,} records"
        f" ({resolved['conflicts']:,} conflicts in the last pass); against the ground truth"
        f" ({result.files['truth']}): precision {score['precision']:.4f},"
        f" recall {score['recall']:.4f}, F1 {score['f1']:.4f}"
    )
    out.print(f"Tags: {len(run['tags'])} computed for {run['profiles']:,} people")
    out.print(f"Consent: {captured['total']:,} decisions in the ledger, read from the events")
    if result.codes:
        out.print(
            f"Codes: {result.codes['codes']:,} activated and shipped,"
            f" {result.codes['scans']:,} consumer scans"
        )
    _print_demo(result.as_json(), settings.base_url)


#: The demo's tags: templates, and an audience of repeat buyers for WeChat messages.
DEMO_TEMPLATES = (
    "rfm",
    "lifecycle",
    "cross_brand_buyer",
    "channel_preference",
    "high_value_member",
)
DEMO_AUDIENCE = {
    "id": "repeat_buyers",
    "name": "Repeat buyers, active in the last 90 days",
    "rule": 'count(event = "Order Completed") >= 2 and tag("lifecycle") in ("active", "new")',
    "purpose": "marketing",
    "channel": "sms",
}


def _demo_tags(c: Client, tenant: str) -> dict[str, Any]:
    """Add the demo's tags, compute them, and save and materialise its audience."""
    for template in DEMO_TEMPLATES:
        c.post(f"/v1/tenants/{tenant}/tag-templates/{template}", {"params": {}})
    run: dict[str, Any] = c.post(f"/v1/tenants/{tenant}/tags/compute", {})
    c.post(f"/v1/tenants/{tenant}/audiences", DEMO_AUDIENCE)
    c.post(f"/v1/tenants/{tenant}/audiences/{DEMO_AUDIENCE['id']}/snapshots")
    return run


def _print_demo(keys: dict[str, Any], url: str) -> None:
    lines = [
        "",
        f"Quanyu demo: console at {url}/console/, API at {url}, OpenAPI docs at {url}/docs",
        f"  tenant        {keys['tenant_id']}",
        f"  admin key     {keys['admin_key']}   (Authorization: Bearer ...)",
        f"  platform key  {keys['platform_key']}",
        "  write keys (HTTP basic auth user, one per source):",
        *(
            f"    {k['write_key']}  {k['name']} ({k['source_id']})"
            for k in keys["write_keys"].values()
        ),
        *(
            [
                f"  console       {url}/console/  sign in as {console['login']}"
                f" with password {console['password']}"
            ]
            if (console := keys.get("console"))
            else []
        ),
        "",
        "Try:",
        f'  curl -u "{next(iter(keys["write_keys"].values()))["write_key"]}:" {url}/v1/track'
        """ -d '{"userId": "u1", "event": "Hello"}'""",
        f"  QUANYU_DATA_DIR={get_settings().data_dir} .venv/bin/quanyu events list --limit 5",
    ]
    for line in lines:
        out.print(line, soft_wrap=True, highlight=False, markup=False)


# --- tenancy ----------------------------------------------------------------------------


@isvs.command("create")
def isvs_create(name: str, as_json: JsonOpt = False) -> None:
    """Register an ISV."""
    with client() as c:
        show(c.post("/v1/isvs", {"name": name}), ["id", "name", "created_at"], as_json=as_json)


@isvs.command("list")
def isvs_list(as_json: JsonOpt = False) -> None:
    """List ISVs."""
    with client() as c:
        show(c.get("/v1/isvs"), ["id", "name", "created_at"], as_json=as_json)


@isvs.command("create-key")
def isvs_create_key(
    isv: str,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "ISV admin",
    scope: Annotated[list[str] | None, typer.Option(help="Scopes (repeat); default admin.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a secret key for an ISV (shown once)."""
    with client() as c:
        body = {"name": name, "scopes": scope or ["admin"]}
        show(
            c.post(f"/v1/isvs/{isv}/keys", body),
            ["id", "name", "scopes", "secret"],
            as_json=as_json,
        )


@tenants.command("create")
def tenants_create(
    name: str,
    isv: Annotated[str | None, typer.Option(help="ISV delivering for it.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a tenant (brand group)."""
    with client() as c:
        show(
            c.post("/v1/tenants", {"name": name, "isv_id": isv}),
            ["id", "name", "isv_id", "created_at"],
            as_json=as_json,
        )


@tenants.command("list")
def tenants_list(as_json: JsonOpt = False) -> None:
    """List tenants."""
    with client() as c:
        show(c.get("/v1/tenants"), ["id", "name", "isv_id", "created_at"], as_json=as_json)


@brands.command("create")
def brands_create(name: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Add a brand to a tenant."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        show(
            c.post(f"/v1/tenants/{t}/brands", {"name": name}),
            ["id", "name", "created_at"],
            as_json=as_json,
        )


@brands.command("list")
def brands_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """List a tenant's brands."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        show(c.get(f"/v1/tenants/{t}/brands"), ["id", "name", "created_at"], as_json=as_json)


@sources.command("create")
def sources_create(
    name: str,
    kind: Annotated[
        str, typer.Option(help="mini_program, official_account, tmall, pos, qr, web…")
    ] = "server",
    brand: Annotated[str | None, typer.Option(help="Brand id the source belongs to.")] = None,
    rate_limit: Annotated[int | None, typer.Option(help="Events per second.")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a source; prints its write key once."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        body = {"name": name, "kind": kind, "brand_id": brand, "rate_limit": rate_limit}
        show(
            c.post(f"/v1/tenants/{t}/sources", body),
            ["id", "name", "kind", "write_key"],
            as_json=as_json,
        )


@sources.command("list")
def sources_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """List a tenant's sources."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        show(
            c.get(f"/v1/tenants/{t}/sources"),
            ["id", "name", "kind", "brand_id", "rate_limit"],
            as_json=as_json,
        )


@sources.command("rotate-key")
def sources_rotate_key(source: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Add a new write key to a source (revoke the old one with 'keys revoke')."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        show(
            c.post(f"/v1/tenants/{t}/sources/{source}/write-keys"),
            ["id", "source_id", "secret"],
            as_json=as_json,
        )


@keys.command("create")
def keys_create(
    name: str,
    scope: Annotated[list[str] | None, typer.Option(help="Scopes (repeat); default admin.")] = None,
    tenant: TenantOpt = None,
    platform: Annotated[bool, typer.Option(help="A platform-wide key instead.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a secret key (printed once): for a tenant, or with --platform for the platform."""
    with client() as c:
        body = {"name": name, "scopes": scope or ["admin"]}
        path = "/v1/keys" if platform else f"/v1/tenants/{resolve_tenant(c, tenant)}/keys"
        show(c.post(path, body), ["id", "name", "scopes", "secret"], as_json=as_json)


@keys.command("list")
def keys_list(
    tenant: TenantOpt = None,
    platform: Annotated[bool, typer.Option(help="Platform keys instead.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List keys (never their secrets)."""
    with client() as c:
        path = "/v1/keys" if platform else f"/v1/tenants/{resolve_tenant(c, tenant)}/keys"
        show(
            c.get(path),
            ["id", "kind", "name", "prefix", "scopes", "source_id", "revoked_at", "last_used_at"],
            as_json=as_json,
        )


@keys.command("revoke")
def keys_revoke(
    key_id: str,
    tenant: TenantOpt = None,
    platform: Annotated[bool, typer.Option(help="A platform or ISV key.")] = False,
) -> None:
    """Revoke a key at once."""
    with client() as c:
        path = (
            f"/v1/keys/{key_id}"
            if platform
            else (f"/v1/tenants/{resolve_tenant(c, tenant)}/keys/{key_id}")
        )
        show(c.delete(path), ["id", "name", "revoked_at"])


@app.command("audit")
def audit(
    tenant: TenantOpt = None,
    limit: Annotated[int, typer.Option(help="How many entries.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Show the audit log of administrative changes, newest first."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        show(
            c.get(f"/v1/tenants/{t}/audit", limit=limit),
            ["occurred_at", "actor", "action", "target_type", "target_id"],
            as_json=as_json,
        )


# --- bulk import ------------------------------------------------------------------------

PathArg = Annotated[
    Path, typer.Argument(exists=True, help="A .csv, .jsonl or .parquet file, or a folder of them.")
]
SourceOpt = Annotated[
    str | None,
    typer.Option("--source", "-s", help="Source id (default: the tenant's only source)."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", "-m", help="Rename a column: sourceColumn=targetField (repeat)."),
]
BatchOpt = Annotated[int, typer.Option(help="Rows per request.", min=1)]


def _import(
    kind: Literal["events", "profiles"],
    path: Path,
    source: str | None,
    tenant: str | None,
    mapping: list[str] | None,
    batch_rows: int,
) -> None:
    from quanyu.ingest import importer

    fields = importer.parse_mapping(mapping or [])
    files = importer.discover(path)
    with client() as c:
        t = resolve_tenant(c, tenant)
        if source is None:
            found = c.get(f"/v1/tenants/{t}/sources")
            if len(found) != 1:
                names = ", ".join(f"{s['id']} ({s['name']})" for s in found) or "none yet"
                raise NotFound(f"Name a source with --source; the tenant's sources: {names}.")
            source = str(found[0]["id"])
        progress = progress_bar(
            TextColumn(f"{kind} from {path.name}"),
            TextColumn("{task.fields[rate]} rows/s"),
            TimeRemainingColumn(),
        )
        with progress:
            task = progress.add_task("import", total=importer.estimate_rows(files), rate="…")

            def advance(rows: int) -> None:
                progress.advance(task, rows)
                speed = progress.tasks[task].speed
                progress.update(task, rate=f"{speed:,.0f}" if speed else "…")

            start = time.perf_counter()
            done = importer.run_import(
                c,
                path,
                tenant=t,
                source=source,
                kind=kind,
                mapping=fields,
                batch_rows=batch_rows,
                on_progress=advance,
            )
            elapsed = time.perf_counter() - start
            progress.update(task, total=done.read, completed=done.read)
    table = Table(
        title=f"Imported {kind}: {len(files)} file(s) in {elapsed:.1f} s"
        f" ({done.read / max(elapsed, 1e-9):,.0f} rows/s)"
    )
    table.add_column("rows")
    table.add_column("count", justify="right")
    for label, n in (
        ("read", done.read),
        ("loaded (new)", done.loaded),
        ("duplicates", done.duplicates),
        ("rejected", done.rejected_total),
    ):
        table.add_row(label, f"{n:,}")
    for code, n in done.rejected.most_common():
        table.add_row(f"  rejected: {code}", f"{n:,}")
    out.print(table)
    if done.unused_mapping:
        err.print(f"Warning: no file had the mapped column(s) {', '.join(done.unused_mapping)}.")
    if done.rejected_file:
        out.print(f"Rejected rows and their reasons: {done.rejected_file}")


@import_app.command("events")
def import_events(
    path: PathArg,
    source: SourceOpt = None,
    tenant: TenantOpt = None,
    mapping: MapOpt = None,
    batch_rows: BatchOpt = 250_000,
) -> None:
    """Import Segment-shaped events (type, event, userId, properties …) from files."""
    _import("events", path, source, tenant, mapping, batch_rows)


@import_app.command("profiles")
def import_profiles(
    path: PathArg,
    source: SourceOpt = None,
    tenant: TenantOpt = None,
    mapping: MapOpt = None,
    batch_rows: BatchOpt = 250_000,
) -> None:
    """Import people, one per row: identifier columns (userId, phone, email, unionid,
    openid + app_id, member_id) and any other columns as traits."""
    _import("profiles", path, source, tenant, mapping, batch_rows)


# --- events and dead letters ------------------------------------------------------------


@events.command("list")
def events_list(
    tenant: TenantOpt = None,
    source: Annotated[str | None, typer.Option(help="Source id.")] = None,
    user: Annotated[str | None, typer.Option(help="userId or anonymousId.")] = None,
    event: Annotated[str | None, typer.Option(help="Track event name.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show stored events, newest first."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        page = c.get(f"/v1/tenants/{t}/events", source=source, user=user, event=event, limit=limit)
        show(
            page["items"],
            ["received_at", "type", "event", "user_id", "anonymous_id", "message_id", "source_id"],
            as_json=as_json,
        )


@dead.command("list")
def dead_list(
    tenant: TenantOpt = None,
    status: Annotated[str | None, typer.Option(help="open, flagged, replayed, discarded.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show dead letters with their reasons."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        page = c.get(f"/v1/tenants/{t}/dead-letters", status=status, limit=limit)
        show(
            page["items"],
            ["id", "received_at", "source_id", "code", "reason", "status"],
            as_json=as_json,
        )


@dead.command("replay")
def dead_replay(ids: list[str], tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Replay open dead letters through ingest (idempotent)."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        result = c.post(f"/v1/tenants/{t}/dead-letters/replay", {"ids": ids})
        if as_json:
            show(result, [], as_json=True)
            return
        out.print(
            f"replayed {len(result['replayed'])}, still rejected {len(result['still_rejected'])}"
        )
        for r in result["still_rejected"]:
            out.print(f"  {r['id']}: {r['message']}")


# --- tracking plans and data quality ----------------------------------------------------

plans_app = typer.Typer(
    help="Tracking plans: the events a source may send, with JSON Schemas.", no_args_is_help=True
)
app.add_typer(plans_app, name="plans")


def _plan_path(tenant: str, source: str) -> str:
    return f"/v1/tenants/{tenant}/sources/{source}/tracking-plan"


def _show_plan(plan: dict[str, Any], as_json: bool) -> None:
    if as_json:
        show(plan, [], as_json=True)
        return
    out.print(
        f"Source {plan['source_id']}: mode [bold]{plan['mode']}[/bold], block_invalid"
        f" {str(plan['block_invalid']).lower()}, updated {plan['updated_at']}"
    )
    rows = [
        {
            "type": e["type"],
            "name": e.get("name"),
            "schema": json.dumps(e.get("properties") or e.get("traits"), ensure_ascii=False),
        }
        for e in plan["events"]
    ]
    if plan.get("identify_traits"):
        rows.append(
            {
                "type": "identify",
                "name": None,
                "schema": json.dumps(plan["identify_traits"], ensure_ascii=False),
            }
        )
    show(rows, ["type", "name", "schema"])


@plans_app.command("show")
def plans_show(source: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Show a source's tracking plan."""
    with client() as c:
        _show_plan(c.get(_plan_path(resolve_tenant(c, tenant), source)), as_json)


@plans_app.command("set")
def plans_set(
    source: str,
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="The plan as JSON: {mode, block_invalid, events: [...], identify_traits}.",
        ),
    ],
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or replace a source's tracking plan from a JSON file."""
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise QuanyuError(f"{file} is not valid JSON: {e}; fix it and run again.") from e
    with client() as c:
        path = _plan_path(resolve_tenant(c, tenant), source)
        _show_plan(c.request("PUT", path, json=body), as_json)


@plans_app.command("delete")
def plans_delete(source: str, tenant: TenantOpt = None) -> None:
    """Remove a source's tracking plan (its events are then accepted as sent)."""
    with client() as c:
        plan = c.delete(_plan_path(resolve_tenant(c, tenant), source))
        out.print(
            f"Deleted the tracking plan of {source} (mode {plan['mode']},"
            f" {len(plan['events'])} events)."
        )


@app.command("quality")
def quality(
    source: Annotated[str | None, typer.Option(help="Source id (default: every source).")] = None,
    since: Annotated[
        str | None, typer.Option(help="First UTC day, YYYY-MM-DD (default: 6 days ago).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last UTC day, YYYY-MM-DD (default: today).")
    ] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Data quality per source and day: volume, rejects, duplicates, late events, fill rates."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        report = c.get(f"/v1/tenants/{t}/quality", source=source, since=since, until=until)
        if as_json:
            show(report, [], as_json=True)
            return
        rows = [
            {
                **r,
                "duplicates": f"{r['duplicates']} ({r['duplicate_rate']:.1%})",
                "violation rate": f"{r['violation_rate']:.1%}",
                "top rule": r["violations"][0]["rule"] if r["violations"] else None,
                **{k: f"{v:.0%}" for k, v in r["fill_rates"].items()},
            }
            for r in report["rows"]
        ]
        title = f"{report['since']} .. {report['until']}"
        show(
            rows,
            [
                "day",
                "source_id",
                "volume",
                "accepted",
                "rejected",
                "flagged",
                "duplicates",
                "late",
                "future",
                "violation rate",
                "top rule",
            ],
            title=f"Data quality {title}",
        )
        show(
            rows,
            [
                "day",
                "source_id",
                "user_id",
                "anonymous_id",
                "phone",
                "email",
                "unionid",
                "openid",
                "member_id",
                "device_id",
            ],
            title=f"Identifier fill rates {title}",
        )


# --- identity (OneID) -------------------------------------------------------------------

profiles_app = typer.Typer(help="People (OneIDs): look up, split.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")
ScopeOpt = Annotated[
    str, typer.Option(help="App id of an openid, brand id of a member id, source of a user id.")
]


def _identifier(spec: str) -> tuple[str, str]:
    kind, sep, value = spec.partition(":")
    if not sep or not kind or not value:
        raise InvalidRequest(
            f"{spec!r} is not an identifier: write TYPE:VALUE, for example phone:13812345678."
        )
    return kind, value


def _evaluate(c: Client, tenant: str, truth_file: Path) -> dict[str, Any]:
    """Post a truth file (Parquet: record_id, person_id) to the evaluation endpoint."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    truth = pq.read_table(truth_file, columns=["record_id", "person_id"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, truth.schema) as writer:
        writer.write_table(truth)
    score: dict[str, Any] = c.post(
        f"/v1/tenants/{tenant}/identity/evaluate",
        content=sink.getvalue().to_pybytes(),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    return score


@app.command("resolve")
def resolve(
    tenant: TenantOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Rebuild every person.")] = False,
    evaluate: Annotated[
        Path | None, typer.Option(help="Score against a truth Parquet (record_id, person_id).")
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="Only show how far resolution trails ingest.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Resolve events into people (OneID); optionally rebuild all, or score against a truth."""
    if status and (full or evaluate is not None):
        raise InvalidRequest("--status only reads how far resolution is: run it without --full"
                             " and --evaluate.")  # fmt: skip
    with client() as c:
        t = resolve_tenant(c, tenant)
        if status:
            found = c.get(f"/v1/tenants/{t}/identity/status")
            show([found], list(found), as_json=as_json, title="Resolution")
            return
        with err.status("Resolving identities…"):
            report = c.post(f"/v1/tenants/{t}/identity/resolve", params={"full": full})
        show([report], list(report), as_json=as_json, title="Resolved")
        if evaluate is not None:
            score = _evaluate(c, t, evaluate)
            show([score], list(score), as_json=as_json, title="Pairwise agreement with the truth")


@profiles_app.command("lookup")
def profiles_lookup(
    identifier: Annotated[str, typer.Argument(help="TYPE:VALUE, e.g. phone:13812345678")],
    scope: ScopeOpt = "",
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The OneID an identifier belongs to."""
    kind, value = _identifier(identifier)
    with client() as c:
        t = resolve_tenant(c, tenant)
        ref = c.get(f"/v1/tenants/{t}/identity/lookup", type=kind, value=value, scope=scope)
        show([ref], ["profile", "type", "value"], as_json=as_json)


@profiles_app.command("show")
def profiles_show(
    who: Annotated[str, typer.Argument(help="A OneID (P42) or TYPE:VALUE (phone:138…)")],
    scope: ScopeOpt = "",
    brand: Annotated[str | None, typer.Option(help="As this brand sees the person.")] = None,
    events_shown: Annotated[int, typer.Option("--events", help="Latest events to show.")] = 10,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The 360 view of a person: identities, traits, activity, history, latest events."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        if ":" in who:
            kind, value = _identifier(who)
            view = c.get(
                f"/v1/tenants/{t}/profiles/by-identifier",
                type=kind,
                value=value,
                scope=scope,
                brand=brand,
            )
        else:
            view = c.get(f"/v1/tenants/{t}/profiles/{who}", brand=brand)
        page = c.get(f"/v1/tenants/{t}/profiles/{view['oneid']}/events", limit=events_shown)
        if as_json:
            show({**view, "events": page["items"]}, [], as_json=True)
            return
        basics = view["basics"]
        out.print(
            f"[bold]{view['oneid']}[/bold]  first seen {basics.get('first_seen')}, last seen"
            f" {basics.get('last_seen')}, {basics.get('events')} events,"
            f" brands: {', '.join(view['brands']) or '-'}"
        )
        show(
            view["identities"],
            ["type", "value", "scope", "source_id", "first_seen"],
            title="Identities",
        )
        traits = [{"trait": k, **v} for k, v in view["traits"].items()]
        show(traits, ["trait", "value", "source_id", "at", "rule"], title="Traits")
        if view["history"]:
            show(
                view["history"],
                ["changed_at", "kind", "oneid", "other_oneid", "actor", "detail"],
                title="History",
            )
        show(
            page["items"],
            ["timestamp", "type", "event", "source_id", "brand_id"],
            title="Latest events",
        )


@profiles_app.command("split")
def profiles_split(
    identifier: Annotated[str, typer.Argument(help="TYPE:VALUE of the identifier to unlink")],
    scope: ScopeOpt = "",
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Unlink an identifier from its person; the person splits and is resolved again."""
    kind, value = _identifier(identifier)
    with client() as c:
        t = resolve_tenant(c, tenant)
        result = c.delete(
            f"/v1/tenants/{t}/identity/links", type=kind, value=value, scope=scope, reason=reason
        )
        if as_json:
            show([result], list(result), as_json=True)
        else:
            out.print(
                f"Unlinked {result['unlinked']['type']} {result['unlinked']['value']};"
                f" the person is now {', '.join(result['profiles'])}."
            )


@profiles_app.command("conflicts")
def profiles_conflicts(tenant: TenantOpt = None, limit: int = 20, as_json: JsonOpt = False) -> None:
    """Links a limit refused: two people sharing an identifier they should not."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        page = c.get(f"/v1/tenants/{t}/identity/conflicts", limit=limit)
        rows = [
            {
                "edge": r["edge_id"],
                "limit": r["limit"],
                "a": f"{r['a']['type']} {r['a']['value']} ({r['a']['profile']})",
                "b": f"{r['b']['type']} {r['b']['value']} ({r['b']['profile']})",
                "seen_at": r["seen_at"],
            }
            for r in page["data"]
        ]
        show(
            rows if not as_json else page["data"],
            ["edge", "limit", "a", "b", "seen_at"],
            as_json=as_json,
        )


from quanyu.cli_tags import audiences_app, destinations_app, tags_app  # noqa: E402

app.add_typer(tags_app, name="tags")
app.add_typer(audiences_app, name="audiences")
app.add_typer(destinations_app, name="destinations")

from quanyu.cli_consent import consent_app  # noqa: E402

app.add_typer(consent_app, name="consent")

from quanyu.cli_privacy import privacy_app  # noqa: E402

app.add_typer(privacy_app, name="privacy")

from quanyu.cli_ledger import ledger_app  # noqa: E402

app.add_typer(ledger_app, name="ledger")

from quanyu.cli_codes import codes_app  # noqa: E402

app.add_typer(codes_app, name="codes")

from quanyu.cli_scans import scans_app  # noqa: E402

app.add_typer(scans_app, name="scans")

from quanyu.cli_users import users_app  # noqa: E402

app.add_typer(users_app, name="users")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app, turning Quanyu errors into one line and exit code 1."""
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except QuanyuError as e:
        err.print(f"[red]Error:[/red] {e.message}", highlight=False)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        err.print("Aborted.")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # click usage errors carry their own exit code
        # Typer may vendor its own click: its usage errors are not click's classes, so
        # they are known by what they can do (show themselves, give an exit code)
        show, code = getattr(e, "show", None), getattr(e, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise


if __name__ == "__main__":
    main()
