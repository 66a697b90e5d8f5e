"""SimBroker: asynchronous cancels and replaces, their races with fills, partial fills."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.sim import PartialFills
from core.broker import (
    InsufficientQty,
    NotCancelable,
    NotReplaceable,
    OrderRejected,
    WashTradeRejected,
)
from core.domain import ClientOrderId, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from core.marketdata.bar import Bar
from core.orders import OrderModel
from tests.kit.brokers import (
    AAPL,
    feed,
    kinds,
    make_bar,
    make_request,
    ny,
    settle,
    sim_broker,
    subscribe,
)

S = OrderStatus
D = Decimal


def stop_buy(trigger: str = "100.05", qty: int = 10, **kw: object) -> OrderRequest:
    return make_request(OrderType.STOP, stop_price=trigger, qty=qty, **kw)  # type: ignore[arg-type]


def hit(minute: int, low: str = "99.90", high: str = "100.20") -> Bar:
    """A bar that crosses 100.05 from below."""
    return make_bar(ny(10, minute), "100.00", high, low, "100.10")


async def test_cancel_is_a_request_completed_after_the_latency() -> None:
    broker, clock = sim_broker(cancel_latency=2.0)
    events = subscribe(broker)
    snap = await broker.submit(stop_buy())
    await broker.cancel(snap.broker_order_id)
    assert (await broker.get_order(snap.broker_order_id)).status is S.PENDING_CANCEL
    await broker.cancel(snap.broker_order_id)  # asking again is harmless
    clock.advance(1.9)
    broker.tick()
    assert (await broker.get_order(snap.broker_order_id)).status is S.PENDING_CANCEL
    clock.advance(0.1)
    await settle()  # the background task completes it without any call
    assert kinds(events) == ["new", "pending_cancel", "canceled"]
    assert (await broker.get_order(snap.broker_order_id)).status is S.CANCELED
    with pytest.raises(NotCancelable):
        await broker.cancel(snap.broker_order_id)


async def test_a_fill_wins_the_cancel_race() -> None:
    broker, clock = sim_broker(cancel_latency=5.0)
    events = subscribe(broker)
    snap = await broker.submit(stop_buy())
    clock.set(ny(10, 0, 58))
    await broker.cancel(snap.broker_order_id)
    await feed(broker, clock, hit(0))  # the bar ends at 10:01, before the cancel completes
    clock.advance(5)
    broker.tick()
    order = await broker.get_order(snap.broker_order_id)
    assert (order.status, order.filled_qty) == (S.FILLED, 10)
    assert kinds(events) == ["new", "pending_cancel", "fill", "order_cancel_rejected"]
    with pytest.raises(NotCancelable, match="filled"):
        await broker.cancel(snap.broker_order_id)


async def test_partial_fill_then_cancel_keeps_what_filled() -> None:
    broker, clock = sim_broker(cancel_latency=1.0, partial_fills=PartialFills(chunks=(D(4),)))
    snap = await broker.submit(stop_buy())
    await feed(broker, clock, hit(0))
    assert (await broker.get_order(snap.broker_order_id)).status is S.PARTIALLY_FILLED
    await broker.cancel(snap.broker_order_id)
    clock.advance(1)
    broker.tick()
    order = await broker.get_order(snap.broker_order_id)
    assert (order.status, order.filled_qty) == (S.CANCELED, 4)
    [position] = await broker.positions()
    assert position.qty == 4


async def test_partial_fill_chunks_then_the_remainder_at_the_next_open() -> None:
    broker, clock = sim_broker(partial_fills=PartialFills(chunks=(D(3),)))
    events = subscribe(broker)
    snap = await broker.submit(stop_buy())
    await feed(broker, clock, hit(0))
    await feed(broker, clock, make_bar(ny(10, 1), "100.30", "100.40", "100.20", "100.35"))
    fills = await broker.fills_since(ny(9))
    assert [(f.qty, f.price) for f in fills] == [(3, D("100.05")), (7, D("100.30"))]
    assert kinds(events) == ["new", "partial_fill", "fill"]
    order = await broker.get_order(snap.broker_order_id)
    assert order.avg_fill_price == (3 * D("100.05") + 7 * D("100.30")) / 10


async def test_partial_fill_ratio() -> None:
    broker, clock = sim_broker(partial_fills=PartialFills(ratio=D("0.5")))
    await broker.submit(stop_buy(qty=5))
    for minute in range(3):
        await feed(broker, clock, hit(minute))
    assert [f.qty for f in await broker.fills_since(ny(9))] == [2, 1, 1]
    # 5 -> floor(2.5)=2, 3 -> floor(1.5)=1, 2 -> 1 (then 1 remains for the next bar)


async def test_partial_buy_remainder_blocks_the_protection_as_a_wash_trade() -> None:
    broker, clock = sim_broker(partial_fills=PartialFills(chunks=(D(4),)))
    await broker.submit(stop_buy())
    await feed(broker, clock, hit(0))
    with pytest.raises(WashTradeRejected):
        await broker.submit(make_request(OrderType.TRAILING_STOP, side=Side.SELL, qty=4))


async def test_replace_gives_a_new_order_and_replaces_the_old() -> None:
    broker, clock = sim_broker(replace_latency=1.0)
    events = subscribe(broker)
    old = await broker.submit(stop_buy("100.05"))
    new = await broker.replace(old.broker_order_id, stop_price=D("100.50"))
    assert new.broker_order_id != old.broker_order_id and new.replaces == old.broker_order_id
    assert new.status is S.SUBMITTED
    with pytest.raises(NotReplaceable):  # pending_replace
        await broker.replace(old.broker_order_id, stop_price=D("100.60"))
    clock.advance(1)
    broker.tick()
    old_now = await broker.get_order(old.broker_order_id)
    assert (old_now.status, old_now.replaced_by) == (S.REPLACED, new.broker_order_id)
    new_now = await broker.get_order(new.broker_order_id)
    assert (new_now.status, new_now.stop_price, new_now.qty) == (S.ACCEPTED, D("100.50"), 10)
    assert kinds(events) == ["new", "pending_replace", "replaced", "new"]
    await feed(broker, clock, hit(1))  # high 100.20 < 100.50
    assert (await broker.get_order(new.broker_order_id)).status is S.ACCEPTED


async def test_the_old_order_fills_before_the_replace_lands() -> None:
    broker, clock = sim_broker(replace_latency=30.0)
    events = subscribe(broker)
    old = await broker.submit(stop_buy("100.05"))
    clock.set(ny(10, 0, 50))
    new = await broker.replace(old.broker_order_id, stop_price=D("100.50"))
    await feed(broker, clock, hit(0))
    clock.set(ny(10, 1, 20))
    broker.tick()
    assert (await broker.get_order(old.broker_order_id)).status is S.FILLED
    rejected = await broker.get_order(new.broker_order_id)
    assert rejected.status is S.REJECTED and "filled" in (rejected.reject_reason or "")
    assert kinds(events) == ["new", "pending_replace", "fill", "order_replace_rejected", "rejected"]


async def test_replace_refusals() -> None:
    broker, clock = sim_broker(ny(8), cancel_latency=5.0)
    queued = await broker.submit(stop_buy("100.05", time_in_force=TimeInForce.GTC))
    with pytest.raises(NotReplaceable, match="accepted"):  # waiting for the open
        await broker.replace(queued.broker_order_id, stop_price=D("100.10"))
    clock.set(ny(9, 30))
    with pytest.raises(OrderRejected, match="changes nothing"):
        await broker.replace(queued.broker_order_id, stop_price=D("100.05"))
    await broker.cancel(queued.broker_order_id)
    with pytest.raises(NotReplaceable, match="pending_cancel"):
        await broker.replace(queued.broker_order_id, stop_price=D("100.10"))


async def test_replacing_a_trailing_stop_keeps_its_high_water_mark() -> None:
    broker, clock = sim_broker()
    broker.seed_position(AAPL, D(10), D("100"))
    await feed(broker, clock, make_bar(ny(9, 59), "100", "100", "100", "100"))
    trail = await broker.submit(
        make_request(OrderType.TRAILING_STOP, side=Side.SELL, trail_percent="2",
                     time_in_force=TimeInForce.GTC)
    )  # fmt: skip
    await feed(broker, clock, make_bar(ny(10), "100", "105", "100", "104"))
    new = await broker.replace(trail.broker_order_id, trail_percent=D("1"))
    broker.tick()
    assert (await broker.get_order(new.broker_order_id)).stop_price == D("105") * D("0.99")


async def test_replace_sell_qty_above_the_position_is_refused() -> None:
    broker, _ = sim_broker()
    broker.seed_position(AAPL, D(10), D("100"))
    stop = await broker.submit(
        make_request(OrderType.STOP, side=Side.SELL, qty=10, stop_price="95")
    )
    with pytest.raises(InsufficientQty):
        await broker.replace(stop.broker_order_id, qty=D(11))
    resized = await broker.replace(
        stop.broker_order_id, qty=D(8), client_order_id=ClientOrderId("k")
    )
    assert resized.client_order_id == "k"


async def test_the_event_stream_drives_an_order_model_to_the_brokers_truth() -> None:
    broker, clock = sim_broker(
        ny(9, 59),
        ack_latency=0.5,
        cancel_latency=3.0,
        partial_fills=PartialFills(chunks=(D(2), D(3))),
    )
    events = subscribe(broker)
    request = stop_buy()
    model = OrderModel.from_request(request)
    snap = await broker.submit(request)
    clock.advance(0.5)
    broker.tick()
    await feed(broker, clock, hit(0))
    await broker.cancel(snap.broker_order_id)  # at 10:01, due 10:01:03
    await feed(broker, clock, hit(1))  # a fill inside bar 10:01 beats it
    clock.advance(3)
    broker.tick()
    for event in events.pending():
        model.apply(event)
    truth = await broker.get_order(snap.broker_order_id)
    assert (model.status, model.filled_qty, model.avg_fill_price) == (
        truth.status,
        truth.filled_qty,
        truth.avg_fill_price,
    )
    assert (truth.status, truth.filled_qty) == (S.CANCELED, 5)
