"""SimBroker's fault injection used by the engine model: slow and 5xx submits, and a wire
that duplicates, delays or reorders stream events (the book changes regardless)."""

from __future__ import annotations

import asyncio

import pytest

from core.broker import AmbiguousOutcome
from core.domain import OrderStatus, OrderType
from tests.kit.brokers import feed, kinds, make_bar, make_request, ny, sim_broker, subscribe

S = OrderStatus


async def test_a_slow_submit_lands_only_when_its_time_has_passed() -> None:
    broker, clock = sim_broker()
    broker.faults.slow_next_submit(30)
    request = make_request(OrderType.STOP, stop_price="100.05", client_order_id="slow-1")
    task = asyncio.get_running_loop().create_task(broker.submit(request))
    await asyncio.sleep(0)
    clock.advance(29)
    await asyncio.sleep(0)
    assert not task.done()
    assert await broker.get_order_by_client_id(request.client_order_id) is None
    clock.advance(1)
    snapshot = await task
    assert snapshot.client_order_id == "slow-1"
    assert not broker.faults.pending


async def test_a_server_error_places_nothing() -> None:
    broker, _ = sim_broker()
    broker.faults.server_error_next_submit()
    request = make_request(OrderType.STOP, stop_price="100.05", client_order_id="five-1")
    with pytest.raises(AmbiguousOutcome) as caught:
        await broker.submit(request)
    assert caught.value.client_order_id == "five-1"
    assert await broker.get_order_by_client_id(request.client_order_id) is None
    assert broker.peek_orders() == []
    await broker.submit(request)  # nothing was placed: the same id is accepted
    assert [o.client_order_id for o in broker.peek_orders()] == ["five-1"]


async def test_duplicated_events_arrive_twice() -> None:
    broker, _ = sim_broker()
    events = subscribe(broker)
    broker.faults.duplicate_next_events(1)
    await broker.submit(make_request(OrderType.STOP, stop_price="100.05"))
    assert kinds(events) == ["new", "new"]


async def test_delayed_events_arrive_after_later_ones_when_their_time_comes() -> None:
    broker, clock = sim_broker()
    events = subscribe(broker)
    broker.faults.delay_next_events(1, 120)
    snap = await broker.submit(make_request(OrderType.STOP, stop_price="100.05"))
    await feed(broker, clock, make_bar(ny(10), "100", "100.10", "99.9", "100"))
    assert kinds(events) == ["fill"]  # the `new` is still on the wire
    assert broker.holds_events
    clock.set(ny(10, 1, 59))
    broker.tick()
    assert kinds(events) == []
    clock.set(ny(10, 2))
    broker.tick()
    assert kinds(events) == ["new"]
    assert not broker.holds_events
    assert (await broker.get_order(snap.broker_order_id)).status is S.FILLED


async def test_a_reordered_event_arrives_after_the_next_one() -> None:
    broker, clock = sim_broker()
    events = subscribe(broker)
    broker.faults.reorder_next_events(1)
    await broker.submit(make_request(OrderType.STOP, stop_price="100.05"))
    assert kinds(events) == []
    await feed(broker, clock, make_bar(ny(10), "100", "100.10", "99.9", "100"))
    assert kinds(events) == ["fill", "new"]


async def test_flush_delivers_everything_held() -> None:
    broker, _ = sim_broker()
    events = subscribe(broker)
    broker.faults.reorder_next_events(1)
    broker.faults.delay_next_events(1, 600)
    await broker.submit(make_request(OrderType.STOP, stop_price="100.05"))
    await broker.submit(make_request(OrderType.STOP, stop_price="100.07"))
    assert kinds(events) == []
    broker.flush_events()
    assert kinds(events) == ["new", "new"]
    assert not broker.holds_events


async def test_clear_forgets_pending_faults() -> None:
    broker, _ = sim_broker()
    broker.faults.slow_next_submit(10)
    broker.faults.duplicate_next_events(3)
    broker.faults.unavailable()
    assert broker.faults.pending
    broker.faults.clear()
    assert not broker.faults.pending
    await broker.submit(make_request(OrderType.STOP, stop_price="100.05"))
