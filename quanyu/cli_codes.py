"""CLI commands for one-item-one-code (``quanyu codes …``): brands' link settings,
products, orders and their generation, printer packages, QR images, dealers, stores and
the code lifecycle in bulk. Through the server's API like the rest of the CLI."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from quanyu.cli_common import JsonOpt, TenantOpt, client, err, out, resolve_tenant, show
from quanyu.errors import InvalidRequest

codes_app = typer.Typer(
    help="One item, one code: products, orders, packages, lifecycle.", no_args_is_help=True
)
CodesArg = Annotated[list[str] | None, typer.Argument(help="codes, serials or Digital Links")]
FileOpt = Annotated[Path | None, typer.Option("--file", help="a file of codes, one a line")]
OrderOpt = Annotated[str | None, typer.Option("--order", help="every code of this order")]
FromOpt = Annotated[int | None, typer.Option("--from", help="first seq of the order's range")]
ToOpt = Annotated[int | None, typer.Option("--to", help="last seq of the order's range")]
_ORDER_COLS = ["id", "product_id", "level", "quantity", "generated", "line", "lot"]
_EVENT_COLS = ["id", "action", "count", "at", "actor", "leaf_hash"]
STEP = 1_000_000


def _base(c: Any, tenant: str | None) -> str:
    return f"/v1/tenants/{resolve_tenant(c, tenant)}/codes"


def _selector(
    codes: list[str] | None, file: Path | None, order: str | None, lo: int | None, hi: int | None
) -> dict[str, Any]:
    listed = list(codes or [])
    if file:
        listed += [line.strip() for line in file.read_text().splitlines() if line.strip()]
    if listed and order:
        raise InvalidRequest("name codes or --order, not both")
    if not listed and not order:
        raise InvalidRequest("name the codes: as arguments, with --file, or with --order")
    if order:
        return {"order_id": order, "seq_from": lo, "seq_to": hi}
    return {"codes": listed}


@codes_app.command("brand")
def brand(
    brand_id: str,
    domain: Annotated[str, typer.Option(help="short link domain, e.g. t.brand.cn")],
    prefix: Annotated[str | None, typer.Option(help="GS1 company prefix (for SSCC)")] = None,
    uppercase: Annotated[bool, typer.Option(help="upper-case links (smaller QR)")] = False,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a brand's Digital Link domain and GS1 company prefix."""
    body = {"short_domain": domain, "company_prefix": prefix, "uppercase": uppercase}
    with client() as c:
        made = c.put(f"{_base(c, tenant)}/brands/{brand_id}", body)
        show(made, ["brand_id", "short_domain", "company_prefix", "uppercase"], as_json=as_json)


