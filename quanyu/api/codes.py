"""Codes API (one item, one code): brands' link settings, products, production orders and
their generation, printer packages, dealers and stores, and the code lifecycle in bulk."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from quanyu.api.deps import DbDep, MasterKeyDep, PrincipalDep, tenant_access
from quanyu.codes import events, generate, lifecycle, packages, service
from quanyu.codes.models import (
    AggregateRequest,
    BrandCodes,
    BrandCodesSettings,
    CodeEvent,
    CodeInfo,
    Dealer,
    DealerCreate,
    Generated,
    Order,
    OrderCreate,
    Product,
    ProductCreate,
    ReasonRequest,
    ReceiveRequest,
    RejectRequest,
    ShipRequest,
    Store,
    StoreCreate,
)
from quanyu.codes.serials import code_keys

router = APIRouter(tags=["codes"])

Read = Annotated[str, tenant_access("codes", "read")]
Write = Annotated[str, tenant_access("codes", "write")]
P = "/v1/tenants/{tenant_id}/codes"


@router.put(P + "/brands/{brand_id}")
def set_brand(tenant_id: Write, brand_id: str, body: BrandCodesSettings, db: DbDep) -> BrandCodes:
    """Set a brand's short link domain, GS1 company prefix and upper-case links."""
    return service.set_brand(db, body, tenant=tenant_id, brand_id=brand_id)


@router.get(P + "/brands/{brand_id}")
def get_brand(tenant_id: Read, brand_id: str, db: DbDep) -> BrandCodes:
    """A brand's code settings."""
    return service.brand_settings(db, tenant=tenant_id, brand_id=brand_id)


@router.post(P + "/products", status_code=201)
def create_product(tenant_id: Write, body: ProductCreate, db: DbDep) -> Product:
    """Register a product by GTIN (check digit validated)."""
    return service.create_product(db, body, tenant=tenant_id)


@router.get(P + "/products")
def list_products(tenant_id: Read, db: DbDep) -> list[Product]:
    """Every product."""
    return service.list_products(db, tenant=tenant_id)


@router.post(P + "/orders", status_code=201)
def create_order(
    tenant_id: Write, body: OrderCreate, db: DbDep, key: MasterKeyDep, principal: PrincipalDep
) -> Generated:
    """Create a production order and, unless ``generate`` is false, all its codes."""
    order = service.create_order(db, body, tenant=tenant_id)
    if not body.generate:
        return Generated(order=order, added=0, redrawn=0, seconds=0.0)
    return generate.generate(db, code_keys(key, tenant_id), tenant=tenant_id,
                             order_id=order.id, actor=principal.actor)  # fmt: skip


@router.post(P + "/orders/{order_id}/generate")
def generate_codes(
    tenant_id: Write,
    order_id: str,
    db: DbDep,
    key: MasterKeyDep,
    principal: PrincipalDep,
    count: Annotated[int | None, Query(ge=1, le=10_000_000)] = None,
) -> Generated:
    """Generate the order's next ``count`` codes (default: all it still lacks)."""
    return generate.generate(db, code_keys(key, tenant_id), tenant=tenant_id, order_id=order_id,
                             count=count, actor=principal.actor)  # fmt: skip


