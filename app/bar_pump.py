"""The feed pump: every closed bar to the simulated broker(s), the engines and the radar.

For each closed bar, in this order (DESIGN.md, the replay's causality):
1. `SimBroker.on_bar` (simulated accounts only): stop-buys trigger and fill on it;
2. `TradingEngine.note_bar` for every engine: fresh data for the watchdog, the bar for
   the trail policy and the bot's price presets;
3. `RadarService.on_bar`: regime changes and signals (rule 5 reads the engines' state,
   which step 1 may just have changed). Bars that closed before the start (a replay's
   `--from`, a live feed's warm-up of today) are history: recorded, not pushed
   (`QuietBus`).

`MarketHistory` keeps what the day jobs need from the bars: the daily OHLCV of every
completed session (the brief's MA20 / ATR20) and today's bars per symbol (the report's
session summary and charts). A bad bar is logged and skipped; the pump never stops on one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np
from loguru import logger

from app.closing import StopDeadline
from brokers.sim import SimBroker
from core.calendar import TradingCalendar
from core.clock import NEW_YORK
from core.engine import TradingEngine
from core.events import DomainEvent, EventBus
from core.marketdata.bar import Bar
from core.marketdata.feed import BarFeed
from core.marketdata.sessions import DailyBars, SessionBars
from core.radar import RadarService
from core.signals import RadarUpdate

if TYPE_CHECKING:
    from brokers.alpaca import BarRecorder


_DailyRow = tuple[int, int, int, int, int]  # open, high, low, close (ten-thousandths), volume


@dataclass
class _Symbol:
    daily: dict[date, _DailyRow] = field(default_factory=dict)
    day: date | None = None
    bars: list[Bar] = field(default_factory=list)


class MarketHistory:
    """Completed sessions (daily rows) and the running session's bars, per symbol."""

    def __init__(self, calendar: TradingCalendar) -> None:
        self._calendar = calendar
        self._symbols: dict[str, _Symbol] = {}

    def _of(self, symbol: str) -> _Symbol:
        return self._symbols.setdefault(symbol.upper(), _Symbol())

    def seed(self, symbol: str, sessions: Iterable[SessionBars]) -> None:
        """Earlier sessions (warm-up), as daily rows."""
        entry = self._of(symbol)
        for s in sessions:
            if len(s):
                entry.daily[s.day] = (
                    int(s.open[0]),
                    int(s.high.max()),
                    int(s.low.min()),
                    int(s.close[-1]),
                    int(s.volume.sum()),
                )

    def add(self, bar: Bar) -> None:
        entry = self._of(bar.symbol)
        day = bar.start.astimezone(NEW_YORK).date()
        if entry.day != day:
            self._close_day(bar.symbol, entry)
            entry.day, entry.bars = day, []
        if entry.bars and bar.start <= entry.bars[-1].start:
            return
        entry.bars.append(bar)

    def _close_day(self, symbol: str, entry: _Symbol) -> None:
        session = self._today(symbol, entry)
        if session is not None:
            self.seed(symbol, [session])

    def _today(self, symbol: str, entry: _Symbol) -> SessionBars | None:
        if entry.day is None or not entry.bars:
            return None
        session = self._calendar.session(entry.day)
        if session is None:
            return None
        sizes = {b.size for b in entry.bars}
        bars = entry.bars if len(sizes) == 1 else [b for b in entry.bars if b.size == min(sizes)]
        return SessionBars.from_bars(bars, session)

    @property
    def symbols(self) -> list[str]:
        return sorted(self._symbols)

    def session_bars(self, day: date) -> dict[str, SessionBars]:
        """`day`'s bars per symbol (the symbols that had any)."""
        out: dict[str, SessionBars] = {}
        for symbol, entry in self._symbols.items():
            if entry.day == day:
                session = self._today(symbol, entry)
                if session is not None:
                    out[symbol] = session
        return out

    def daily(self, before: date) -> dict[str, DailyBars]:
        """Daily bars of every completed session strictly before `before`, per symbol."""
        out: dict[str, DailyBars] = {}
        for symbol, entry in self._symbols.items():
            rows = dict(entry.daily)
            if entry.day is not None and entry.day < before:
                today = self._today(symbol, entry)
                if today is not None:
                    rows[today.day] = (
                        int(today.open[0]),
                        int(today.high.max()),
                        int(today.low.min()),
                        int(today.close[-1]),
                        int(today.volume.sum()),
                    )
            days = sorted(d for d in rows if d < before)
            if not days:
                continue
            cols = list(zip(*(rows[d] for d in days), strict=True))
            out[symbol] = DailyBars(
                symbol,
                np.asarray([d.toordinal() for d in days], dtype=np.int64),
                *(np.asarray(c, dtype=np.int64) for c in cols),
            )
        return out


