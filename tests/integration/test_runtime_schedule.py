"""The assembled runtime on a SimClock: the day plan follows the XNYS calendar (a half day
flattens and reports early, a holiday has no jobs and plans the next session), and an
account's own flatten_time moves its flatten."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path

import pytest

from app.adapters import StartupError
from app.clock_driver import ClockDriver
from app.probes import EventLog
from app.runtime import Runtime, RuntimePlan, account_sessions
from app.warmup import Replay, scenario_replay
from core.clock import NEW_YORK, SimClock
from core.config_models import AccountConfig, BrokerKind, WatchlistConfig
from core.events import AllowPrompt, BriefReady, ReportReady, SessionStateChanged
from core.scheduler import DayJob
from core.session import SessionState
from core.settings import DEFAULT_CONFIG_DIR, Settings, load_settings


def ny(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=NEW_YORK)


def settings_for(tmp_path: Path, symbols: list[str]) -> Settings:
    settings = load_settings(
        DEFAULT_CONFIG_DIR, env_file=None, environ={"CENTAUR_DATA_DIR": str(tmp_path)}
    )
    return replace(settings, watchlist=WatchlistConfig(watchlist=symbols))


async def started(
    tmp_path: Path, replay: Replay, account: AccountConfig | None = None
) -> tuple[Runtime, ClockDriver, EventLog]:
    symbols = replay.symbols or ["DEMO"]
    plan = RuntimePlan(
        settings=settings_for(tmp_path, symbols),
        accounts=[account or AccountConfig(name="sim", broker=BrokerKind.SIM)],
        clock=SimClock(replay.start),
        db_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        data_dir=tmp_path,
        symbols=symbols,
        replay=replay,
        with_bot=False,
    )
    runtime = Runtime(plan)
    log = EventLog(runtime.bus)
    await runtime.start()
    assert runtime.pump is not None
    pump = runtime.pump
    assert isinstance(plan.clock, SimClock)
    driver = ClockDriver(plan.clock, busy=[lambda: pump.busy, runtime.threads_busy])
    return runtime, driver, log


def ran(runtime: Runtime, day: date) -> dict[DayJob, str]:
    assert runtime.planner is not None
    return {
        job: f"{at.astimezone(NEW_YORK):%H:%M}" for job, d, at in runtime.planner.ran if d == day
    }


async def test_a_half_day_flattens_and_reports_early(tmp_path: Path) -> None:
    replay = scenario_replay("half_day", symbol="DEMO", start=time(12, 40))
    day = replay.day
    assert day == date(2024, 11, 29)
    runtime, driver, log = await started(tmp_path, replay)
    try:
        await driver.run_until(lambda: log.seen(ReportReady), deadline=ny(day, 13, 30))
        jobs = ran(runtime, day)
        assert jobs[DayJob.FLATTEN] == "12:55"
        assert jobs[DayJob.MARKET_CLOSE] == "13:00"
        assert jobs[DayJob.REPORT] == "13:10"
        assert DayJob.BRIEF not in jobs  # stale once the market is open: skipped
        assert jobs[DayJob.OPENING_WINDOW_OVER] == "12:40"  # caught up at once
        done = [e for e in log.of(SessionStateChanged) if e.current is SessionState.DONE]
        assert [f"{e.at.astimezone(NEW_YORK):%H:%M}" for e in done] == ["12:55"]
        (report,) = log.of(ReportReady)
        assert report.report["session_kind"] == "half day"
        assert (tmp_path / "reports" / "2024-11-29" / "report.json").is_file()
    finally:
        await runtime.stop()


async def test_a_holiday_has_no_jobs_and_plans_the_next_session(tmp_path: Path) -> None:
    holiday = date(2024, 7, 4)
    replay = Replay(holiday, ny(holiday, 8, 55), {}, {}, "nothing (a holiday)")
    runtime, driver, log = await started(tmp_path, replay)
    try:
        await driver.run_to(ny(holiday, 9, 50))
        assert ran(runtime, holiday) == {}
        assert not log.seen(BriefReady) and not log.seen(AllowPrompt)
        assert runtime.scheduler is not None
        assert runtime.scheduler.get_job("2024-07-05:plan") is not None
    finally:
        await runtime.stop()


async def test_an_accounts_flatten_time_moves_its_flatten(tmp_path: Path) -> None:
    replay = scenario_replay("trend_up_pullback", symbol="DEMO", start=time(14, 50))
    account = AccountConfig(name="sim", broker=BrokerKind.SIM, flatten_time=time(15, 0))
    runtime, driver, _log = await started(tmp_path, replay, account)
    try:
        await driver.run_to(ny(replay.day, 15, 2))
        assert ran(runtime, replay.day)[DayJob.FLATTEN] == "15:00"
        assert runtime.active.day.state is SessionState.DONE
    finally:
        await runtime.stop()


def test_a_flatten_time_outside_the_trading_day_is_refused(tmp_path: Path) -> None:
    sessions = settings_for(tmp_path, ["DEMO"]).sessions
    early = AccountConfig(name="sim", broker=BrokerKind.SIM, flatten_time=time(9, 40))
    with pytest.raises(StartupError, match="flatten_time 09:40 must be after"):
        account_sessions(sessions, early)
    unset = AccountConfig(name="sim", broker=BrokerKind.SIM)
    assert account_sessions(sessions, unset) is sessions


async def test_a_restart_after_the_report_does_not_send_it_again(tmp_path: Path) -> None:
    replay = scenario_replay("trend_up_pullback", symbol="DEMO", start=time(15, 58))
    runtime, driver, log = await started(tmp_path, replay)
    try:
        await driver.run_until(lambda: log.seen(ReportReady), deadline=ny(replay.day, 16, 30))
    finally:
        await runtime.stop()
    later = replace(replay, start=ny(replay.day, 16, 20))
    again, driver, log = await started(tmp_path, later)
    try:
        await driver.run_to(ny(replay.day, 16, 25))
        jobs = ran(again, replay.day)
        assert DayJob.REPORT in jobs and DayJob.FLATTEN in jobs  # caught up on restart...
        assert not log.seen(ReportReady)  # ...but the report was already sent
    finally:
        await again.stop()
