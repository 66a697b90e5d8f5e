"""One execution is one fill, whether it was heard on trade_updates or read over REST,
and whether or not Alpaca's stream `execution_id` equals the uuid of the FILL activity
id (nothing in Alpaca's docs or alpaca-py says it does: docs/alpaca.md). The fake runs
both ways (`EngineConfig.distinct_execution_ids`); every test runs under both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from core.broker import BrokerEventKind
from core.domain import OrderRole, OrderStatus, OrderType
from core.session_types import SessionState
from tests.fakes.alpaca import DEFAULT_NOW, EngineConfig
from tests.integration.broker_harness import (
    AlpacaFakeHarness,
    EngineRig,
    assert_no_duplicate_and_protected,
    engine_rig,
    open_harness,
)
from tests.integration.test_alpaca_adapter_support import (
    alpaca_world,
    next_event,
    of_kind,
    request,
)
from tests.kit.engine import protection_config

D = Decimal
K = BrokerEventKind
S = OrderStatus
FILL_BAR = ("100.5", "101.5", "100.4", "101.2")
ID_MODES = pytest.mark.parametrize("distinct", [False, True], ids=["ids-match", "ids-differ"])


@ID_MODES
async def test_rest_fills_carry_the_identity_of_the_streamed_fills(distinct: bool) -> None:
    config = EngineConfig(distinct_execution_ids=distinct)
    async with alpaca_world(engine_config=config) as w:
        await w.broker.start(wait=3)
        sub = w.broker.events()
        w.fake.market.set_liquidity("AAPL", 4)
        order = await w.broker.submit(request(OrderType.MARKET, "fi-1"))
        first = await next_event(sub, of_kind(K.PARTIAL_FILL, order.broker_order_id))
        w.fake.market.set_price("AAPL", "100.5")
        second = await next_event(sub, of_kind(K.PARTIAL_FILL, order.broker_order_id))
        streamed = [e.fill for e in (first, second)]
        assert [f.qty for f in streamed if f] == [4, 4]
        fills = await w.broker.fills_since(DEFAULT_NOW)
        assert [f.qty for f in fills] == [4, 4]
        assert [f.execution_id for f in fills] == [f.execution_id for f in streamed if f]


@ID_MODES
async def test_two_equal_partial_fills_in_the_same_instant_stay_two(distinct: bool) -> None:
    """Same order, qty, price and time: only the order's cumulative quantity tells them
    apart, and it must (merging them would lose 5 shares)."""
    config = EngineConfig(distinct_execution_ids=distinct)
    async with alpaca_world(engine_config=config) as w:
        await w.broker.start(wait=3)
        sub = w.broker.events()
        order = await w.broker.submit(request(OrderType.STOP, "fi-2", stop="150"))
        await next_event(sub, of_kind(K.NEW, order.broker_order_id))
        w.fake.engine.execute(order.broker_order_id, D(5), D("100.25"))
        w.fake.engine.execute(order.broker_order_id, D(5), D("100.25"))
        heard = [
            await next_event(sub, of_kind(K.PARTIAL_FILL, order.broker_order_id)),
            await next_event(sub, of_kind(K.FILL, order.broker_order_id)),
        ]
        streamed = [e.fill.execution_id for e in heard if e.fill]
        fills = await w.broker.fills_since(DEFAULT_NOW)
        assert [(f.qty, f.price, f.timestamp) for f in fills] == [(5, D("100.25"), DEFAULT_NOW)] * 2
        assert len(set(streamed)) == 2
        assert sorted(f.execution_id for f in fills) == sorted(streamed)


@asynccontextmanager
async def rig_with(
    tmp_path: Path, *, distinct: bool
) -> AsyncIterator[tuple[AlpacaFakeHarness, EngineRig]]:
    # A partial-fill wait longer than the test: the remainder stays working, nothing
    # cancels it, so only the reconciles can (wrongly) add shares.
    slow = protection_config(partial_fill_wait_seconds=600)
    async with open_harness("alpaca") as h:
        assert isinstance(h, AlpacaFakeHarness)
        h.fake.engine.config.distinct_execution_ids = distinct
        rig = await engine_rig(h, tmp_path, protection=slow)
        try:
            yield h, rig
        finally:
            await rig.stop()


def entry_filled(rig: EngineRig) -> tuple[OrderStatus, Decimal]:
    (entry,) = [o for o in rig.ledger_orders() if o.role is OrderRole.ENTRY]
    return entry.status, entry.filled_qty


@ID_MODES
async def test_reconciles_after_partial_fills_do_not_add_them_again(
    tmp_path: Path, distinct: bool
) -> None:
    async with rig_with(tmp_path, distinct=distinct) as (h, rig):
        h.set_liquidity("AAPL", 20)
        await rig.enter(qty=50)
        await rig.bar(*FILL_BAR)  # 20 of 50, heard on the stream
        assert entry_filled(rig) == (S.PARTIALLY_FILLED, D(20))
        for _ in range(2):
            report = await rig.engine.reconciler.run("test")
            assert report.fills_added == 0 and report.in_sync, report
        assert entry_filled(rig) == (S.PARTIALLY_FILLED, D(20))
        assert [f.qty for f in rig.ledger_fills()] == [D(20)]

        await rig.bar("101.3", "101.6", "101.2", "101.5")  # 20 more: 40 of 50
        report = await rig.engine.reconciler.run("test")
        assert report.fills_added == 0 and report.in_sync, report
        assert entry_filled(rig) == (S.PARTIALLY_FILLED, D(40))
        assert await rig.position() == D(40)
        assert rig.engine.day.state is not SessionState.SAFE_MODE

        h.set_liquidity("AAPL", None)
        await rig.bar("101.5", "101.8", "101.4", "101.7")  # the last 10
        report = await rig.engine.reconciler.run("test")
        assert report.fills_added == 0 and report.in_sync, report
        assert entry_filled(rig) == (S.FILLED, D(50))
        assert [f.qty for f in rig.ledger_fills()] == [D(20), D(20), D(10)]
        assert await rig.position() == D(50)
        assert rig.engine.day.state is not SessionState.SAFE_MODE
        await assert_no_duplicate_and_protected(rig)


@ID_MODES
async def test_a_fill_missed_by_the_stream_is_added_once_by_the_reconcile(
    tmp_path: Path, distinct: bool
) -> None:
    async with rig_with(tmp_path, distinct=distinct) as (h, rig):
        h.set_liquidity("AAPL", 20)
        await rig.enter(qty=50)
        await rig.bar(*FILL_BAR)
        h.fake.faults.drop_next_events(1)  # the second partial fill is never streamed
        await rig.bar("101.3", "101.6", "101.2", "101.5")
        # The bar crossed the working entry's trigger and its fill was not heard: the
        # engine asked the broker at once (issue 12 item 16).
        report = rig.engine.reconciler.last
        assert report is not None and report.reason == "entry trigger crossed, fill not seen"
        assert report.fills_added == 1
        again = await rig.engine.reconciler.run("test")
        assert again.fills_added == 0 and again.in_sync, again
        assert entry_filled(rig) == (S.PARTIALLY_FILLED, D(40))
        # The one at 101 was heard, the one at 101.3 came over REST: each exactly once.
        fills = sorted((f.qty, f.price) for f in rig.ledger_fills())
        assert fills == [(D(20), D(101)), (D(20), D("101.3"))]
        assert await rig.position() == D(40)
