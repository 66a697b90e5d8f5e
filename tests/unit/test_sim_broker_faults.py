"""SimBroker: injected faults, the event fan-out, and state that survives a restart."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.sim import PartialFills, SimBroker
from core.broker import (
    AmbiguousOutcome,
    BrokerUnavailable,
    DuplicateClientOrderId,
    OrderRejected,
    RateLimited,
)
from core.clock import SimClock
from core.domain import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from core.fills import IBKR_FRICTION
from tests.kit.brokers import (
    AAPL,
    feed,
    kinds,
    make_bar,
    make_request,
    ny,
    settle,
    sim_broker,
    sim_config,
    subscribe,
)

S = OrderStatus
D = Decimal


def stop_buy(trigger: str = "100.05", qty: int = 10, **kw: object) -> OrderRequest:
    return make_request(OrderType.STOP, stop_price=trigger, qty=qty, **kw)  # type: ignore[arg-type]


# --- faults ----------------------------------------------------------------------------


async def test_timeout_after_accept_leaves_the_order_to_be_found() -> None:
    broker, _ = sim_broker()
    broker.faults.timeout_after_accept_next_submit()
    request = stop_buy()
    with pytest.raises(AmbiguousOutcome) as caught:
        await broker.submit(request)
    assert caught.value.client_order_id == request.client_order_id
    found = await broker.get_order_by_client_id(request.client_order_id)
    assert found is not None and found.status is S.ACCEPTED
    # a blind resend is refused, as Alpaca's would be
    with pytest.raises(DuplicateClientOrderId):
        await broker.submit(request)


async def test_reject_next_synchronously_places_nothing() -> None:
    broker, _ = sim_broker()
    broker.faults.reject_next("insufficient buying power", "40310000")
    request = stop_buy()
    with pytest.raises(OrderRejected) as caught:
        await broker.submit(request)
    assert (caught.value.reason, caught.value.code) == ("insufficient buying power", "40310000")
    assert await broker.get_order_by_client_id(request.client_order_id) is None
    await broker.submit(request)  # nothing was placed, so the id is still free


async def test_reject_next_asynchronously_arrives_as_an_event() -> None:
    broker, clock = sim_broker(ack_latency=0.2)
    events = subscribe(broker)
    broker.faults.reject_next("account restricted", asynchronous=True)
    snap = await broker.submit(stop_buy())
    assert snap.status is S.SUBMITTED
    clock.advance(0.2)
    await settle()
    assert kinds(events) == ["pending_new", "rejected"]
    rejected = await broker.get_order(snap.broker_order_id)
    assert (rejected.status, rejected.reject_reason) == (S.REJECTED, "account restricted")


async def test_dropped_events_are_lost_but_the_state_changed() -> None:
    broker, clock = sim_broker()
    events = subscribe(broker)
    broker.faults.drop_next_events(2)
    snap = await broker.submit(stop_buy())  # `new` dropped
    await feed(broker, clock, make_bar(ny(10), "100", "100.10", "99.9", "100"))  # `fill` dropped
    assert kinds(events) == []
    assert (await broker.get_order(snap.broker_order_id)).status is S.FILLED
    await broker.submit(make_request(OrderType.TRAILING_STOP, side=Side.SELL))
    assert kinds(events) == ["new"]


async def test_rate_limit_applies_to_any_call() -> None:
    broker, _ = sim_broker()
    broker.faults.rate_limit_next(2, retry_after=3.0)
    with pytest.raises(RateLimited) as caught:
        await broker.submit(stop_buy())
    assert caught.value.retry_after == 3.0
    with pytest.raises(RateLimited):
        await broker.positions()
    assert await broker.list_orders(open_only=False) == []  # the refused submit placed nothing


async def test_unavailable_refuses_calls_and_loses_stream_while_the_market_goes_on() -> None:
    broker, clock = sim_broker()
    events = subscribe(broker)
    snap = await broker.submit(stop_buy())
    broker.faults.unavailable()
    with pytest.raises(BrokerUnavailable):
        await broker.get_order(snap.broker_order_id)
    await feed(broker, clock, make_bar(ny(10), "100", "100.10", "99.9", "100"))
    broker.faults.unavailable(False)
    assert kinds(events) == ["new"]  # the fill happened while the stream was down
    assert (await broker.get_order(snap.broker_order_id)).status is S.FILLED  # reconcile


async def test_each_subscriber_gets_every_event_in_order() -> None:
    broker, clock = sim_broker(partial_fills=PartialFills(chunks=(D(4),)))
    first, second = subscribe(broker), subscribe(broker)
    await broker.submit(stop_buy())
    await feed(broker, clock, make_bar(ny(10), "100", "100.10", "99.9", "100"))
    late = subscribe(broker)  # sees only what comes after it subscribed
    await feed(broker, clock, make_bar(ny(10, 1), "100", "100.10", "99.9", "100"))
    assert kinds(first) == ["new", "partial_fill", "fill"]
    assert kinds(second) == ["new", "partial_fill", "fill"]
    assert kinds(late) == ["fill"]


async def test_a_waiting_consumer_is_woken_by_the_clock() -> None:
    broker, clock = sim_broker(cancel_latency=10.0)
    stream = broker.events()
    snap = await broker.submit(stop_buy())
    await broker.cancel(snap.broker_order_id)

    async def until_canceled() -> list[str]:
        seen = []
        async for event in stream:
            seen.append(event.kind.value)
            if event.kind.value == "canceled":
                return seen
        return seen

    consumer = asyncio.create_task(until_canceled())
    await settle()
    assert not consumer.done()
    clock.advance(10)
    assert await asyncio.wait_for(consumer, 1.0) == ["new", "pending_cancel", "canceled"]
    await broker.close()


# --- persistence -----------------------------------------------------------------------


async def test_save_and_load_mid_life(tmp_path: Path) -> None:
    config = sim_config(
        friction=IBKR_FRICTION, cancel_latency=5.0, partial_fills=PartialFills(chunks=(D(3),))
    )
    clock = SimClock(ny(10))
    broker = SimBroker(clock, config=config)
    broker.seed_position(AAPL, D(20), D("95.5"))
    entry = await broker.submit(stop_buy("100.05"))
    await feed(broker, clock, make_bar(ny(10), "100", "100.10", "99.9", "100.02"))  # 3 of 10
    # (a stop sell would be a wash trade against the working buy remainder)
    trail = await broker.submit(
        make_request(OrderType.LIMIT, side=Side.SELL, qty=20, limit_price="120",
                     time_in_force=TimeInForce.GTC)
    )  # fmt: skip
    await broker.cancel(entry.broker_order_id)  # pending for 5 s
    path = tmp_path / "sim.json"
    broker.save(path)
    before = await _state(broker)

    restored = SimBroker.load(path, clock)
    assert await _state(restored) == before
    assert restored.config == config
    # life goes on where it stopped: the cancel completes, the ids stay unique
    clock.advance(5)
    restored.tick()
    assert (await restored.get_order(entry.broker_order_id)).status is S.CANCELED
    with pytest.raises(DuplicateClientOrderId):
        await restored.submit(make_request(OrderType.MARKET, client_order_id=entry.client_order_id))
    nxt = await restored.submit(make_request(OrderType.LIMIT, qty=1, limit_price="90"))
    assert nxt.broker_order_id not in (entry.broker_order_id, trail.broker_order_id)
    [fill] = await restored.fills_since(ny(9))
    assert (fill.qty, fill.commission) == (3, D("1.00"))


async def _state(broker: SimBroker) -> tuple[object, ...]:
    return (
        await broker.list_orders(open_only=False),
        await broker.positions(),
        await broker.account(),
        await broker.fills_since(ny(0)),
    )


async def test_persist_path_survives_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sim.json"
    clock = SimClock(ny(10))
    broker = SimBroker.open(path, clock, config=sim_config())
    snap = await broker.submit(stop_buy())
    # no close(), no save(): the process "dies" here
    data = json.loads(path.read_text())
    assert data["book"]["orders"][0]["stop_price"] == "100.05"  # Decimals as exact strings
    assert list(path.parent.iterdir()) == [path]  # no temp files left behind
    reborn = SimBroker.open(path, clock)
    assert (await reborn.get_order(snap.broker_order_id)).status is S.ACCEPTED
    await feed(reborn, clock, make_bar(ny(10), "100", "100.10", "99.9", "100"))
    again = SimBroker.open(path, clock)
    assert (await again.get_order(snap.broker_order_id)).status is S.FILLED


async def test_load_refuses_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError):
        SimBroker.load(path, SimClock(ny(10)))
