"""Pacing and waiting on the injected clock.

- `TokenBucket`: every outgoing request takes a token first. IB disconnects clients that
  send more than ~50 messages per second; with `rate` tokens per second and `burst`
  capacity, no one-second window carries more than rate + burst messages.
- `Notifier`: wait until a condition over the adapter's state holds, or a timeout on the
  clock passes (the gateway's answers wake the waiters).
- `with_timeout`: await something, giving up after `seconds` of the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from core.clock import Clock

T = TypeVar("T")


class TokenBucket:
    def __init__(self, clock: Clock, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"pacing needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self._clock = clock
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp: datetime = clock.now()
        self._blocked_until: datetime | None = None
        self._lock = asyncio.Lock()
        self.sent = 0  # messages let through, for tests and stats
        self.waited = 0  # how many acquisitions had to wait

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> int:
        return int(self._burst)

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = (now - self._stamp).total_seconds()
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._stamp = now

    async def acquire(self, count: int = 1) -> None:
        """Take `count` tokens (FIFO among waiters), sleeping on the clock as needed."""
        if count > self._burst:
            raise ValueError(f"cannot take {count} tokens from a bucket of {self._burst}")
        async with self._lock:
            waited = False
            while True:
                if self._blocked_until is not None:
                    if self._clock.now() < self._blocked_until:
                        waited = True
                        await self._clock.sleep_until(self._blocked_until)
                        continue
                    self._blocked_until = None
                self._refill()
                if self._tokens >= count:
                    self._tokens -= count
                    self.sent += count
                    self.waited += int(waited)
                    return
                waited = True
                await self._clock.sleep((count - self._tokens) / self._rate)

    def penalize(self, seconds: float = 1.0) -> None:
        """IB said "max rate of messages exceeded" (code 100): empty the bucket and send
        nothing for `seconds`."""
        self._tokens = 0.0  # refills from now on, as if the bucket had just been emptied
        self._stamp = self._clock.now()
        until = self._stamp + timedelta(seconds=seconds)
        if self._blocked_until is None or until > self._blocked_until:
            self._blocked_until = until


async def with_timeout(clock: Clock, awaitable: Awaitable[T], seconds: float) -> T:
    """Await `awaitable`; raise TimeoutError after `seconds` of `clock` time."""
    task = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise TimeoutError(f"no answer within {seconds} s")
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()


class Notifier:
    """Wake-ups for `wait_until`: call `notify()` whenever the watched state changes."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait_until(self, probe: Callable[[], T | None], seconds: float) -> T | None:
        """The first non-None value of `probe()`, re-checked on every notify; None when
        `seconds` of clock time pass first."""
        found = probe()
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        timer = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            while True:
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.add(waiter)
                await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
                self._waiters.discard(waiter)
                found = probe()
                if found is not None or timer.done():
                    return found
        finally:
            timer.cancel()
