"""Connection supervision: reconnect with backoff on the clock (same client id), orders
matched again by permId/orderRef, alerts, the down-too-long hook, codes 1100/1101/1102."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from brokers.ibkr import IbkrBroker, IbkrConfig, LinkState
from brokers.ibkr.testing import FakeGateway, connected_broker
from core.broker import AmbiguousOutcome, BrokerUnavailable, DuplicateClientOrderId
from core.broker_events import Subscription
from core.calendar import xnys
from core.clock import SimClock
from core.domain import ClientOrderId, OrderRequest, OrderStatus, OrderType
from tests.kit.brokers import make_request, ny

S = OrderStatus
D = Decimal
CONFIG = IbkrConfig(pacing_rate=1000, pacing_burst=64, down_too_long_after=30)


class Hooks:
    def __init__(self) -> None:
        self.reconnects = 0
        self.alerts: list[str] = []
        self.down: list[float] = []

    async def on_reconnect(self) -> None:
        self.reconnects += 1

    def on_alert(self, text: str) -> None:
        self.alerts.append(text)

    def on_down_too_long(self, seconds: float) -> None:
        self.down.append(seconds)


async def setup(
    start: datetime | None = None, **gateway: Any
) -> tuple[IbkrBroker, FakeGateway, SimClock, Hooks]:
    clock = SimClock(start or ny(10))
    hooks = Hooks()
    broker, gw = await connected_broker(
        clock,
        config=CONFIG,
        gateway=FakeGateway(clock=clock, **gateway),
        calendar=xnys(),
        on_reconnect=hooks.on_reconnect,
        on_alert=hooks.on_alert,
        on_down_too_long=hooks.on_down_too_long,
    )
    return broker, gw, clock, hooks


async def advance(gw: FakeGateway, clock: SimClock, seconds: float) -> None:
    await gw.settle()
    clock.advance(seconds)
    await gw.settle(40)


def stop_buy(ref: str = "c-1") -> OrderRequest:
    return make_request(OrderType.STOP, client_order_id=ref, stop_price="100.05")


async def test_reconnect_with_the_same_client_id_and_fills_missed_while_down() -> None:
    broker, gw, clock, hooks = await setup()
    events = broker.events()
    assert isinstance(events, Subscription)
    snap = await broker.submit(stop_buy())
    events.pending()
    gw.fill(gw.order("c-1"), 10, 100.06, silent=True)
    gw.drop()
    assert broker.connection.state is LinkState.DISCONNECTED
    with pytest.raises(BrokerUnavailable):
        await broker.submit(stop_buy("c-2"))
    await advance(gw, clock, 1.0)  # first retry after 1 s
    assert broker.connection.state is LinkState.CONNECTED and gw.client_id == 17
    assert gw.requests.count("connect") == 2 and hooks.reconnects == 1
    assert [(e.kind.value, e.order.broker_order_id) for e in events.pending()] == [
        ("fill", snap.broker_order_id)
    ]
    order = await broker.get_order(snap.broker_order_id)
    assert (order.client_order_id, order.status, order.filled_qty) == ("c-1", S.FILLED, 10)
    assert hooks.alerts[0].startswith("IBKR gateway unreachable")
    assert hooks.alerts[1] == "IBKR connection restored after 1 s"
    await broker.close()


async def test_an_order_unacknowledged_at_the_drop_is_matched_by_order_ref() -> None:
    broker, gw, clock, _ = await setup(auto_ack=False)
    task = asyncio.ensure_future(broker.submit(stop_buy()))
    await gw.settle()
    held = gw.order("c-1")
    held.perm_id, held.acked, held.status = 9500, True, "PreSubmitted"  # IB got it
    gw.drop()
    with pytest.raises(AmbiguousOutcome):
        await task
    await advance(gw, clock, 1.0)
    found = await broker.get_order_by_client_id(ClientOrderId("c-1"))
    assert found is not None and (found.broker_order_id, found.status) == ("9500", S.ACCEPTED)
    ids = broker.order_ids(ClientOrderId("c-1"))
    assert ids is not None and (ids.order_id, ids.perm_id) == (held.order_id, 9500)
    await broker.close()


async def test_an_order_that_never_reached_ib_frees_its_reference() -> None:
    broker, gw, clock, _ = await setup(auto_ack=False)
    task = asyncio.ensure_future(broker.submit(stop_buy()))
    await gw.settle()
    gw.orders.clear()  # lost on the way
    gw.drop()
    with pytest.raises(AmbiguousOutcome):
        await task
    await advance(gw, clock, 1.0)
    assert await broker.get_order_by_client_id(ClientOrderId("c-1")) is None
    gw.auto_ack = True
    assert (await broker.submit(stop_buy())).status is S.ACCEPTED
    await broker.close()


async def test_backoff_doubles_on_the_clock_and_down_too_long_fires_once() -> None:
    broker, gw, clock, hooks = await setup()
    gw.connect_failures = 4
    gw.drop()
    for seconds, attempts in ((1, 2), (2, 3), (4, 4), (8, 5)):  # retries at 1, 3, 7, 15 s
        await advance(gw, clock, seconds)
        assert gw.requests.count("connect") == attempts
    assert broker.connection.down_seconds() == 15 and not broker.connection.down_for(30)
    await advance(gw, clock, 15)  # 30 s down; the next retry is at 31 s
    assert hooks.down == [30.0] and broker.connection.down_for(30)
    assert broker.connection.state is LinkState.DISCONNECTED
    await advance(gw, clock, 1)
    assert broker.connection.state is LinkState.CONNECTED and hooks.reconnects == 1
    assert hooks.down == [30.0] and broker.connection.down_seconds() == 0
    await broker.close()


async def test_no_alert_outside_market_hours() -> None:
    broker, gw, clock, hooks = await setup(ny(3))  # the gateway's nightly restart
    gw.drop()
    await advance(gw, clock, 1.0)
    assert broker.connection.is_up and hooks.alerts == [] and hooks.reconnects == 1
    await broker.close()


async def test_ib_connectivity_codes() -> None:
    broker, gw, _, hooks = await setup()
    resubscribed: list[str] = []

    async def resubscribe() -> None:
        resubscribed.append("bars")

    broker.connection.add_resubscriber(resubscribe)
    gw.ib_lost()
    assert broker.connection.state is LinkState.IB_LOST
    with pytest.raises(BrokerUnavailable, match="ib_lost"):
        await broker.submit(stop_buy())
    await gw.settle()
    assert "during market hours" in hooks.alerts[0]
    before = len(gw.requests)
    gw.ib_restored(data_lost=False)  # 1102: data kept
    await gw.settle(40)
    assert broker.connection.is_up and hooks.reconnects == 1 and resubscribed == []
    assert "reqAllOpenOrders" in gw.requests[before:]  # resynchronised anyway
    gw.ib_lost()
    gw.ib_restored(data_lost=True)  # 1101: market data lost
    await gw.settle(40)
    assert hooks.reconnects == 2 and resubscribed == ["bars"]
    assert gw.requests.count("connect") == 1  # the socket never dropped
    await broker.close()


async def test_a_restarted_adapter_finds_everything_by_order_ref() -> None:
    clock = SimClock(ny(10))
    first, gw = await connected_broker(clock, config=CONFIG, calendar=xnys())
    await first.submit(stop_buy("c-1"))
    await first.submit(stop_buy("c-2"))
    gw.fill(gw.order("c-2"), 10, 100.1, commission=1.0)
    await gw.settle()
    await first.close()
    restarted = IbkrBroker(CONFIG, clock, ib=gw.ib, calendar=xnys())
    events = restarted.events()
    assert isinstance(events, Subscription)
    await restarted.connect()
    assert events.pending() == []  # the start-up synchronisation publishes nothing
    one = await restarted.get_order_by_client_id(ClientOrderId("c-1"))
    two = await restarted.get_order_by_client_id(ClientOrderId("c-2"))
    assert one is not None and (one.status, one.stop_price) == (S.ACCEPTED, D("100.05"))
    assert two is not None and (two.status, two.filled_qty) == (S.FILLED, 10)
    for ref in ("c-1", "c-2"):
        with pytest.raises(DuplicateClientOrderId):
            await restarted.submit(stop_buy(ref))
    [fill] = await restarted.fills_since(ny(9))
    assert (fill.client_order_id, fill.commission) == ("c-2", D("1.0"))
    await restarted.close()
