"""Entry with an attached trailing-stop child: placement as one group, the child following
the parent's fills (verified against what IB reports), refusals, and a restart."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.ibkr import (
    AttachedProtectionRefused,
    IbkrBroker,
    IbkrConfig,
    SupportsAttachedProtection,
)
from brokers.ibkr.testing import FakeGateway, GwOrder, connected_broker
from core.broker import OrderRejected
from core.broker_events import Subscription
from core.calendar import xnys
from core.clock import SimClock
from core.domain import ClientOrderId, OrderRequest, OrderStatus, OrderType, TimeInForce
from core.orders import OrderModel
from tests.kit.brokers import make_request, ny

S = OrderStatus
D = Decimal
CONFIG = IbkrConfig(pacing_rate=1000, pacing_burst=64)
CHILD = ClientOrderId("c-1.trail")


async def setup(
    gw: FakeGateway | None = None, clock: SimClock | None = None, **options: object
) -> tuple[IbkrBroker, FakeGateway]:
    clock = clock or SimClock(ny(10))
    gw = gw or FakeGateway(clock=clock)
    broker, gw = await connected_broker(
        clock, config=CONFIG, gateway=gw, calendar=xnys(), **options
    )
    return broker, gw


def entry(qty: int = 10) -> OrderRequest:
    return make_request(OrderType.STOP, client_order_id="c-1", qty=qty, stop_price="100.05")


def held_quantities(gw: FakeGateway, held: GwOrder) -> list[float]:
    """Total quantities sent for `held` since `log_modifications` (modifications)."""
    log: dict[int, list[float]] = getattr(gw, "_qty_log", {})
    return log.get(held.order_id, [])


def log_modifications(gw: FakeGateway) -> None:
    log: dict[int, list[float]] = {}
    original = gw._placeOrder

    def spy(order_id: int, contract: object, order: object) -> None:
        log.setdefault(order_id, []).append(float(order.totalQuantity))  # type: ignore[attr-defined]
        original(order_id, contract, order)  # type: ignore[arg-type]

    gw.ib.client.placeOrder = spy  # type: ignore[method-assign]
    gw._qty_log = log  # type: ignore[attr-defined]


async def test_group_is_placed_parent_untransmitted_then_child_transmitting() -> None:
    broker, gw = await setup()
    assert isinstance(broker, SupportsAttachedProtection)
    parent, child = await broker.submit_with_protection(entry(), D("1.5"), CHILD)
    p, c = gw.order("c-1"), gw.order(CHILD)
    assert (p.order.orderType, p.order.transmit, p.order.orderRef) == ("STP", False, "c-1")
    assert (c.order.orderType, c.order.action, c.order.transmit) == ("TRAIL", "SELL", True)
    assert (c.order.parentId, c.order.trailingPercent, c.order.tif) == (p.order_id, D("1.5"), "GTC")
    assert c.order.totalQuantity == 10 and c.order.orderRef == CHILD
    assert (parent.status, child.status) == (S.ACCEPTED, S.ACCEPTED)
    assert (child.order_type, child.trail_percent, child.qty) == (
        OrderType.TRAILING_STOP,
        D("1.5"),
        10,
    )
    assert child.time_in_force is TimeInForce.GTC
    ids = broker.order_ids(CHILD)
    assert ids is not None and ids.parent_order_id == p.order_id
    state = broker.attached_state(ClientOrderId("c-1"))
    assert state is not None and state.in_sync and state.child_qty == 10
    await broker.close()


async def test_parent_fill_activates_the_child() -> None:
    broker, gw = await setup()
    events = broker.events()
    assert isinstance(events, Subscription)
    _, child = await broker.submit_with_protection(entry(), D("1.5"), CHILD)
    log_modifications(gw)
    events.pending()
    gw.fill(gw.order("c-1"), 10, 100.06)
    await gw.settle(30)
    published = [(e.order.client_order_id, e.kind.value) for e in events.pending()]
    assert published == [("c-1", "fill"), (CHILD, "new")]
    now = await broker.get_order(child.broker_order_id)
    assert (now.status, now.raw_status, now.qty) == (S.ACCEPTED, "Submitted", 10)
    state = broker.attached_state(ClientOrderId("c-1"))
    assert state is not None and state.in_sync and state.parent_filled == 10
    assert held_quantities(gw, gw.order(CHILD)) == []  # nothing to re-size
    await broker.close()


async def test_partial_parent_fills_resize_the_child_to_what_is_filled() -> None:
    broker, gw = await setup()
    _, child = await broker.submit_with_protection(entry(), D("1.5"), CHILD)
    log_modifications(gw)
    held_child = gw.order(CHILD)
    gw.fill(gw.order("c-1"), 4, 100.06)
    await gw.settle(30)
    assert held_quantities(gw, held_child) == [4.0]
    state = broker.attached_state(ClientOrderId("c-1"))
    assert state is not None and (state.child_qty, state.wanted_qty, state.in_sync) == (4, 4, True)
    assert (await broker.get_order(child.broker_order_id)).qty == 4  # as IB reports it
    gw.fill(gw.order("c-1"), 6, 100.07)
    await gw.settle(30)
    assert held_quantities(gw, held_child) == [4.0, 10.0]
    state = broker.attached_state(ClientOrderId("c-1"))
    assert state is not None and state.in_sync and state.child_qty == 10
    assert held_child.status == "Submitted"
    await broker.close()


async def test_parent_canceled_after_a_partial_fill_leaves_the_child_sized_to_the_fill() -> None:
    broker, gw = await setup()
    parent, _ = await broker.submit_with_protection(entry(), D("1.5"), CHILD)
    log_modifications(gw)
    gw.fill(gw.order("c-1"), 3, 100.06)
    await gw.settle(30)
    await broker.cancel(parent.broker_order_id)
    await gw.settle(30)
    assert gw.order(CHILD).order.totalQuantity == 3 and gw.order(CHILD).status == "PreSubmitted"
    state = broker.attached_state(ClientOrderId("c-1"))
    assert state is not None and state.in_sync and state.child_status is S.ACCEPTED
    await broker.close()


async def test_refused_attachment_cancels_the_entry_and_raises_a_typed_error() -> None:
    broker, gw = await setup()
    gw.reject_refs[CHILD] = (201, "Order rejected - reason:Trailing orders are not allowed")
    with pytest.raises(AttachedProtectionRefused) as caught:
        await broker.submit_with_protection(entry(), D("1.5"), CHILD)
    refusal = caught.value
    assert isinstance(refusal, OrderRejected) and "not allowed" in refusal.reason
    assert refusal.parent is not None and refusal.parent.status is S.CANCELED
    assert gw.order("c-1").status == "Cancelled"
    assert broker.attached_state(ClientOrderId("c-1")) is None
    await broker.close()


async def test_refused_before_sending_when_the_child_is_invalid() -> None:
    broker, gw = await setup()
    with pytest.raises(AttachedProtectionRefused) as caught:
        await broker.submit_with_protection(entry(), D("0"), CHILD)
    assert caught.value.parent is None and "placeOrder" not in gw.requests
    await broker.close()


async def test_rejected_parent_is_a_plain_rejection() -> None:
    broker, gw = await setup()
    gw.reject_refs["c-1"] = (201, "Order rejected - reason:No trading permissions")
    with pytest.raises(OrderRejected) as caught:
        await broker.submit_with_protection(entry(), D("1.5"), CHILD)
    assert not isinstance(caught.value, AttachedProtectionRefused)
    assert caught.value.reason == "No trading permissions"
    await broker.close()


async def test_a_failed_resize_alerts() -> None:
    alerts: list[str] = []
    broker, gw = await setup(on_alert=alerts.append)
    await broker.submit_with_protection(entry(), D("1.5"), CHILD)
    gw.reject_refs[f"modify:{CHILD}"] = (201, "Order rejected - reason:Cannot modify")
    gw.fill(gw.order("c-1"), 4, 100.06)
    await gw.settle(60)
    state = broker.attached_state(ClientOrderId("c-1"))
    assert state is not None and not state.in_sync and state.last_error is not None
    assert state.child_status is S.ACCEPTED  # the child still works at IB (10 shares)
    assert len(alerts) == 1 and "could not be re-sized to 4" in alerts[0]
    await broker.close()


async def test_after_a_restart_groups_are_rebuilt_from_ib_and_kept_in_sync() -> None:
    clock = SimClock(ny(10))
    first, gw = await setup(clock=clock)
    parent, child = await first.submit_with_protection(entry(), D("1.5"), CHILD)
    await first.close()
    gw.connected = False
    restarted = IbkrBroker(CONFIG, clock, ib=gw.ib, calendar=xnys())
    await restarted.connect()
    state = restarted.attached_state(ClientOrderId("c-1"))
    assert state is not None and state.child_client_order_id == CHILD
    model = OrderModel.from_snapshot(await restarted.get_order(parent.broker_order_id))
    events = restarted.events()
    gw.fill(gw.order("c-1"), 5, 100.06)
    await gw.settle(30)
    assert gw.order(CHILD).order.totalQuantity == 5
    for event in events.pending():  # type: ignore[attr-defined]
        if event.order.client_order_id == "c-1":
            model.apply(event)
    assert (model.filled_qty, model.status) == (5, S.PARTIALLY_FILLED)
    assert (await restarted.get_order(child.broker_order_id)).qty == 5
    await restarted.close()


async def test_an_inactive_child_waiting_for_its_parent_is_not_a_rejection() -> None:
    broker, gw = await setup()
    _, child = await broker.submit_with_protection(entry(), D("1.5"), CHILD)
    gw.set_status(gw.order(CHILD), "Inactive")  # no error came with it
    await gw.settle()
    assert (await broker.get_order(child.broker_order_id)).status is S.ACCEPTED
    await broker.close()
