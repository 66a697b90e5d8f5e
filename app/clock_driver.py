"""Driving a `SimClock` for replays and the demo: at N x real time, or step by step.

Two ways, never at once (one driving task at a time):
- `run_speed(speed)`: simulated time moves `speed` times faster than real time (the
  interactive demo at 30x, `centaur run --replay --speed 600`).
- `run_until(condition)`: deterministic stepping, as fast as the work allows. Each step
  jumps to the next sleeper's wake-up (a bar's end, a scheduler job, a timeout) and then
  waits until the process has *settled*: no task is runnable and nothing is still on its
  way to the chat (`busy()` hooks: notifications due but not yet delivered, a bar being
  pumped). So a replay never races ahead of the work it caused, and a scripted user can
  act while time holds still between two calls.

Settling reads the event loop's ready queue (`loop._ready`, a CPython asyncio detail);
without it, a few fixed yields and short real sleeps are used instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from loguru import logger

from core.clock import SimClock

Busy = Callable[[], bool]


class DriverTimeout(RuntimeError):
    """The condition did not come true before the simulated deadline."""


class ClockDriver:
    def __init__(
        self,
        clock: SimClock,
        *,
        busy: Sequence[Busy] = (),
        settle_timeout: float = 10.0,
        idle_step: timedelta = timedelta(seconds=1),
    ) -> None:
        self.clock = clock
        self._busy = list(busy)
        self._settle_timeout = settle_timeout
        self._idle_step = idle_step
        self.steps = 0

    def add_busy(self, check: Busy) -> None:
        self._busy.append(check)

    def _is_busy(self) -> bool:
        for check in self._busy:
            try:
                if check():
                    return True
            except Exception:  # a broken probe must not hang the replay
                logger.exception("clock driver: busy probe failed")
        return False

    async def settle(self) -> None:
        """Until nothing is runnable and no busy probe holds (bounded in real time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settle_timeout
        quiet = 0
        while loop.time() < deadline:
            await asyncio.sleep(0)
            ready = getattr(loop, "_ready", None)
            runnable = len(ready) if ready is not None else 0
            if runnable:
                quiet = 0
                continue
            if self._is_busy():
                quiet = 0
                await asyncio.sleep(0.001)  # let sockets and threads make progress
                continue
            quiet += 1
            if quiet >= (3 if ready is not None else 20):
                return
        logger.warning("clock driver: still busy after {:.0f} s; moving on", self._settle_timeout)

    async def step(self, until: datetime | None = None) -> datetime:
        """Settle, then move to the next wake-up (not past `until`); returns the new now."""
        await self.settle()
        now = self.clock.now()
        wake = self.clock.next_wakeup()
        target = wake if wake is not None and wake > now else now + self._idle_step
        if until is not None:
            target = min(target, until)
        if target > now:
            self.clock.set(target)
        self.steps += 1
        await self.settle()
        return self.clock.now()

    async def run_until(
        self,
        condition: Callable[[], bool],
        *,
        deadline: datetime,
        what: str = "the condition",
    ) -> None:
        """Step until `condition()` holds (checked after every settled step); time then
        holds still. DriverTimeout when the clock reaches `deadline` first."""
        await self.settle()
        while not condition():
            if self.clock.now() >= deadline:
                raise DriverTimeout(f"{what} did not happen by {deadline.isoformat()}")
            await self.step(deadline)

    async def run_to(self, moment: datetime) -> None:
        """Step until the clock reaches `moment`."""
        await self.run_until(lambda: self.clock.now() >= moment, deadline=moment, what="time")

    async def run_speed(
        self,
        speed: float,
        *,
        stop: Callable[[], bool] | None = None,
        tick: float = 0.02,
    ) -> None:
        """Move time at `speed` x real time until `stop()` holds (or the task is canceled).
        `speed <= 0` steps as fast as the work allows (settled steps)."""
        while stop is None or not stop():
            if speed <= 0:
                await self.step()
                continue
            await asyncio.sleep(tick)
            self.clock.set(self.clock.now() + timedelta(seconds=tick * speed))


__all__ = ["ClockDriver", "DriverTimeout"]
