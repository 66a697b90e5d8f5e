"""IbkrBroker orders against a real offline IB(): the FakeGateway stubs the client (socket
edge) and answers through the wrapper with real ib_async objects."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from brokers.ibkr import IbkrBroker, IbkrConfig
from brokers.ibkr.testing import FakeGateway, connected_broker
from core.broker import (
    AmbiguousOutcome,
    Broker,
    BrokerEvent,
    BrokerUnavailable,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    NotCancelable,
    NotReplaceable,
    OrderRejected,
    RateLimited,
    UnsupportedOrder,
)
from core.broker_events import Subscription
from core.calendar import xnys
from core.clock import SimClock
from core.domain import ClientOrderId, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from core.orders import OrderModel
from tests.kit.brokers import make_request, ny

S = OrderStatus
D = Decimal
CONFIG = IbkrConfig(pacing_rate=1000, pacing_burst=64)


async def setup(**gateway: Any) -> tuple[IbkrBroker, FakeGateway, SimClock, Subscription]:
    clock = SimClock(ny(10))
    broker, gw = await connected_broker(
        clock, config=CONFIG, gateway=FakeGateway(clock=clock, **gateway), calendar=xnys()
    )
    events = broker.events()
    assert isinstance(events, Subscription)
    return broker, gw, clock, events


def stop_buy(ref: str = "c-1", qty: int = 10, stop: str = "100.05", **kw: Any) -> OrderRequest:
    return make_request(OrderType.STOP, client_order_id=ref, qty=qty, stop_price=stop, **kw)


def ib_async_statuses(gw: FakeGateway) -> list[str]:
    """What ib_async's own Trade objects go through from now on."""
    seen: list[str] = []
    gw.ib.orderStatusEvent += lambda trade: seen.append(trade.orderStatus.status)
    return seen


def kinds(events: Subscription) -> list[str]:
    return [event.kind.value for event in events.pending()]


async def test_submit_sends_a_tagged_order_and_returns_the_acknowledged_snapshot() -> None:
    broker, gw, _, events = await setup()
    assert isinstance(broker, Broker) and broker.name == "ibkr"
    snap = await broker.submit(stop_buy())
    held = gw.order("c-1")
    assert (held.order.orderType, held.order.action, held.order.orderRef) == ("STP", "BUY", "c-1")
    assert held.order.auxPrice == D("100.05") and held.order.outsideRth is False
    assert (snap.broker_order_id, snap.status, snap.raw_status) == (
        "9001",
        S.ACCEPTED,
        "PreSubmitted",
    )
    assert (snap.stop_price, snap.qty, snap.time_in_force) == (D("100.05"), 10, TimeInForce.DAY)
    ids = broker.order_ids(ClientOrderId("c-1"))
    assert ids is not None and (ids.order_ref, ids.client_id, ids.perm_id) == ("c-1", 17, 9001)
    assert ids.order_id == held.order_id
    assert kinds(events) == ["accepted"]
    await broker.close()


async def test_before_place_hook_sees_the_ids_before_the_order_leaves() -> None:
    clock = SimClock(ny(10))
    gw = FakeGateway(clock=clock)
    seen: list[tuple[str, int, int, int]] = []

    async def persist(ids: object) -> None:
        assert not gw.orders  # nothing sent yet
        seen.append((ids.order_ref, ids.client_id, ids.order_id, ids.perm_id))  # type: ignore[attr-defined]

    broker, _ = await connected_broker(
        clock, config=CONFIG, gateway=gw, calendar=xnys(), before_place=persist
    )
    await broker.submit(stop_buy())
    assert seen == [("c-1", 17, gw.order("c-1").order_id, 0)]
    await broker.close()


async def test_rejection_201_raises_with_the_reason_and_ib_async_local_cancel_is_not_used() -> None:
    broker, gw, _, events = await setup()
    gw.reject_refs["c-1"] = (201, "Order rejected - reason:Stock is not tradable")
    with pytest.raises(OrderRejected) as caught:
        await broker.submit(stop_buy())
    assert (caught.value.reason, caught.value.code) == ("Stock is not tradable", "201")
    assert caught.value.client_order_id == "c-1"
    snap = await broker.get_order_by_client_id(ClientOrderId("c-1"))
    assert snap is not None and (snap.status, snap.reject_reason) == (
        S.REJECTED,
        "Stock is not tradable",
    )
    assert kinds(events) == ["rejected"]
    with pytest.raises(DuplicateClientOrderId):  # the reference stays used, as on Alpaca
        await broker.submit(stop_buy())
    await broker.close()


