"""Issue 12 item 10, broker truth: every adapter's order snapshot carries the trailing
stop's current level (`stop_price`) and, where the broker reports it, its high-water mark
(`hwm`), so /status and the report can show the broker's stop."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ib_async import Order, Stock

from brokers.alpaca.mapping import order_from_json
from brokers.ibkr.records import OrderRecord
from brokers.sim import SimBroker
from core.clock import SimClock
from core.domain import ClientOrderId, OrderRequest, OrderType, Side, Symbol, TimeInForce
from tests.fakes.alpaca.models import FakeOrder
from tests.fakes.alpaca.wire import order_json
from tests.kit.brokers import AAPL, MINUTE, make_bar, ny, sim_config

D = Decimal


def _fake_trailing(**fields: object) -> FakeOrder:
    order = FakeOrder(
        id="61e69015-8549-4bfd-b9c3-01e75843f47d",
        client_order_id="p-1",
        symbol="AAPL",
        side="sell",
        type="trailing_stop",
        time_in_force="gtc",
        qty=D(50),
        extended_hours=False,
        created_at=datetime(2026, 3, 2, 15, 0, tzinfo=UTC),
        status="new",
        trail_percent=D(1),
    )
    for name, value in fields.items():
        setattr(order, name, value)
    return order


def test_alpaca_snapshot_carries_the_trailing_stop_and_its_high_water_mark() -> None:
    raw = order_json(_fake_trailing(hwm=D("103"), stop_price=D("101.97")))
    assert raw["hwm"] == "103" and raw["stop_price"] == "101.97"  # the fake emits both
    snapshot = order_from_json(raw)
    assert snapshot.order_type is OrderType.TRAILING_STOP
    assert snapshot.stop_price == D("101.97") and snapshot.hwm == D("103")


def test_alpaca_snapshot_without_a_high_water_mark_yet() -> None:
    snapshot = order_from_json(order_json(_fake_trailing()))
    assert snapshot.stop_price is None and snapshot.hwm is None


def test_ibkr_snapshot_carries_the_trail_stop_price() -> None:
    order = Order(
        orderId=7,
        action="SELL",
        totalQuantity=50,
        orderType="TRAIL",
        trailingPercent=1.0,
        trailStopPrice=101.97,
        tif="GTC",
        orderRef="p-1",
    )
    record = OrderRecord(
        seq=1,
        order_ref="p-1",
        contract=Stock("AAPL", "SMART", "USD"),
        order=order,
        client_id=1,
        order_id=7,
        perm_id=42,
    )
    snapshot = record.snapshot()
    assert snapshot.order_type is OrderType.TRAILING_STOP
    assert snapshot.stop_price == D("101.97") and snapshot.hwm is None


async def test_sim_snapshot_carries_its_level_and_high_water_mark() -> None:
    clock = SimClock(ny(10))
    broker = SimBroker(clock, config=sim_config())
    await broker.on_bar(make_bar(clock.now() - MINUTE, "100", "100", "100", "100"))
    broker.seed_position(AAPL, D(50), D(100))
    placed = await broker.submit(
        OrderRequest(
            client_order_id=ClientOrderId("p-1"),
            symbol=Symbol("AAPL"),
            side=Side.SELL,
            qty=D(50),
            order_type=OrderType.TRAILING_STOP,
            time_in_force=TimeInForce.GTC,
            trail_percent=D(1),
        )
    )
    assert placed.hwm == D(100) and placed.stop_price == D(99)
    bar = make_bar(clock.now(), "100", "103", "100", "102.5")
    clock.set(bar.end)
    await broker.on_bar(bar)
    now = await broker.get_order(placed.broker_order_id)
    assert now.hwm == D(103) and now.stop_price == D("101.97")
