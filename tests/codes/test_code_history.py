"""One code's history on a real database file: its own generation chunk (not its order's
other chunks, not other orders), every transition that touched it (a case's shipment
included), and its scans newest first."""

from __future__ import annotations

from datetime import timedelta

from quanyu.codes import code_history, generate, lifecycle, scans, service
from quanyu.codes.models import OrderCreate, Selector
from quanyu.codes.scans import ScanRow
from quanyu.engine import Statement
from quanyu.ids import utcnow
from tests.codes.conftest import ACTOR, Plant


def _scan(p: Plant, code: str, city: str, minutes_ago: int, role: str = "consumer") -> ScanRow:
    return ScanRow(p.tenant, code, None, False, "genuine", "shipped", None,
                   utcnow() - timedelta(minutes=minutes_ago), city, None, None, None, None,
                   role, "s-1" if role == "store" else None, "d-gz", "CN-GZ")  # fmt: skip


def test_a_codes_events_and_scans(plant: Plant) -> None:
    p = plant
    k = {"tenant": p.tenant, "actor": ACTOR}
    body = OrderCreate(product_id=p.product, quantity=4, line="L1", lot="B1")
    order = service.create_order(p.db, body, tenant=p.tenant).id
    generate.generate(p.db, p.keys, tenant=p.tenant, order_id=order, count=2)  # seq 1-2
    generate.generate(p.db, p.keys, tenant=p.tenant, order_id=order, count=2)  # seq 3-4
    other = p.order(3)  # another order's generation is not this code's
    bottle, spare = p.codes(order)[2], p.codes(order)[3]  # seq 3 and 4
    case = p.codes(p.order(1, "case"))[0]
    for c in (bottle, spare, case):
        lifecycle.print_codes(p.db, p.keys, sel=Selector(codes=[c]), reason="", **k)
        lifecycle.activate(p.db, p.keys, sel=Selector(codes=[c]), reason="", **k)
    lifecycle.aggregate(p.db, p.keys, parent=case, children=[bottle], **k)
    lifecycle.ship(p.db, p.keys, sel=Selector(codes=[case]), dealer_id="d-gz", **k)
    scans.record(
        p.db,
        [
            _scan(p, bottle, "Guiyang", 30),
            _scan(p, bottle, "遵义", 5),
            _scan(p, bottle, "贵阳", 10, "store"),
            _scan(p, spare, "Lhasa", 1),
        ],
    )

    info = service.lookup(p.db, p.keys, tenant=p.tenant, text=bottle)
    got = code_history.events(p.db, tenant=p.tenant, code=bottle, order_id=order, seq=info.seq)
    assert [e.action for e in got] == ["issue", "print", "activate", "aggregate", "ship"]
    assert '"first_seq":3' in got[0].leaf and f'"order":"{order}"' in got[0].leaf
    assert [e.id for e in got] == sorted(e.id for e in got)
    assert all(len(e.leaf_hash) == 64 for e in got)
    assert other not in "".join(e.leaf for e in got)
    first = code_history.events(p.db, tenant=p.tenant, code=p.codes(order)[0], order_id=order,
                                seq=1)  # fmt: skip
    assert [e.action for e in first] == ["issue"] and '"first_seq":1' in first[0].leaf

    total, rows = code_history.scans(p.db, tenant=p.tenant, code=bottle)
    assert total == 3 and [r.city for r in rows] == ["遵义", "贵阳", "Guiyang"]
    assert [r.role for r in rows] == ["consumer", "store", "consumer"]
    assert rows[1].party_id == "s-1" and not rows[0].precise
    assert code_history.scans(p.db, tenant=p.tenant, code=bottle, limit=1)[1][0].city == "遵义"
    assert code_history.scans(p.db, tenant=p.tenant + "x", code=bottle) == (0, [])


def test_an_events_codes_are_stored_in_code_order(plant: Plant) -> None:
    """What lets a code's history skip the rows of other codes (zone maps): each event's
    items lie in code order, whatever order the codes were given in."""
    p = plant
    k = {"tenant": p.tenant, "actor": ACTOR}
    codes = p.codes(p.order(300))
    given = sorted(codes, reverse=True)
    lifecycle.print_codes(p.db, p.keys, sel=Selector(codes=given), reason="", **k)
    items = Statement("t.items", "SELECT code FROM code_event_items WHERE tenant_id = ?")
    stored = [r[0] for r in p.db.execute(items, [p.tenant])]
    assert stored == sorted(codes)
