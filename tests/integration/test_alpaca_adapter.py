"""AlpacaBroker against the local fake Alpaca through the real alpaca-py SDK: account,
submit, the no-blind-resend rule, rejections, the capability check, cancel, replace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from brokers.alpaca import AlpacaBroker, RetryPolicy
from core.broker import (
    AmbiguousOutcome,
    Broker,
    BrokerEventKind,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    InsufficientQty,
    NotCancelable,
    NotFound,
    NotReplaceable,
    OrderRejected,
    RateLimited,
    UnsupportedOrder,
    WashTradeRejected,
)
from core.clock import NEW_YORK
from core.domain import BrokerOrderId, ClientOrderId, OrderStatus, OrderType, Side, TimeInForce
from tests.fakes.alpaca import DEFAULT_NOW, EngineConfig
from tests.integration.test_alpaca_adapter_support import (
    AAPL,
    FAST,
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


async def test_it_is_a_broker_and_reads_the_account(w: World) -> None:
    assert isinstance(w.broker, Broker) and w.broker.paper
    account = await w.broker.account()
    assert (account.equity, account.cash, account.buying_power) == (Decimal(100_000),) * 3
    assert account.status == "active" and account.extra["account_number"] == "PA3FAKE0001"
    clock = await w.broker.market_clock()
    assert clock.is_open and clock.timestamp == DEFAULT_NOW
    assert clock.next_close == datetime(2025, 6, 2, 16, 0, tzinfo=NEW_YORK)
    days = await w.broker.trading_days(DEFAULT_NOW.date(), DEFAULT_NOW.date() + timedelta(days=7))
    assert [d.day.isoformat() for d in days][:2] == ["2025-06-02", "2025-06-03"]
    assert days[0].open == datetime(2025, 6, 2, 9, 30, tzinfo=NEW_YORK)
    assert await w.broker.positions() == []


async def test_submit_stop_buy_one_request_then_new_and_fill_events(w: World) -> None:
    await w.broker.start(wait=3)
    sub = w.broker.events()
    before = w.broker.requests_sent
    order = await w.broker.submit(request(OrderType.STOP, "entry-1", stop="101"))
    assert w.broker.requests_sent - before == 1  # the capability check is local
    assert (order.status, order.raw_status) == (S.SUBMITTED, "pending_new")
    assert order.stop_price == Decimal(101)
    new = await next_event(sub, of_kind(K.NEW, order.broker_order_id))
    assert new.order.status is S.ACCEPTED and new.fill is None

    w.fake.market.push_bar("AAPL", "100.5", "102", "100.2", "101.8")  # fills at max(o, stop)
    fill_event = await next_event(sub, of_kind(K.FILL, order.broker_order_id))
    fill = fill_event.fill
    assert fill is not None and fill_event.order.status is S.FILLED
    assert (fill.qty, fill.price, fill.client_order_id) == (Decimal(10), Decimal(101), "entry-1")
    assert fill.side is Side.BUY and fill.timestamp == DEFAULT_NOW + timedelta(minutes=1)

    positions = await w.broker.positions()
    assert [(p.symbol, p.qty, p.avg_entry_price) for p in positions] == [
        (AAPL, Decimal(10), Decimal(101))
    ]
    fills = await w.broker.fills_since(DEFAULT_NOW)
    assert [f.execution_id for f in fills] == [fill.execution_id]  # one id, stream and REST
    assert (await w.broker.get_order(order.broker_order_id)).status is S.FILLED


async def test_duplicate_client_order_id_is_refused_without_lookup(w: World) -> None:
    await w.broker.submit(request(OrderType.STOP, "dup-1"))
    before = w.broker.requests_sent
    with pytest.raises(DuplicateClientOrderId) as info:
        await w.broker.submit(request(OrderType.STOP, "dup-1", stop="102"))
    assert info.value.client_order_id == "dup-1" and info.value.code == "40010001"
    assert w.broker.requests_sent - before == 1
    assert len(w.orders_at_fake("dup-1")) == 1


async def test_429_storm_on_submit_ends_with_exactly_one_order(w: World) -> None:
    w.fake.faults.throttle_next("POST /v2/orders", n=3)
    order = await w.broker.submit(request(OrderType.STOP, "storm-1"))
    assert order.client_order_id == "storm-1"
    assert [o.id for o in w.orders_at_fake()] == [order.broker_order_id]
    # 3 refused POSTs (a 429 means nothing was placed: no lookup), then the one that lands.
    assert w.broker.requests_sent == 3 + 1
    assert w.clock.now() > DEFAULT_NOW  # the backoff slept on the injected clock


async def test_429_storm_longer_than_the_budget_raises_rate_limited(w: World) -> None:
    w.fake.faults.throttle_next("POST /v2/orders", n=FAST.mutation_attempts + 2)
    with pytest.raises(RateLimited):
        await w.broker.submit(request(OrderType.STOP, "storm-2"))
    assert w.orders_at_fake() == []


@pytest.mark.parametrize("mode", ["504", "close"])
async def test_lost_response_after_the_order_was_created_is_resolved_by_lookup(
    w: World, mode: str
) -> None:
    w.fake.faults.drop_response_next("POST /v2/orders", mode=mode)  # type: ignore[arg-type]
    order = await w.broker.submit(request(OrderType.STOP, "amb-1"))
    assert w.fake.faults.dropped_responses == ["POST /v2/orders"]
    assert [o.id for o in w.orders_at_fake()] == [order.broker_order_id]
    assert w.broker.requests_sent == 2  # the POST, then the lookup that found it


async def test_5xx_before_processing_is_resent_after_a_negative_lookup(w: World) -> None:
    w.fake.faults.fail_next("POST /v2/orders", n=1, status=503)
    order = await w.broker.submit(request(OrderType.STOP, "five-1"))
    assert [o.id for o in w.orders_at_fake()] == [order.broker_order_id]
    assert w.broker.requests_sent == 3  # POST 503, lookup 404, POST 200


async def test_an_order_visible_only_late_makes_the_resend_a_duplicate_then_found(
    w: World,
) -> None:
    not_yet = '{"code":40410000,"message":"order not found"}'  # read-after-write lag
    w.fake.faults.drop_response_next("POST /v2/orders")
    w.fake.faults.fail_next("GET /v2/orders:by_client_order_id", n=1, status=404, body=not_yet)
    order = await w.broker.submit(request(OrderType.STOP, "late-1"))
    assert [o.id for o in w.orders_at_fake()] == [order.broker_order_id]
    # POST (504, created), lookup (404), resend (422 duplicate), lookup (found)
    assert w.broker.requests_sent == 4


async def test_failed_lookup_after_a_lost_response_is_ambiguous(w: World) -> None:
    w.fake.faults.drop_response_next("POST /v2/orders")
    w.fake.faults.fail_next("GET /v2/orders:by_client_order_id", n=10, status=503)
    with pytest.raises(AmbiguousOutcome) as info:
        await w.broker.submit(request(OrderType.STOP, "amb-2"))
    assert info.value.client_order_id == "amb-2"
    assert len(w.orders_at_fake("amb-2")) == 1  # it did land: only a later lookup can tell
    assert w.broker.requests_sent == 1 + FAST.read_attempts  # never a second POST


async def test_capability_matrix_refuses_locally_without_a_network_call(w: World) -> None:
    refused = [
        request(OrderType.TRAILING_STOP, "x-1", side=Side.SELL, extended_hours=True),
        request(OrderType.STOP, "x-2", extended_hours=True),
        request(OrderType.MARKET, "x-3", extended_hours=True),
        request(OrderType.STOP, "x-4", qty="1.5", tif=TimeInForce.GTC),  # fractional gtc
    ]
    reasons = []
    for req in refused:
        with pytest.raises(UnsupportedOrder) as info:
            await w.broker.submit(req)
        assert info.value.client_order_id == req.client_order_id
        reasons.append(info.value.reason)
    assert "trailing stops are not eligible for extended hours" in reasons[0]
    assert "fractional" in reasons[3]
    assert w.broker.requests_sent == 0 and w.orders_at_fake() == []


async def test_broker_side_refusals_map_to_typed_errors(w: World) -> None:
    with pytest.raises(InsufficientQty):  # no shares to sell
        await w.broker.submit(request(OrderType.TRAILING_STOP, "t-1", side=Side.SELL))
    with pytest.raises(InsufficientBuyingPower):
        await w.broker.submit(request(OrderType.LIMIT, "t-2", qty=5000, limit="100"))
    await w.broker.submit(request(OrderType.MARKET, "t-3"))  # fills: 10 shares held
    await w.broker.submit(request(OrderType.STOP, "t-4", stop="105"))  # a working buy stop
    with pytest.raises(WashTradeRejected) as info:  # protection while the buy works
        await w.broker.submit(request(OrderType.TRAILING_STOP, "t-5", side=Side.SELL))
    assert info.value.code == "40310000"
    assert {o.client_order_id for o in w.orders_at_fake()} == {"t-3", "t-4"}


async def test_stop_placed_in_the_premarket_waits_for_the_open() -> None:
    # BROKERS.md: market closed -> no error, the order waits as `accepted`.
    async with alpaca_world(now=DEFAULT_NOW.replace(hour=12)) as w:  # 08:00 New York
        snapshot = await w.broker.submit(request(OrderType.STOP, "pre-0"))
        assert snapshot.status is OrderStatus.ACCEPTED


async def test_a_premarket_refusal_by_the_broker_is_typed_as_unsupported() -> None:
    # Should a server refuse it anyway (a stricter policy), the 422 is mapped and typed.
    config = EngineConfig(outside_rth="reject_in_extended")
    async with alpaca_world(now=DEFAULT_NOW.replace(hour=12), engine_config=config) as w:
        with pytest.raises(UnsupportedOrder) as info:
            await w.broker.submit(request(OrderType.STOP, "pre-1"))
        assert "not eligible for extended hours" in info.value.reason
        assert w.broker.requests_sent == 1


async def test_cancel_is_a_request_and_a_fill_can_win_the_race() -> None:
    async with alpaca_world(engine_config=EngineConfig(cancel_delay=None)) as w:
        await w.broker.start(wait=3)
        sub = w.broker.events()
        order = await w.broker.submit(request(OrderType.STOP, "race-1", stop="101"))
        await next_event(sub, of_kind(K.NEW, order.broker_order_id))
        await w.broker.cancel(order.broker_order_id)  # 204: requested, not canceled
        assert (await w.broker.get_order(order.broker_order_id)).status is S.PENDING_CANCEL
        await w.broker.cancel(order.broker_order_id)  # again: still just a request
        w.fake.market.set_price("AAPL", "101.2")  # the fill beats the cancel
        w.fake.engine.run_pending()  # the cancel completes too late: no `canceled`
        fill = await next_event(sub, lambda e: e.kind.is_fill)
        assert fill.kind is K.FILL and fill.fill is not None and fill.fill.qty == 10
        final = await w.broker.get_order(order.broker_order_id)
        assert (final.status, final.filled_qty) == (S.FILLED, Decimal(10))
        with pytest.raises(NotCancelable):
            await w.broker.cancel(order.broker_order_id)
        assert K.CANCELED not in [e.kind for e in sub.pending()]


async def test_cancel_confirmed_by_event_and_unknown_ids(w: World) -> None:
    await w.broker.start(wait=3)
    sub = w.broker.events()
    order = await w.broker.submit(request(OrderType.STOP, "c-1", stop="105"))
    await w.broker.cancel(order.broker_order_id)
    done = await next_event(sub, of_kind(K.CANCELED, order.broker_order_id))
    assert done.order.status is S.CANCELED
    with pytest.raises(NotFound):
        await w.broker.cancel(BrokerOrderId("not-a-uuid"))
    with pytest.raises(NotFound):
        await w.broker.get_order(BrokerOrderId("6a1c3f5e-0000-4000-8000-000000000000"))
    assert await w.broker.get_order_by_client_id(ClientOrderId("never-sent")) is None


async def test_replace_returns_the_new_order_and_the_old_becomes_replaced(w: World) -> None:
    await w.broker.start(wait=3)
    sub = w.broker.events()
    old = await w.broker.submit(request(OrderType.STOP, "r-1", stop="105"))
    await next_event(sub, of_kind(K.NEW, old.broker_order_id))
    new = await w.broker.replace(
        old.broker_order_id, stop_price=Decimal("104.5"), client_order_id=ClientOrderId("r-1b")
    )
    assert new.broker_order_id != old.broker_order_id and new.replaces == old.broker_order_id
    assert (new.client_order_id, new.stop_price) == ("r-1b", Decimal("104.5"))
    replaced = await next_event(sub, of_kind(K.REPLACED, old.broker_order_id))
    assert replaced.order.replaced_by == new.broker_order_id
    stale = await w.broker.get_order(old.broker_order_id)
    assert (stale.status, stale.replaced_by) == (S.REPLACED, new.broker_order_id)
    with pytest.raises(OrderRejected):  # an unchanged body (403)
        await w.broker.replace(new.broker_order_id, stop_price=Decimal("104.5"))
    with pytest.raises(NotReplaceable):  # terminal
        await w.broker.replace(old.broker_order_id, stop_price=Decimal("104"))
    with pytest.raises(UnsupportedOrder):  # off the tick: refused locally
        await w.broker.replace(new.broker_order_id, stop_price=Decimal("104.123"))


async def test_replace_with_a_lost_response_is_resolved_by_lookup(w: World) -> None:
    old = await w.broker.submit(request(OrderType.STOP, "r-2", stop="105"))
    await eventually(lambda: w.fake.engine.order(old.broker_order_id).status == "new")
    w.fake.faults.drop_response_next("PATCH /v2/orders/{order_id}")
    new = await w.broker.replace(old.broker_order_id, stop_price=Decimal("106"))
    assert new.replaces == old.broker_order_id and new.client_order_id.startswith("rpl-")
    assert len(w.orders_at_fake()) == 2


async def test_replace_before_the_venue_acknowledged_is_not_replaceable() -> None:
    async with alpaca_world(engine_config=EngineConfig(ack_delay=None)) as w:
        order = await w.broker.submit(request(OrderType.STOP, "r-3", stop="105"))
        with pytest.raises(NotReplaceable):
            await w.broker.replace(order.broker_order_id, stop_price=Decimal("106"))


async def test_close_all_positions_reports_per_symbol(w: World) -> None:
    w.fake.market.set_price("MSFT", 400)
    await w.broker.submit(request(OrderType.MARKET, "b-1"))
    await w.broker.submit(request(OrderType.MARKET, "b-2", qty=2, symbol="MSFT"))
    working = await w.broker.submit(request(OrderType.STOP, "b-3", stop="120"))
    results = await w.broker.close_all_positions(cancel_orders=True)
    assert [(r.symbol, r.status, r.ok) for r in results] == [
        ("AAPL", 200, True),
        ("MSFT", 200, True),
    ]
    assert all(r.order is not None and r.order.side is Side.SELL for r in results)
    assert (await w.broker.get_order(working.broker_order_id)).status is S.CANCELED
    await eventually(lambda: not w.fake.engine.book.positions)


async def test_unknown_status_from_the_api_does_not_crash(w: World) -> None:
    order = await w.broker.submit(request(OrderType.STOP, "u-1", stop="105"))
    w.fake.engine.order(order.broker_order_id).status = "pending_quantum_review"  # new in v3?
    seen = await w.broker.get_order(order.broker_order_id)
    assert (seen.status, seen.raw_status) == (S.ACCEPTED, "pending_quantum_review")
    assert not seen.status.is_terminal  # reconcile will look again
    listed = await w.broker.list_orders(open_only=False)
    assert [o.raw_status for o in listed] == ["pending_quantum_review"]


async def test_list_orders_pages_backwards_with_until(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("brokers.alpaca.queries.ORDERS_PAGE", 3)
    ids = []
    for n in range(7):
        w.fake.market.advance(timedelta(seconds=1))
        ids.append(
            (await w.broker.submit(request(OrderType.STOP, f"p-{n}", stop="105"))).broker_order_id
        )
    listed = await w.broker.list_orders(open_only=False, limit=500)
    assert [o.broker_order_id for o in listed] == ids[::-1]  # newest first, no gaps
    since = DEFAULT_NOW + timedelta(seconds=5)
    assert [o.client_order_id for o in await w.broker.list_orders(open_only=True, since=since)] == [
        "p-6",
        "p-5",
        "p-4",
    ]
    assert len(await w.broker.list_orders(open_only=False, limit=4)) == 4


async def test_reads_are_retried_on_5xx_and_429_but_give_up(w: World) -> None:
    w.fake.faults.fail_next("GET /v2/account", n=2, status=502)
    w.fake.faults.throttle_next("GET /v2/account", n=1)
    assert (await w.broker.account()).equity == Decimal(100_000)
    assert w.broker.requests_sent == 4
    w.fake.faults.fail_next("GET /v2/positions", n=FAST.read_attempts, status=503)
    with pytest.raises(AmbiguousOutcome):
        await w.broker.positions()


async def test_a_hanging_broker_times_out_on_the_client() -> None:
    policy = RetryPolicy(read_timeout=0.2, call_timeout=1.0, read_attempts=1)
    async with alpaca_world(policy=policy) as w:
        w.fake.faults.set_latency("GET /v2/account", 0.6)
        with pytest.raises(AmbiguousOutcome):
            await w.broker.account()


def test_for_account_needs_keys() -> None:
    from brokers.alpaca import AlpacaConfigError
    from core.clock import SimClock
    from tests.integration.test_alpaca_adapter_support import ACCOUNT

    with pytest.raises(AlpacaConfigError, match="ALPACA_T_KEY_ID"):
        AlpacaBroker.for_account(ACCOUNT, {}, SimClock(DEFAULT_NOW), chat_confirmed=False)
