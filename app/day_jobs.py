"""`DayJobs`: what the scheduler's day plan does (implements `core.scheduler.DayActions`).

- NEW_DAY, MARKET_OPEN, MARKET_CLOSE: tick every engine (its session machine takes the
  day's time triggers at the exact instant).
- BRIEF (09:00): `build_brief` from the daily bars seen so far, `write_brief`, publish
  `BriefReady`.
- OPENING_WINDOW_OVER (09:45): tick (OPENING_NO_TRADE ends; with no answer the day is
  not allowed), then publish `AllowPrompt`: a definite verdict per watched symbol and
  "Allow trading today?" [Allow] [Not today].
- FLATTEN (15:55, the account's `flatten_time`; close - 5 min on a half day): tick (the
  session goes DONE), then cancel and flatten everything the account still has, through
  the engine's verified kill. Once per account and day: the engines run with
  `EngineOptions(flatten_at_close=False)`, so engine.tick only moves the session to DONE
  and this job is the one flattener; a restart that catches the job up again finds
  nothing open and does nothing.
- REPORT (16:10; close + 10 min on a half day): a fresh reconcile, `build_eod_report`,
  `write_report` (Markdown, JSON, one PNG per traded symbol), publish `ReportReady`.

Recurring jobs:
- `watchdogs` (every 15 s) ticks every engine: due session triggers, draft expiry, the
  stale-data and unacknowledged-order watchdogs, the loss watch, and the periodic
  reconcile when its interval is due. engine.tick therefore OWNS the periodic reconcile.
- `reconcile` (every N s) is only a safety net: it reconciles an engine whose last
  reconcile is older than two intervals (a tick that kept failing), so it never doubles
  engine.tick's own.

Ticks of one engine never overlap (a lock per engine): two ticks racing through the same
due trigger could otherwise both act on it. A brief, prompt or report already published
for the day (a restart that caught the job up) is not published again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger
from sqlalchemy import select

from app.bar_pump import BarPump
from core.calendar import TradingCalendar
from core.clock import NEW_YORK, Clock
from core.day_verdicts import day_verdicts
from core.engine import TradingEngine
from core.event_calendar import EventCalendar
from core.events import AllowPrompt, BriefReady, EventBus, ReconcileCompleted, ReportReady
from core.ledger import Ledger, NotificationRow
from core.params import SignalParams
from core.report_service import brief_json, report_json
from core.scheduler import DayJob
from core.services import TradingServices

T = TypeVar("T")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[00:00, next 00:00) New York time (as core.reports.eod.day_bounds)."""
    start = datetime.combine(day, time(0), tzinfo=NEW_YORK)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=NEW_YORK)


TICKED = (DayJob.NEW_DAY, DayJob.MARKET_OPEN, DayJob.MARKET_CLOSE)


