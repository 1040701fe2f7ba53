"""The code lifecycle: every (state, action) pair for a bottle, table-driven against an
explicit list of the legal moves, plus cases, pallets, cascades, reject-and-replace,
atomic batches and the events (ledger leaves) each call leaves behind."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from quanyu.codes import events, lifecycle, rules, service
from quanyu.codes.models import Selector
from quanyu.codes.rules import ACTIONS, STATES, IllegalTransition
from quanyu.codes.serials import CodeKeys
from quanyu.config import Settings
from quanyu.errors import NotFound
from quanyu.ledger import service as ledger
from quanyu.store import open_store
from tests.codes.conftest import ACTOR, Plant, make_plant

#: The only moves a loose bottle may make; everything else must be refused.
LEGAL = {
    ("issued", "print"),
    ("printed", "activate"),
    ("printed", "reject"),
    ("activated", "reject"),
    ("activated", "pack"),
    ("activated", "ship"),
    ("shipped", "receive"),
    ("issued", "void"),
    ("printed", "void"),
    ("activated", "void"),
    ("activated", "recall"),
    ("aggregated", "recall"),
    ("shipped", "recall"),
    ("received", "recall"),
    ("issued", "destroy"),
    ("printed", "destroy"),
    ("voided", "destroy"),
    ("recalled", "destroy"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    engine = open_store(Settings(data_dir=Path(tmp_path_factory.mktemp("codes")) / "data"))
    with engine.connect() as db:
        yield make_plant(engine, db, os.urandom(32))
    engine.close()


def one(p: Plant, level: str = "item") -> str:
    return p.codes(p.order(1, level))[0]  # type: ignore[arg-type]


def go(p: Plant, action: str, code: str, **kw: str) -> None:
    k = {"tenant": p.tenant, "actor": ACTOR}
    sel = Selector(codes=[code])
    if action == "pack":
        lifecycle.aggregate(
            p.db, p.keys, parent=kw.get("parent") or ready_case(p), children=[code], **k
        )
    elif action == "ship":
        lifecycle.ship(p.db, p.keys, sel=sel, dealer_id="d-gz", **k)
    elif action == "receive":
        lifecycle.receive(p.db, p.keys, sel=sel, store_id="s-1", **k)
    elif action == "reject":
        lifecycle.reject(p.db, p.keys, code=code, replacement=None, **k)
    else:
        fn = {
            "print": lifecycle.print_codes,
            "activate": lifecycle.activate,
            "void": lifecycle.void,
            "recall": lifecycle.recall,
            "destroy": lifecycle.destroy,
        }[action]
        fn(p.db, p.keys, sel=sel, **k)


def ready_case(p: Plant, level: str = "case") -> str:
    case = one(p, level)
    go(p, "print", case)
    go(p, "activate", case)
    return case


def reach(p: Plant, state: str) -> str:
    """A fresh bottle in ``state``, got there by real transitions."""
    code = one(p)
    path = {
        "issued": [],
        "printed": ["print"],
        "activated": ["print", "activate"],
        "aggregated": ["print", "activate", "pack"],
        "voided": ["print", "void"],
        "shipped": ["print", "activate", "pack"],
        "received": ["print", "activate", "pack"],
        "recalled": ["print", "activate", "recall"],
        "destroyed": ["print", "void", "destroy"],
    }[state]
    for action in path:
        go(p, action, code)
    if state in ("shipped", "received"):
        case = service.lookup(p.db, p.keys, tenant=p.tenant, text=code).parent_code
        assert case
        go(p, "ship", case)
        if state == "received":
            go(p, "receive", case)
    assert state_of(p, code) == state
    return code


def state_of(p: Plant, code: str) -> str:
    return service.lookup(p.db, p.keys, tenant=p.tenant, text=code).state


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_transition_of_a_bottle(world: Plant, state: str, action: str) -> None:
    code = reach(world, state)
    parent = service.lookup(world.db, world.keys, tenant=world.tenant, text=code).parent_code
    pure = rules.refusal(action, code, state, "item", parent)  # type: ignore[arg-type]
    if (state, action) in LEGAL:
        assert pure is None
        go(world, action, code)
        assert state_of(world, code) == rules.TARGET[action]  # type: ignore[index]
        return
    assert pure is not None and code in pure
    with pytest.raises(IllegalTransition) as e:
        go(world, action, code)
    message = e.value.message
    assert code in message and "nothing changed" in message and f"cannot {action}" in message
    assert state in message or "packed" in message
    assert state_of(world, code) == state


def test_an_empty_case_does_not_ship_and_a_bottle_in_a_case_ships_with_it(plant: Plant) -> None:
    case = ready_case(plant)
    with pytest.raises(IllegalTransition, match=f"case {case}: the case is empty"):
        go(plant, "ship", case)
    bottle = reach(plant, "activated")
    go(plant, "pack", bottle, parent=case)
    with pytest.raises(IllegalTransition, match=f"packed in {case}; ship {case} instead"):
        go(plant, "ship", bottle)
    go(plant, "ship", case)
    info = service.lookup(plant.db, plant.keys, tenant=plant.tenant, text=bottle)
    assert (info.state, info.dealer_id, info.region) == ("shipped", "d-gz", "CN-GZ")


def test_levels_nest_upwards_only(plant: Plant) -> None:
    with pytest.raises(IllegalTransition, match="an item holds nothing"):
        go(plant, "pack", reach(plant, "activated"), parent=reach(plant, "activated"))
    box, case = ready_case(plant, "box"), ready_case(plant, "case")
    go(plant, "pack", reach(plant, "activated"), parent=case)
    with pytest.raises(IllegalTransition, match="box holds only lower levels"):
        go(plant, "pack", case, parent=box)


def test_pallet_ships_receives_and_recalls_everything_inside(plant: Plant) -> None:
    pallet = ready_case(plant, "pallet")
    sscc = service.lookup(plant.db, plant.keys, tenant=plant.tenant, text=pallet).sscc
    assert sscc and sscc.startswith("06901234") and len(sscc) == 18
    cases = [ready_case(plant) for _ in range(2)]
    bottles = [reach(plant, "activated") for _ in range(4)]
    lifecycle.aggregate(
        plant.db,
        plant.keys,
        tenant=plant.tenant,
        parent=cases[0],
        children=bottles[:2],
        actor=ACTOR,
    )
    lifecycle.aggregate(
        plant.db,
        plant.keys,
        tenant=plant.tenant,
        parent=cases[1],
        children=bottles[2:],
        actor=ACTOR,
    )
    go(plant, "recall", bottles[3])  # recalled alone before shipping: stays recalled
    lifecycle.aggregate(
        plant.db, plant.keys, tenant=plant.tenant, parent=pallet, children=cases, actor=ACTOR
    )
    shipped = lifecycle.ship(
        plant.db,
        plant.keys,
        tenant=plant.tenant,
        sel=Selector(codes=[pallet]),
        dealer_id="d-gz",
        actor=ACTOR,
    )
    assert shipped.count == 1 + 2 + 3
    assert [state_of(plant, b) for b in bottles] == ["shipped"] * 3 + ["recalled"]
    go(plant, "receive", pallet)
    assert {state_of(plant, c) for c in [*cases, *bottles[:3]]} == {"received"}
    info = service.lookup(plant.db, plant.keys, tenant=plant.tenant, text=bottles[0])
    assert info.store_id == "s-1" and info.parent_code == cases[0]
    go(plant, "recall", pallet)
    assert {state_of(plant, c) for c in [pallet, *cases, *bottles]} == {"recalled"}
    second = ready_case(plant, "pallet")
    next_sscc = service.lookup(plant.db, plant.keys, tenant=plant.tenant, text=second).sscc
    assert next_sscc and int(next_sscc[8:17]) == int(sscc[8:17]) + 1


def test_reject_voids_and_activates_a_printed_spare_of_the_same_order(plant: Plant) -> None:
    order = plant.order(4)
    a, b, c, d = plant.codes(order)
    lifecycle.print_codes(
        plant.db,
        plant.keys,
        tenant=plant.tenant,
        sel=Selector(order_id=order, seq_to=3),
        actor=ACTOR,
    )
    with pytest.raises(IllegalTransition, match=f"{d}.*it is issued"):
        lifecycle.reject(
            plant.db, plant.keys, tenant=plant.tenant, code=a, replacement=d, actor=ACTOR
        )
    other = reach(plant, "printed")
    with pytest.raises(IllegalTransition, match="use a printed spare of order"):
        lifecycle.reject(
            plant.db, plant.keys, tenant=plant.tenant, code=a, replacement=other, actor=ACTOR
        )
    assert state_of(plant, a) == "printed"
    lifecycle.reject(plant.db, plant.keys, tenant=plant.tenant, code=a, replacement=b, actor=ACTOR)
    assert (state_of(plant, a), state_of(plant, b), state_of(plant, c)) == (
        "voided",
        "activated",
        "printed",
    )


def test_a_batch_with_one_illegal_code_changes_nothing(plant: Plant) -> None:
    order = plant.order(10)
    lifecycle.print_codes(
        plant.db,
        plant.keys,
        tenant=plant.tenant,
        sel=Selector(order_id=order, seq_from=2),
        actor=ACTOR,
    )
    with pytest.raises(IllegalTransition, match=r"1 code\(s\) refused.*it is issued"):
        lifecycle.activate(
            plant.db, plant.keys, tenant=plant.tenant, sel=Selector(order_id=order), actor=ACTOR
        )
    assert service.order_states(plant.db, tenant=plant.tenant, order_id=order) == {
        "issued": 1,
        "printed": 9,
    }
    with pytest.raises(NotFound, match="0000000000000000"):
        lifecycle.print_codes(
            plant.db, plant.keys, tenant=plant.tenant, sel=Selector(codes=["0" * 16]), actor=ACTOR
        )


def test_every_call_is_one_event_and_one_ledger_leaf(plant: Plant) -> None:
    before = events.events_since(plant.db, tenant=plant.tenant)
    order = plant.order(6)
    codes = plant.codes(order)
    made = lifecycle.print_codes(
        plant.db, plant.keys, tenant=plant.tenant, sel=Selector(codes=codes[:4]), actor=ACTOR
    )
    after = events.events_since(
        plant.db, tenant=plant.tenant, after_id=before[-1].id if before else 0
    )
    assert [e.action for e in after] == ["issue", "print"] and after[-1] == made
    assert made.leaf_hash == hashlib.sha256(b"\x00" + made.leaf.encode()).hexdigest()
    assert events.event_codes(plant.db, tenant=plant.tenant, event_id=made.id) == sorted(codes[:4])
    assert f'"codes_sha256":"{events.codes_digest(codes[:4])}"' in made.leaf
    assert ledger.size(plant.db, plant.tenant) == made.id
    leaf = ledger.get_leaf(plant.db, plant.tenant, made.id - 1)
    assert leaf.kind == "code" and leaf.leaf_hash.hex() == made.leaf_hash
    assert "phone" not in made.leaf and ACTOR not in made.leaf


def test_keys_differ_per_tenant(plant: Plant) -> None:
    other = CodeKeys.derive(plant.master, plant.tenant + "x")
    assert other.tag_key != plant.keys.tag_key and other.sign_key != plant.keys.sign_key