async def test_rejection_for_margin_is_insufficient_buying_power() -> None:
    broker, gw, _, _ = await setup()
    gw.reject_refs["c-1"] = (
        201,
        "Order rejected - reason:Your order is not accepted because your Equity with Loan "
        "Value of [1000 USD] is insufficient to cover the Initial Margin requirement",
    )
    with pytest.raises(InsufficientBuyingPower):
        await broker.submit(stop_buy())
    await broker.close()


async def test_an_error_alone_is_confirmed_by_a_query_before_the_order_is_rejected() -> None:
    broker, gw, _, _ = await setup(auto_ack=False)
    task = asyncio.ensure_future(broker.submit(stop_buy()))
    await gw.settle()
    held = gw.order("c-1")
    before = len(gw.requests)
    gw.error(held.order_id, 201, "Order rejected - reason:Outside of trading hours")
    with pytest.raises(OrderRejected, match="Outside of trading hours"):
        await task
    assert gw.requests[before:] == ["reqAllOpenOrders", "reqCompletedOrders"]
    await broker.close()


async def test_pacing_error_on_submit_is_rate_limited_and_frees_the_reference() -> None:
    broker, gw, clock, _ = await setup()
    gw.reject_refs["c-1"] = (100, "Max rate of messages per second has been exceeded")
    task = asyncio.ensure_future(broker.submit(stop_buy()))
    await gw.settle()
    sent = len(gw.requests)
    assert not task.done()  # even the confirming query waits out IB's complaint
    clock.advance(1.0)
    with pytest.raises(RateLimited) as caught:
        await task
    assert caught.value.retry_after == 1.0 and len(gw.requests) > sent
    del gw.reject_refs["c-1"]
    snap = await broker.submit(stop_buy())
    assert snap.status is S.ACCEPTED
    await broker.close()


async def test_cancel_202_ends_the_order_and_is_published() -> None:
    broker, _, _, events = await setup()
    snap = await broker.submit(stop_buy())
    events.pending()
    await broker.cancel(snap.broker_order_id)
    assert (await broker.get_order(snap.broker_order_id)).status is S.CANCELED
    assert kinds(events) == ["canceled"]
    with pytest.raises(NotCancelable):
        await broker.cancel(snap.broker_order_id)
    await broker.close()


@pytest.mark.parametrize("code", [10147, 10148])
async def test_cancel_that_raced_a_fill_queries_ib_and_reports_the_fill(code: int) -> None:
    broker, gw, _, events = await setup()
    model = OrderModel.from_request(stop_buy())
    snap = await broker.submit(stop_buy())
    held = gw.order("c-1")
    gw.fill(held, 10, 100.06, silent=True)  # filled at IB; the messages are still in flight
    gw.cancel_errors["c-1"] = (code, f"OrderId {held.order_id} that needs to be cancelled ...")
    events.pending()
    local = ib_async_statuses(gw)
    with pytest.raises(NotCancelable, match="Filled"):
        await broker.cancel(snap.broker_order_id)
    assert local == ["PendingCancel", "Cancelled"]  # ib_async's own inventions
    order = await broker.get_order(snap.broker_order_id)
    assert (order.status, order.filled_qty, order.avg_fill_price) == (S.FILLED, 10, D("100.06"))
    published = events.pending()
    assert [e.kind.value for e in published] == ["fill"]  # no canceled, ever
    for event in published:
        model.apply(event)
    assert (model.status, model.filled_qty) == (S.FILLED, 10)
    await broker.close()


async def test_a_local_cancelled_that_ib_contradicts_does_not_end_the_order() -> None:
    broker, gw, _, events = await setup()
    snap = await broker.submit(stop_buy())
    held = gw.order("c-1")
    events.pending()
    local = ib_async_statuses(gw)
    gw.reject_refs["modify:c-1"] = (201, "Order rejected - reason:Price too far from market")
    with pytest.raises(OrderRejected, match="too far"):
        await broker.replace(snap.broker_order_id, stop_price=D("120.00"))
    assert local == ["Cancelled", "PreSubmitted"]  # ib_async ended it locally, IB did not
    order = await broker.get_order(snap.broker_order_id)
    assert (order.status, order.stop_price) == (S.ACCEPTED, D("100.05"))
    assert kinds(events) == []
    # An unsolicited error on the live order: confirmed against IB, the order lives on.
    gw.error(held.order_id, 201, "Order rejected - reason:something")
    await gw.settle(30)
    assert (await broker.get_order(snap.broker_order_id)).status is S.ACCEPTED
    # The order still works at IB, so it can still be modified and canceled.
    gw.reject_refs.clear()
    moved = await broker.replace(snap.broker_order_id, stop_price=D("100.10"))
    assert (moved.broker_order_id, moved.stop_price) == (snap.broker_order_id, D("100.10"))
    gw.fill(held, 10, 100.12)
    await gw.settle()
    assert (await broker.get_order(snap.broker_order_id)).status is S.FILLED
    await broker.close()