class QuietBus(EventBus):
    """The radar's bus: forwards to the process bus, except while the pump feeds bars that
    closed before the run started (a replay's `--from`): those are today's history, so
    their regime changes and signals are recorded in the ledger but not pushed."""

    def __init__(self, target: EventBus) -> None:
        super().__init__()
        self._target = target
        self.quiet = False

    async def publish(self, event: DomainEvent) -> int:
        if self.quiet:
            return 0
        return await self._target.publish(event)


async def _settled(task: asyncio.Task[None]) -> None:
    """Wait for a cancelled task to end, however it ends."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class BarPump:
    """Consumes a `BarFeed` in a task; see the module docstring for the order of work."""

    def __init__(
        self,
        feed: BarFeed,
        *,
        engines: Sequence[TradingEngine],
        radar: RadarService,
        history: MarketHistory,
        sim_brokers: Sequence[SimBroker] = (),
        recorder: BarRecorder | None = None,
        radar_bus: QuietBus | None = None,
        quiet_until: datetime | None = None,
    ) -> None:
        self._feed = feed
        self._engines = list(engines)
        self._radar = radar
        self.history = history
        self._sims = list(sim_brokers)
        self._recorder = recorder
        self._radar_bus = radar_bus
        self._quiet_until = quiet_until
        self._task: asyncio.Task[None] | None = None
        self.last_updates: dict[str, RadarUpdate] = {}
        self.bars = 0
        self.last_bar_end: datetime | None = None
        self.finished = asyncio.Event()  # the feed ended (a replay ran out of bars)
        self.busy = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="bar-pump")

    async def stop(self, deadline: StopDeadline | None = None) -> list[str]:
        """Stop pumping and close the feed, each within the deadline's limits (a feed
        stuck subscribing or reconnecting must not hold the stop). Returns what did not
        close in time (also logged)."""
        deadline = deadline or StopDeadline(total=10.0, step=5.0)
        before = len(deadline.not_closed)
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await deadline.run("bar feed subscription", _settled(task))
        closer = getattr(self._feed, "close", None)
        if closer is not None:
            await deadline.run("bar feed close", closer())
        return deadline.not_closed[before:]

    async def _run(self) -> None:
        try:
            async for bar in self._feed:
                await self.on_bar(bar)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("bar pump: the feed failed")
        finally:
            self.finished.set()
        logger.info("bar pump: the feed ended after {} bars", self.bars)

    async def on_bar(self, bar: Bar) -> None:
        """One closed bar through broker, engines and radar (never raises)."""
        self.busy = True
        try:
            for broker in self._sims:
                try:
                    await broker.on_bar(bar)
                except Exception:
                    logger.exception("bar pump: SimBroker refused {} {}", bar.symbol, bar.start)
            for engine in self._engines:
                engine.note_bar(bar)
            self.history.add(bar)
            if self._recorder is not None:
                try:
                    self._recorder.record(bar)
                except OSError as exc:
                    logger.error("bar pump: could not record {}: {}", bar.symbol, exc)
            quiet = self._quiet_until is not None and bar.end <= self._quiet_until
            if self._radar_bus is not None:
                self._radar_bus.quiet = quiet
            try:
                update = await self._radar.on_bar(bar)
            except Exception:
                logger.exception("bar pump: radar failed on {} {}", bar.symbol, bar.start)
                update = None
            if update is not None:
                self.last_updates[bar.symbol.upper()] = update
            self.bars += 1
            self.last_bar_end = bar.end
        finally:
            if self._radar_bus is not None:
                self._radar_bus.quiet = False
            self.busy = False


__all__ = ["BarPump", "MarketHistory", "QuietBus"]
