"""Models of the codes capability."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Level = Literal["item", "box", "case", "pallet"]
LEVELS: tuple[Level, ...] = ("item", "box", "case", "pallet")
_ID = r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$"


class BrandCodesSettings(BaseModel):
    """How a brand's codes are printed: its Digital Link domain and GS1 company prefix."""

    short_domain: str = Field(description="host of the brand's links, e.g. t.brand.cn")
    company_prefix: str | None = Field(
        None, pattern=r"^\d{6,12}$", description="GS1 company prefix, needed for pallet SSCCs"
    )
    uppercase: bool = Field(False, description="upper-case links for compact QR codes")


class BrandCodes(BrandCodesSettings):
    brand_id: str
    updated_at: datetime


class ProductCreate(BaseModel):
    gtin: str = Field(description="GTIN-8, -12, -13 or -14 with its check digit")
    brand_id: str
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(default=None, pattern=_ID, description="default: a generated id")


class Product(BaseModel):
    id: str
    gtin: str = Field(description="as GTIN-14")
    brand_id: str
    name: str
    created_at: datetime


class OrderCreate(BaseModel):
    """A production order: N codes for one product, line and lot."""

    product_id: str
    quantity: int = Field(ge=1, le=100_000_000)
    line: str = Field(min_length=1, max_length=64)
    lot: str = Field(min_length=1, max_length=64)
    level: Level = "item"
    inner_codes: bool = Field(True, description="an inner (under-the-cap) code per item")
    generate: bool = Field(True, description="generate every code now (else in chunks)")


class Order(BaseModel):
    id: str
    product_id: str
    level: Level
    quantity: int
    generated: int
    line: str
    lot: str
    inner_codes: bool
    created_at: datetime


class Generated(BaseModel):
    order: Order
    added: int
    redrawn: int = Field(description="codes drawn again because they already existed")
    seconds: float


class DealerCreate(BaseModel):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)
    region: str = Field(min_length=1, max_length=64, description="authorised sales region")


class Dealer(DealerCreate):
    created_at: datetime


class StoreCreate(BaseModel):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)
    dealer_id: str | None = None
    city: str | None = None


class Store(StoreCreate):
    created_at: datetime


class Selector(BaseModel):
    """Which codes: a list (codes, serials or links), or an order, or a seq range of one."""

    codes: list[str] | None = Field(default=None, max_length=1_000_000)
    order_id: str | None = None
    seq_from: int | None = Field(default=None, ge=1)
    seq_to: int | None = Field(default=None, ge=1)


class ShipRequest(Selector):
    dealer_id: str


class ReceiveRequest(Selector):
    store_id: str


class ReasonRequest(Selector):
    reason: str = Field("", max_length=500)


class RejectRequest(BaseModel):
    """A production-line read-back failed: void ``code`` and activate ``replacement``."""

    code: str
    replacement: str | None = None


class AggregateRequest(BaseModel):
    parent: str = Field(description="the box, case or pallet code")
    children: list[str] = Field(min_length=1, max_length=100_000)


class CodeEvent(BaseModel):
    id: int
    action: str
    at: datetime
    actor: str
    count: int
    leaf: str = Field(description="canonical JSON leaf payload, no personal data")
    leaf_hash: str = Field(description="hex SHA-256 of the leaf")


class CodeInfo(BaseModel):
    code: str
    serial: str = Field(description="code and tag, as printed")
    typed: str = Field(description="hand-typing form with the check character")
    link: str
    state: str
    level: str
    order_id: str
    product_id: str
    gtin: str
    seq: int
    sscc: str | None
    parent_code: str | None
    dealer_id: str | None
    region: str | None
    store_id: str | None
    state_at: datetime


class Manifest(BaseModel):
    """A code package's manifest: what the file holds and a signature over it."""

    order_id: str
    line: str
    lot: str
    gtin: str
    file: str
    count: int
    first: str
    last: str
    sha256: str
    algorithm: Literal["Ed25519"] = "Ed25519"
    key_id: str
    signature: str = ""
