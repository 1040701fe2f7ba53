"""Rewards for inner (under-the-cap) codes: campaign pools with a budget, odds and
per-person caps, and redemption — one per code, whoever scans it first.

The ``reward_redemptions`` primary key (tenant, keyed hash of the inner code) is what
makes a second redemption impossible: of two transactions redeeming one cap, only one
can commit its row; the other fails on the key (or on a write-write conflict) and is
answered "already redeemed". Taking a prize from the pool is one conditional UPDATE that
checks the budget and takes the prize together. A redemption appends a ledger leaf in
the same transaction, so the log and the redemption commit together or not at all.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import time
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from quanyu.codes import scan_sql as q
from quanyu.codes.scan_models import Campaign, CampaignCreate, RedeemRequest, Redemption
from quanyu.codes.scans import Directory, ScanRow, record, serial_of
from quanyu.codes.serials import CodeKeys, ForgedCode, decode, inner_hashes, verify
from quanyu.engine import DuplicateKey, Session, WriteConflict
from quanyu.errors import Conflict, NotFound, ValidationFailed
from quanyu.ids import new_id, utcnow
from quanyu.ledger import merkle
from quanyu.ledger import service as ledger

RETRIES = 30
_RNG = secrets.SystemRandom()


def _campaign(r: tuple[Any, ...]) -> Campaign:
    return Campaign(
        id=r[0],
        name=r[1],
        gtin=r[2],
        odds=r[3],
        prize_cents=r[4],
        budget_count=r[5],
        budget_cents=r[6],
        per_person_cap=r[7],
        issued_count=r[8],
        issued_cents=r[9],
        active=r[10],
        created_at=r[11],
    )


def create_campaign(db: Session, body: CampaignCreate, *, tenant: str) -> Campaign:
    """Open a reward pool.

    Raises:
        ValidationFailed: neither a prize budget nor a money budget was given.
    """
    if body.budget_count is None and body.budget_cents is None:
        raise ValidationFailed(
            f"campaign {body.name!r} has no budget: give budget_count (prizes) and/or"
            " budget_cents (money) so the pool cannot pay out without limit"
        )
    cid, now = new_id("camp"), utcnow()
    db.execute(
        q.INSERT_CAMPAIGN,
        [
            tenant,
            cid,
            body.name,
            body.gtin,
            body.odds,
            body.prize_cents,
            body.budget_count,
            body.budget_cents,
            body.per_person_cap,
            0,
            0,
            True,
            now,
        ],
    )
    return get_campaign(db, tenant=tenant, campaign=cid)


def get_campaign(db: Session, *, tenant: str, campaign: str) -> Campaign:
    """One campaign (raises NotFound)."""
    row = db.one(q.GET_CAMPAIGN, [tenant, campaign])
    if row is None:
        raise NotFound(f"No reward campaign has id {campaign!r}; list them with GET .../campaigns.")
    return _campaign(row)


def list_campaigns(db: Session, *, tenant: str) -> list[Campaign]:
    """The tenant's campaigns, oldest first."""
    return [_campaign(r) for r in db.execute(q.LIST_CAMPAIGNS, [tenant])]


def inner_hash(keys: CodeKeys, inner_code: str) -> bytes:
    """The stored keyed hash of a canonical 16-character inner code."""
    raw = decode(np.frombuffer(inner_code.encode("ascii"), np.uint8)[None])
    return bytes(inner_hashes(keys, raw)[0])


def person_digest(keys: CodeKeys, person: str) -> str:
    """What redemptions keep of the person: a keyed hash of their identifier."""
    return hmac.new(keys.hash_key, person.encode(), hashlib.sha256).hexdigest()


def _already(db: Session, tenant: str, ih: str) -> Redemption | None:
    row = db.one(q.GET_REDEMPTION, [tenant, ih])
    if row is None:
        return None
    return Redemption(
        outcome="already_redeemed",
        redeemed_at=row[3],
        message=f"This cap was already redeemed on {row[3]:%Y-%m-%d %H:%M} UTC.",
    )


def _is_conflict(e: Exception) -> bool:
    # A commit that loses a write-write race surfaces as the driver's own transaction
    # error (Session.commit does not translate it); its text names the conflict.
    return isinstance(e, DuplicateKey | WriteConflict) or "conflict" in str(e).lower()


