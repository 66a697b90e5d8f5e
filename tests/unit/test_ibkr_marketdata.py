"""IbkrBarFeed: warm-up, closed bars on hasNewBar (bars[-2]), (end, symbol) order with a
grace period, and the gap filled after a resubscription -- never a bar twice."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

from brokers.ibkr import IbkrBarFeed, IbkrConfig
from brokers.ibkr.marketdata import bar_from_ib
from brokers.ibkr.testing import FakeGateway, connected_broker, ib_bar
from core.calendar import xnys
from core.clock import SimClock
from core.marketdata.bar import Bar
from core.marketdata.feed import BarFeed
from tests.kit.brokers import ny

CONFIG = IbkrConfig(pacing_rate=1000, pacing_burst=64)
MINUTE = timedelta(minutes=1)


def session_bars(first: datetime, count: int, base: float) -> list[object]:
    return [
        ib_bar(
            first + n * MINUTE,
            base + n / 100,
            base + n / 100 + 0.05,
            base + n / 100 - 0.05,
            base + n / 100 + 0.01,
        )
        for n in range(count)
    ]


async def setup(
    now: datetime,
) -> tuple[IbkrBarFeed, FakeGateway, SimClock, list[Bar], asyncio.Task[None]]:
    clock = SimClock(now)
    gw = FakeGateway(clock=clock)
    # 09:30 .. 10:03 (the 10:03 bar is still forming at 10:03:10)
    gw.bars["AAPL"] = session_bars(ny(9, 30), 34, 100.0)  # type: ignore[assignment]
    gw.bars["MSFT"] = session_bars(ny(9, 30), 34, 400.0)  # type: ignore[assignment]
    broker, _ = await connected_broker(clock, config=CONFIG, gateway=gw, calendar=xnys())
    feed = broker.bar_feed(["AAPL", "MSFT"])
    got: list[Bar] = []

    async def consume() -> None:
        async for bar in feed:
            got.append(bar)

    task = asyncio.ensure_future(consume())
    await gw.settle(40)
    return feed, gw, clock, got, task


def labels(bars: list[Bar]) -> list[tuple[str, str]]:
    return [(bar.symbol, bar.start.astimezone(ny(10).tzinfo).strftime("%H:%M")) for bar in bars]


async def test_warm_up_then_closed_bars_in_end_symbol_order() -> None:
    feed, gw, clock, got, task = await setup(ny(10, 3, 10))
    assert isinstance(feed, BarFeed) and feed.symbols == {"AAPL", "MSFT"}
    assert len(got) == 66  # 09:30 .. 10:02 for both; 10:03 is not closed yet
    assert labels(got[:3]) == [("AAPL", "09:30"), ("MSFT", "09:30"), ("AAPL", "09:31")]
    first = got[0]
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("100.0"),
        Decimal("100.05"),
        Decimal("99.95"),
        Decimal("100.01"),
    )
    assert first.start.utcoffset() == timedelta(0) and first.volume == 1000
    got.clear()
    gw.bar_update("AAPL", ib_bar(ny(10, 3), 100.33, 100.5, 100.3, 100.45))  # same bar, updated
    clock.set(ny(10, 4, 1))
    gw.bar_update(
        "AAPL", ib_bar(ny(10, 4), 100.45, 100.46, 100.44, 100.45)
    )  # new bar: 10:03 closed
    await gw.settle()
    assert got == []  # held until MSFT has closed 10:03 too
    gw.bar_update("MSFT", ib_bar(ny(10, 4), 400.4, 400.4, 400.4, 400.4))
    await gw.settle()
    assert labels(got) == [("AAPL", "10:03"), ("MSFT", "10:03")]
    assert got[0].high == Decimal("100.5")  # the last update of the bar, not the first
    assert feed.history("AAPL")[-1] == got[0]
    task.cancel()
    await feed.close()


async def test_a_quiet_symbol_does_not_hold_others_past_the_grace_period() -> None:
    feed, gw, clock, got, task = await setup(ny(10, 3, 10))
    got.clear()
    clock.set(ny(10, 4, 1))
    gw.bar_update("AAPL", ib_bar(ny(10, 4), 100.45, 100.46, 100.44, 100.45))
    await gw.settle()
    assert got == []
    clock.set(ny(10, 4, 5))  # end (10:04) + 5 s grace
    await gw.settle()
    assert labels(got) == [("AAPL", "10:03")]
    task.cancel()
    await feed.close()


async def test_resubscription_fills_the_gap_without_repeating_bars() -> None:
    feed, gw, clock, got, task = await setup(ny(10, 3, 10))
    got.clear()
    gw.drop()  # market data subscriptions die with the connection
    await gw.settle()
    for symbol, base in (("AAPL", 100.0), ("MSFT", 400.0)):  # IB keeps building bars
        gw.bars[symbol] += session_bars(ny(10, 4), 3, base + 0.34)  # type: ignore[arg-type]
    clock.set(ny(10, 6, 30))
    await gw.settle(60)
    assert feed._broker.connection.is_up  # reconnected (retry after 1 s)
    assert labels(got) == [
        ("AAPL", "10:03"),
        ("MSFT", "10:03"),
        ("AAPL", "10:04"),
        ("MSFT", "10:04"),
        ("AAPL", "10:05"),
        ("MSFT", "10:05"),
    ]
    assert gw.requests.count("reqHistoricalData") == 4
    task.cancel()
    await feed.close()


def test_bar_from_ib_refuses_what_is_not_a_bar() -> None:
    assert bar_from_ib("AAPL", ib_bar(ny(10), 0, 1, 1, 1)) is None
    assert bar_from_ib("AAPL", ib_bar(ny(10), 1, 1.0, 2.0, 1)) is None
