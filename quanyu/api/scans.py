"""Scan API: the public consumer scan and cap redemption (no key; rate-limited per IP and
device), dealer and store scans, reward campaigns, anomaly alerts and diversion reports."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from quanyu.api.deps import DbDep, tenant_access
from quanyu.codes import anomalies, epcis, rewards, scans
from quanyu.codes.scan_log import ScanLog
from quanyu.codes.scan_models import (
    Alert,
    AlertKind,
    Campaign,
    CampaignCreate,
    DealerReport,
    DetectResult,
    PartyScanRequest,
    RedeemRequest,
    Redemption,
    ScanRequest,
    ScanResult,
)
from quanyu.ids import utcnow
from quanyu.store.journal import journal_dir

router = APIRouter(tags=["scans"])

Read = Annotated[str, tenant_access("codes", "read")]
Write = Annotated[str, tenant_access("codes", "write")]
_lock = threading.Lock()


def scanner(request: Request) -> scans.Scanner:
    """The server's scanner, made on first use (its writer thread lives with the process)."""
    return _scanner_of(request.app.state)


def _scanner_of(state: Any) -> scans.Scanner:
    found: scans.Scanner | None = getattr(state, "scanner", None)
    if found is None:
        with _lock:
            found = getattr(state, "scanner", None)
            if found is None:
                ingestor = state.ingestor
                found = state.scanner = scans.Scanner(
                    state.engine, state.master_key, ingest=ingestor.writer.submit,
                    sealer=ingestor.sealer_for, journal=journal_dir(state.settings.data_dir),
                )  # fmt: skip
    return found


def recover(state: Any) -> None:
    """At start: when the scan journal holds scans an earlier process answered but did
    not fold into the database (it was killed), make the scanner, which folds them."""
    if ScanLog.waiting(state.engine, journal_dir(state.settings.data_dir)):
        _scanner_of(state)


def warm(state: Any) -> None:
    """At server start: when some tenant has products with codes, make the scanner and
    start loading those tenants' code snapshots in the background."""
    with state.engine.connect() as db:
        tenants = scans.tenants_with_codes(db)
    if tenants:
        _scanner_of(state).warm(tenants)


def flush(state: Any) -> None:
    """Wait until every scan answered so far is in the database (before a read)."""
    found: scans.Scanner | None = getattr(state, "scanner", None)
    if found is not None:
        found.flush()


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/v1/public/tenants/{tenant_id}/scans")
async def consumer_scan(tenant_id: str, body: ScanRequest, request: Request) -> ScanResult:
    """Verify a product code (its serial or GS1 Digital Link URI) for a consumer: genuine
    and first scan, genuine but scanned before (when and where first), not released,
    recalled, voided, or forged. No key; limited per IP and per device id (429 with
    Retry-After). Precise lat/lon are stored only with ``precise_consent``."""
    s = scanner(request)
    result, pending = await asyncio.to_thread(
        s.begin_consumer_scan, body, tenant=tenant_id, ip=_ip(request)
    )
    try:  # waiting for the commits holds no thread
        await asyncio.gather(*(asyncio.wrap_future(f) for f in pending))
    except Exception as e:
        raise s.failed(result, tenant_id, e) from e
    return result


@router.post("/v1/public/tenants/{tenant_id}/redemptions")
async def redeem(tenant_id: str, body: RedeemRequest, request: Request) -> Redemption:
    """Redeem an under-the-cap code in a reward campaign: once per code, ever."""
    s = scanner(request)
    s.limiter.check(_ip(request), None)

    def run() -> Redemption:
        with s.engine.connect() as db:
            return rewards.redeem(db, s.keys(tenant_id), s.directory, body, tenant=tenant_id)

    return await asyncio.to_thread(run)


@router.post("/v1/tenants/{tenant_id}/scans")
async def party_scan(
    tenant_id: Write, body: PartyScanRequest, request: Request
) -> list[ScanResult]:
    """Scans by a dealer or store (receiving, stocking, selling), with its id: the input
    of the channel-diversion report."""
    s = scanner(request)
    return await asyncio.to_thread(s.party_scan, body, tenant=tenant_id)


@router.post("/v1/tenants/{tenant_id}/rewards/campaigns", status_code=201)
def create_campaign(tenant_id: Write, body: CampaignCreate, db: DbDep) -> Campaign:
    """Open a reward pool for inner codes: odds, prize, budget and per-person cap."""
    return rewards.create_campaign(db, body, tenant=tenant_id)


@router.get("/v1/tenants/{tenant_id}/rewards/campaigns")
def list_campaigns(tenant_id: Read, db: DbDep) -> list[Campaign]:
    """The tenant's reward campaigns with what each has paid out."""
    return rewards.list_campaigns(db, tenant=tenant_id)


def _since(days: float) -> datetime:
    return utcnow() - timedelta(days=days)


Days = Annotated[float, Query(gt=0, le=3660, description="how far back to look, in days")]


@router.post("/v1/tenants/{tenant_id}/scans/anomalies/detect")
def detect(tenant_id: Write, db: DbDep, days: Days = 30) -> DetectResult:
    """Look for counterfeit and diversion signals in recent scans; store new alerts."""
    return anomalies.detect(db, tenant=tenant_id, since=_since(days))


@router.get("/v1/tenants/{tenant_id}/scans/alerts")
def list_alerts(
    tenant_id: Read,
    db: DbDep,
    kind: AlertKind | None = None,
    dealer: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Alert]:
    """Anomaly alerts with their evidence, newest first."""
    return anomalies.list_alerts(db, tenant=tenant_id, kind=kind, dealer=dealer, limit=limit)


@router.get("/v1/tenants/{tenant_id}/scans/dealers/{dealer_id}/report")
def dealer_report(tenant_id: Read, dealer_id: str, db: DbDep, days: Days = 30) -> DealerReport:
    """One dealer's products: dealer and store scans inside and outside its region."""
    return anomalies.dealer_report(db, tenant=tenant_id, dealer=dealer_id, since=_since(days))


@router.get("/v1/tenants/{tenant_id}/epcis/events")
def epcis_events(
    tenant_id: Read,
    db: DbDep,
    request: Request,
    after: Annotated[int, Query(ge=0, description="export events after this event id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Code lifecycle events as an EPCIS 2.0 JSON-LD document (CBV 2.0 steps and
    dispositions). The ``X-Next-After`` header is the ``after`` of the next page."""
    keys = scanner(request).keys(tenant_id)
    doc, nxt = epcis.export(db, keys, tenant=tenant_id, after=after, limit=limit)
    return Response(orjson.dumps(doc), media_type="application/ld+json",
                    headers={"X-Next-After": str(nxt)})  # fmt: skip
