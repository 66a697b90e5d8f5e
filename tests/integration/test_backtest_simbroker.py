"""THE equivalence: the backtest's trades equal what the live pieces do on SimBroker.

A scenario day is replayed bar by bar on a SimClock: `RadarState` reads each closed bar;
its signal becomes a stop order (buy) at the proposed trigger, cancelled after its
`stop_valid_bars`-th bar; the entry fill gets a trailing-stop sell (trail 0.8 %); at the
flatten bar (the last ending at or before 15:55) the trail is cancelled and a market sell
flattens the rest. SimBroker (Alpaca friction) does all the matching. The entry time and
price, the exit time, price and reason and the quantity must equal the backtest's rows.

Known differences, kept out of the scenarios and reported (see the lead's report):
- a stop order's quantity is fixed when it is placed, so the live side sizes at the
  trigger; the spec sizes on the actual fill, which differs only when the fill bar gaps
  above the trigger (then the live qty can be larger). The test asserts no gap fill.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import numpy as np
import pytest

from brokers.sim import SimBroker, SimConfig
from core.backtest.engine import execute_block
from core.backtest.model import ExitReason, TradeRow
from core.clock import SimClock
from core.domain import (
    BrokerOrderId,
    ClientOrderId,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Symbol,
    TimeInForce,
)
from core.entry import size_entry
from core.fills import ALPACA_FRICTION
from core.indicators import DailyLevels
from core.marketdata.sessions import SessionBars, to_ns
from core.marketdata.synthetic import generate_scenario
from core.params import SignalParams
from core.signals import RadarState, evaluate_sessions

P = SignalParams()  # alpaca friction, trail 0.8 %, flatten 15:55

Row = tuple[datetime, Decimal, int, datetime, Decimal, str]


def _request(
    cid: str, symbol: str, side: Side, kind: OrderType, qty: int, **kw: object
) -> OrderRequest:
    return OrderRequest(
        client_order_id=ClientOrderId(cid),
        symbol=Symbol(symbol),
        side=side,
        qty=Decimal(qty),
        order_type=kind,
        time_in_force=TimeInForce.DAY,
        **kw,  # type: ignore[arg-type]
    )


async def _replay_session(day: SessionBars, levels: DailyLevels) -> list[Row]:
    """One session through RadarState + SimBroker, in the spec's order of work."""
    session = day.session
    clock = SimClock(session.open)
    broker = SimBroker(clock, config=SimConfig(friction=ALPACA_FRICTION))
    radar = RadarState(day.symbol, session, levels, False, P)
    gate = radar.gate
    flatten_ns = to_ns(session.close) - P.flatten_minutes_before_close * 60 * 10**9
    f = int(np.searchsorted(day.start_ns + day.bar_ns, flatten_ns, side="right")) - 1
    stop_buy: BrokerOrderId | None = None
    working_bars = 0
    trail: BrokerOrderId | None = None
    entry: tuple[datetime, Decimal, int] | None = None
    flatten_id: BrokerOrderId | None = None
    trades: list[Row] = []
    for k, bar in enumerate(day.bars()):
        clock.set(bar.end)
        await broker.on_bar(bar)  # SimBroker: sells (exits) first, then the stop-buy
        if trail is not None:  # 1. did the trail exit on this bar?
            order = await broker.get_order(trail)
            if order.status is OrderStatus.FILLED:
                assert entry is not None and order.avg_fill_price is not None
                trades.append((*entry, bar.start, order.avg_fill_price, "trail"))
                trail = None
        if stop_buy is not None:  # 2. the working stop-buy
            order = await broker.get_order(stop_buy)
            working_bars += 1
            if order.status is OrderStatus.FILLED:
                assert order.avg_fill_price is not None
                gate.filled()
                stop_buy = None
                entry = (bar.start, order.avg_fill_price, int(order.qty))
                snap = await broker.submit(
                    _request(
                        f"trail-{k}",
                        day.symbol,
                        Side.SELL,
                        OrderType.TRAILING_STOP,
                        int(order.qty),
                        trail_percent=P.trail_pct,
                    )
                )
                trail = snap.broker_order_id
            elif working_bars == P.stop_valid_bars:
                await broker.cancel(stop_buy)
                gate.expired()
                stop_buy = None
        if k == f and trail is not None:  # 3. the flatten: checks ran, sell the rest
            await broker.cancel(trail)
            assert entry is not None
            snap = await broker.submit(
                _request(f"flat-{k}", day.symbol, Side.SELL, OrderType.MARKET, entry[2])
            )
            flatten_id = snap.broker_order_id
            trail = None
            order = await broker.get_order(flatten_id)
            assert order.status is OrderStatus.FILLED and order.avg_fill_price is not None
            trades.append((*entry, bar.start, order.avg_fill_price, "flatten"))
        update = radar.on_bar(bar)  # 4. a new signal at the bar's close
        if update.signal is not None:
            sizing = size_entry(update.signal.trigger, update.signal.stop, P)
            assert sizing is not None
            snap = await broker.submit(
                _request(
                    f"entry-{k}",
                    day.symbol,
                    Side.BUY,
                    OrderType.STOP,
                    sizing.qty,
                    stop_price=update.signal.trigger,
                )
            )
            gate.placed()
            stop_buy, working_bars = snap.broker_order_id, 0
    await broker.close()
    return trades


async def _replay(scenario: str, seed: int, minutes: int) -> tuple[list[Row], list[TradeRow]]:
    """Every post-warm-up session of a scenario's data (the day and the random walks)."""
    data = generate_scenario(scenario, seed=seed, bar_minutes=minutes)
    ev = evaluate_sessions(data.sessions, P)
    live: list[Row] = []
    for s, day in enumerate(data.sessions):
        if not ev.levels[s].warm_up:
            live += await _replay_session(day, ev.levels[s])
    return live, execute_block(ev, P)


CASES = [
    ("trend_up_pullback", 0, 1),
    ("trend_up_pullback", 1, 5),
    ("choppy_range", 2, 1),
    ("event_burst", 1, 5),
    ("half_day", 0, 1),  # sessions before 2024-11-29 (the half day: test_backtest_engine)
]


@pytest.mark.parametrize(("scenario", "seed", "minutes"), CASES)
async def test_backtest_trades_equal_the_simbroker_replay(
    scenario: str, seed: int, minutes: int
) -> None:
    live, expected = await _replay(scenario, seed, minutes)
    assert len(expected) >= 3, "the scenario's sessions should trade"
    for row in expected:
        assert row.exit_reason in (ExitReason.TRAIL, ExitReason.FLATTEN)
    backtest = [
        (r.entry_time, r.entry_price, r.qty, r.exit_time, r.exit_price, r.exit_reason.value)
        for r in expected
    ]
    assert live == backtest
