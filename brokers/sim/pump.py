"""A background task that runs SimBroker's due actions when their time comes on the clock.

Without it, a cancel requested with a latency would complete only when someone next
touched the broker; with it, a subscriber waiting for `canceled` gets it as the clock
(simulated or real) reaches the due time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from loguru import logger

from core.clock import Clock


class DuePump:
    def __init__(
        self, clock: Clock, next_due: Callable[[], datetime | None], run_due: Callable[[], None]
    ) -> None:
        self._clock = clock
        self._next_due = next_due
        self._run_due = run_due
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    def poke(self) -> None:
        """Something was scheduled: (re)consider the next due time. Needs a running loop;
        without one (synchronous use) due work runs on the next broker call instead."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(self._wake), name="sim-broker-pump")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, wake: asyncio.Event) -> None:
        while True:
            wake.clear()
            due = self._next_due()
            if due is None:
                await wake.wait()
                continue
            if due > self._clock.now():
                sleeper = asyncio.ensure_future(self._clock.sleep_until(due))
                waker = asyncio.ensure_future(wake.wait())
                try:
                    await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    waker.cancel()
            try:
                self._run_due()
            except Exception:  # a bug here must not die silently inside a task
                logger.exception("SimBroker: running due actions failed")
                raise