@codes_app.command("product")
def product(
    gtin: str,
    brand_id: Annotated[str, typer.Option("--brand", help="brand id")],
    name: Annotated[str, typer.Option(help="product name")],
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a product by GTIN."""
    with client() as c:
        made = c.post(f"{_base(c, tenant)}/products", {"gtin": gtin, "brand_id": brand_id,
                                                        "name": name})  # fmt: skip
        show(made, ["id", "gtin", "brand_id", "name"], as_json=as_json)


@codes_app.command("products")
def products(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Every product."""
    with client() as c:
        show(c.get(f"{_base(c, tenant)}/products"), ["id", "gtin", "brand_id", "name"],
             as_json=as_json)  # fmt: skip


@codes_app.command("order")
def order(
    product_id: str,
    quantity: Annotated[int, typer.Option("--quantity", "-n", help="how many codes")],
    line: Annotated[str, typer.Option(help="production line")],
    lot: Annotated[str, typer.Option(help="lot / batch number")],
    level: Annotated[str, typer.Option(help="item, box, case or pallet")] = "item",
    inner: Annotated[bool, typer.Option(help="inner (under-the-cap) codes")] = True,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a production order and generate its codes, with a progress bar."""
    body = {"product_id": product_id, "quantity": quantity, "line": line, "lot": lot,
            "level": level, "inner_codes": inner, "generate": False}  # fmt: skip
    with client() as c:
        base = _base(c, tenant)
        made = c.post(f"{base}/orders", body)["order"]
        progress = Progress("generate", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=err)  # fmt: skip
        with progress:
            task = progress.add_task("generate", total=quantity)
            done = 0
            while done < quantity:
                step = min(STEP, quantity - done)
                made = c.post(f"{base}/orders/{made['id']}/generate", params={"count": step})[
                    "order"
                ]
                done = made["generated"]
                progress.update(task, completed=done)
        show(made, _ORDER_COLS, as_json=as_json)


@codes_app.command("orders")
def orders(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Production orders, newest first."""
    with client() as c:
        show(c.get(f"{_base(c, tenant)}/orders"), _ORDER_COLS, as_json=as_json)


@codes_app.command("states")
def states(order_id: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """How many of an order's codes are in each state."""
    with client() as c:
        found = c.get(f"{_base(c, tenant)}/orders/{order_id}/states")
        show([{"state": k, "codes": v} for k, v in found.items()], ["state", "codes"],
             as_json=as_json)  # fmt: skip


@codes_app.command("package")
def package(
    order_id: str,
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the zip")] = Path("."),
    seq_from: FromOpt = None,
    seq_to: ToOpt = None,
    tenant: TenantOpt = None,
) -> None:
    """Download an order's printer package (CSV + signed manifest) as a zip."""
    with client() as c:
        data = c.download(f"{_base(c, tenant)}/orders/{order_id}/package",
                          seq_from=seq_from, seq_to=seq_to)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        manifest = json.loads(z.read("manifest.json"))
    path = out_dir / (manifest["file"].removesuffix(".csv") + ".zip")
    path.write_bytes(data)
    out.print(f"{path}: {manifest['count']} codes, {manifest['first']} … {manifest['last']}")


@codes_app.command("verify-package")
def verify_package(
    path: Path,
    public_key: Annotated[str | None, typer.Option(help="base64 key (default: ask server)")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Check a package zip offline: file hash and manifest signature (as a printer would)."""
    from quanyu.codes.packages import verify_package as check

    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
        body = z.read(manifest["file"])
    if public_key is None:
        with client() as c:
            public_key = str(c.get(f"{_base(c, tenant)}/package-key")["public_key"])
    check(manifest, body, public_key)
    out.print(f"{path}: OK, {manifest['count']} codes signed by key {manifest['key_id']}")


@codes_app.command("qr")
def qr(
    codes: Annotated[list[str], typer.Argument(help="up to 20 codes")],
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the images")] = Path("."),
    fmt: Annotated[str, typer.Option("--format", help="png or svg")] = "png",
    tenant: TenantOpt = None,
) -> None:
    """Write QR images of codes' Digital Links (a handful at a time)."""
    if len(codes) > 20:
        raise InvalidRequest(f"{len(codes)} codes: QR images are made 20 at a time at most")
    out_dir.mkdir(parents=True, exist_ok=True)
    with client() as c:
        base = _base(c, tenant)
        for code in codes:
            path = out_dir / f"{code}.{fmt}"
            path.write_bytes(c.download(f"{base}/qr", code=code, format=fmt))
            out.print(str(path))


@codes_app.command("lookup")
def lookup(code: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """A code's state and provenance."""
    with client() as c:
        show(c.get(f"{_base(c, tenant)}/lookup", code=code),
             ["code", "serial", "state", "level", "gtin", "order_id", "seq", "parent_code",
              "dealer_id", "region", "store_id", "link"], as_json=as_json)  # fmt: skip


@codes_app.command("dealer")
def dealer(
    dealer_id: str,
    name: Annotated[str, typer.Option(help="dealer name")],
    region: Annotated[str, typer.Option(help="authorised sales region")],
    tenant: TenantOpt = None,
) -> None:
    """Register a dealer and its authorised region."""
    with client() as c:
        made = c.post(f"{_base(c, tenant)}/dealers", {"id": dealer_id, "name": name,
                                                       "region": region})  # fmt: skip
        show(made, ["id", "name", "region"])


@codes_app.command("store")
def store(
    store_id: str,
    name: Annotated[str, typer.Option(help="store name")],
    dealer_id: Annotated[str | None, typer.Option("--dealer", help="supplying dealer")] = None,
    city: Annotated[str | None, typer.Option(help="city")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Register a store."""
    with client() as c:
        body = {"id": store_id, "name": name, "dealer_id": dealer_id, "city": city}
        made = c.post(f"{_base(c, tenant)}/stores", body)
        show(made, ["id", "name", "dealer_id", "city"])


def _transition(action: str, doc: str) -> None:
    def command(
        codes: CodesArg = None, file: FileOpt = None, order_id: OrderOpt = None,
        seq_from: FromOpt = None, seq_to: ToOpt = None,
        reason: Annotated[str, typer.Option(help="why (recorded in the event)")] = "",
        tenant: TenantOpt = None, as_json: JsonOpt = False,
    ) -> None:  # fmt: skip
        body = {**_selector(codes, file, order_id, seq_from, seq_to), "reason": reason}
        with client() as c:
            show(c.post(f"{_base(c, tenant)}/{action}", body), _EVENT_COLS, as_json=as_json)

    command.__doc__ = doc
    codes_app.command(action)(command)


_transition("print", "Mark codes printed.")
_transition("activate", "Activate printed codes (production-line read-back).")
_transition("void", "Void unreleased codes.")
_transition("recall", "Recall codes and everything packed in them.")
_transition("destroy", "Destroy voided, recalled or unreleased codes.")


@codes_app.command("reject")
def reject(
    code: str,
    replacement: Annotated[str | None, typer.Option(help="printed spare to activate")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A failed line read-back: void the code, activate a spare in its place."""
    with client() as c:
        made = c.post(f"{_base(c, tenant)}/reject", {"code": code, "replacement": replacement})
        show(made, _EVENT_COLS, as_json=as_json)


@codes_app.command("aggregate")
def aggregate(
    parent: str,
    children: CodesArg = None,
    file: FileOpt = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pack codes into a box, case or pallet."""
    listed = _selector(children, file, None, None, None)["codes"]
    with client() as c:
        made = c.post(f"{_base(c, tenant)}/aggregate", {"parent": parent, "children": listed})
        show(made, _EVENT_COLS, as_json=as_json)


@codes_app.command("ship")
def ship(
    dealer_id: Annotated[str, typer.Option("--dealer", help="dealer shipped to")],
    codes: CodesArg = None, file: FileOpt = None, order_id: OrderOpt = None,
    seq_from: FromOpt = None, seq_to: ToOpt = None,
    tenant: TenantOpt = None, as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Ship top-level units (and their contents) to a dealer."""
    body = {**_selector(codes, file, order_id, seq_from, seq_to), "dealer_id": dealer_id}
    with client() as c:
        show(c.post(f"{_base(c, tenant)}/ship", body), _EVENT_COLS, as_json=as_json)


@codes_app.command("receive")
def receive(
    store_id: Annotated[str, typer.Option("--store", help="receiving store")],
    codes: CodesArg = None, file: FileOpt = None, order_id: OrderOpt = None,
    seq_from: FromOpt = None, seq_to: ToOpt = None,
    tenant: TenantOpt = None, as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """A store received shipped units."""
    body = {**_selector(codes, file, order_id, seq_from, seq_to), "store_id": store_id}
    with client() as c:
        show(c.post(f"{_base(c, tenant)}/receive", body), _EVENT_COLS, as_json=as_json)


@codes_app.command("events")
def list_events(
    after: Annotated[int, typer.Option(help="only events after this id")] = 0,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lifecycle events, oldest first."""
    with client() as c:
        show(c.get(f"{_base(c, tenant)}/events", after_id=after), _EVENT_COLS, as_json=as_json)
