"""Shared setup for the Alpaca adapter tests (no tests here).

`alpaca_world()` starts the local fake Alpaca on 127.0.0.1 and an `AlpacaBroker` built
through `AlpacaBroker.for_account` (endpoint, live guard, keys from the environment),
with a SimClock at the fake's time driven by `SimClock.run(None)`: every backoff the
adapter sleeps is slept on that injected clock and takes no real time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from brokers.alpaca import AlpacaBroker, RetryPolicy
from brokers.alpaca.stream import Subscription
from core.broker import BrokerEvent, BrokerEventKind
from core.calendar import xnys
from core.clock import SimClock
from core.config_models import AccountConfig, BrokerKind
from core.domain import ClientOrderId, OrderRequest, OrderType, Side, Symbol, TimeInForce
from tests.fakes.alpaca import DEFAULT_NOW, EngineConfig, RunningFakeAlpaca, start_fake_alpaca

AAPL = Symbol("AAPL")
FAST = RetryPolicy(
    connect_timeout=1.0,
    read_timeout=2.0,
    call_timeout=3.0,
    backoff_base=0.05,
    backoff_max=0.2,
)
ACCOUNT = AccountConfig(name="paper-main", broker=BrokerKind.ALPACA, credentials_env="ALPACA_T")


@dataclass
class World:
    fake: RunningFakeAlpaca
    clock: SimClock
    broker: AlpacaBroker
    env: dict[str, str]

    def orders_at_fake(self, cid: str | None = None) -> list[Any]:
        orders = self.fake.engine.orders.query(status="all", limit=10_000)
        return [o for o in orders if cid is None or o.client_order_id == cid]


def env_for(fake: RunningFakeAlpaca) -> dict[str, str]:
    return {"ALPACA_T_KEY_ID": fake.key, "ALPACA_T_SECRET_KEY": fake.secret}


@asynccontextmanager
async def driven_clock(now: datetime = DEFAULT_NOW) -> AsyncIterator[SimClock]:
    """A SimClock at the fake's time that jumps to the next sleeper whenever idle."""
    clock = SimClock(now)
    runner = asyncio.get_running_loop().create_task(clock.run(None))
    try:
        yield clock
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


@asynccontextmanager
async def alpaca_world(
    *,
    engine_config: EngineConfig | None = None,
    policy: RetryPolicy = FAST,
    max_bars_page: int = 10_000,
    now: datetime = DEFAULT_NOW,
    **broker_kwargs: Any,
) -> AsyncIterator[World]:
    fake = await start_fake_alpaca(
        engine_config=engine_config, max_bars_page=max_bars_page, now=now
    )
    clock_context = driven_clock(now)
    clock = await clock_context.__aenter__()
    env = env_for(fake)
    broker = AlpacaBroker.for_account(
        ACCOUNT,
        env,
        clock,
        chat_confirmed=False,
        url_override=fake.base_url,
        calendar=xnys(),
        policy=policy,
        stream_backoff=(0.05, 0.2),
        **broker_kwargs,
    )
    fake.market.set_price("AAPL", 100)
    try:
        yield World(fake, clock, broker, env)
    finally:
        await broker.close()
        await clock_context.__aexit__(None, None, None)
        await fake.stop()


def request(
    order_type: OrderType = OrderType.STOP,
    cid: str = "cid-1",
    *,
    side: Side = Side.BUY,
    qty: str | int = 10,
    symbol: str = "AAPL",
    stop: str | None = None,
    limit: str | None = None,
    trail: str | None = None,
    tif: TimeInForce = TimeInForce.DAY,
    extended_hours: bool = False,
) -> OrderRequest:
    if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and stop is None:
        stop = "101"
    if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and limit is None:
        limit = "101.5"
    if order_type is OrderType.TRAILING_STOP and trail is None:
        trail = "1"
    return OrderRequest(
        client_order_id=ClientOrderId(cid),
        symbol=Symbol(symbol),
        side=side,
        qty=Decimal(qty),
        order_type=order_type,
        time_in_force=tif,
        stop_price=None if stop is None else Decimal(stop),
        limit_price=None if limit is None else Decimal(limit),
        trail_percent=None if trail is None else Decimal(trail),
        extended_hours=extended_hours,
    )


async def next_event(
    sub: Subscription,
    predicate: Callable[[BrokerEvent], bool] = lambda e: True,
    within: float = 3.0,
) -> BrokerEvent:
    """The next event matching `predicate` (others are skipped)."""

    async def find() -> BrokerEvent:
        async for event in sub:
            if predicate(event):
                return event
        raise AssertionError("the event stream ended")

    return await asyncio.wait_for(find(), within)


def of_kind(kind: BrokerEventKind, order_id: str | None = None) -> Callable[[BrokerEvent], bool]:
    return lambda e: e.kind is kind and (order_id is None or e.order.broker_order_id == order_id)


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
