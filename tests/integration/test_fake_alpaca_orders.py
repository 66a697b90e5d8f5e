"""Order rules of the fake Alpaca, exercised through the unmodified alpaca-py SDK."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.models import Order, TradeUpdate
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopOrderRequest,
    TrailingStopOrderRequest,
)

from tests.fakes.alpaca import EngineConfig, RunningFakeAlpaca, start_fake_alpaca
from tests.fakes.alpaca.sdk_helpers import TradeUpdates, trading_client

Launch = Callable[..., Awaitable[RunningFakeAlpaca]]
BUY, SELL, DAY, GTC = OrderSide.BUY, OrderSide.SELL, TimeInForce.DAY, TimeInForce.GTC
NY_0800 = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)  # Monday, pre-market
NY_2130 = datetime(2025, 6, 2, 1, 30, tzinfo=UTC) + timedelta(days=1)  # Monday night


@pytest.fixture
async def launch() -> AsyncIterator[Launch]:
    started: list[RunningFakeAlpaca] = []

    async def _launch(**kwargs: Any) -> RunningFakeAlpaca:
        fake = await start_fake_alpaca(**kwargs)
        started.append(fake)
        return fake

    yield _launch
    for fake in started:
        await fake.stop()


def stop_buy(qty: int = 10, stop: float = 101.0, **kw: Any) -> StopOrderRequest:
    return StopOrderRequest(
        symbol="AAPL", qty=qty, side=BUY, time_in_force=DAY, stop_price=stop, **kw
    )


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def api_error(fn: Callable[..., Any], *args: Any) -> APIError:
    with pytest.raises(APIError) as info:
        await call(fn, *args)
    return info.value


async def own_position(fake: RunningFakeAlpaca, qty: int = 10, price: float = 100) -> None:
    """Buy `qty` AAPL at `price` with a market order (fills on acknowledgement)."""
    fake.market.set_price("AAPL", price)
    client = trading_client(fake)
    order = await call(
        client.submit_order, MarketOrderRequest(symbol="AAPL", qty=qty, side=BUY, time_in_force=DAY)
    )
    await wait_status(fake, str(order.id), "filled")


async def wait_status(fake: RunningFakeAlpaca, order_id: str, status: str) -> None:
    for _ in range(200):
        if fake.engine.order(order_id).status == status:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{order_id} is {fake.engine.order(order_id).status}, not {status}")


@pytest.mark.parametrize("raw", [False, True])
async def test_stop_buy_fills_on_bar_with_events_in_order(launch: Launch, raw: bool) -> None:
    fake = await launch()
    updates = await TradeUpdates(fake, raw_data=raw).start()
    client = trading_client(fake, raw_data=raw)
    fake.market.set_price("AAPL", 100)

    order = await call(client.submit_order, stop_buy(client_order_id="entry-1"))
    order_id = str(order["id"] if raw else order.id)
    assert (order["status"] if raw else order.status) == "pending_new"
    await updates.wait_for(lambda u: updates.for_order(order_id)[-1:] == ["new"])

    fake.market.push_bar("AAPL", 100.5, 102, 100.2, 101.8)  # high >= 101: fills at max(o, stop)
    await updates.wait_count(3)
    assert updates.for_order(order_id) == ["pending_new", "new", "fill"]
    fill = updates.items[-1]
    if raw:
        data = fill["data"]
        assert (data["price"], data["qty"], data["position_qty"]) == ("101", "10", "10")
        assert data["order"]["filled_qty"] == "10" and data["order"]["status"] == "filled"
        uuid.UUID(data["execution_id"])
        assert data["timestamp"].endswith("Z")
    else:
        assert isinstance(fill, TradeUpdate)
        assert (fill.price, fill.qty, fill.position_qty) == (101.0, 10.0, 10.0)
        assert fill.order.status == OrderStatus.FILLED and fill.execution_id is not None

    got = await call(client.get_order_by_id, order_id)
    assert (got["filled_avg_price"] if raw else got.filled_avg_price) == "101"
    positions = await call(client.get_all_positions)
    assert [(p["symbol"], p["qty"]) if raw else (p.symbol, p.qty) for p in positions] == [
        ("AAPL", "10")
    ]
    await updates.stop()


async def test_duplicate_client_order_id_is_refused_forever(launch: Launch) -> None:
    fake = await launch()
    client = trading_client(fake)
    fake.market.set_price("AAPL", 100)
    first = await call(client.submit_order, stop_buy(client_order_id="dup-1"))
    error = await api_error(client.submit_order, stop_buy(client_order_id="dup-1"))
    assert (error.status_code, error.code, error.message) == (
        422,
        40010001,
        "client_order_id must be unique",
    )
    await call(client.cancel_order_by_id, first.id)
    await wait_status(fake, str(first.id), "canceled")
    error = await api_error(client.submit_order, stop_buy(client_order_id="dup-1"))
    assert error.code == 40010001


async def test_cancel_answers_204_then_canceled_event(launch: Launch) -> None:
    fake = await launch(engine_config=EngineConfig(cancel_delay=None))
    updates = await TradeUpdates(fake).start()
    client = trading_client(fake)
    fake.market.set_price("AAPL", 100)
    order = await call(client.submit_order, stop_buy())
    await wait_status(fake, str(order.id), "new")

    assert await call(client.cancel_order_by_id, order.id) is None  # 204, no body
    assert (await call(client.get_order_by_id, order.id)).status == OrderStatus.PENDING_CANCEL
    fake.engine.run_pending()
    await updates.wait_for(lambda u: u.event == "canceled")
    assert updates.for_order(str(order.id)) == ["pending_new", "new", "pending_cancel", "canceled"]
    canceled = await call(client.get_order_by_id, order.id)
    assert canceled.status == OrderStatus.CANCELED and canceled.canceled_at is not None

    error = await api_error(client.cancel_order_by_id, order.id)
    assert (error.status_code, error.message) == (422, 'order is already in "canceled" state')
    await updates.stop()


async def test_cancel_race_a_fill_wins(launch: Launch) -> None:
    fake = await launch(engine_config=EngineConfig(cancel_delay=None))
    updates = await TradeUpdates(fake).start()
    client = trading_client(fake)
    fake.market.set_price("AAPL", 100)
    order = await call(client.submit_order, stop_buy())
    await wait_status(fake, str(order.id), "new")

    await call(client.cancel_order_by_id, order.id)
    fake.market.push_bar("AAPL", 100.8, 101.5, 100.6, 101.2)  # the venue fills before the cancel
    fake.engine.run_pending()
    await updates.wait_for(lambda u: u.event == "fill")
    await asyncio.sleep(0.05)
    assert updates.for_order(str(order.id)) == ["pending_new", "new", "pending_cancel", "fill"]
    assert (await call(client.get_order_by_id, order.id)).status == OrderStatus.FILLED
    error = await api_error(client.cancel_order_by_id, order.id)
    assert (error.status_code, error.message) == (422, 'order is already in "filled" state')
    await updates.stop()


async def test_replace_creates_a_new_order(launch: Launch) -> None:
    fake = await launch()
    updates = await TradeUpdates(fake).start()
    client = trading_client(fake)
    fake.market.set_price("AAPL", 100)
    old = await call(client.submit_order, stop_buy(client_order_id="r-1"))
    await wait_status(fake, str(old.id), "new")

    new = await call(client.replace_order_by_id, old.id, ReplaceOrderRequest(stop_price=102.5))
    assert isinstance(new, Order)
    assert new.id != old.id and new.replaces == old.id and new.stop_price == "102.5"
    assert new.client_order_id != "r-1"
    await updates.wait_for(lambda u: u.event == "new" and u.order.id == new.id)
    old_now = await call(client.get_order_by_id, old.id)
    assert old_now.status == OrderStatus.REPLACED and old_now.replaced_by == new.id
    assert updates.for_order(str(old.id)) == ["pending_new", "new", "pending_replace", "replaced"]
    assert updates.for_order(str(new.id)) == ["new"]

    error = await api_error(
        client.replace_order_by_id, new.id, ReplaceOrderRequest(stop_price=102.5)
    )
    assert (error.status_code, error.code) == (403, 40310000)
    await updates.stop()


async def test_replace_refused_while_accepted(launch: Launch) -> None:
    fake = await launch(now=NY_2130)
    client = trading_client(fake)
    order = await call(client.submit_order, stop_buy())
    assert order.status == OrderStatus.ACCEPTED
    error = await api_error(
        client.replace_order_by_id, order.id, ReplaceOrderRequest(stop_price=103)
    )
    assert error.status_code == 422


async def test_replace_race_old_order_fills_first(launch: Launch) -> None:
    fake = await launch(engine_config=EngineConfig(replace_delay=None))
    updates = await TradeUpdates(fake).start()
    client = trading_client(fake)
    fake.market.set_price("AAPL", 100)
    old = await call(client.submit_order, stop_buy())
    await wait_status(fake, str(old.id), "new")

    new = await call(client.replace_order_by_id, old.id, ReplaceOrderRequest(stop_price=102))
    fake.market.push_bar("AAPL", 100.5, 101.5, 100.4, 101.4)  # the old stop (101) triggers
    fake.engine.run_pending()
    await updates.wait_for(lambda u: u.event == "rejected")
    assert updates.for_order(str(old.id)) == [
        "pending_new",
        "new",
        "pending_replace",
        "fill",
        "order_replace_rejected",
    ]
    assert (await call(client.get_order_by_id, new.id)).status == OrderStatus.REJECTED
    assert fake.engine.book.position_qty("AAPL") == 10
    await updates.stop()


async def test_a_second_full_size_sell_gets_insufficient_qty(launch: Launch) -> None:
    fake = await launch()
    await own_position(fake, 10)
    client = trading_client(fake)
    trail = TrailingStopOrderRequest(
        symbol="AAPL", qty=10, side=SELL, time_in_force=GTC, trail_percent=1.0
    )
    protection = await call(client.submit_order, trail)
    await wait_status(fake, str(protection.id), "new")

    error = await api_error(
        client.submit_order,
        StopOrderRequest(symbol="AAPL", qty=10, side=SELL, time_in_force=GTC, stop_price=95),
    )
    assert (error.status_code, error.code) == (403, 40310000)
    assert error.message == "insufficient qty available for order (requested: 10, available: 0)"
    position = await call(client.get_open_position, "AAPL")
    assert (position.qty, position.qty_available) == ("10", "0")


async def test_opposite_side_stop_is_a_potential_wash_trade(launch: Launch) -> None:
    fake = await launch()
    await own_position(fake, 10)
    client = trading_client(fake)
    await call(client.submit_order, stop_buy(qty=5, stop=110))  # a buy stop still working
    error = await api_error(
        client.submit_order,
        TrailingStopOrderRequest(
            symbol="AAPL", qty=10, side=SELL, time_in_force=GTC, trail_percent=1
        ),
    )
    assert (error.status_code, error.code) == (403, 40310000)
    assert error.message == "potential wash trade detected. use complex orders"


async def test_extended_hours_refusals(launch: Launch) -> None:
    fake = await launch(now=NY_0800)
    client = trading_client(fake)
    error = await api_error(client.submit_order, stop_buy(extended_hours=True))
    assert error.status_code == 422 and "limit" in error.message
    error = await api_error(
        client.submit_order,
        LimitOrderRequest(
            symbol="AAPL",
            qty=1,
            side=BUY,
            time_in_force=TimeInForce.IOC,
            limit_price=99,
            extended_hours=True,
        ),
    )
    assert error.status_code == 422
    queued = await asyncio.to_thread(client.submit_order, stop_buy())  # pre-market, no ext.
    assert queued.status == "accepted"  # waits for the open (default policy `queue`)

    fake.market.set_price("AAPL", 100)
    limit = LimitOrderRequest(
        symbol="AAPL", qty=1, side=BUY, time_in_force=GTC, limit_price=99.5, extended_hours=True
    )
    order = await call(client.submit_order, limit)
    assert order.status == OrderStatus.PENDING_NEW and order.extended_hours
    fake.market.push_bar("AAPL", 99.8, 99.9, 99.4, 99.6)  # pre-market bar: an extended limit fills
    await wait_status(fake, str(order.id), "filled")


async def test_market_closed_orders_wait_as_accepted_until_the_open(launch: Launch) -> None:
    fake = await launch(now=NY_2130)
    updates = await TradeUpdates(fake).start()
    client = trading_client(fake)
    order = await call(
        client.submit_order, MarketOrderRequest(symbol="AAPL", qty=3, side=BUY, time_in_force=DAY)
    )
    assert order.status == OrderStatus.ACCEPTED
    clock = await call(client.get_clock)
    assert not clock.is_open

    fake.market.set_time(clock.next_open)
    await updates.wait_for(lambda u: u.event == "new")
    fake.market.push_bar("AAPL", 100.25, 100.5, 100, 100.4, start=clock.next_open)
    await updates.wait_for(lambda u: u.event == "fill")
    assert updates.for_order(str(order.id)) == ["accepted", "new", "fill"]
    assert updates.items[-1].price == 100.25  # market order: the first bar's open
    await updates.stop()


async def test_partial_fills_then_fill(launch: Launch) -> None:
    fake = await launch()
    updates = await TradeUpdates(fake, raw_data=True).start()
    client = trading_client(fake, raw_data=True)
    fake.market.set_price("AAPL", 100)
    fake.market.set_liquidity("AAPL", 4)
    order = await call(client.submit_order, stop_buy(qty=10))
    await wait_status(fake, order["id"], "new")
    for minute in range(3):
        fake.market.push_bar("AAPL", 101 + minute, 102 + minute, 100.5 + minute, 101.5 + minute)
    await updates.wait_for(lambda u: u["data"]["event"] == "fill")
    frames = [u["data"] for u in updates.items if u["data"]["event"] in ("partial_fill", "fill")]
    assert [f["event"] for f in frames] == ["partial_fill", "partial_fill", "fill"]
    assert [f["order"]["filled_qty"] for f in frames] == ["4", "8", "10"]
    assert [f["qty"] for f in frames] == ["4", "4", "2"]
    assert [f["position_qty"] for f in frames] == ["4", "8", "10"]
    assert len({f["execution_id"] for f in frames}) == 3
    assert frames[1]["order"]["status"] == "partially_filled"
    fills = await call(client.get, "/account/activities/FILL", {"direction": "asc"})
    assert [(a["type"], a["qty"], a["cum_qty"]) for a in fills] == [
        ("partial_fill", "4", "4"),
        ("partial_fill", "4", "8"),
        ("fill", "2", "10"),
    ]
    await updates.stop()


async def test_trailing_stop_trails_in_rth_only_and_triggers(launch: Launch) -> None:
    fake = await launch()
    await own_position(fake, 10, 100)
    client = trading_client(fake)
    trail = TrailingStopOrderRequest(
        symbol="AAPL", qty=10, side=SELL, time_in_force=GTC, trail_percent=1
    )
    order = await call(client.submit_order, trail)
    await wait_status(fake, str(order.id), "new")
    got = await call(client.get_order_by_id, order.id)
    assert (got.hwm, got.stop_price) == ("100", "99")

    fake.market.push_bar("AAPL", 100.5, 102, 100.5, 101.8)
    got = await call(client.get_order_by_id, order.id)
    assert (got.hwm, got.stop_price) == ("102", "100.98")

    fake.market.set_time(datetime(2025, 6, 2, 20, 30, tzinfo=UTC))  # 16:30 ET, after hours
    fake.market.push_bar("AAPL", 104, 106, 103.9, 105)
    got = await call(client.get_order_by_id, order.id)
    assert (got.hwm, got.status) == ("102", OrderStatus.NEW)  # no trailing outside RTH

    fake.market.set_time(datetime(2025, 6, 3, 13, 30, tzinfo=UTC))  # Tuesday open
    fake.market.push_bar("AAPL", 101.5, 101.6, 100.2, 100.4)
    await wait_status(fake, str(order.id), "filled")
    assert (await call(client.get_order_by_id, order.id)).filled_avg_price == "100.98"
    assert fake.engine.book.position_qty("AAPL") == 0


async def test_day_orders_expire_at_the_close(launch: Launch) -> None:
    fake = await launch()
    client = trading_client(fake)
    fake.market.set_price("AAPL", 100)
    order = await call(
        client.submit_order,
        LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=90),
    )
    await wait_status(fake, str(order.id), "new")
    fake.market.set_time(datetime(2025, 6, 2, 20, 1, tzinfo=UTC))
    expired = await call(client.get_order_by_id, order.id)
    assert expired.status == OrderStatus.EXPIRED and expired.expired_at is not None
    assert [e.event for e in fake.engine.events][-1] == "expired"


async def test_buying_power_and_sub_penny_rejections(launch: Launch) -> None:
    fake = await launch()
    client = trading_client(fake)
    fake.market.set_price("AAPL", 100)
    error = await api_error(
        client.submit_order,
        LimitOrderRequest(symbol="AAPL", qty=2000, side=BUY, time_in_force=DAY, limit_price=100),
    )
    assert (error.status_code, error.code, error.message) == (
        403,
        40310000,
        "insufficient buying power",
    )
    error = await api_error(
        client.submit_order,
        LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=100.123),
    )
    assert (error.status_code, error.code) == (422, 42210000)
    assert "sub-penny" in error.message
    account = await call(client.get_account)
    assert account.buying_power == "100000" and account.cash == "100000"
