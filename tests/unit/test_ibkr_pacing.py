"""Pacing: a token bucket on the injected clock in front of every request to the gateway."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from brokers.ibkr import IbkrBroker, IbkrConfig
from brokers.ibkr.pacing import Notifier, TokenBucket, with_timeout
from brokers.ibkr.testing import FakeGateway
from core.calendar import xnys
from core.clock import SimClock
from core.domain import OrderType
from tests.kit.brokers import make_request, ny


async def drive(clock: SimClock, work: asyncio.Future[object], step: float = 0.005) -> None:
    """Move the clock in small steps until `work` is done."""
    while not work.done():
        for _ in range(5):
            await asyncio.sleep(0)
        if not work.done():
            clock.advance(step)


async def turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def busiest_second(times: list[datetime]) -> int:
    return max(
        sum(1 for t in times if start <= t < start + timedelta(seconds=1)) for start in times
    )


async def test_burst_then_the_rate() -> None:
    clock = SimClock(ny(10))
    bucket = TokenBucket(clock, rate=10, burst=5)
    granted: list[datetime] = []

    async def take() -> None:
        await bucket.acquire()
        granted.append(clock.now())

    work = asyncio.gather(*(take() for _ in range(25)))
    await drive(clock, work)  # type: ignore[arg-type]
    assert granted[:5] == [ny(10)] * 5  # the burst goes at once
    assert granted == sorted(granted)  # FIFO
    assert (granted[-1] - granted[0]).total_seconds() >= 2.0 - 1e-9  # 20 more at 10/s
    assert busiest_second(granted) <= 10 + 5
    assert bucket.sent == 25 and bucket.waited == 20


async def test_pacing_violation_blocks_for_a_second() -> None:
    clock = SimClock(ny(10))
    bucket = TokenBucket(clock, rate=40, burst=8)
    bucket.penalize(1.0)
    work = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0)
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert not work.done()
    clock.advance(0.5)
    await work


async def test_every_adapter_request_is_paced_under_the_ib_limit() -> None:
    clock = SimClock(ny(10))
    gw = FakeGateway(clock=clock)
    config = IbkrConfig(pacing_rate=10, pacing_burst=7)
    broker = IbkrBroker(config, clock, ib=gw.ib, calendar=xnys())

    async def session() -> None:
        await broker.connect()
        for n in range(12):
            await broker.submit(make_request(OrderType.STOP, client_order_id=f"p-{n}"))
        await broker.positions()
        await broker.account()

    work = asyncio.ensure_future(session())
    await drive(clock, work)  # type: ignore[arg-type]
    work.result()
    sent = len(gw.sent_at)
    assert sent >= 12 + 2 + 3  # orders, queries, the start-up resync (plus connect's own)
    assert busiest_second(gw.sent_at) <= 10 + 7
    assert broker.pacer.waited > 0
    await broker.close()


async def test_ib_error_100_penalizes_the_bucket() -> None:
    clock = SimClock(ny(10))
    gw = FakeGateway(clock=clock)
    broker = IbkrBroker(
        IbkrConfig(pacing_rate=1000, pacing_burst=64), clock, ib=gw.ib, calendar=xnys()
    )
    await broker.connect()
    gw.error(-1, 100, "Max rate of messages per second has been exceeded")
    work = asyncio.ensure_future(broker.positions())
    await gw.settle()
    assert not work.done()
    clock.advance(1.0)
    await gw.settle()
    assert work.done() and work.result() == []
    await broker.close()


async def test_notifier_and_timeout_use_the_clock() -> None:
    clock = SimClock(ny(10))
    notifier = Notifier(clock)
    box: list[int] = []
    waiter = asyncio.ensure_future(notifier.wait_until(lambda: box[0] if box else None, 5))
    await asyncio.sleep(0)
    box.append(7)
    notifier.notify()
    assert await waiter == 7
    waiter = asyncio.ensure_future(notifier.wait_until(lambda: None, 5))
    await turns()
    clock.advance(5)
    assert await waiter is None
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    timed = asyncio.ensure_future(with_timeout(clock, never, 2))
    await turns()
    clock.advance(2)
    try:
        await timed
    except TimeoutError:
        pass
    else:
        raise AssertionError("expected a timeout")
