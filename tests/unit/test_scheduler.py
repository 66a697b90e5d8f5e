"""The day's schedule on a SimClock: jobs in order, holidays empty, half days shifted,
missed jobs handled deliberately, and APScheduler really driven by the injected clock."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time

import pytest

from core.calendar import xnys
from core.clock import NEW_YORK, SimClock
from core.config_models import SessionsConfig
from core.scheduler import ClockScheduler, DayJob, DayPlanner, plan_day
from core.settings import DEFAULT_CONFIG_DIR, load_model

SESSIONS = load_model(DEFAULT_CONFIG_DIR / "sessions.yaml", SessionsConfig)


def ny(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=NEW_YORK)


class Recorder:
    def __init__(self) -> None:
        self.jobs: list[tuple[DayJob, date]] = []
        self.reconciles = 0
        self.watchdog_runs = 0

    async def run_day_job(self, job: DayJob, day: date) -> None:
        self.jobs.append((job, day))

    async def reconcile(self) -> None:
        self.reconciles += 1

    async def watchdogs(self) -> None:
        self.watchdog_runs += 1


async def _run_until(clock: SimClock, until: datetime, recorder: Recorder) -> DayPlanner:
    scheduler = ClockScheduler(clock)
    planner = DayPlanner(scheduler, clock, xnys(), SESSIONS, recorder)
    scheduler.start()
    planner.start()
    try:
        await asyncio.wait_for(clock.run(None, until=until), timeout=30)
        for _ in range(20):  # let the last jobs finish
            await asyncio.sleep(0)
    finally:
        scheduler.shutdown(wait=False)
    return planner


def test_plan_of_a_normal_day() -> None:
    session = xnys().require_session(date(2024, 3, 5))
    plan = {j.job: j.at for j in plan_day(session, SESSIONS)}
    assert plan[DayJob.BRIEF] == ny(session.day, 9, 0)
    assert plan[DayJob.OPENING_WINDOW_OVER] == ny(session.day, 9, 45)
    assert plan[DayJob.FLATTEN] == ny(session.day, 15, 55)
    assert plan[DayJob.REPORT] == ny(session.day, 16, 10)


def test_plan_of_a_half_day_follows_the_early_close() -> None:
    session = xnys().require_session(date(2024, 11, 29))
    plan = {j.job: j.at for j in plan_day(session, SESSIONS)}
    assert plan[DayJob.FLATTEN] == ny(session.day, 12, 55)
    assert plan[DayJob.MARKET_CLOSE] == ny(session.day, 13, 0)
    assert plan[DayJob.REPORT] == ny(session.day, 13, 10)


async def test_a_whole_day_runs_in_order_on_the_sim_clock() -> None:
    day = date(2024, 3, 5)
    clock = SimClock(ny(day, 3, 0))
    recorder = Recorder()
    await _run_until(clock, ny(day, 17, 0), recorder)
    assert recorder.jobs == [
        (DayJob.NEW_DAY, day),
        (DayJob.BRIEF, day),
        (DayJob.MARKET_OPEN, day),
        (DayJob.OPENING_WINDOW_OVER, day),
        (DayJob.FLATTEN, day),
        (DayJob.MARKET_CLOSE, day),
        (DayJob.REPORT, day),
    ]
    # 14 hours of simulated time: reconcile every 60 s, watchdogs every 15 s.
    assert recorder.reconciles == pytest.approx(14 * 60, abs=2)
    assert recorder.watchdog_runs == pytest.approx(14 * 60 * 4, abs=4)


async def test_holiday_has_no_jobs_and_the_next_day_is_planned() -> None:
    holiday = date(2024, 7, 4)
    clock = SimClock(ny(holiday, 8, 0))
    recorder = Recorder()
    await _run_until(clock, ny(date(2024, 7, 5), 9, 31), recorder)
    assert [j for j in recorder.jobs if j[1] == holiday] == []
    assert (DayJob.MARKET_OPEN, date(2024, 7, 5)) in recorder.jobs


async def test_restart_after_the_close_catches_up_but_skips_the_stale_brief() -> None:
    day = date(2024, 3, 5)
    clock = SimClock(ny(day, 16, 5))  # started after the flatten, before the report
    recorder = Recorder()
    await _run_until(clock, ny(day, 16, 30), recorder)
    jobs = [j for j, d in recorder.jobs if d == day]
    assert DayJob.BRIEF not in jobs
    assert jobs[:2] == [DayJob.NEW_DAY, DayJob.MARKET_OPEN]
    assert DayJob.FLATTEN in jobs  # a missed flatten happens at once
    assert jobs[-1] is DayJob.REPORT  # the report still goes out


async def test_a_failing_job_does_not_stop_the_others() -> None:
    day = date(2024, 3, 5)

    class Failing(Recorder):
        async def run_day_job(self, job: DayJob, day: date) -> None:
            await super().run_day_job(job, day)
            if job is DayJob.BRIEF:
                raise RuntimeError("brief failed")

    clock = SimClock(ny(day, 8, 0))
    recorder = Failing()
    await _run_until(clock, ny(day, 10, 0), recorder)
    assert (DayJob.OPENING_WINDOW_OVER, day) in recorder.jobs


async def test_second_scheduler_with_another_clock_is_refused() -> None:
    first = ClockScheduler(SimClock(ny(date(2024, 3, 5), 8, 0)))
    first.start()
    try:
        with pytest.raises(RuntimeError, match="another clocked scheduler"):
            ClockScheduler(SimClock(ny(date(2024, 3, 5), 8, 0))).start()
    finally:
        first.shutdown(wait=False)


def test_the_shim_never_falls_back_to_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.scheduler as scheduler_module

    monkeypatch.setattr(scheduler_module, "_active_clock", None)
    monkeypatch.setattr(scheduler_module, "_last_clock", None)
    with pytest.raises(RuntimeError, match="outside a ClockScheduler"):
        scheduler_module._ClockDatetime.now()
    clock = SimClock(ny(date(2024, 3, 5), 8, 0))
    monkeypatch.setattr(scheduler_module, "_last_clock", clock)
    assert scheduler_module._ClockDatetime.now(NEW_YORK) == ny(date(2024, 3, 5), 8, 0)