async def test_replace_modifies_in_place_and_keeps_the_broker_id() -> None:
    broker, gw, _, events = await setup()
    snap = await broker.submit(stop_buy())
    placed = len([r for r in gw.requests if r == "placeOrder"])
    events.pending()
    new = await broker.replace(
        snap.broker_order_id, qty=D(12), stop_price=D("100.25"), client_order_id=ClientOrderId("x")
    )
    assert new.broker_order_id == snap.broker_order_id and new.replaces is None
    assert (new.client_order_id, new.qty, new.stop_price) == ("c-1", 12, D("100.25"))
    held = gw.order("c-1")
    assert (held.order.totalQuantity, held.order.auxPrice) == (12, D("100.25"))
    assert [r for r in gw.requests if r == "placeOrder"][placed:] == ["placeOrder"]
    assert "replaced" not in kinds(events)
    with pytest.raises(OrderRejected, match="changes nothing"):
        await broker.replace(snap.broker_order_id, stop_price=D("100.25"))
    with pytest.raises(UnsupportedOrder):
        await broker.replace(snap.broker_order_id, stop_price=D("100.255"))
    with pytest.raises(OrderRejected, match="no limit price"):
        await broker.replace(snap.broker_order_id, limit_price=D("101"))
    gw.fill(held, 12, 100.3)
    await gw.settle()
    with pytest.raises(NotReplaceable):
        await broker.replace(snap.broker_order_id, stop_price=D("101"))
    await broker.close()


async def test_no_acknowledgement_is_ambiguous_and_resolved_by_client_id() -> None:
    broker, gw, clock, _ = await setup(auto_ack=False)
    task = asyncio.ensure_future(broker.submit(stop_buy()))
    await gw.settle()
    clock.advance(CONFIG.ack_timeout)
    with pytest.raises(AmbiguousOutcome) as caught:
        await task
    assert caught.value.client_order_id == "c-1"
    assert await broker.get_order_by_client_id(ClientOrderId("c-1")) is None  # IB lists nothing
    gw._accept(gw.order("c-1"))  # the acknowledgement was only late
    found = await broker.get_order_by_client_id(ClientOrderId("c-1"))
    assert found is not None and found.status is S.ACCEPTED
    await broker.close()


async def test_executions_are_deduplicated_and_corrections_replace() -> None:
    broker, gw, _, events = await setup()
    snap = await broker.submit(stop_buy())
    model = OrderModel.from_snapshot(snap)
    held = gw.order("c-1")
    events.pending()
    first = gw.fill(held, 4, 100.06, exec_id="0000e0d5.6553ba64.01.01")
    gw.send_execution(held.contract, first)  # the same execution again
    gw.fill(held, 6, 100.07, exec_id="0000e0d5.6553ba65.01.01")
    corrected = gw.correct(first, price=100.04)
    gw.send_execution(held.contract, first)  # the superseded revision, late
    await gw.settle()
    published = events.pending()
    assert [e.kind.value for e in published] == ["partial_fill", "fill", "trade_correct"]
    assert published[2].fill is not None and published[2].fill.price == D("100.04")
    for event in published[:2]:
        model.apply(event)
    assert (model.filled_qty, model.status) == (10, S.FILLED)
    fills = await broker.fills_since(ny(9))
    assert [(f.execution_id, f.qty, f.price) for f in fills] == [
        ("0000e0d5.6553ba64.01", 4, D("100.04")),
        ("0000e0d5.6553ba65.01", 6, D("100.07")),
    ]
    order = await broker.get_order(snap.broker_order_id)
    assert (order.filled_qty, order.avg_fill_price) == (10, D("100.058"))
    assert corrected.execId.endswith(".02")
    await broker.close()


