"""The adapter's trade_updates client against the fake's websocket: reconnects with the
reconcile hook, fill derivation, de-duplication, unknown events, refused logins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from brokers.alpaca import AlpacaBroker
from core.broker import BrokerEvent, BrokerEventKind, BrokerUnavailable
from core.calendar import xnys
from core.config_models import AccountConfig, BrokerKind
from core.domain import OrderStatus, OrderType
from tests.fakes.alpaca import DEFAULT_NOW, TradeEventRecord
from tests.fakes.alpaca.wire import order_json
from tests.integration.test_alpaca_adapter_support import (
    World,
    alpaca_world,
    eventually,
    next_event,
    of_kind,
    request,
)

K = BrokerEventKind
S = OrderStatus


@pytest.fixture
async def w() -> AsyncIterator[World]:
    async with alpaca_world() as world:
        yield world


async def test_stream_dropped_during_a_partial_fill_then_reconcile_sees_the_truth(
    w: World,
) -> None:
    truth: list[tuple[int, OrderStatus, Decimal]] = []
    order_id: list[str] = []

    async def reconcile() -> None:  # the engine's reconciler: look at the broker
        n = w.broker.stream.connects
        if order_id:
            order = await w.broker.get_order(order_id[0])  # type: ignore[arg-type]
            truth.append((n, order.status, order.filled_qty))
        else:
            truth.append((n, S.PENDING_SUBMIT, Decimal(0)))

    w.broker.set_on_reconnect(reconcile)
    await w.broker.start(wait=3)
    await eventually(lambda: len(truth) == 1)  # the first connect reconciles too
    sub = w.broker.events()
    w.fake.market.set_liquidity("AAPL", 4)  # at most 4 shares per tick: partial fills

    order = await w.broker.submit(request(OrderType.MARKET, "pf-1"))
    order_id.append(order.broker_order_id)
    first = await next_event(sub, of_kind(K.PARTIAL_FILL, order.broker_order_id))
    assert first.fill is not None and first.fill.qty == 4

    await w.fake.disconnect_streams(abrupt=True)
    w.fake.market.set_price("AAPL", "100.5")  # 4 more fill while nobody listens: lost
    await eventually(lambda: len(truth) == 2)  # reconnected, and the hook ran
    assert truth[1] == (2, S.PARTIALLY_FILLED, Decimal(8))  # the truth, over REST
    assert w.clock.now() > DEFAULT_NOW  # the reconnect backoff slept on our clock

    w.fake.market.set_price("AAPL", 101)  # the last 2: seen on the stream again
    last = await next_event(sub, of_kind(K.FILL, order.broker_order_id))
    assert last.fill is not None and last.fill.qty == 2  # not the 6 filled_qty grew by
    assert last.order.status is S.FILLED and last.order.filled_qty == 10

    fills = await w.broker.fills_since(DEFAULT_NOW)  # reconcile finds the missed one
    assert [f.qty for f in fills] == [4, 4, 2] and {f.client_order_id for f in fills} == {"pf-1"}
    streamed = {first.fill.execution_id, last.fill.execution_id}
    assert streamed <= {f.execution_id for f in fills}
    assert [f.price for f in fills] == [Decimal(100), Decimal("100.5"), Decimal(101)]


async def test_reconnect_after_refused_connects_runs_the_hook_again(w: World) -> None:
    calls: list[int] = []

    async def hook() -> None:
        calls.append(w.broker.stream.connects)

    w.broker.set_on_reconnect(hook)
    await w.broker.start(wait=3)
    await eventually(lambda: calls == [1])
    w.fake.faults.reject_next_stream_connects(3)  # HTTP 429 before the upgrade
    await w.fake.disconnect_streams()
    await eventually(lambda: calls == [1, 2], within=5)
    assert w.fake.faults.reject_stream_connects == 0 and w.fake.trade_stream.connects == 2


async def test_duplicate_and_late_executions(w: World) -> None:
    await w.broker.start(wait=3)
    sub = w.broker.events()
    w.fake.market.set_liquidity("AAPL", 4)
    order = await w.broker.submit(request(OrderType.MARKET, "dd-1"))
    first = await next_event(sub, lambda e: e.kind.is_fill)
    record = next(r for r in w.fake.engine.events if r.event == "partial_fill")
    w.fake.trade_stream.publish(record)  # the same execution again: passed on once
    w.fake.faults.delay_next_events(1, seconds=0.3)  # the next partial arrives late
    w.fake.market.set_price("AAPL", "100.5")
    w.fake.market.set_price("AAPL", 101)
    fills: list[BrokerEvent] = [first]
    while sum(e.fill.qty for e in fills if e.fill) < 10:
        fills.append(await next_event(sub, lambda e: e.kind.is_fill and e.fill is not None))
    ids = [e.fill.execution_id for e in fills if e.fill]
    assert len(ids) == len(set(ids)) == 3
    assert sorted(e.fill.qty for e in fills if e.fill) == [2, 4, 4]
    assert w.broker.stream.listening.is_set() and order.client_order_id == "dd-1"


async def test_unknown_event_is_passed_on_and_the_stream_keeps_going(w: World) -> None:
    await w.broker.start(wait=3)
    sub = w.broker.events()
    order = await w.broker.submit(request(OrderType.STOP, "ue-1", stop="105"))
    await next_event(sub, of_kind(K.NEW, order.broker_order_id))
    fake_order = w.fake.engine.order(order.broker_order_id)
    fake_order.status = "pending_quantum_review"
    w.fake.trade_stream.publish(
        TradeEventRecord("order_teleported", DEFAULT_NOW, order_json(fake_order))
    )
    w.fake.trade_stream.publish(  # garbage: dropped with a log line, nothing else
        TradeEventRecord("new", DEFAULT_NOW, {"id": None, "status": "new"})
    )
    odd = await next_event(sub, lambda e: e.order.raw_status == "pending_quantum_review")
    assert odd.kind is K.RESTATED and odd.order.status is S.ACCEPTED
    fake_order.status = "new"
    await w.broker.cancel(order.broker_order_id)
    await next_event(sub, of_kind(K.CANCELED, order.broker_order_id))


async def test_bad_keys_are_refused_loudly_on_rest_and_stream(w: World) -> None:
    account = AccountConfig(name="wrong", broker=BrokerKind.ALPACA, credentials_env="BAD")
    env = {"BAD_KEY_ID": "nope", "BAD_SECRET_KEY": "nope"}
    broker = AlpacaBroker.for_account(
        account,
        env,
        w.clock,
        chat_confirmed=False,
        url_override=w.fake.base_url,
        calendar=xnys(),
        stream_backoff=(0.05, 0.1),
    )
    try:
        with pytest.raises(BrokerUnavailable, match="authentication refused"):
            await broker.account()
        assert broker.requests_sent == 1  # an auth refusal is not retried
        await broker.start()
        await asyncio.sleep(0.3)
        assert not broker.stream.listening.is_set() and broker.stream.connects == 0
    finally:
        await broker.close()


async def test_events_end_when_the_broker_closes(w: World) -> None:
    await w.broker.start(wait=3)
    sub = w.broker.events()
    await w.broker.close()
    assert [e async for e in sub] == []
    late = w.broker.events()
    assert [e async for e in late] == []


async def test_fills_since_pages_through_activities(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("brokers.alpaca.queries.FILLS_PAGE", 2)
    w.fake.market.set_liquidity("AAPL", 2)
    order = await w.broker.submit(request(OrderType.MARKET, "fp-1"))
    for step in range(4):
        w.fake.market.set_price("AAPL", Decimal("100") + Decimal(step + 1) / 100)
    await eventually(lambda: w.fake.engine.order(order.broker_order_id).status == "filled")
    before = w.broker.requests_sent
    fills = await w.broker.fills_since(DEFAULT_NOW)
    assert [f.qty for f in fills] == [2] * 5
    assert [f.price for f in fills] == [
        Decimal(p) for p in ("100", "100.01", "100.02", "100.03", "100.04")
    ]
    assert w.broker.requests_sent - before == 3  # pages of 2, 2, 1 (client id already known)
    assert await w.broker.fills_since(DEFAULT_NOW.replace(hour=15)) == []
