"""REST surface of the fake Alpaca: shapes the SDK parses, lookups, positions, bars."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Calendar, Clock, ClosePositionResponse, Position, TradeAccount
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    TrailingStopOrderRequest,
)

from tests.fakes.alpaca import BarRecord, RunningFakeAlpaca, start_fake_alpaca
from tests.fakes.alpaca.sdk_helpers import data_client, trading_client

BUY, SELL, DAY, GTC = OrderSide.BUY, OrderSide.SELL, TimeInForce.DAY, TimeInForce.GTC


@pytest.fixture
async def fake() -> AsyncIterator[RunningFakeAlpaca]:
    async with await start_fake_alpaca() as running:
        yield running


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def filled_buy(fake: RunningFakeAlpaca, symbol: str, qty: int, price: float) -> None:
    fake.market.set_price(symbol, price)
    client = trading_client(fake)
    order = await call(
        client.submit_order, MarketOrderRequest(symbol=symbol, qty=qty, side=BUY, time_in_force=DAY)
    )
    for _ in range(200):
        if fake.engine.order(str(order.id)).status == "filled":
            return
        await asyncio.sleep(0.005)
    raise AssertionError("market order did not fill")


@pytest.mark.parametrize("raw", [False, True])
async def test_account_clock_calendar_parse(fake: RunningFakeAlpaca, raw: bool) -> None:
    client = trading_client(fake, raw_data=raw)
    account = await call(client.get_account)
    clock = await call(client.get_clock)
    calendar = await call(
        client.get_calendar, GetCalendarRequest(start=date(2025, 7, 1), end=date(2025, 7, 7))
    )
    if raw:
        assert account["status"] == "ACTIVE" and account["cash"] == "100000"
        assert clock["is_open"] is True and clock["timestamp"].endswith("-04:00")
        assert [c["date"] for c in calendar] == [
            "2025-07-01",
            "2025-07-02",
            "2025-07-03",
            "2025-07-07",
        ]
        assert calendar[2]["close"] == "13:00"  # half day before Independence Day
        return
    assert isinstance(account, TradeAccount) and account.buying_power == "100000"
    assert isinstance(clock, Clock) and clock.is_open
    assert clock.next_close == datetime(2025, 6, 2, 20, 0, tzinfo=UTC)
    assert all(isinstance(c, Calendar) for c in calendar)
    assert calendar[2].close == datetime(2025, 7, 3, 13, 0)


async def test_wrong_keys_get_401(fake: RunningFakeAlpaca) -> None:
    client = TradingClient("test-key", "wrong", url_override=fake.base_url)
    with pytest.raises(APIError) as info:
        await call(client.get_account)
    assert (info.value.status_code, info.value.code) == (401, 40110000)
    assert info.value.message == "request is not authorized"


async def test_lookup_by_client_order_id(fake: RunningFakeAlpaca) -> None:
    client = trading_client(fake)
    fake.market.set_price("AAPL", 100)
    order = await call(
        client.submit_order,
        LimitOrderRequest(
            symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=95, client_order_id="c-9"
        ),
    )
    found = await call(client.get_order_by_client_id, "c-9")
    assert found.id == order.id and found.client_order_id == "c-9"
    raw = await call(trading_client(fake, raw_data=True).get_order_by_client_id, "c-9")
    assert raw["order_class"] == "" and raw["qty"] == "1" and raw["limit_price"] == "95"
    with pytest.raises(APIError) as info:
        await call(client.get_order_by_client_id, "nope")
    assert (info.value.status_code, info.value.code) == (404, 40410000)


async def test_list_orders_filters(fake: RunningFakeAlpaca) -> None:
    client = trading_client(fake)
    fake.market.set_price("AAPL", 100)
    fake.market.set_price("MU", 50)
    ids = []
    for symbol, price in (("AAPL", 90), ("MU", 40), ("AAPL", 91)):
        order = await call(
            client.submit_order,
            LimitOrderRequest(symbol=symbol, qty=1, side=BUY, time_in_force=GTC, limit_price=price),
        )
        ids.append(order.id)
        fake.market.advance(timedelta(seconds=1))
    await call(client.cancel_order_by_id, ids[0])
    await asyncio.sleep(0.02)

    open_orders = await call(client.get_orders)
    assert [o.id for o in open_orders] == [ids[2], ids[1]]  # default: open, newest first
    everything = await call(
        client.get_orders,
        GetOrdersRequest(status=QueryOrderStatus.ALL, limit=500, nested=True, direction="asc"),
    )
    assert [o.id for o in everything] == ids
    closed = await call(client.get_orders, GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [(o.id, o.status) for o in closed] == [(ids[0], OrderStatus.CANCELED)]
    only_aapl = await call(
        client.get_orders, GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["AAPL"])
    )
    assert {o.symbol for o in only_aapl} == {"AAPL"}
    after = await call(
        client.get_orders,
        GetOrdersRequest(
            status=QueryOrderStatus.ALL, after=datetime(2025, 6, 2, 14, 0, 0, 500000, tzinfo=UTC)
        ),
    )
    assert {o.id for o in after} == {ids[1], ids[2]}
    limited = await call(client.get_orders, GetOrdersRequest(status=QueryOrderStatus.ALL, limit=1))
    assert [o.id for o in limited] == [ids[2]]

    canceled = await call(client.cancel_orders)  # DELETE /v2/orders: 207, one entry each
    assert sorted((r.id, r.status) for r in canceled) == sorted([(ids[1], 200), (ids[2], 200)])
    assert all(r.body and r.body["status"] == "pending_cancel" for r in canceled)


async def test_positions_and_close_position(fake: RunningFakeAlpaca) -> None:
    await filled_buy(fake, "AAPL", 10, 100)
    client = trading_client(fake)
    fake.market.set_price("AAPL", 102)
    position = await call(client.get_open_position, "AAPL")
    assert isinstance(position, Position)
    assert (position.qty, position.avg_entry_price, position.market_value) == ("10", "100", "1020")
    assert (position.unrealized_pl, position.cost_basis, position.side) == ("20", "1000", "long")
    with pytest.raises(APIError) as info:
        await call(client.get_open_position, "MU")
    assert (info.value.status_code, info.value.message) == (404, "position does not exist")

    order = await call(client.close_position, "AAPL", ClosePositionRequest(qty="4"))
    assert (order.side, order.qty, order.type) == (SELL, "4", "market")
    for _ in range(100):
        if fake.engine.book.position_qty("AAPL") == 6:
            break
        await asyncio.sleep(0.005)
    account = await call(client.get_account)
    assert account.cash == str(100_000 - 1000 + 4 * 102)
    assert account.equity == str(100_000 - 1000 + 4 * 102 + 6 * 102)


async def test_close_all_positions_207(fake: RunningFakeAlpaca) -> None:
    await filled_buy(fake, "AAPL", 10, 100)
    await filled_buy(fake, "MU", 5, 50)
    client = trading_client(fake)
    protection = TrailingStopOrderRequest(
        symbol="AAPL", qty=10, side=SELL, time_in_force=GTC, trail_percent=1
    )
    await call(client.submit_order, protection)

    blocked = await call(trading_client(fake, raw_data=True).delete, "/positions")
    by_symbol = {r["symbol"]: r for r in blocked}
    assert by_symbol["AAPL"]["status"] == 403  # the trailing stop holds the shares
    assert by_symbol["AAPL"]["body"]["held_for_orders"] == "10"
    assert by_symbol["MU"]["status"] == 200 and by_symbol["MU"]["body"]["side"] == "sell"

    results = await call(client.close_all_positions, True)  # cancel_orders=True first
    assert all(isinstance(r, ClosePositionResponse) for r in results)
    assert [(r.symbol, r.status) for r in results] == [("AAPL", 200)]
    for _ in range(100):
        if not fake.engine.book.positions:
            break
        await asyncio.sleep(0.005)
    assert await call(client.get_all_positions) == []
    assert await call(client.get_orders) == []


async def test_activities_fill_and_assets(fake: RunningFakeAlpaca) -> None:
    await filled_buy(fake, "AAPL", 3, 100)
    raw = trading_client(fake, raw_data=True)
    fills = await call(raw.get, "/account/activities/FILL")
    same = await call(raw.get, "/account/activities", {"activity_types": "FILL"})
    assert fills == same and len(fills) == 1
    assert (fills[0]["activity_type"], fills[0]["qty"], fills[0]["price"]) == ("FILL", "3", "100")
    asset = await call(trading_client(fake).get_asset, "AAPL")
    assert asset.symbol == "AAPL" and asset.exchange == "NASDAQ"


def _minute_bars(symbol: str, start: datetime, count: int, base: float) -> list[BarRecord]:
    from decimal import Decimal

    out = []
    for i in range(count):
        price = Decimal(str(base)) + Decimal(i) / 100
        out.append(
            BarRecord(
                symbol,
                start + timedelta(minutes=i),
                price,
                price + 1,
                price - 1,
                price,
                100 + i,
                5,
                price,
            )
        )
    return out


async def test_historical_bars_paginate(fake: RunningFakeAlpaca) -> None:
    open_ = datetime(2025, 5, 30, 13, 30, tzinfo=UTC)
    fake.market.add_history(_minute_bars("AAPL", open_, 25, 100) + _minute_bars("MU", open_, 7, 50))
    fake.data_routes.max_page_size = 10
    client = data_client(fake)
    request = StockBarsRequest(
        symbol_or_symbols=["AAPL", "MU"],
        timeframe=TimeFrame.Minute,
        start=open_,
        end=open_ + timedelta(hours=1),
    )
    barset = await call(client.get_stock_bars, request)
    assert len(barset.data["AAPL"]) == 25 and len(barset.data["MU"]) == 7
    assert barset.data["AAPL"][0].timestamp == open_ and barset.data["AAPL"][0].trade_count == 5

    raw = await call(
        data_client(fake, raw_data=True).get,
        "/stocks/bars",
        {"symbols": "AAPL,MU", "timeframe": "1Min", "start": open_.isoformat(), "limit": 10000},
    )
    assert sum(len(v) for v in raw["bars"].values()) == 10 and raw["next_page_token"]

    limited = await call(
        client.get_stock_bars,
        StockBarsRequest(
            symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute, start=open_, limit=15
        ),
    )
    assert len(limited.data["AAPL"]) == 15
    five = await call(
        client.get_stock_bars,
        StockBarsRequest(
            symbol_or_symbols="MU", timeframe=TimeFrame(5, TimeFrameUnit.Minute), start=open_
        ),
    )
    assert [b.volume for b in five.data["MU"]] == [100 + 101 + 102 + 103 + 104, 105 + 106]
    empty = await call(
        data_client(fake, raw_data=True).get,
        "/stocks/bars",
        {"symbols": "QQQM", "timeframe": "1Min"},
    )
    assert empty == {"bars": {}, "next_page_token": None}
