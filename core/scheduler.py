"""The trading day's schedule: APScheduler's AsyncIOScheduler, driven by our Clock.

APScheduler 3 asks the standard library for the current time and `loop.call_later` for its
timer. A replay at 600x, a backtest-speed demo or a test on a `SimClock` needs both to
come from the injected clock instead, so `ClockScheduler`:
- routes APScheduler's current-time lookups (scheduler core, misfire check) to the clock
  through a small shim installed into those two modules (one clocked scheduler runs per
  process; a second one with a different clock is refused);
- replaces the `call_later` timer with a task that sleeps on the clock.

`DayPlanner` turns the XNYS calendar into the day's jobs (dates, not cron lines, so
holidays get no jobs and half days get their own times):
    09:00 brief, open, 09:45 end of the opening window + "Allow trading today?",
    flatten (15:55, or close - 5 min on a half day), report (16:10, or close + 10 min),
plus reconcile every N s and the watchdogs every 15 s. Missed jobs after a restart are
handled deliberately: the state transitions (open, opening window) are caught up at
once, a missed flatten happens at once if the session is not over long ago, the report
still goes out, a missed brief is skipped once the market is open (it is stale).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import datetime as _real_datetime
from enum import StrEnum
from typing import Any, Protocol

import apscheduler.executors.base as _aps_executors
import apscheduler.schedulers.base as _aps_base
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from core.calendar import TradingCalendar, TradingSession
from core.clock import NEW_YORK, Clock
from core.config_models import SessionsConfig

_active_clock: Clock | None = None
# The clock of the last scheduler started: APScheduler may still ask for "now" while
# shutting down, after the active clock was released. Never the wall clock.
_last_clock: Clock | None = None


class _ClockDatetime(_real_datetime):
    """`datetime` as APScheduler sees it: `now()` is the scheduler's clock's now."""

    @classmethod
    def now(cls, tz: Any = None) -> _real_datetime:  # type: ignore[override]
        clock = _active_clock or _last_clock
        if clock is None:
            raise RuntimeError("APScheduler asked for the time outside a ClockScheduler")
        moment = clock.now()
        return moment.astimezone(tz) if tz is not None else moment


def _install_shim() -> None:
    _aps_base.datetime = _ClockDatetime
    _aps_executors.datetime = _ClockDatetime


class ClockScheduler(AsyncIOScheduler):  # type: ignore[misc]
    """An AsyncIOScheduler whose time and timer come from `clock`."""

    def __init__(self, clock: Clock, **options: Any) -> None:
        options.setdefault("timezone", NEW_YORK)
        options.setdefault(
            "job_defaults", {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
        )
        super().__init__(**options)
        self._clock = clock
        self._timer_task: asyncio.Task[None] | None = None

    def start(self, paused: bool = False) -> None:
        global _active_clock, _last_clock
        if _active_clock is not None and _active_clock is not self._clock:
            raise RuntimeError("another clocked scheduler is running in this process")
        _install_shim()
        _active_clock = _last_clock = self._clock
        super().start(paused=paused)

    def shutdown(self, wait: bool = True) -> None:
        global _active_clock
        super().shutdown(wait=wait)
        if self._timer_task is not None:
            self._timer_task.cancel()
            self._timer_task = None
        if _active_clock is self._clock:
            _active_clock = None

    def _start_timer(self, wait_seconds: float | None) -> None:
        self._stop_timer()
        if wait_seconds is not None:
            self._timer_task = self._eventloop.create_task(self._sleep_then_wake(wait_seconds))

    def _stop_timer(self) -> None:
        if self._timer_task is not None and self._timer_task is not asyncio.current_task():
            self._timer_task.cancel()
        self._timer_task = None

    async def _sleep_then_wake(self, wait_seconds: float) -> None:
        await self._clock.sleep(wait_seconds)
        self._timer_task = None
        self.wakeup()


class DayJob(StrEnum):
    NEW_DAY = "new_day"
    BRIEF = "brief"
    MARKET_OPEN = "market_open"
    OPENING_WINDOW_OVER = "opening_window_over"
    FLATTEN = "flatten"
    MARKET_CLOSE = "market_close"
    REPORT = "report"


class DayActions(Protocol):
    """What the scheduler asks of the running assistant (implemented in the app)."""

    async def run_day_job(self, job: DayJob, day: date) -> None: ...

    async def reconcile(self) -> None: ...

    async def watchdogs(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PlannedJob:
    job: DayJob
    day: date
    at: datetime

    @property
    def job_id(self) -> str:
        return f"{self.day.isoformat()}:{self.job.value}"


HALF_DAY_REPORT_DELAY = timedelta(minutes=10)
WATCHDOG_EVERY = timedelta(seconds=15)
# A flatten that is found missed this long after the close is not tried any more (the
# positions are carried; reconcile and the next day's flatten take over).
MISSED_FLATTEN_LIMIT = timedelta(hours=4)


def plan_day(
    session: TradingSession, sessions: SessionsConfig, flatten_at: time | None = None
) -> list[PlannedJob]:
    """The day's jobs in time order (New York time)."""
    day = session.day
    opening_over = max(session.at(sessions.allow_prompt_at), session.open)
    flatten_wall = flatten_at or sessions.flatten_at
    flatten = min(
        session.at(flatten_wall),
        session.close - timedelta(minutes=sessions.half_day_flatten_before_close_minutes),
    )
    report = session.at(sessions.report_at)
    if session.is_half_day:
        report = session.close + HALF_DAY_REPORT_DELAY
    jobs = [
        PlannedJob(DayJob.NEW_DAY, day, session.at(time(4, 0))),
        PlannedJob(DayJob.BRIEF, day, session.at(sessions.brief_at)),
        PlannedJob(DayJob.MARKET_OPEN, day, session.open),
        PlannedJob(DayJob.OPENING_WINDOW_OVER, day, opening_over),
        PlannedJob(DayJob.FLATTEN, day, flatten),
        PlannedJob(DayJob.MARKET_CLOSE, day, session.close),
        PlannedJob(DayJob.REPORT, day, max(report, session.close)),
    ]
    return sorted(jobs, key=lambda j: j.at)


