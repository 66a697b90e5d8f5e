"""Time, injected.

Every component that needs "now" or needs to wait receives a `Clock`. Core code never
reads the wall clock or calls `time.sleep`: `LiveClock` is the only place that touches real
time, and `SimClock` drives demos, replays, backtests and tests deterministically.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")


class NaiveDatetimeError(ValueError):
    """A datetime without a timezone reached code that needs an instant."""


def ensure_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise NaiveDatetimeError(f"naive datetime {moment.isoformat()} has no timezone")
    return moment


@runtime_checkable
class Clock(Protocol):
    """The one source of time for a component."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...

    async def sleep_until(self, moment: datetime) -> None:
        """Wait until this clock reaches `moment` (returns at once if already past)."""
        ...


class LiveClock:
    """Real time. The only class in core that reads the wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, moment: datetime) -> None:
        delay = (ensure_aware(moment) - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(order=True)
class _Sleeper:
    wake_at: datetime
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class SimClock:
    """Settable, advanceable simulated time.

    Two ways to drive it:
    - by hand: `set(t)` / `advance(dt)` wake every sleeper whose time has come (tests);
    - `run(speed)`: a background task moves simulated time forward `speed` times faster
      than real time (demo and replay at N x), or, with `speed=None`, jumps straight to the
      next sleeper's wake-up whenever the event loop is otherwise idle (as fast as possible).
    """

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware(start).astimezone(UTC)
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        moment = ensure_aware(moment).astimezone(UTC)
        if moment < self._now:
            raise ValueError(f"SimClock cannot go backwards: {moment} < {self._now}")
        self._now = moment
        self._wake_due()

    def advance(self, delta: timedelta | float) -> None:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        self.set(self._now + delta)

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, moment: datetime) -> None:
        moment = ensure_aware(moment).astimezone(UTC)
        if moment <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, _Sleeper(moment, next(self._seq), future))
        await future

    def next_wakeup(self) -> datetime | None:
        while self._sleepers and self._sleepers[0].future.done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0].wake_at if self._sleepers else None

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0].wake_at <= self._now:
            sleeper = heapq.heappop(self._sleepers)
            if not sleeper.future.done():
                sleeper.future.set_result(None)

    async def run(
        self,
        speed: float | None,
        *,
        until: datetime | None = None,
        tick_seconds: float = 0.01,
    ) -> None:
        """Drive time forward until `until` (or forever).

        `speed` is simulated seconds per real second; None means as fast as possible:
        whenever every other task is waiting, jump to the next sleeper.
        """
        while until is None or self._now < until:
            if speed is None:
                # Let every runnable task run to its next await before jumping ahead.
                for _ in range(5):
                    await asyncio.sleep(0)
                wake = self.next_wakeup()
                if wake is None:
                    await asyncio.sleep(tick_seconds)
                    continue
                target = wake if until is None else min(wake, until)
                self.set(max(target, self._now))
            else:
                await asyncio.sleep(tick_seconds)
                target = self._now + timedelta(seconds=tick_seconds * speed)
                self.set(target if until is None else min(target, until))
