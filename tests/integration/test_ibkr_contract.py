"""Broker contract: the same scenarios on SimBroker (Alpaca's rules) and on IbkrBroker (over
the FakeGateway), where their behaviour is meant to match.

Shared: submit returns the acknowledged order (status ACCEPTED) and lookups find it by
broker id and client id; a reused client order id is DuplicateClientOrderId, even after a
cancel; cancel is confirmed by a `canceled` event and a second cancel is NotCancelable;
a cancel that loses the race to a fill raises NotCancelable and the order ends FILLED with
its fill; buying power refusals are InsufficientBuyingPower with the broker's reason; a
market order for extended hours is UnsupportedOrder; a driven OrderModel ends identical.

DIFFERENCES (IBKR vs SimBroker/Alpaca), asserted below as such:
- `replace` modifies in place on IBKR: the SAME broker id comes back (`replaces` None, no
  `replaced` event); Alpaca/Sim return a NEW order that replaces the old one. On IBKR,
  `qty` in a replace is the new total (filled shares included) and `client_order_id`
  cannot change (the orderRef stays).
- Stop and stop-limit orders may carry `extended_hours` (outsideRth) on IBKR; Alpaca
  refuses them. Trailing stops outside RTH are refused on both (IBKR: unverified).
- IBKR acknowledges a stop order as PreSubmitted (event `accepted`); Alpaca/Sim as `new`.
- Uniqueness of client order ids: Alpaca enforces it forever; IB does not enforce
  orderRef at all -- the IBKR adapter refuses references it knows of (its own, and all
  orders IB lists: open, completed, executed today), so a reference older than IB's
  completed-orders window can only be refused by the engine's ledger.
- Broker ids on IBKR are permIds (digits); `submit` waits for IB's acknowledgement.
- IBKR commissions arrive after the fill: the fill event carries commission 0 and a
  `restated` event re-publishes the fill with its commission.
- Rejection codes: IB error codes ("201", "110") instead of Alpaca's 8-digit codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from brokers.ibkr import IbkrConfig
from brokers.ibkr.testing import FakeGateway, connected_broker
from brokers.sim import SimBroker
from core.broker import (
    Broker,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    NotCancelable,
    UnsupportedOrder,
)
from core.calendar import xnys
from core.clock import SimClock
from core.domain import ClientOrderId, OrderSnapshot, OrderStatus, OrderType, Side
from core.orders import OrderModel
from tests.kit.brokers import feed, make_bar, make_request, ny, settle, sim_broker

S = OrderStatus
D = Decimal


@dataclass
class Harness:
    """A broker plus a way to make its market execute an order."""

    name: str
    broker: Broker
    clock: SimClock
    gateway: FakeGateway | None = None
    minute: int = 0

    async def execute(self, snap: OrderSnapshot, price: str, *, race: bool = False) -> None:
        """The order fills completely at `price`. `race`: the fill happens at the broker
        but its news is not delivered before our next request."""
        if self.gateway is not None:
            held = self.gateway.order(snap.client_order_id)
            self.gateway.fill(held, float(snap.qty), float(price), silent=race)
            await self.gateway.settle()
            return
        assert isinstance(self.broker, SimBroker)
        self.minute += 1
        bar = make_bar(ny(10, self.minute), price, price, price, price)
        await feed(self.broker, self.clock, bar)
        await settle()

    async def settle(self) -> None:
        if self.gateway is not None:
            await self.gateway.settle()
        else:
            assert isinstance(self.broker, SimBroker)
            self.broker.tick()
            await settle()


@pytest.fixture(params=["sim", "ibkr"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "sim":
        broker, clock = sim_broker()
        yield Harness("sim", broker, clock)
    else:
        clock = SimClock(ny(10))
        config = IbkrConfig(pacing_rate=1000, pacing_burst=64)
        ibkr, gateway = await connected_broker(
            clock, config=config, gateway=FakeGateway(clock=clock), calendar=xnys()
        )
        yield Harness("ibkr", ibkr, clock, gateway)


def stop_buy(ref: str, qty: int = 10, **kw: Any) -> Any:
    return make_request(OrderType.STOP, client_order_id=ref, qty=qty, stop_price="100.05", **kw)


async def test_submit_and_lookups(harness: Harness) -> None:
    broker = harness.broker
    snap = await broker.submit(stop_buy("k-1"))
    assert snap.status is S.ACCEPTED and snap.client_order_id == "k-1"
    assert (await broker.get_order(snap.broker_order_id)).status is S.ACCEPTED
    found = await broker.get_order_by_client_id(ClientOrderId("k-1"))
    assert found is not None and found.broker_order_id == snap.broker_order_id
    assert await broker.get_order_by_client_id(ClientOrderId("nope")) is None
    assert [o.client_order_id for o in await broker.list_orders(open_only=True)] == ["k-1"]
    await broker.close()


async def test_duplicate_client_order_id_even_after_cancel(harness: Harness) -> None:
    broker = harness.broker
    snap = await broker.submit(stop_buy("k-1"))
    with pytest.raises(DuplicateClientOrderId):
        await broker.submit(stop_buy("k-1"))
    await broker.cancel(snap.broker_order_id)
    await harness.settle()
    assert (await broker.get_order(snap.broker_order_id)).status is S.CANCELED
    with pytest.raises(DuplicateClientOrderId):
        await broker.submit(stop_buy("k-1"))
    with pytest.raises(NotCancelable):
        await broker.cancel(snap.broker_order_id)
    await broker.close()


async def test_fill_then_cancel_race(harness: Harness) -> None:
    broker = harness.broker
    events = broker.events()
    snap = await broker.submit(stop_buy("k-1"))
    model = OrderModel.from_request(stop_buy("k-1"))
    await harness.execute(snap, "100.10", race=True)
    with pytest.raises(NotCancelable):
        await broker.cancel(snap.broker_order_id)
    await harness.settle()
    final = await broker.get_order(snap.broker_order_id)
    assert (final.status, final.filled_qty, final.avg_fill_price) == (S.FILLED, 10, D("100.10"))
    for event in events.pending():  # type: ignore[attr-defined]
        model.apply(event)
    assert (model.status, model.filled_qty, len(model.fills)) == (S.FILLED, 10, 1)
    [fill] = await broker.fills_since(ny(9))
    assert (fill.client_order_id, fill.side, fill.qty) == ("k-1", Side.BUY, 10)
    await broker.close()


async def test_buying_power_rejection_is_typed(harness: Harness) -> None:
    if harness.gateway is not None:
        harness.gateway.reject_refs["k-1"] = (
            201,
            "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE "
            "DESIRED POSITION YOUR EQUITY WITH LOAN VALUE [1000 USD] MUST EXCEED THE INITIAL "
            "MARGIN [200000 USD]",
        )
    with pytest.raises(InsufficientBuyingPower) as caught:
        await harness.broker.submit(stop_buy("k-1", qty=2000))
    assert caught.value.reason
    await harness.broker.close()


async def test_extended_hours_rules(harness: Harness) -> None:
    broker = harness.broker
    with pytest.raises(UnsupportedOrder):
        await broker.submit(
            make_request(OrderType.MARKET, client_order_id="m", extended_hours=True)
        )
    with pytest.raises(UnsupportedOrder):
        await broker.submit(
            make_request(
                OrderType.TRAILING_STOP, client_order_id="t", side=Side.SELL, extended_hours=True
            )
        )
    stop = stop_buy("s", extended_hours=True)
    if harness.name == "ibkr":  # DIFFERENCE: outsideRth stops are fine at IB
        assert (await broker.submit(stop)).status is S.ACCEPTED
    else:
        with pytest.raises(UnsupportedOrder):
            await broker.submit(stop)
    await broker.close()


async def test_replace(harness: Harness) -> None:
    broker = harness.broker
    events = broker.events()
    old = await broker.submit(stop_buy("k-1"))
    await harness.settle()
    new = await broker.replace(old.broker_order_id, stop_price=D("100.50"))
    await harness.settle()
    kinds = [e.kind.value for e in events.pending()]  # type: ignore[attr-defined]
    if harness.name == "ibkr":  # DIFFERENCE: modified in place
        assert new.broker_order_id == old.broker_order_id and new.replaces is None
        assert "replaced" not in kinds
    else:
        assert new.broker_order_id != old.broker_order_id
        assert new.replaces == old.broker_order_id and "replaced" in kinds
    now = await broker.get_order(new.broker_order_id)
    assert (now.status, now.stop_price) == (S.ACCEPTED, D("100.50"))
    await broker.close()
