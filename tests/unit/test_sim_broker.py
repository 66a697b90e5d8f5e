"""SimBroker: orders through bars, the brokers' rules, sessions, account books."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from brokers.sim import SimBroker
from core.broker import (
    Broker,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    InsufficientQty,
    NotFound,
    UnsupportedOrder,
    WashTradeRejected,
)
from core.capabilities import SIM
from core.domain import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from core.fills import IBKR_FRICTION
from tests.kit.brokers import (
    AAPL,
    feed,
    flat_bar,
    kinds,
    make_bar,
    make_request,
    ny,
    sim_broker,
    subscribe,
)

S = OrderStatus
D = Decimal
NEXT_DAY = (2025, 3, 4)


def stop_buy(trigger: str = "100.05", qty: int = 10, **kw: object) -> OrderRequest:
    return make_request(OrderType.STOP, stop_price=trigger, qty=qty, **kw)  # type: ignore[arg-type]


async def test_is_a_broker() -> None:
    broker, _ = sim_broker()
    assert isinstance(broker, Broker)
    assert broker.name == "sim" and broker.capabilities is SIM


async def test_stop_buy_accepts_then_fills_from_bars() -> None:
    broker, clock = sim_broker()
    events = subscribe(broker)
    snap = await broker.submit(stop_buy("100.05"))
    assert (snap.status, snap.raw_status) == (S.ACCEPTED, "new")
    await feed(broker, clock, make_bar(ny(10), "100.00", "100.04", "99.90", "100.00"))
    assert (await broker.get_order(snap.broker_order_id)).status is S.ACCEPTED
    await feed(broker, clock, make_bar(ny(10, 1), "100.00", "100.20", "99.95", "100.10"))
    order = await broker.get_order(snap.broker_order_id)
    assert (order.status, order.filled_qty, order.avg_fill_price) == (S.FILLED, 10, D("100.05"))
    assert kinds(events) == ["new", "fill"]
    [position] = await broker.positions()
    assert (position.symbol, position.qty, position.avg_entry_price) == (AAPL, 10, D("100.05"))
    account = await broker.account()
    assert account.cash == D(100_000) - D("1000.50")
    assert account.equity == account.cash + 10 * D("100.10")


async def test_gap_through_the_trigger_fills_at_the_open() -> None:
    broker, clock = sim_broker()
    snap = await broker.submit(stop_buy("100.05"))
    await feed(broker, clock, make_bar(ny(10), "100.40", "100.60", "100.30", "100.50"))
    assert (await broker.get_order(snap.broker_order_id)).avg_fill_price == D("100.40")


async def test_a_bar_that_started_before_the_order_cannot_fill_it() -> None:
    broker, clock = sim_broker(ny(10, 0, 30))
    snap = await broker.submit(stop_buy("100.05"))
    clock.set(ny(10, 1))
    await broker.on_bar(make_bar(ny(10), "100.00", "101.00", "99.90", "100.90"))
    assert (await broker.get_order(snap.broker_order_id)).status is S.ACCEPTED


async def test_friction_and_ibkr_commission_are_applied() -> None:
    broker, clock = sim_broker(friction=IBKR_FRICTION)
    snap = await broker.submit(stop_buy("100.00", qty=40))
    await feed(broker, clock, make_bar(ny(10), "99.90", "100.10", "99.80", "100.00"))
    [fill] = await broker.fills_since(ny(9))
    assert fill.price == D("100.00") * (1 + D("3") / 10000)  # spread/2 + slippage = 3 bps
    assert fill.commission == D("1.00")  # 40 x 0.005 = 0.20 -> the 1.00 minimum
    assert (await broker.account()).cash == D(100_000) - 40 * fill.price - D("1.00")
    assert (await broker.get_order(snap.broker_order_id)).avg_fill_price == fill.price


async def test_client_order_id_is_unique_forever() -> None:
    broker, _ = sim_broker()
    request = stop_buy(client_order_id="draft-7")
    snap = await broker.submit(request)
    with pytest.raises(DuplicateClientOrderId) as caught:
        await broker.submit(request)
    assert caught.value.code == "40010001"
    await broker.cancel(snap.broker_order_id)
    broker.tick()
    assert (await broker.get_order(snap.broker_order_id)).status is S.CANCELED
    with pytest.raises(DuplicateClientOrderId):
        await broker.submit(stop_buy(client_order_id="draft-7", trigger="101.00"))
    found = await broker.get_order_by_client_id(request.client_order_id)
    assert found is not None and found.broker_order_id == snap.broker_order_id


async def test_lookups_of_unknown_orders() -> None:
    broker, _ = sim_broker()
    with pytest.raises(NotFound):
        await broker.get_order("nope")  # type: ignore[arg-type]
    assert await broker.get_order_by_client_id("nope") is None  # type: ignore[arg-type]


async def test_open_sells_reserve_shares() -> None:
    broker, clock = sim_broker(cancel_latency=1.0)
    broker.seed_position(AAPL, D(10), D("100"))
    protect = await broker.submit(
        make_request(OrderType.TRAILING_STOP, side=Side.SELL, qty=10, time_in_force=TimeInForce.GTC)
    )
    with pytest.raises(InsufficientQty) as caught:
        await broker.submit(make_request(OrderType.STOP, side=Side.SELL, qty=5, stop_price="99"))
    assert "requested: 5, available: 0" in caught.value.reason
    # Right after the cancel request the shares are still reserved (BROKERS.md).
    await broker.cancel(protect.broker_order_id)
    with pytest.raises(InsufficientQty):
        await broker.submit(make_request(OrderType.STOP, side=Side.SELL, qty=5, stop_price="99"))
    clock.advance(1)  # the cancel completes
    await broker.submit(make_request(OrderType.STOP, side=Side.SELL, qty=5, stop_price="99"))


async def test_no_short_selling() -> None:
    broker, _ = sim_broker()
    with pytest.raises(InsufficientQty):
        await broker.submit(make_request(OrderType.MARKET, side=Side.SELL, qty=1))


async def test_wash_trade_rejections() -> None:
    broker, _ = sim_broker()
    broker.seed_position(AAPL, D(10), D("100"))
    await broker.submit(stop_buy("101.00", qty=10))  # a working buy remainder
    for order_type in (OrderType.TRAILING_STOP, OrderType.STOP, OrderType.MARKET):
        with pytest.raises(WashTradeRejected):
            await broker.submit(make_request(order_type, side=Side.SELL, qty=5, stop_price="99"))
    # a limit sell above every buy price cannot trade with the buy stop
    await broker.submit(make_request(OrderType.LIMIT, side=Side.SELL, qty=5, limit_price="105"))
    # ... but a buy limit crossing that sell limit could
    with pytest.raises(WashTradeRejected):
        await broker.submit(make_request(OrderType.LIMIT, side=Side.BUY, qty=1, limit_price="105"))
    await broker.submit(make_request(OrderType.LIMIT, side=Side.BUY, qty=1, limit_price="104.99"))


async def test_buying_power() -> None:
    broker, _ = sim_broker(initial_cash=D(1000))
    await broker.submit(stop_buy("100.00", qty=6))
    assert (await broker.account()).buying_power == D(400)
    with pytest.raises(InsufficientBuyingPower):
        await broker.submit(stop_buy("100.00", qty=5))


async def test_sub_penny_and_fractional_gtc_refused() -> None:
    broker, _ = sim_broker()
    with pytest.raises(UnsupportedOrder):
        await broker.submit(
            make_request(OrderType.MARKET, qty="1.5", time_in_force=TimeInForce.GTC)
        )
    assert await broker.list_orders(open_only=False) == []


async def test_market_order_fills_at_the_current_price() -> None:
    broker, clock = sim_broker()
    await feed(broker, clock, flat_bar(ny(10), "100.00"))
    snap = await broker.submit(make_request(OrderType.MARKET, qty=3))
    assert snap.status is S.ACCEPTED  # the fill arrives as an event, not in the response
    broker.tick()
    order = await broker.get_order(snap.broker_order_id)
    assert (order.status, order.avg_fill_price) == (S.FILLED, D("100.00"))


async def test_market_order_without_a_current_price_waits_for_the_next_open() -> None:
    broker, clock = sim_broker(ny(9, 30))
    await feed(broker, clock, flat_bar(ny(15, 59, day=(2025, 2, 28)), "90.00"))  # stale
    snap = await broker.submit(make_request(OrderType.MARKET, qty=3))
    broker.tick()
    assert (await broker.get_order(snap.broker_order_id)).status is S.ACCEPTED
    await feed(broker, clock, make_bar(ny(9, 30), "100.10", "100.30", "100.00", "100.20"))
    assert (await broker.get_order(snap.broker_order_id)).avg_fill_price == D("100.10")


# --- sessions --------------------------------------------------------------------------


async def test_extended_hours_refusals_and_limits() -> None:
    broker, clock = sim_broker(ny(8))  # pre-market
    for order_type in (OrderType.STOP, OrderType.TRAILING_STOP, OrderType.MARKET):
        with pytest.raises(UnsupportedOrder, match="extended hours"):
            await broker.submit(make_request(order_type, extended_hours=True))
    limit = await broker.submit(
        make_request(OrderType.LIMIT, limit_price="99.00", extended_hours=True)
    )
    assert limit.raw_status == "new"
    await feed(broker, clock, make_bar(ny(8), "99.50", "99.60", "98.90", "99.00"))
    assert (await broker.get_order(limit.broker_order_id)).avg_fill_price == D("99.00")


async def test_stop_placed_before_the_open_waits_and_never_triggers_outside_rth() -> None:
    broker, clock = sim_broker(ny(8))
    events = subscribe(broker)
    snap = await broker.submit(stop_buy("100.05"))
    assert (snap.status, snap.raw_status) == (S.ACCEPTED, "accepted")
    await feed(broker, clock, make_bar(ny(9), "100.00", "101.00", "99.90", "100.50"))
    assert (await broker.get_order(snap.broker_order_id)).status is S.ACCEPTED
    clock.set(ny(9, 30))
    broker.tick()
    assert kinds(events) == ["accepted", "new"]  # live at the open
    await feed(broker, clock, make_bar(ny(9, 30), "100.00", "100.10", "99.90", "100.00"))
    assert (await broker.get_order(snap.broker_order_id)).status is S.FILLED


async def test_gtc_trailing_stop_after_hours_becomes_active_next_open() -> None:
    broker, clock = sim_broker(ny(16, 30))
    broker.seed_position(AAPL, D(10), D("100"))
    events = subscribe(broker)
    snap = await broker.submit(
        make_request(OrderType.TRAILING_STOP, side=Side.SELL, trail_percent="1",
                     time_in_force=TimeInForce.GTC)
    )  # fmt: skip
    assert snap.raw_status == "accepted"
    # an after-hours collapse does not trigger it, nor does it move its mark
    await feed(broker, clock, make_bar(ny(17), "100.00", "100.00", "90.00", "91.00"))
    clock.set(ny(9, 30, day=NEXT_DAY))
    broker.tick()
    assert kinds(events) == ["accepted", "new"]
    # the trail starts at the first regular bar's open: level 99.00
    await feed(broker, clock, make_bar(ny(9, 30, day=NEXT_DAY), "100", "102", "99.5", "101"))
    order = await broker.get_order(snap.broker_order_id)
    assert order.status is S.ACCEPTED and order.stop_price == D("102") * D("0.99")
    await feed(broker, clock, make_bar(ny(9, 31, day=NEXT_DAY), "101", "101", "100.5", "100.8"))
    order = await broker.get_order(snap.broker_order_id)
    assert (order.status, order.avg_fill_price) == (S.FILLED, D("100.98"))


async def test_day_orders_expire_at_the_close_and_after_hours_ones_are_for_tomorrow() -> None:
    broker, clock = sim_broker(ny(15, 50))
    events = subscribe(broker)
    today = await broker.submit(stop_buy("105.00"))
    clock.set(ny(16, 0))
    broker.tick()
    assert (await broker.get_order(today.broker_order_id)).status is S.EXPIRED
    assert kinds(events) == ["new", "expired"]
    clock.set(ny(17))
    tomorrow = await broker.submit(stop_buy("105.00", client_order_id="t2"))
    clock.set(ny(23))
    broker.tick()
    assert (await broker.get_order(tomorrow.broker_order_id)).status is S.ACCEPTED
    clock.set(ny(16, 0, day=NEXT_DAY))
    broker.tick()
    assert (await broker.get_order(tomorrow.broker_order_id)).status is S.EXPIRED


async def test_fill_bar_never_triggers_the_protection_placed_after_it() -> None:
    broker, clock = sim_broker()
    entry = await broker.submit(stop_buy("100.05"))
    # the fill bar also trades far below: a trail placed after it must not see that low
    await feed(broker, clock, make_bar(ny(10), "100.00", "100.50", "98.00", "100.40"))
    fill_price = (await broker.get_order(entry.broker_order_id)).avg_fill_price
    trail = await broker.submit(
        make_request(OrderType.TRAILING_STOP, side=Side.SELL, trail_percent="1")
    )
    assert trail.stop_price == fill_price * D("0.99")  # hwm starts at the entry price
    await feed(broker, clock, make_bar(ny(10, 1), "100.40", "100.60", "99.80", "100.50"))
    assert (await broker.get_order(trail.broker_order_id)).status is S.ACCEPTED


# --- queries ---------------------------------------------------------------------------


async def test_list_orders_and_fills_since() -> None:
    broker, clock = sim_broker()
    first = await broker.submit(stop_buy("100.05"))
    clock.advance(timedelta(minutes=5))
    second = await broker.submit(stop_buy("120.00", qty=1))
    await feed(broker, clock, make_bar(ny(10, 5), "100.00", "100.10", "99.90", "100.00"))
    everything = await broker.list_orders(open_only=False)
    assert [o.broker_order_id for o in everything] == [
        second.broker_order_id,
        first.broker_order_id,
    ]
    assert [o.broker_order_id for o in await broker.list_orders(open_only=True)] == [
        second.broker_order_id
    ]
    assert len(await broker.list_orders(open_only=False, since=ny(10, 1))) == 1
    assert len(await broker.list_orders(open_only=False, limit=1)) == 1
    assert len(await broker.fills_since(ny(10, 6))) == 1
    assert await broker.fills_since(ny(10, 7)) == []


async def test_round_trip_books_balance() -> None:
    broker, clock = sim_broker(friction=IBKR_FRICTION)
    await broker.submit(stop_buy("100.00", qty=100))
    await feed(broker, clock, make_bar(ny(10), "99.90", "100.10", "99.80", "100.00"))
    await broker.submit(make_request(OrderType.LIMIT, side=Side.SELL, qty=100, limit_price="101"))
    await feed(broker, clock, make_bar(ny(10, 1), "100.50", "101.20", "100.40", "101.10"))
    assert await broker.positions() == []
    fills = await broker.fills_since(ny(9))
    pnl = sum(
        (f.qty * f.price * (1 if f.side is Side.SELL else -1) - f.commission for f in fills), D(0)
    )
    account = await broker.account()
    assert account.cash == D(100_000) + pnl == account.equity


async def test_closed_broker_refuses_calls_and_ends_streams() -> None:
    broker, _ = sim_broker()
    stream = broker.events()
    await broker.close()
    assert [event async for event in stream] == []
    with pytest.raises(RuntimeError):
        await broker.submit(stop_buy())
    assert isinstance(broker, SimBroker)


async def test_trailing_stop_neither_trails_nor_triggers_outside_rth() -> None:
    broker, clock = sim_broker(ny(15, 58))
    broker.seed_position(AAPL, D(10), D("100"))
    await feed(broker, clock, flat_bar(ny(15, 57), "100"))
    trail = await broker.submit(
        make_request(OrderType.TRAILING_STOP, side=Side.SELL, trail_percent="1",
                     time_in_force=TimeInForce.GTC)
    )  # fmt: skip
    await feed(broker, clock, make_bar(ny(15, 59), "100", "101", "100", "100.5"))
    assert (await broker.get_order(trail.broker_order_id)).stop_price == D("101") * D("0.99")
    await feed(broker, clock, make_bar(ny(16, 5), "100", "110", "50", "60"))  # after hours
    order = await broker.get_order(trail.broker_order_id)
    assert order.status is S.ACCEPTED and order.stop_price == D("101") * D("0.99")
    await feed(broker, clock, make_bar(ny(9, 30, day=NEXT_DAY), "99", "99.5", "98", "99"))
    order = await broker.get_order(trail.broker_order_id)
    assert (order.status, order.avg_fill_price) == (S.FILLED, D("99"))  # gap below the level


async def test_extended_day_limit_expires_after_hours_and_half_days_close_early() -> None:
    broker, clock = sim_broker(ny(8))
    limit = await broker.submit(
        make_request(OrderType.LIMIT, limit_price="90.00", extended_hours=True)
    )
    clock.set(ny(19, 59))
    broker.tick()
    assert (await broker.get_order(limit.broker_order_id)).status is S.ACCEPTED
    clock.set(ny(20))
    broker.tick()
    assert (await broker.get_order(limit.broker_order_id)).status is S.EXPIRED
    half_day = (2025, 7, 3)  # closes 13:00, after-hours until 17:00
    clock.set(ny(12, 0, day=half_day))
    stop = await broker.submit(stop_buy("150.00"))
    clock.set(ny(13, 0, day=half_day))
    broker.tick()
    assert (await broker.get_order(stop.broker_order_id)).status is S.EXPIRED
