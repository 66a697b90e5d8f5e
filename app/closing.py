"""Time limits on the stop path: every close gets its own limit, the stop as a whole a
deadline, and whatever does not finish in time is reported and left behind.

Why not `asyncio.wait_for` / `asyncio.timeout` around the close itself: both wait for the
cancelled work to finish cancelling, and a close that swallows its cancellation (websockets'
legacy close does, while it waits for the closing handshake) then holds the stop forever.
Here the work runs in its own task; on time-out the task is cancelled and abandoned (kept
referenced until it ends, so it is not garbage collected mid-flight).

These limits are real (event loop) time: a stop must end for the operator even when a
simulated clock stands still.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from loguru import logger

# Tasks given up on, referenced until they end (asyncio keeps only weak references).
_abandoned: set[asyncio.Task[Any]] = set()


class StopDeadline:
    """`total` seconds for the whole stop; `step` seconds at most for any one close."""

    def __init__(self, total: float, step: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._ends = self._loop.time() + max(0.0, total)
        self.total = total
        self.step = step
        self.not_closed: list[str] = []

    def remaining(self) -> float:
        return max(0.0, self._ends - self._loop.time())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def budget(self, limit: float | None = None) -> float:
        return min(self.step if limit is None else limit, self.remaining())

    async def run(self, name: str, work: Awaitable[Any], limit: float | None = None) -> bool:
        """Await `work` for at most its budget. False (and reported) when it did not end."""
        task = asyncio.ensure_future(work)
        seconds = self.budget(limit)
        if seconds > 0:
            done, _ = await asyncio.wait({task}, timeout=seconds)
            if task in done:
                if not task.cancelled() and task.exception() is not None:
                    logger.warning("stop: {} failed while closing: {!r}", name, task.exception())
                return True
        self.give_up(name, task, seconds)
        return False

    def give_up(self, name: str, task: asyncio.Task[Any] | None, seconds: float) -> None:
        """Report `name` as not closed; cancel its task and stop waiting for it."""
        if task is not None and not task.done():
            task.cancel()
            _abandoned.add(task)
            task.add_done_callback(_forget)
        self.not_closed.append(name)
        if self.expired:
            logger.warning(
                "stop: {} did not close: the stop deadline ({:.1f} s) has passed; "
                "continuing without it",
                name,
                self.total,
            )
        else:
            logger.warning(
                "stop: {} did not close within {:.1f} s; continuing without it", name, seconds
            )


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.exception()  # retrieved: no "exception was never retrieved" noise


def abandoned() -> int:
    """How many given-up tasks are still running (the process exit needs to know)."""
    return sum(1 for task in _abandoned if not task.done())


__all__ = ["StopDeadline", "abandoned"]