class MissedPolicy(StrEnum):
    RUN_NOW = "run now"
    SKIP = "skip"


def missed_policy(job: PlannedJob, session: TradingSession, now: datetime) -> MissedPolicy:
    """What to do with a job whose time passed while Centaur was down."""
    if job.job is DayJob.BRIEF:
        return MissedPolicy.RUN_NOW if now < session.open else MissedPolicy.SKIP
    if job.job is DayJob.FLATTEN:
        late = now - session.close
        return MissedPolicy.RUN_NOW if late < MISSED_FLATTEN_LIMIT else MissedPolicy.SKIP
    return MissedPolicy.RUN_NOW


class DayPlanner:
    """Adds each session's jobs to the scheduler; plans the next day after midnight."""

    def __init__(
        self,
        scheduler: ClockScheduler,
        clock: Clock,
        calendar: TradingCalendar,
        sessions: SessionsConfig,
        actions: DayActions,
        *,
        flatten_at: time | None = None,
        on_job_error: Callable[[DayJob, Exception], Awaitable[None]] | None = None,
    ) -> None:
        self._scheduler, self._clock, self._calendar = scheduler, clock, calendar
        self._sessions, self._actions = sessions, actions
        self._flatten_at = flatten_at
        self._on_job_error = on_job_error
        self.ran: list[tuple[DayJob, date, datetime]] = []

    def start(self) -> None:
        """Plan today (catching up what was missed) and the recurring jobs."""
        now = self._clock.now()
        reconcile_every = timedelta(seconds=self._sessions.reconcile_every_seconds)
        # Explicit start dates: IntervalTrigger would otherwise start from the wall clock.
        self._scheduler.add_job(
            self._reconcile,
            IntervalTrigger(
                seconds=reconcile_every.total_seconds(), start_date=now + reconcile_every
            ),
            id="reconcile",
            replace_existing=True,
        )
        self._scheduler.add_job(
            self._watchdogs,
            IntervalTrigger(
                seconds=WATCHDOG_EVERY.total_seconds(), start_date=now + WATCHDOG_EVERY
            ),
            id="watchdogs",
            replace_existing=True,
        )
        self.plan(self._clock.now().astimezone(NEW_YORK).date(), catch_up=True)

    def plan(self, day: date, *, catch_up: bool) -> list[PlannedJob]:
        session = self._calendar.session(day)
        now = self._clock.now()
        planned: list[PlannedJob] = []
        if session is None:
            logger.info("scheduler: {} is not a trading day; no jobs", day)
        else:
            missed: list[PlannedJob] = []
            for job in plan_day(session, self._sessions, self._flatten_at):
                if job.at <= now:
                    if not catch_up:
                        continue
                    if missed_policy(job, session, now) is MissedPolicy.SKIP:
                        logger.info("scheduler: {} missed; skipped (stale)", job.job_id)
                        continue
                    logger.info("scheduler: {} missed; running it now", job.job_id)
                    missed.append(job)
                    continue
                self._scheduler.add_job(
                    self._run,
                    DateTrigger(run_date=job.at),
                    args=[job.job, job.day],
                    id=job.job_id,
                    replace_existing=True,
                )
                planned.append(job)
            if missed:
                # One job runs the missed ones in their order (equal run times would not).
                self._scheduler.add_job(
                    self._catch_up,
                    DateTrigger(run_date=now),
                    args=[missed],
                    id=f"{day.isoformat()}:catch_up",
                    replace_existing=True,
                )
                planned = missed + planned
        # Plan the next trading day shortly after its midnight.
        following = self._calendar.next_session(day)
        midnight = datetime.combine(following.day, time(0, 1), tzinfo=NEW_YORK)
        self._scheduler.add_job(
            self._plan_next,
            DateTrigger(run_date=max(midnight, now)),
            args=[following.day],
            id=f"{following.day.isoformat()}:plan",
            replace_existing=True,
        )
        return planned

    async def _catch_up(self, jobs: list[PlannedJob]) -> None:
        for job in jobs:
            await self._run(job.job, job.day)

    async def _plan_next(self, day: date) -> None:
        self.plan(day, catch_up=False)

    async def _run(self, job: DayJob, day: date) -> None:
        self.ran.append((job, day, self._clock.now()))
        try:
            await self._actions.run_day_job(job, day)
        except Exception as exc:  # a failing job must not stop the day's other jobs
            logger.exception("scheduler: job {} for {} failed", job.value, day)
            if self._on_job_error is not None:
                await self._on_job_error(job, exc)

    async def _reconcile(self) -> None:
        try:
            await self._actions.reconcile()
        except Exception:
            logger.exception("scheduler: reconcile failed")

    async def _watchdogs(self) -> None:
        try:
            await self._actions.watchdogs()
        except Exception:
            logger.exception("scheduler: watchdogs failed")
