"""Reward redemption of inner codes on a real database file: outcomes, budgets, odds,
per-person caps, the ledger leaf, and many threads redeeming one cap at once — exactly
one wins."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from quanyu.codes import rewards
from quanyu.codes.scan_models import CampaignCreate, RedeemRequest, Redemption
from quanyu.codes.scans import CoreDirectory
from quanyu.codes.serials import CodeKeys
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import NotFound, ValidationFailed
from quanyu.identity.secrets import load_master_key
from quanyu.ids import new_id
from quanyu.ledger import merkle
from quanyu.ledger import service as ledger
from tests.codes.test_scans import GTIN, Made, make_code, product


class Pool:
    def __init__(self, engine: DuckDBEngine, tmp_path: Path) -> None:
        self.engine = engine
        self.tenant = new_id("ten")
        self.keys = CodeKeys.derive(load_master_key(tmp_path), self.tenant)
        with engine.connect() as db:
            self.product = product(db, self.tenant)

    def code(self, state: str = "activated") -> Made:
        with self.engine.connect() as db:
            return make_code(db, self.keys, self.tenant, self.product, state)

    def campaign(self, **kw: object) -> str:
        body = CampaignCreate(
            **{
                "name": "cny",
                "odds": 1.0,
                "prize_cents": 888,  # type: ignore[arg-type]
                "budget_count": 100,
                **kw,
            }
        )
        with self.engine.connect() as db:
            return rewards.create_campaign(db, body, tenant=self.tenant).id

    def redeem(self, code: str, campaign: str, person: str = "o_1", seed: int = 0) -> Redemption:
        req = RedeemRequest(code=code, campaign_id=campaign, person=person)
        with self.engine.connect() as db:
            return rewards.redeem(
                db, self.keys, CoreDirectory(), req, tenant=self.tenant, rng=random.Random(seed)
            )


@pytest.fixture
def pool(engine: DuckDBEngine, tmp_path: Path) -> Pool:
    return Pool(engine, tmp_path)


def test_win_once_then_already_redeemed_with_a_ledger_leaf(pool: Pool) -> None:
    camp = pool.campaign()
    made = pool.code()
    won = pool.redeem(made.inner_serial, camp)
    assert won.outcome == "won" and won.prize_cents == 888 and won.ledger_index == 0
    again = pool.redeem(made.inner_serial, camp, person="o_2")
    assert again.outcome == "already_redeemed" and "already redeemed" in again.message
    with pool.engine.connect() as db:
        leaf = ledger.get_leaf(db, pool.tenant, 0)
        got = rewards.get_campaign(db, tenant=pool.tenant, campaign=camp)
    assert leaf.kind == "redemption" and leaf.data is not None
    assert merkle.leaf_hash(leaf.data) == leaf.leaf_hash
    assert made.code.encode() in leaf.data and b"o_1" not in leaf.data  # no personal data
    assert (got.issued_count, got.issued_cents) == (1, 888)


def test_outer_code_is_not_a_cap_and_forged_caps_are_refused(pool: Pool) -> None:
    camp = pool.campaign()
    made = pool.code()
    assert pool.redeem(made.serial, camp).outcome == "forged"  # the outer code's tag
    wrong = made.inner_serial[:-1] + ("1" if made.inner_serial[-1] != "1" else "2")
    assert pool.redeem(wrong, camp).outcome == "forged"
    assert pool.redeem(made.inner_serial, camp).outcome == "won"


def test_recalled_and_unreleased_caps(pool: Pool) -> None:
    camp = pool.campaign()
    assert pool.redeem(pool.code("recalled").inner_serial, camp).outcome == "recalled"
    assert pool.redeem(pool.code("printed").inner_serial, camp).outcome == "not_released"


def test_budget_odds_and_per_person_cap(pool: Pool) -> None:
    capped = pool.campaign(per_person_cap=1)
    assert pool.redeem(pool.code().inner_serial, capped).outcome == "won"
    third = pool.code()
    assert pool.redeem(third.inner_serial, capped).outcome == "cap_reached"
    assert pool.redeem(third.inner_serial, capped, person="o_other").outcome == "won"
    tiny = pool.campaign(budget_count=None, budget_cents=1000)  # one 8.88 prize fits
    assert pool.redeem(pool.code().inner_serial, tiny).outcome == "won"
    assert pool.redeem(pool.code().inner_serial, tiny).outcome == "pool_exhausted"
    never = pool.campaign(odds=0.0)
    assert pool.redeem(pool.code().inner_serial, never).outcome == "no_win"


def test_campaign_needs_a_budget_and_the_right_product(pool: Pool) -> None:
    with pytest.raises(ValidationFailed, match="no budget"):
        pool.campaign(budget_count=None)
    other = pool.campaign(gtin="06901234567885")
    with pytest.raises(ValidationFailed, match="covers GTIN"):
        pool.redeem(pool.code().inner_serial, other)
    with pytest.raises(NotFound):
        pool.redeem(pool.code().inner_serial, "camp_missing")
    assert GTIN != "06901234567885"


def test_concurrent_redemption_of_one_cap_exactly_one_wins(pool: Pool) -> None:
    camp = pool.campaign(budget_count=1000)
    made = pool.code()
    n = 24
    barrier = threading.Barrier(n)
    results: list[Redemption] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def go(i: int) -> None:
        try:
            barrier.wait()
            r = pool.redeem(made.inner_serial, camp, person=f"o_{i}", seed=i)
        except BaseException as e:  # noqa: BLE001 - collected, failed on below
            with lock:
                errors.append(e)
            return
        with lock:
            results.append(r)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    outcomes = sorted(r.outcome for r in results)
    assert outcomes.count("won") == 1, outcomes
    assert outcomes.count("already_redeemed") == n - 1, outcomes
    with pool.engine.connect() as db:
        got = rewards.get_campaign(db, tenant=pool.tenant, campaign=camp)
        assert got.issued_count == 1  # the losers' prize takes were rolled back
        assert ledger.size(db, pool.tenant) == 1


def test_concurrent_redemptions_of_different_caps_all_count(pool: Pool) -> None:
    camp = pool.campaign(budget_count=10)
    made = [pool.code() for _ in range(12)]
    results: list[Redemption] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(made))

    def go(i: int) -> None:
        barrier.wait()
        r = pool.redeem(made[i].inner_serial, camp, person=f"o_{i}", seed=i)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(made))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == ["pool_exhausted"] * 2 + ["won"] * 10, outcomes
    with pool.engine.connect() as db:
        assert rewards.get_campaign(db, tenant=pool.tenant, campaign=camp).issued_count == 10
        assert ledger.size(db, pool.tenant) == 10