class DayJobs:
    def __init__(
        self,
        *,
        services: TradingServices,
        engines: Mapping[str, TradingEngine],
        pump: BarPump,
        symbols: Sequence[str],
        params: SignalParams,
        events: EventCalendar,
        calendar: TradingCalendar,
        bus: EventBus,
        ledger: Ledger,
        clock: Clock,
        data_dir: Path,
        reconcile_every_seconds: float,
    ) -> None:
        self._services = services
        self._engines = dict(engines)
        self._pump = pump
        self._symbols = list(symbols)
        self._params, self._events, self._calendar = params, events, calendar
        self._bus, self._ledger, self._clock = bus, ledger, clock
        self._data_dir = data_dir
        self._reconcile_every = timedelta(seconds=reconcile_every_seconds)
        self._locks = {name: asyncio.Lock() for name in self._engines}
        self._flattened: set[tuple[str, date]] = set()
        self._in_flight: set[asyncio.Task[object]] = set()
        self.done: list[tuple[DayJob, date]] = []
        self.reports: dict[tuple[str, date], ReportReady] = {}
        self.threads = 0  # report/brief files being written in a worker thread

    async def _in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self.threads += 1
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        finally:
            self.threads -= 1

    # --- DayActions ---------------------------------------------------------------------

    async def run_day_job(self, job: DayJob, day: date) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._run(job, day)
        finally:
            if task is not None:
                self._in_flight.discard(task)
            self.done.append((job, day))

    async def _run(self, job: DayJob, day: date) -> None:
        logger.info("day job {} for {}", job.value, day)
        if job in TICKED:
            await self.tick_all()
        elif job is DayJob.BRIEF:
            await self.brief(day)
        elif job is DayJob.OPENING_WINDOW_OVER:
            await self.tick_all()
            await self.allow_prompt(day)
        elif job is DayJob.FLATTEN:
            await self.tick_all()
            await self.flatten(day)
        elif job is DayJob.REPORT:
            await self.tick_all()
            await self.report(day)

    async def watchdogs(self) -> None:
        await self.tick_all()

    async def reconcile(self) -> None:
        now = self._clock.now()
        for engine in self._engines.values():
            last = engine.reconciler.last
            if last is None or now - last.at > 2 * self._reconcile_every:
                logger.warning("{}: no reconcile for two intervals; running one", engine.name)
                await engine.reconciler.run("periodic (safety net)")

    # --- helpers ------------------------------------------------------------------------

    async def tick(self, engine: TradingEngine) -> None:
        async with self._locks[engine.name]:
            await engine.tick()

    async def tick_all(self) -> None:
        for engine in self._engines.values():
            await self.tick(engine)

    def finished(self, day: date) -> bool:
        """The day's report job ran."""
        return (DayJob.REPORT, day) in self.done

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 (a real-time bound)
        """Let the day jobs now running finish (graceful shutdown)."""
        tasks = [t for t in self._in_flight if not t.done() and t is not asyncio.current_task()]
        if tasks:
            logger.info("waiting for {} day job(s) to finish", len(tasks))
            await asyncio.wait(tasks, timeout=timeout)

    def _already_published(self, kind: str, day: date, account: str | None = None) -> bool:
        start, _ = day_bounds(day)
        with self._ledger.unit_of_work(read_only=True) as uow:
            rows = uow.session.scalars(
                select(NotificationRow).where(
                    NotificationRow.kind == kind,
                    NotificationRow.created_at >= start - timedelta(days=1),
                )
            ).all()
        for row in rows:
            data = (row.payload or {}).get("data") if isinstance(row.payload, dict) else None
            if not isinstance(data, dict) or data.get("day") != day.isoformat():
                continue
            if account is None or data.get("account") == account:
                return True
        return False

    # --- the jobs -----------------------------------------------------------------------

    async def brief(self, day: date) -> BriefReady | None:
        if self._already_published("brief", day):
            logger.info("brief for {} already sent", day)
            return None
        from core.reports import build_brief, write_brief  # matplotlib: on first use only

        daily = self._pump.history.daily(day)
        brief = build_brief(
            day,
            self._symbols,
            self._calendar,
            self._events,
            daily,
            lookback=self._params.daily_lookback,
        )
        path = await self._in_thread(write_brief, self._data_dir, brief)
        event = BriefReady(at=self._clock.now(), day=day, brief=brief_json(brief), path=str(path))
        await self._bus.publish(event)
        return event

    async def allow_prompt(self, day: date) -> AllowPrompt | None:
        engine = self._services.engine()
        if self._already_published("allow_prompt", day, engine.name):
            logger.info("allow prompt for {} already sent", day)
            return None
        verdicts = day_verdicts(
            self._symbols, day, self._pump.last_updates, self._events, self._params
        )
        allowed = engine.day.m.info.allowed if engine.day.day == day else None
        event = AllowPrompt(
            at=self._clock.now(), account=engine.name, day=day, verdicts=verdicts, allowed=allowed
        )
        await self._bus.publish(event)
        return event

    async def flatten(self, day: date) -> None:
        for engine in self._engines.values():
            await self.flatten_account(engine, day)

    async def flatten_account(self, engine: TradingEngine, day: date) -> None:
        """Cancel and flatten everything open on this account, once for the day."""
        key = (engine.name, day)
        if key in self._flattened:
            return
        if engine.day.day == day and engine.day.schedule.flatten_at > self._clock.now():
            # This account flattens later than the plan's (earliest) flatten time.
            await self._clock.sleep_until(engine.day.schedule.flatten_at)
            await self.tick(engine)
        if key in self._flattened:
            return
        self._flattened.add(key)
        preview = await engine.kill.preview()
        if not preview.orders and not preview.positions:
            logger.info("{}: flatten time {}: nothing open", engine.name, day)
            return
        logger.info(
            "{}: flatten time: {} order(s), {} position(s)",
            engine.name,
            len(preview.orders),
            len(preview.positions),
        )
        report = await engine.kill.execute("flatten time")
        if not report.all_flat:
            logger.error("{}: the flatten left positions open (see the kill report)", engine.name)

    async def report(self, day: date) -> list[ReportReady]:
        out = []
        for engine in self._engines.values():
            event = await self.account_report(engine, day)
            if event is not None:
                out.append(event)
        return out

    async def account_report(self, engine: TradingEngine, day: date) -> ReportReady | None:
        if self._already_published("report", day, engine.name):
            logger.info("{}: report for {} already sent", engine.name, day)
            return None
        from core.reports import build_eod_report, write_report

        checked = await engine.reconciler.run("end of day")
        reconcile = ReconcileCompleted(
            at=checked.at,
            account=checked.account,
            in_sync=checked.in_sync,
            summary=checked.summary(),
        )
        bars = self._pump.history.session_bars(day)
        report = build_eod_report(
            self._ledger,
            engine.name,
            day,
            self._calendar,
            bars,
            reconcile=reconcile,
            watchlist=self._symbols,
            params=self._params,
        )
        stored = await self._in_thread(
            write_report,
            self._data_dir,
            report,
            bars,
            params=self._params,
            calendar=self._calendar,
        )
        event = ReportReady(
            at=self._clock.now(),
            account=engine.name,
            day=day,
            directory=str(stored.directory),
            charts=tuple(str(c) for c in stored.charts),
            report=report_json(report),
        )
        await self._bus.publish(event)
        self.reports[(engine.name, day)] = event
        return event


__all__ = ["DayJobs"]