async def test_commission_reports_are_attached_and_republished() -> None:
    broker, gw, _, events = await setup()
    await broker.submit(stop_buy())
    held = gw.order("c-1")
    events.pending()
    gw.send_commission("0000e0d5.6553ba70.01.01", 0.35)  # the report may come first
    gw.fill(held, 4, 100.06, exec_id="0000e0d5.6553ba70.01.01")
    execution = gw.fill(held, 6, 100.07)
    gw.send_commission(execution.execId, 0.65)
    await gw.settle()
    published: list[BrokerEvent] = events.pending()
    assert [e.kind.value for e in published] == ["partial_fill", "fill", "restated"]
    assert published[0].fill is not None and published[0].fill.commission == D("0.35")
    assert published[2].fill is not None and published[2].fill.commission == D("0.65")
    fills = await broker.fills_since(ny(9))
    assert [f.commission for f in fills] == [D("0.35"), D("0.65")]
    await broker.close()


async def test_extended_hours_rules_follow_the_ibkr_matrix() -> None:
    broker, gw, _, _ = await setup()
    with pytest.raises(UnsupportedOrder, match="2109"):
        await broker.submit(
            make_request(OrderType.MARKET, client_order_id="m", extended_hours=True)
        )
    with pytest.raises(UnsupportedOrder, match="unverified"):
        await broker.submit(
            make_request(
                OrderType.TRAILING_STOP, client_order_id="t", side=Side.SELL, extended_hours=True
            )
        )
    assert "placeOrder" not in gw.requests
    snap = await broker.submit(stop_buy("s", extended_hours=True))
    assert gw.order("s").order.outsideRth is True and snap.status is S.ACCEPTED
    # 2109 is a warning: the order keeps working.
    gw.error(
        gw.order("s").order_id,
        2109,
        "Order Event Warning: Attribute 'Outside Regular Trading Hours' is ignored",
    )
    await gw.settle()
    assert (await broker.get_order(snap.broker_order_id)).status is S.ACCEPTED
    await broker.close()


async def test_ib_price_error_110_is_unsupported_order() -> None:
    broker, gw, _, _ = await setup()
    gw.reject_refs["c-1"] = (110, "The price does not conform to the minimum price variation")
    with pytest.raises(UnsupportedOrder) as caught:
        await broker.submit(stop_buy())
    assert caught.value.code == "110"
    gw.unknown_symbols.add("ZZZZ")
    with pytest.raises(UnsupportedOrder, match="ZZZZ"):
        await broker.submit(make_request(OrderType.LIMIT, client_order_id="z", symbol="ZZZZ"))  # type: ignore[arg-type]
    await broker.close()


async def test_positions_account_and_external_orders() -> None:
    broker, gw, _, _ = await setup()
    gw.positions["AAPL"] = (10.0, 100.0525)
    gw.positions["MSFT"] = (0.0, 0.0)
    [position] = await broker.positions()
    assert (position.symbol, position.qty, position.avg_entry_price) == ("AAPL", 10, D("100.0525"))
    account = await broker.account()
    assert (account.account_id, account.equity, account.cash) == (
        "DU1234567",
        D("100000.00"),
        D("60000.00"),
    )
    assert account.buying_power == D("240000.00") and account.extra["AvailableFunds"] == "60000.00"
    manual = gw.external("MSFT", "SELL", 5, "LMT", lmtPrice=400.5)
    [order] = await broker.list_orders(open_only=True)
    assert (order.client_order_id, order.broker_order_id) == (
        f"ibkr-perm-{manual.perm_id}",
        str(manual.perm_id),
    )
    assert (order.side, order.limit_price, order.status) == (Side.SELL, D("400.5"), S.ACCEPTED)
    found = await broker.get_order_by_client_id(order.client_order_id)
    assert found is not None and found.broker_order_id == order.broker_order_id
    await broker.close()


async def test_submit_when_disconnected_is_broker_unavailable() -> None:
    broker = IbkrBroker(CONFIG, SimClock(ny(10)), ib=FakeGateway().ib, calendar=xnys())
    with pytest.raises(BrokerUnavailable):
        await broker.submit(stop_buy())
    await broker.close()


async def test_inactive_after_a_refusal_is_rejected_with_its_reason() -> None:
    broker, gw, _, events = await setup()
    snap = await broker.submit(stop_buy())
    held = gw.order("c-1")
    events.pending()
    gw.error(held.order_id, 201, "Order rejected - reason:Account is restricted")
    gw.set_status(held, "Inactive")
    await gw.settle(30)
    order = await broker.get_order(snap.broker_order_id)
    assert (order.status, order.reject_reason, order.raw_status) == (
        S.REJECTED,
        "Account is restricted",
        "Inactive",
    )
    assert kinds(events) == ["rejected"]
    await broker.close()
