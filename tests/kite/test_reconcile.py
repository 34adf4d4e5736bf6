"""Start-up reconciliation, pure: brackets from the DB against the broker's book."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aitrapp import broker_tag, order_client_id
from aitrapp.brokers.base import (
    BrokerError,
    BrokerPosition,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Product,
)
from aitrapp.kite.reconcile import (
    BracketState,
    LocalBracket,
    LocalOrder,
    apply,
    reconcile,
)

from .conftest import PLAN, request

OTHER_PLAN = "fedcba9876543210fedcba98"


def bracket(plan: str = PLAN, qty: int = 10) -> LocalBracket:
    return LocalBracket(
        plan_id=plan,
        entry=request("ENTRY", plan=plan, qty=qty, price=250_000),
        stop=request("STOP", plan=plan, side="SELL", qty=qty, order_type=OrderType.SLM,
                     price=None, trigger=248_000),
        tp=request("TP", plan=plan, side="SELL", qty=qty, price=253_600),
    )  # fmt: skip


_ids = iter(range(1000, 10**6))


def at_broker(
    req: OrderRequest,
    status: OrderStatus,
    *,
    filled: int = 0,
    qty: int | None = None,
    order_id: str | None = None,
    tag: str | bool | None = True,
) -> OrderUpdate:
    q = req.quantity if qty is None else qty
    return OrderUpdate(
        order_id=order_id or str(next(_ids)),
        client_order_id=None,
        tag=req.tag if tag is True else (tag or None),
        status=status,
        exchange=req.exchange,
        tradingsymbol=req.tradingsymbol,
        instrument_token=req.instrument_token,
        side=req.side,
        order_type=req.order_type,
        quantity=q,
        filled_quantity=filled,
        pending_quantity=0 if status.is_terminal else q - filled,
        cancelled_quantity=0,
        average_price=2500.0 if filled else 0.0,
    )


def pos(qty: int, symbol: str = "RELIANCE") -> BrokerPosition:
    return BrokerPosition("NSE", symbol, 738561, Product.MIS, qty, 2500.0)


def test_awaiting_entry_is_in_agreement() -> None:
    b = bracket()
    r = reconcile([b], [at_broker(b.entry, OrderStatus.OPEN)], [])
    assert [v.state for v in r.brackets] == [BracketState.AWAITING_ENTRY]
    assert r.in_agreement and r.may_trade()


def test_protected_position_is_in_agreement() -> None:
    b = bracket()
    orders = [
        at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
        at_broker(b.stop, OrderStatus.TRIGGER_PENDING),
        at_broker(b.tp, OrderStatus.OPEN),
    ]
    r = reconcile([b], orders, [pos(10)])
    assert r.brackets[0].state is BracketState.OPEN and r.brackets[0].open_quantity == 10
    assert r.in_agreement, r.summary()


def test_missing_tp_is_placed_at_the_open_quantity() -> None:
    b = bracket()
    orders = [
        at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
        at_broker(b.stop, OrderStatus.TRIGGER_PENDING),
    ]
    r = reconcile([b], orders, [pos(10)])
    assert [p.request for p in r.to_place] == [b.tp]
    assert not r.in_agreement
    assert not r.may_trade() and r.may_trade(accept=True)
    assert any("place" in line for line in r.summary())


def test_both_children_missing_after_partial_entry_fill() -> None:
    b = bracket()
    r = reconcile([b], [at_broker(b.entry, OrderStatus.OPEN, filled=4)], [pos(4)])
    assert {p.request.client_order_id: p.request.quantity for p in r.to_place} == {
        b.stop.client_order_id: 4,
        b.tp.client_order_id: 4,
    }
    assert not r.to_cancel  # the entry keeps working; children will be resized as it fills


def test_tp_filled_while_down_cancels_the_orphan_stop() -> None:
    b = bracket()
    stop = at_broker(b.stop, OrderStatus.TRIGGER_PENDING)
    orders = [at_broker(b.entry, OrderStatus.COMPLETE, filled=10), stop,
              at_broker(b.tp, OrderStatus.COMPLETE, filled=10)]  # fmt: skip
    r = reconcile([b], orders, [pos(0)])
    assert r.brackets[0].state is BracketState.CLOSED
    assert [c.order_id for c in r.to_cancel] == [stop.order_id]
    assert "orphan" in r.to_cancel[0].reason
    assert not r.to_place and not r.position_mismatches


def test_short_bracket_signs_and_sides() -> None:
    b = LocalBracket(
        plan_id=OTHER_PLAN,
        entry=request("ENTRY", plan=OTHER_PLAN, side="SELL", qty=10),
        stop=request("STOP", plan=OTHER_PLAN, side="BUY", qty=10, order_type=OrderType.SLM,
                     price=None, trigger=252_000),
        tp=request("TP", plan=OTHER_PLAN, side="BUY", qty=10, price=246_000),
    )  # fmt: skip
    orders = [at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
              at_broker(b.tp, OrderStatus.OPEN)]  # fmt: skip
    r = reconcile([b], orders, [pos(-10)])
    assert not r.position_mismatches
    (place,) = r.to_place
    assert (place.request.side, place.request.quantity) == ("BUY", 10)
    assert reconcile([b], orders, [pos(10)]).position_mismatches[0].expected == -10


def test_child_sized_for_the_plan_is_resized_to_the_fill() -> None:
    b = bracket()
    stop = at_broker(b.stop, OrderStatus.TRIGGER_PENDING, qty=10)
    tp = at_broker(b.tp, OrderStatus.OPEN, qty=6)
    orders = [at_broker(b.entry, OrderStatus.OPEN, filled=6), stop, tp]
    r = reconcile([b], orders, [pos(6)])
    assert [(x.order_id, x.quantity) for x in r.to_resize] == [(stop.order_id, 6)]


def test_partially_filled_stop_shrinks_the_tp() -> None:
    b = bracket()
    tp = at_broker(b.tp, OrderStatus.OPEN)
    orders = [at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
              at_broker(b.stop, OrderStatus.OPEN, filled=4), tp]  # fmt: skip
    r = reconcile([b], orders, [pos(6)])
    assert r.brackets[0].open_quantity == 6
    assert [(x.order_id, x.quantity) for x in r.to_resize] == [(tp.order_id, 6)]
    assert not r.position_mismatches


def test_rejected_stop_exits_at_market_after_cancelling_the_tp() -> None:
    b = bracket()
    tp = at_broker(b.tp, OrderStatus.OPEN)
    orders = [at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
              at_broker(b.stop, OrderStatus.REJECTED), tp]  # fmt: skip
    r = reconcile([b], orders, [pos(10)])
    assert [c.order_id for c in r.to_cancel] == [tp.order_id]
    (exit_,) = r.to_place
    req = exit_.request
    assert req.client_order_id == order_client_id("EXIT", PLAN)
    assert req.tag == broker_tag(req.client_order_id) and len(req.tag) <= 20
    assert (req.order_type, req.side, req.quantity) == (OrderType.MARKET, "SELL", 10)
    assert req.market_protection == -1 and req.price_paise is None and req.trigger_paise is None
    off = reconcile([b], orders, [pos(10)], exit_unprotected=False)
    assert not off.to_place and "unprotected" in off.problems[0].message


def test_market_exit_takes_the_next_unused_exit_id() -> None:
    b = bracket()
    used_exit = dataclasses.replace(
        b.stop,
        client_order_id=order_client_id("EXIT", PLAN),
        tag=broker_tag(order_client_id("EXIT", PLAN)),
    )
    orders = [at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
              at_broker(b.stop, OrderStatus.CANCELLED),
              at_broker(used_exit, OrderStatus.REJECTED)]  # fmt: skip
    r = reconcile([b], orders, [pos(10)])
    assert r.to_place[0].request.client_order_id == order_client_id("EXIT1", PLAN)


def test_exit_in_flight_is_left_alone() -> None:
    b = bracket()
    cid = order_client_id("EXIT", PLAN)
    exit_req = dataclasses.replace(
        b.stop, client_order_id=cid, tag=broker_tag(cid), order_type=OrderType.MARKET
    )
    orders = [
        at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
        at_broker(exit_req, OrderStatus.PENDING),
    ]
    r = reconcile([b], orders, [pos(10)])
    assert r.actions == 0 and r.in_agreement
    assert "in flight" in r.notes[0]


def test_entry_that_never_reached_the_broker() -> None:
    b = bracket()
    r = reconcile([b], [], [])
    assert r.by_state(BracketState.ENTRY_NOT_PLACED) == [PLAN]
    assert r.in_agreement
    sent = dataclasses.replace(
        b, sent=(LocalOrder(b.entry.client_order_id, b.entry.tag, broker_order_id="777"),)
    )
    r2 = reconcile([sent], [], [])
    assert not r2.in_agreement and "777" in r2.problems[0].message


def test_live_child_without_entry_fill_is_cancelled() -> None:
    b = bracket()
    stop = at_broker(b.stop, OrderStatus.TRIGGER_PENDING)
    r = reconcile([b], [at_broker(b.entry, OrderStatus.OPEN), stop], [])
    assert [c.order_id for c in r.to_cancel] == [stop.order_id]
    assert "open a position" in r.to_cancel[0].reason


def test_rejected_then_replaced_entry_counts_once() -> None:
    b = bracket()
    orders = [at_broker(b.entry, OrderStatus.REJECTED), at_broker(b.entry, OrderStatus.OPEN)]
    r = reconcile([b], orders, [])
    assert r.brackets[0].state is BracketState.AWAITING_ENTRY and not r.problems


def test_duplicate_accepted_orders_under_one_tag_block() -> None:
    b = bracket()
    orders = [at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
              at_broker(b.stop, OrderStatus.TRIGGER_PENDING),
              at_broker(b.stop, OrderStatus.TRIGGER_PENDING),
              at_broker(b.tp, OrderStatus.OPEN)]  # fmt: skip
    r = reconcile([b], orders, [pos(10)])
    assert r.brackets[0].state is BracketState.CONFLICT
    assert "duplicate" in r.problems[0].message
    assert r.actions == 0 and not r.may_trade()


def test_over_exit_is_a_problem() -> None:
    b = bracket()
    orders = [at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
              at_broker(b.stop, OrderStatus.COMPLETE, filled=10),
              at_broker(b.tp, OrderStatus.COMPLETE, filled=10)]  # fmt: skip
    r = reconcile([b], orders, [pos(-10)])
    assert r.brackets[0].state is BracketState.CONFLICT
    assert "flipped" in r.problems[0].message
    assert not r.position_mismatches  # the book explains the broker's -10


def test_unknown_orders_and_orphans_of_closed_plans() -> None:
    b = bracket()
    manual_live = at_broker(request("ENTRY", plan=OTHER_PLAN), OrderStatus.OPEN, tag=None)
    manual_done = at_broker(request("ENTRY", plan=OTHER_PLAN), OrderStatus.CANCELLED, tag="MANUAL1")
    closed_plan_stop = at_broker(request("STOP", plan=OTHER_PLAN, side="SELL"), OrderStatus.OPEN)
    db = {closed_plan_stop.tag: order_client_id("STOP", OTHER_PLAN)}
    r = reconcile(
        [b],
        [at_broker(b.entry, OrderStatus.OPEN), manual_live, manual_done, closed_plan_stop],
        [],
        resolve=db.get,
    )
    assert {o.order_id for o in r.unknown_orders} == {manual_live.order_id, manual_done.order_id}
    assert [o.order_id for o in r.live_unknown_orders] == [manual_live.order_id]
    assert [c.order_id for c in r.to_cancel] == [closed_plan_stop.order_id]
    assert not r.may_trade()
    # a terminal unknown order alone does not block
    r2 = reconcile([b], [at_broker(b.entry, OrderStatus.OPEN), manual_done], [])
    assert r2.in_agreement


def test_position_mismatches() -> None:
    b = bracket()
    orders = [at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
              at_broker(b.stop, OrderStatus.TRIGGER_PENDING),
              at_broker(b.tp, OrderStatus.OPEN)]  # fmt: skip
    r = reconcile([b], orders, [pos(15), pos(-65, "NIFTY26JANFUT")])
    got = {(m.tradingsymbol, m.expected, m.actual) for m in r.position_mismatches}
    assert got == {("RELIANCE", 10, 15), ("NIFTY26JANFUT", 0, -65)}
    assert not r.may_trade()


def test_bad_bracket_input_names_the_field() -> None:
    b = bracket()
    with pytest.raises(ValueError, match=r"stop\.tag"):
        reconcile([dataclasses.replace(b, stop=dataclasses.replace(b.stop, tag="XYZ"))], [], [])
    with pytest.raises(ValueError, match="side must oppose"):
        reconcile([dataclasses.replace(b, stop=dataclasses.replace(b.stop, side="BUY"))], [], [])
    with pytest.raises(ValueError, match="listed twice"):
        reconcile([b, b], [], [])


class RecordingBroker:
    """Just enough of the Broker protocol to watch apply() work."""

    name = "recording"

    def __init__(self, book: list[OrderUpdate]) -> None:
        self.book = book
        self.calls: list[tuple[str, Any]] = []
        self.fail_cancel: set[str] = set()

    async def place_order(self, req: OrderRequest) -> str:
        self.calls.append(("place", req.client_order_id))
        self.book.append(at_broker(req, OrderStatus.OPEN))
        return self.book[-1].order_id

    async def modify_order(self, order_id: str, **kw: Any) -> None:
        self.calls.append(("modify", (order_id, kw)))

    async def cancel_order(self, order_id: str) -> None:
        if order_id in self.fail_cancel:
            raise BrokerError("cancel refused", retryable=False, code=400)
        self.calls.append(("cancel", order_id))

    async def find_by_tag(self, tag: str) -> OrderUpdate | None:
        return next(
            (o for o in self.book if o.tag == tag and o.status is not OrderStatus.REJECTED), None
        )

    async def orders(self) -> list[OrderUpdate]:
        return list(self.book)

    async def positions(self) -> list[BrokerPosition]:
        return []

    def updates(self) -> AsyncIterator[OrderUpdate]:
        raise NotImplementedError


async def test_apply_cancels_first_and_never_places_twice() -> None:
    b = bracket()
    tp = at_broker(b.tp, OrderStatus.OPEN)
    book = [
        at_broker(b.entry, OrderStatus.COMPLETE, filled=10),
        at_broker(b.stop, OrderStatus.REJECTED),
        tp,
    ]
    r = reconcile([b], book, [pos(10)])
    broker = RecordingBroker(book)
    res = await apply(r, broker)  # type: ignore[arg-type]
    assert [c[0] for c in broker.calls] == ["cancel", "place"]
    assert res.cancelled == (tp.order_id,)
    assert res.placed[0][0] == order_client_id("EXIT", PLAN)
    again = await apply(r, broker)  # type: ignore[arg-type]
    assert again.already_there == (order_client_id("EXIT", PLAN),) and not again.placed


async def test_apply_collects_errors_and_continues() -> None:
    b = bracket()
    stop = at_broker(b.stop, OrderStatus.TRIGGER_PENDING)
    book = [at_broker(b.entry, OrderStatus.OPEN, filled=4), stop]
    r = reconcile([b], book, [pos(4)])
    broker = RecordingBroker(book)
    res = await apply(r, broker)  # type: ignore[arg-type]
    assert res.resized == (stop.order_id,)
    assert broker.calls[0] == ("modify", (stop.order_id, {"quantity": 4}))
    assert [cid for cid, _ in res.placed] == [b.tp.client_order_id]
    orphan = reconcile([b], [at_broker(b.entry, OrderStatus.OPEN), stop], [])
    broker.fail_cancel.add(stop.order_id)
    res2 = await apply(orphan, broker)  # type: ignore[arg-type]
    assert res2.errors and "cancel refused" in res2.errors[0]
