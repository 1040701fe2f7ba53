"""Lifecycle transitions in bulk: print, activate, reject and replace, aggregate, ship,
receive, void, recall and destroy.

Each call is one transaction over a list of codes or an order's seq range: it checks
every named code against ``rules.py`` in SQL first and changes nothing if any breaks
them (the error names up to five, with their state and what is allowed), then updates
the codes — and, for ship, receive and recall, whatever is packed inside them — and
appends one event (and its ledger leaf) listing the codes touched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from quanyu.codes import events, service
from quanyu.codes import lifecycle_sql as q
from quanyu.codes.models import LEVELS, CodeEvent, Selector
from quanyu.codes.rules import CASCADES, Action, IllegalTransition, refuse
from quanyu.codes.serials import CodeKeys
from quanyu.engine import Session, Statement
from quanyu.errors import NotFound, ValidationFailed
from quanyu.ids import utcnow

_STAGED = ("codes_sel", "codes_target")


def _input(db: Session, codes: list[str]) -> None:
    keys = [service.code_key(c) for c in codes]
    db.register("staged_input", pa.table({"code_key": pa.array(keys, pa.int64()),
                                          "code": pa.array(codes, pa.string())}))  # fmt: skip


def _select(db: Session, keys: CodeKeys, tenant: str, sel: Selector) -> int:
    """Stage the selected codes as ``codes_sel``; return how many there are."""
    if sel.codes is not None and sel.order_id is None:
        codes = sorted(set(service.canonical_codes(keys, sel.codes)))
        _input(db, codes)
        db.stage("codes_sel", q.SELECT_LIST, [tenant])
        missing = [r[0] for r in db.execute(q.MISSING)]
        db.unregister("staged_input")
        if missing:
            raise NotFound(
                f"code(s) {', '.join(missing)} were not issued by tenant {tenant}:"
                " check them; nothing changed"
            )
    elif sel.order_id is not None and sel.codes is None:
        order = service.get_order(db, tenant=tenant, order_id=sel.order_id)
        lo, hi = sel.seq_from or 1, sel.seq_to or order.generated
        db.stage("codes_sel", q.SELECT_RANGE, [tenant, order.id, lo, hi])
    else:
        raise ValidationFailed(
            "name the codes either as a list (codes) or as an order (order_id with an"
            " optional seq_from/seq_to range), not both and not neither"
        )
    row = db.one(q.COUNT_SEL)
    n = int(row[0]) if row else 0
    if n == 0:
        raise ValidationFailed("the selection names no codes: check the order and seq range")
    return n


def _check(db: Session, action: Action) -> None:
    rows = db.execute(q.OFFENDERS[action])
    if rows:
        refuse(action, [(r[0], r[1], r[2], r[3]) for r in rows], int(rows[0][4]))


def _finish(
    db: Session, tenant: str, action: str, actor: str, context: dict[str, Any]
) -> CodeEvent:
    """Record the event for the staged ``codes_target`` and drop the staged tables."""
    now = utcnow()
    col = db.arrow(q.TARGET_CODES).column(0).combine_chunks().cast(pa.string())
    offsets = np.frombuffer(col.buffers()[1], np.int32)[col.offset : col.offset + len(col) + 1]
    data = col.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]] if len(col) else b""
    event = events.record(db, tenant=tenant, action=action, actor=actor, count=len(col),
                          codes_sha256=hashlib.sha256(data).hexdigest(), at=now,
                          context=context)  # fmt: skip
    db.execute(q.INSERT_ITEMS, [tenant, event.id])
    for name in _STAGED:
        db.unstage(name)
    return event


def _bulk(
    db: Session,
    keys: CodeKeys,
    *,
    tenant: str,
    action: Action,
    sel: Selector,
    actor: str,
    update: Statement,
    params: Sequence[Any],
    context: dict[str, Any] | None = None,
) -> CodeEvent:
    with events.recording(db, tenant):
        _select(db, keys, tenant, sel)
        _check(db, action)
        if action in CASCADES:
            db.stage("codes_target", q.SELECT_TREE[action], [tenant] * 4)
        else:
            db.stage("codes_target", q.SELECT_SAME)
        db.execute(update, [*params, tenant])
        return _finish(db, tenant, action, actor, context or {})


class Transition(Protocol):
    """A simple bulk transition: print, activate, void, recall or destroy."""

    def __call__(
        self, db: Session, keys: CodeKeys, *, tenant: str, sel: Selector, actor: str,
        reason: str = "",
    ) -> CodeEvent: ...  # fmt: skip


def _simple(action: Action, target: str) -> Transition:
    def run(db: Session, keys: CodeKeys, *, tenant: str, sel: Selector, actor: str,
            reason: str = "") -> CodeEvent:  # fmt: skip
        return _bulk(db, keys, tenant=tenant, action=action, sel=sel, actor=actor,
                     update=q.SET_STATE, params=[target, utcnow()],
                     context={"reason": reason or None})  # fmt: skip

    run.__doc__ = f"Move the selected codes to {target} (``{action}``); see the module doc."
    return run


print_codes = _simple("print", "printed")
activate = _simple("activate", "activated")
void = _simple("void", "voided")
recall = _simple("recall", "recalled")
destroy = _simple("destroy", "destroyed")


def ship(
    db: Session, keys: CodeKeys, *, tenant: str, sel: Selector, dealer_id: str, actor: str
) -> CodeEvent:
    """Ship top-level units (filled containers or loose items) and their contents to a
    dealer; every code records the dealer and its authorised region."""
    dealer = service.get_dealer(db, tenant=tenant, dealer_id=dealer_id)
    now = utcnow()
    return _bulk(db, keys, tenant=tenant, action="ship", sel=sel, actor=actor,
                 update=q.SET_SHIPPED, params=[now, now, dealer.id, dealer.region],
                 context={"dealer": dealer.id, "region": dealer.region})  # fmt: skip


def receive(
    db: Session, keys: CodeKeys, *, tenant: str, sel: Selector, store_id: str, actor: str
) -> CodeEvent:
    """A store receives shipped units and their contents."""
    store = service.get_store(db, tenant=tenant, store_id=store_id)
    now = utcnow()
    return _bulk(db, keys, tenant=tenant, action="receive", sel=sel, actor=actor,
                 update=q.SET_RECEIVED, params=[now, now, store.id],
                 context={"store": store.id})  # fmt: skip


def _one(db: Session, tenant: str, code: str) -> tuple[Any, ...]:
    row = db.one(q.GET_ONE, [tenant, service.code_key(code), code])
    if row is None:
        raise NotFound(f"code {code} was not issued by tenant {tenant}: check it")
    return row


def aggregate(
    db: Session, keys: CodeKeys, *, tenant: str, parent: str, children: list[str], actor: str
) -> CodeEvent:
    """Pack ``children`` (activated items, or filled boxes and cases) into ``parent``, a
    box, case or pallet of a higher level that is activated and not itself packed.

    Raises:
        IllegalTransition: the parent or a child is in the wrong state or level.
        NotFound: a code this tenant never issued.
    """
    (pcode,) = service.canonical_codes(keys, [parent])
    with events.recording(db, tenant):
        _, _, state, level, above, _ = _one(db, tenant, pcode)
        if level == "item" or state not in ("activated", "aggregated") or above is not None:
            why = ("an item holds nothing" if level == "item" else
                   f"it is packed in {above}; unpack it first" if above else
                   f"it is {state}; a parent must be activated or aggregated")  # fmt: skip
            raise IllegalTransition(f"cannot pack into {level} {pcode}: {why}")
        _select(db, keys, tenant, Selector(codes=children))
        _check(db, "pack")
        levels = {r[0] for r in db.execute(q.SEL_LEVELS)}
        if pcode in set(service.canonical_codes(keys, children)) or any(
            LEVELS.index(lv) >= LEVELS.index(level) for lv in levels
        ):
            raise IllegalTransition(
                f"cannot pack {', '.join(sorted(levels))} into {level} {pcode}: a {level}"
                f" holds only lower levels ({', '.join(LEVELS[: LEVELS.index(level)])})"
            )
        db.stage("codes_target", q.SELECT_SAME)
        now = utcnow()
        db.execute(q.SET_PARENT, [now, pcode, tenant])
        db.execute(q.SET_ONE, ["aggregated", now, tenant, service.code_key(pcode), pcode])
        return _finish(db, tenant, "aggregate", actor, {"parent": pcode, "level": level})


def reject(
    db: Session, keys: CodeKeys, *, tenant: str, code: str, replacement: str | None, actor: str
) -> CodeEvent:
    """A line read-back failed: void ``code`` and activate the spare ``replacement`` (a
    printed code of the same order) in its place.

    Raises:
        IllegalTransition: the code is not printed or activated, or the replacement is
            not a printed code of the same order.
    """
    codes = service.canonical_codes(keys, [code] + ([replacement] if replacement else []))
    with events.recording(db, tenant):
        _select(db, keys, tenant, Selector(codes=codes[:1]))
        _check(db, "reject")
        db.unstage("codes_sel")
        now = utcnow()
        bad = _one(db, tenant, codes[0])
        if len(codes) == 2:
            spare = _one(db, tenant, codes[1])
            if spare[2] != "printed" or spare[5] != bad[5]:
                raise IllegalTransition(
                    f"cannot activate {spare[3]} {codes[1]} in place of {codes[0]}: it is"
                    f" {spare[2]} in order {spare[5]}; use a printed spare of order {bad[5]}"
                )
            db.execute(q.SET_ONE, ["activated", now, tenant, spare[0], codes[1]])
            db.execute(q.SET_REPLACES, [codes[0], tenant, spare[0], codes[1]])
        db.execute(q.SET_ONE, ["voided", now, tenant, bad[0], codes[0]])
        _input(db, codes)
        db.stage("codes_target", q.SELECT_LIST, [tenant])
        db.unregister("staged_input")
        return _finish(db, tenant, "reject", actor,
                       {"replacement": codes[1] if len(codes) == 2 else None})  # fmt: skip
