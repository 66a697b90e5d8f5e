"""HTTP 429 on an order-creating call: Alpaca answered before the order service saw the
request, so nothing was placed. The adapter waits what the server advertises (bounded,
on the injected clock) and resends the SAME client order id; it does not spend the
scarce requests on lookups, and when it gives up it says "rate limited", never that the
answer was lost (which sends the caller hunting for an order that cannot exist)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from core.broker import AmbiguousOutcome, RateLimited
from core.domain import OrderType
from tests.fakes.alpaca import DEFAULT_NOW
from tests.integration.test_alpaca_adapter_support import FAST, World, alpaca_world, request

ORDERS = "POST /v2/orders"
LOOKUP = "GET /v2/orders:by_client_order_id"


@pytest.fixture
async def w() -> AsyncIterator[World]:
    async with alpaca_world() as world:
        yield world


async def test_a_429_is_resent_after_the_advertised_wait_without_lookups(w: World) -> None:
    w.fake.faults.throttle_next(ORDERS, n=2, retry_after=7)
    order = await w.broker.submit(request(OrderType.STOP, "rl-1"))
    assert [o.id for o in w.orders_at_fake("rl-1")] == [order.broker_order_id]
    assert w.broker.requests_sent == 3  # two refused POSTs and the one that landed
    assert w.clock.now() - DEFAULT_NOW >= timedelta(seconds=14)  # waited as told, twice


async def test_a_rate_limited_lookup_does_not_turn_a_429_into_an_unknown_outcome(
    w: World,
) -> None:
    # The limit is per account: when the POST is refused, a lookup would be refused too.
    w.fake.faults.throttle_next(ORDERS, n=1, retry_after=1)
    w.fake.faults.throttle_next(LOOKUP, n=FAST.read_attempts)
    order = await w.broker.submit(request(OrderType.STOP, "rl-2"))
    assert [o.id for o in w.orders_at_fake("rl-2")] == [order.broker_order_id]


async def test_rate_limited_to_the_end_says_so_and_waits_a_bounded_time(w: World) -> None:
    w.fake.faults.throttle_next("*", n=50, retry_after=5)
    with pytest.raises(RateLimited) as info:
        await w.broker.submit(request(OrderType.STOP, "rl-3"))
    assert not isinstance(info.value, AmbiguousOutcome)
    message = str(info.value)
    assert "rate limited" in message and "nothing was placed" in message
    assert f"{FAST.mutation_attempts} attempts" in message
    assert info.value.retry_after == 5
    assert w.orders_at_fake() == []
    assert w.broker.requests_sent == FAST.mutation_attempts  # no lookups in between
    # Three waits of the advertised 5 s between four attempts, and no more.
    assert w.clock.now() - DEFAULT_NOW == timedelta(seconds=5 * (FAST.mutation_attempts - 1))


async def test_a_429_after_an_uncertain_attempt_still_looks_the_order_up(w: World) -> None:
    # A 504 may hide an order it created, so after it every failure is looked up, the
    # 429 on the resend too: POST 504, lookup, POST 429, lookup, POST.
    w.fake.faults.fail_next(ORDERS, status=504)
    w.fake.faults.throttle_next(ORDERS, n=1, retry_after=1)
    order = await w.broker.submit(request(OrderType.STOP, "rl-4"))
    assert [o.id for o in w.orders_at_fake("rl-4")] == [order.broker_order_id]
    assert w.broker.requests_sent == 5