@router.get(P + "/orders")
def list_orders(
    tenant_id: Read, db: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[Order]:
    """Production orders, newest first."""
    return service.list_orders(db, tenant=tenant_id, limit=limit)


@router.get(P + "/orders/{order_id}")
def get_order(tenant_id: Read, order_id: str, db: DbDep) -> Order:
    """One production order."""
    return service.get_order(db, tenant=tenant_id, order_id=order_id)


@router.get(P + "/orders/{order_id}/states")
def order_states(tenant_id: Read, order_id: str, db: DbDep) -> dict[str, int]:
    """How many of the order's codes are in each lifecycle state."""
    return service.order_states(db, tenant=tenant_id, order_id=order_id)


@router.get(P + "/orders/{order_id}/package")
def package(
    tenant_id: Write,  # the package holds the inner (reward) codes: printers only
    order_id: str,
    db: DbDep,
    key: MasterKeyDep,
    seq_from: Annotated[int, Query(ge=1)] = 1,
    seq_to: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The order's code package for its line's printer: a zip of the CSV file and its
    Ed25519-signed ``manifest.json`` (verify with ``GET .../codes/package-key``)."""
    keys = code_keys(key, tenant_id)
    body, manifest = packages.build(
        db, keys, tenant=tenant_id, order_id=order_id, seq_from=seq_from, seq_to=seq_to
    )
    name = manifest.file.removesuffix(".csv") + ".zip"
    return Response(packages.zipped(body, manifest), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get(P + "/package-key")
def package_key(tenant_id: Read, key: MasterKeyDep) -> dict[str, str]:
    """The public key printers verify package manifests with (Ed25519, base64 raw)."""
    public, key_id = packages.public_key(code_keys(key, tenant_id))
    return {"algorithm": "Ed25519", "public_key": public, "key_id": key_id}


@router.get(P + "/lookup")
def lookup(
    tenant_id: Read, db: DbDep, key: MasterKeyDep, code: Annotated[str, Query(min_length=16)]
) -> CodeInfo:
    """A code's state and provenance, by code, serial, typed form or Digital Link."""
    return service.lookup(db, code_keys(key, tenant_id), tenant=tenant_id, text=code)


@router.get(P + "/qr")
def qr(
    tenant_id: Read,
    db: DbDep,
    key: MasterKeyDep,
    code: Annotated[str, Query(min_length=16)],
    format: Literal["png", "svg"] = "png",
    scale: Annotated[int, Query(ge=1, le=20)] = 4,
) -> Response:
    """A QR image of the code's Digital Link."""
    info = service.lookup(db, code_keys(key, tenant_id), tenant=tenant_id, text=code)
    media = "image/png" if format == "png" else "image/svg+xml"
    return Response(packages.qr_image(info.link, kind=format, scale=scale), media_type=media)


@router.post(P + "/dealers", status_code=201)
def create_dealer(tenant_id: Write, body: DealerCreate, db: DbDep) -> Dealer:
    """Register a dealer and its authorised region."""
    return service.create_dealer(db, body, tenant=tenant_id)


@router.get(P + "/dealers")
def list_dealers(tenant_id: Read, db: DbDep) -> list[Dealer]:
    """Every dealer."""
    return service.list_dealers(db, tenant=tenant_id)


@router.post(P + "/stores", status_code=201)
def create_store(tenant_id: Write, body: StoreCreate, db: DbDep) -> Store:
    """Register a store."""
    return service.create_store(db, body, tenant=tenant_id)


@router.get(P + "/stores")
def list_stores(tenant_id: Read, db: DbDep) -> list[Store]:
    """Every store."""
    return service.list_stores(db, tenant=tenant_id)


def _simple(action: str, run: lifecycle.Transition, doc: str) -> None:
    def endpoint(
        tenant_id: Write, body: ReasonRequest, db: DbDep, key: MasterKeyDep,
        principal: PrincipalDep,
    ) -> CodeEvent:  # fmt: skip
        return run(db, code_keys(key, tenant_id), tenant=tenant_id, sel=body,
                   actor=principal.actor, reason=body.reason)  # fmt: skip

    endpoint.__doc__ = doc
    router.post(P + f"/{action}", name=f"codes_{action}")(endpoint)


_simple("print", lifecycle.print_codes, "Mark codes printed (the printer confirmed them).")
_simple("activate", lifecycle.activate, "Activate printed codes (production-line read-back).")
_simple("void", lifecycle.void, "Void codes that were never released.")
_simple("recall", lifecycle.recall, "Recall codes and everything packed inside them.")
_simple("destroy", lifecycle.destroy, "Destroy voided, recalled or unreleased codes.")


@router.post(P + "/reject")
def reject(
    tenant_id: Write, body: RejectRequest, db: DbDep, key: MasterKeyDep, principal: PrincipalDep
) -> CodeEvent:
    """A failed read-back: void the code and activate a printed spare in its place."""
    return lifecycle.reject(db, code_keys(key, tenant_id), tenant=tenant_id, code=body.code,
                            replacement=body.replacement, actor=principal.actor)  # fmt: skip


@router.post(P + "/aggregate")
def aggregate(
    tenant_id: Write, body: AggregateRequest, db: DbDep, key: MasterKeyDep, principal: PrincipalDep
) -> CodeEvent:
    """Pack items into a box or case, or cases into a pallet."""
    return lifecycle.aggregate(db, code_keys(key, tenant_id), tenant=tenant_id,
                               parent=body.parent, children=body.children,
                               actor=principal.actor)  # fmt: skip


@router.post(P + "/ship")
def ship(
    tenant_id: Write, body: ShipRequest, db: DbDep, key: MasterKeyDep, principal: PrincipalDep
) -> CodeEvent:
    """Ship top-level units and their contents to a dealer (its region is recorded)."""
    return lifecycle.ship(db, code_keys(key, tenant_id), tenant=tenant_id,
                          sel=body,
                          dealer_id=body.dealer_id, actor=principal.actor)  # fmt: skip


@router.post(P + "/receive")
def receive(
    tenant_id: Write, body: ReceiveRequest, db: DbDep, key: MasterKeyDep, principal: PrincipalDep
) -> CodeEvent:
    """A store received shipped units."""
    return lifecycle.receive(db, code_keys(key, tenant_id), tenant=tenant_id,
                             sel=body,
                             store_id=body.store_id, actor=principal.actor)  # fmt: skip


@router.get(P + "/events")
def list_events(
    tenant_id: Read,
    db: DbDep,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[CodeEvent]:
    """Lifecycle events after ``after_id``, oldest first, with their ledger leaves."""
    return events.events_since(db, tenant=tenant_id, after_id=after_id, limit=limit)