def redeem(
    db: Session,
    keys: CodeKeys,
    directory: Directory,
    req: RedeemRequest,
    *,
    tenant: str,
    now: datetime | None = None,
    rng: random.Random = _RNG,
) -> Redemption:
    """Redeem an inner code in a campaign: at most once per code, whatever the concurrency.

    Every attempt on a genuine cap is also recorded as an inner-code scan, so a cap
    redeemed after its case was recalled shows up as a recycled-cap signal.

    Raises:
        NotFound: no such campaign. ValidationFailed: the code is for another product.
        Conflict: the campaign stayed contended through every retry.
    """
    now = now or utcnow()
    try:
        inner = verify(keys, serial_of(req.code), inner=True).code
    except ForgedCode:
        return Redemption(outcome="forged", message="This cap code was not issued by the brand.")
    camp = get_campaign(db, tenant=tenant, campaign=req.campaign_id)
    ih = inner_hash(keys, inner)
    info = directory.by_inner(db, tenant, ih)
    if info is None:
        return Redemption(outcome="unknown", message="This cap code was not found; report it.")
    if camp.gtin is not None and info.gtin != camp.gtin:
        raise ValidationFailed(
            f"campaign {camp.id} covers GTIN {camp.gtin}; this cap is on {info.gtin}:"
            " redeem it in a campaign for that product"
        )
    bad = "recalled" if info.recalled or info.state == "recalled" else None
    bad = bad or (
        "not_released" if info.state in ("issued", "printed", "voided", "destroyed") else None
    )
    record(
        db,
        [
            ScanRow(
                tenant,
                info.code,
                None,
                True,
                bad or "genuine",
                info.state,
                info.gtin,
                now,
                None,
                None,
                None,
                None,
                None,
                "consumer",
                None,
                info.dealer_id,
                info.region,
            )
        ],
    )
    if bad == "recalled":
        return Redemption(
            outcome="recalled", message="This product was recalled: its cap cannot be redeemed."
        )
    if bad:
        return Redemption(outcome="not_released", message="This cap was never released.")
    key = ih.hex()
    if found := _already(db, tenant, key):
        return found
    person = person_digest(keys, req.person)
    for attempt in range(RETRIES):
        try:
            with ledger.appending(db, tenant), db.transaction():
                return _redeem_once(db, tenant, camp, info.code, key, person, now, rng)
        except Exception as e:
            if not _is_conflict(e):
                raise
        if found := _already(db, tenant, key):
            return found
        time.sleep(0.001 * (attempt + 1) * rng.random())
    raise Conflict(f"redeeming in campaign {camp.id} lost {RETRIES} races in a row; retry")


def _redeem_once(
    db: Session,
    tenant: str,
    camp: Campaign,
    code: str,
    key: str,
    person: str,
    now: datetime,
    rng: random.Random,
) -> Redemption:
    if camp.per_person_cap is not None:
        wins = db.one(q.PERSON_WINS, [tenant, camp.id, person])
        if wins and int(wins[0]) >= camp.per_person_cap:
            return Redemption(
                outcome="cap_reached",
                message=(
                    f"You have won {camp.per_person_cap} time(s) in this campaign, its limit;"
                    " this cap stays unredeemed."
                ),
            )
    won = rng.random() < camp.odds
    if won and not db.execute(q.TAKE_PRIZE, [tenant, camp.id]):
        return Redemption(
            outcome="pool_exhausted",
            message=("This campaign's prize pool is used up; the cap stays unredeemed."),
        )
    prize = camp.prize_cents if won else 0
    rid = new_id("rdm")
    data = orjson.dumps(
        {
            "campaign": camp.id,
            "code": code,
            "prize_cents": prize,
            "redeemed_at": now.isoformat(),
            "redemption": rid,
            "won": won,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    db.execute(
        q.INSERT_REDEMPTION, [tenant, key, rid, camp.id, code, person, won, prize, now, None]
    )
    index = ledger.append(
        db, tenant, [ledger.Leaf("redemption", f"redemption:{rid}", merkle.leaf_hash(data), data)]
    )[0]
    db.execute(q.SET_REDEMPTION_LEDGER, [index, tenant, key])
    msg = f"You won {prize / 100:.2f}!" if won else "No prize this time. Thank you for scanning."
    return Redemption(
        outcome="won" if won else "no_win",
        message=msg,
        prize_cents=prize,
        redeemed_at=now,
        ledger_index=index,
    )
