"""CLI commands for scans, rewards and anomalies (``quanyu scans …``).

Like the rest of the CLI they go through the server's API (or an in-process app when no
server runs) and print tables, or JSON with ``--json``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from quanyu.cli_common import JsonOpt, TenantOpt, client, resolve_tenant, show

scans_app = typer.Typer(
    help="Scans of product codes: verify, dealer/store scans, rewards, anomalies, diversion.",
    no_args_is_help=True,
)
campaigns_app = typer.Typer(help="Reward campaigns for inner (cap) codes.", no_args_is_help=True)
scans_app.add_typer(campaigns_app, name="campaigns")

CityOpt = Annotated[str | None, typer.Option(help="Where the scan happened (a city).")]
DaysOpt = Annotated[float, typer.Option(help="How far back to look, in days.")]
_SCAN_COLUMNS = ["verdict", "code", "gtin", "state", "scans_before", "message"]
_ALERT_COLUMNS = ["kind", "subject", "severity", "summary", "detected_at"]
_CAMPAIGN_COLUMNS = ["id", "name", "gtin", "odds", "prize_cents", "issued_count", "issued_cents"]


@scans_app.command("verify")
def verify(
    code: Annotated[str, typer.Argument(help="A serial or its GS1 Digital Link URI.")],
    city: CityOpt = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Scan a code as a consumer would and print the answer (the scan is recorded)."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        got = c.post(f"/v1/public/tenants/{t}/scans", json={"code": code, "city": city})
        show(got, _SCAN_COLUMNS, as_json=as_json)


@scans_app.command("party")
def party(
    codes: Annotated[list[str], typer.Argument(help="Serials or Digital Link URIs.")],
    party_id: Annotated[str, typer.Option("--party", help="The dealer or store id.")],
    role: Annotated[str, typer.Option(help="dealer or store")] = "store",
    city: CityOpt = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record scans by a dealer or a store (the input of the diversion report)."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        body = {"codes": codes, "role": role, "party_id": party_id, "city": city}
        show(c.post(f"/v1/tenants/{t}/scans", json=body), _SCAN_COLUMNS, as_json=as_json)


@scans_app.command("detect")
def detect(days: DaysOpt = 30, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Look for counterfeit and diversion signals in recent scans; store new alerts."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        got = c.post(f"/v1/tenants/{t}/scans/anomalies/detect?days={days}")
        show(got, ["new_alerts", "by_kind"], as_json=as_json)


@scans_app.command("alerts")
def alerts(
    kind: Annotated[str | None, typer.Option(help="Only this kind, e.g. diversion.")] = None,
    dealer: Annotated[str | None, typer.Option(help="Only alerts about this dealer.")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Anomaly alerts, newest first."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        got = c.get(f"/v1/tenants/{t}/scans/alerts", kind=kind, dealer=dealer)
        show(got, _ALERT_COLUMNS, as_json=as_json)


@scans_app.command("report")
def report(
    dealer: Annotated[str, typer.Argument(help="The dealer id.")],
    days: DaysOpt = 30,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A dealer's diversion report: dealer and store scans inside and outside its region."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        got = c.get(f"/v1/tenants/{t}/scans/dealers/{dealer}/report", days=days)
        if as_json:
            show(got, [], as_json=True)
            return
        cols = ["gtin", "region", "scans", "outside", "outside_share", "outside_cities", "flagged"]
        show(got["rows"], cols, title=f"dealer {dealer}")
        if got["alerts"]:
            show(got["alerts"], _ALERT_COLUMNS, title="alerts")


@campaigns_app.command("list")
def campaigns_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Reward campaigns and what each has paid."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        show(c.get(f"/v1/tenants/{t}/rewards/campaigns"), _CAMPAIGN_COLUMNS, as_json=as_json)


@campaigns_app.command("create")
def campaigns_create(
    name: str,
    odds: Annotated[float, typer.Option(help="Chance of a win per cap, 0..1.")],
    prize_cents: Annotated[int, typer.Option(help="The prize, in cents (fen).")],
    budget_count: Annotated[int | None, typer.Option(help="At most this many prizes.")] = None,
    budget_cents: Annotated[int | None, typer.Option(help="At most this much money.")] = None,
    per_person_cap: Annotated[int | None, typer.Option(help="Wins one person may take.")] = None,
    gtin: Annotated[str | None, typer.Option(help="Only this product's caps.")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a reward pool for inner codes."""
    body = {"name": name, "odds": odds, "prize_cents": prize_cents, "gtin": gtin,
            "budget_count": budget_count, "budget_cents": budget_cents,
            "per_person_cap": per_person_cap}  # fmt: skip
    with client() as c:
        t = resolve_tenant(c, tenant)
        show(c.post(f"/v1/tenants/{t}/rewards/campaigns", json=body), _CAMPAIGN_COLUMNS,
             as_json=as_json)  # fmt: skip


@scans_app.command("epcis")
def epcis_export(
    after: Annotated[int, typer.Option(help="Export events after this event id.")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many events.")] = 100,
    tenant: TenantOpt = None,
) -> None:
    """Print code lifecycle events as an EPCIS 2.0 JSON-LD document."""
    with client() as c:
        t = resolve_tenant(c, tenant)
        show(c.get(f"/v1/tenants/{t}/epcis/events", after=after, limit=limit), [], as_json=True)
