"""The composition root of the running assistant: one event loop, everything on it.

    runtime = Runtime(RuntimePlan(settings, accounts, clock, db_url, data_dir, replay=...))
    await runtime.start()      # StartupError: a readable reason, nothing left running
    ...
    await runtime.stop()       # in-flight work finishes, the ledger stays consistent

`start()` builds, in order: the XNYS calendar; the ledger (migrated to the newest schema
first); one event bus; per account its broker and `TradingEngine` (started =
reconciled: startup is crash recovery); the `TradingServices` facade; the radar (fed the
warm-up); the bar feed and its pump; the bot (its notifier delivers the outbox); the
`ClockScheduler` with the `DayPlanner` and `DayJobs`. `stop()` undoes it in reverse.

Decisions (see app/day_jobs.py for the scheduled ones):
- The scheduler drives engine time: engines start with `background=False`; the 15 s
  watchdog job runs `engine.tick()`, which also owns the periodic reconcile.
- Engines run with `EngineOptions(flatten_at_close=False)`: the FLATTEN day job is the
  one flattener (exactly once per account and day).
- An account's `flatten_time` (config/accounts.yaml), when set, replaces the sessions'
  `flatten_at` for that account; the day plan flattens at the earliest of them.
- All accounts share one ledger and one bus (the outbox and the notifier need one).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from app.adapters import Connected, StartupError, connect_broker, live_feed
from app.bar_pump import BarPump, MarketHistory, QuietBus
from app.closing import StopDeadline
from app.day_jobs import DayJobs, day_bounds
from app.warmup import Replay, seed
from bot.app import build_application, start_bot, stop_bot
from bot.context import CentaurApp
from brokers.sim import SimBroker
from core.calendar import TradingCalendar, xnys
from core.clock import Clock
from core.config_models import AccountConfig, SessionsConfig
from core.config_models import BrokerKind as ConfigBrokerKind
from core.domain import OrderRole
from core.engine import TradingEngine
from core.engine_context import EngineOptions
from core.events import EventBus
from core.ledger import AccountMode, BrokerKind, Ledger, create_engine_for, upgrade
from core.marketdata.feed import BarFeed
from core.notifications import NotificationService
from core.radar import EntryStatus, RadarService
from core.reconcile import ReconcileReport
from core.report_service import ReportService
from core.scheduler import ClockScheduler, DayJob, DayPlanner
from core.services import TradingServices
from core.settings import Settings

if TYPE_CHECKING:
    from brokers.alpaca import BarRecorder


@dataclass
class RuntimePlan:
    settings: Settings
    accounts: list[AccountConfig]  # the first is the active one
    clock: Clock
    db_url: str
    data_dir: Path
    symbols: list[str] = field(default_factory=list)  # empty: the settings' watchlist
    replay: Replay | None = None
    with_bot: bool = True
    bot_poll_timeout: float = 10.0
    notifier_poll_seconds: float = 5.0
    engine_tick_seconds: float = 5.0
    sim_state_dir: Path | None = None  # persist simulated brokers here (None: in memory)
    # Live: earlier sessions for the radar, the trail policy and the brief (after the
    # brokers connect, before the engines start and the day is planned).
    warmup: Callable[[Runtime], Awaitable[int]] | None = None
    # The stop as a whole, and any one close on its path (seconds, real time): a feed
    # stuck reconnecting or a broker that does not answer must not hold SIGTERM.
    stop_seconds: float = 30.0
    close_seconds: float = 10.0


def account_sessions(sessions: SessionsConfig, account: AccountConfig) -> SessionsConfig:
    """The account's schedule: its `flatten_time` when accounts.yaml sets one."""
    if "flatten_time" not in account.model_fields_set:
        return sessions
    flatten = account.flatten_time
    if not (sessions.allow_prompt_at < flatten < sessions.report_at):
        raise StartupError(
            f"accounts.yaml: {account.name}: flatten_time {flatten:%H:%M} must be after "
            f"allow_prompt_at {sessions.allow_prompt_at:%H:%M} and before report_at "
            f"{sessions.report_at:%H:%M}"
        )
    return sessions.model_copy(update={"flatten_at": flatten})


class Runtime:
    def __init__(self, plan: RuntimePlan) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.clock = plan.clock
        self.calendar: TradingCalendar = xnys()
        self.bus = EventBus()
        self.symbols = [s.upper() for s in (plan.symbols or plan.settings.watchlist.watchlist)]
        self.connected: list[Connected] = []
        self.engines: dict[str, TradingEngine] = {}
        self.start_reports: dict[str, ReconcileReport] = {}
        self.ledger: Ledger | None = None
        self.services: TradingServices | None = None
        self.radar: RadarService | None = None
        self.history = MarketHistory(self.calendar)
        self.pump: BarPump | None = None
        self.notifications: NotificationService | None = None
        self.app: CentaurApp | None = None
        self.scheduler: ClockScheduler | None = None
        self.planner: DayPlanner | None = None
        self.jobs: DayJobs | None = None
        self.warm_sessions = 0
        self._started_engines: list[TradingEngine] = []
        self._bot_started = False

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        plan, settings = self.plan, self.settings
        for noisy in ("apscheduler", "alembic", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        plan.data_dir.mkdir(parents=True, exist_ok=True)
        self.ledger = ledger = self._open_ledger()
        for account in plan.accounts:
            state = None
            if plan.sim_state_dir is not None:
                state = plan.sim_state_dir / f"{account.name}.json"
            connected = await connect_broker(
                account, settings, self.clock, self.calendar, sim_state=state
            )
            self.connected.append(connected)
            engine = TradingEngine(
                account=account.name,
                broker=connected.broker,
                ledger=ledger,
                clock=self.clock,
                risk=settings.risk,
                protection=settings.protection,
                sessions=account_sessions(settings.sessions, account),
                mode=AccountMode(account.mode.value),
                broker_kind=BrokerKind(account.broker.value),
                calendar=self.calendar,
                events=settings.events,
                bus=self.bus,
                options=EngineOptions(
                    flatten_at_close=False,
                    tick_seconds=plan.engine_tick_seconds,
                    # IBKR holds the trailing stop as a child of the entry (DESIGN 4).
                    attached_protection=account.broker is ConfigBrokerKind.IBKR,
                ),
            )
            connected.on_reconnect.reconcile = _reconcile_hook(engine)
            connected.on_reconnect.down_too_long = engine.broker_down
            self.engines[account.name] = engine
        self.services = services = TradingServices(self.engines, plan.accounts[0].name)
        radar_bus = QuietBus(self.bus)
        self.radar = radar = RadarService(
            symbols=self.symbols,
            params=settings.params,
            risk=settings.risk,
            calendar=self.calendar,
            events=settings.events,
            bus=radar_bus,
            ledger=ledger,
            clock=self.clock,
            alert_regimes=settings.watchlist.radar_alert_regimes,
            equity=self._equity,
            entry_status=self._entry_status,
        )
        if plan.replay is not None:
            self.warm_sessions = seed(
                plan.replay.warmup,
                radar=radar,
                engines=self.engines.values(),
                history=self.history,
                memory_sessions=settings.protection.trail_lookback_sessions,
            )
        elif plan.warmup is not None:
            self.warm_sessions = await plan.warmup(self)
        feed, recorder = self._feed()
        sims = [c.broker for c in self.connected if isinstance(c.broker, SimBroker)]
        self.pump = BarPump(
            feed,
            engines=list(self.engines.values()),
            radar=radar,
            history=self.history,
            sim_brokers=sims,
            recorder=recorder,
            radar_bus=radar_bus,
            # Bars closed before the start (a replay's --from, a live feed's warm-up of
            # today) are history: recorded, not pushed.
            quiet_until=plan.replay.start if plan.replay is not None else self.clock.now(),
        )
        for engine in self.engines.values():
            self.start_reports[engine.name] = await engine.start(background=False)
            self._started_engines.append(engine)
            await engine.risk.account()
        self.notifications = notifications = NotificationService.for_services(services, self.clock)
        for connected in self.connected:
            # A broker outage in market hours is pushed to the chat (kind "system").
            connected.on_reconnect.alert = lambda text: notifications.enqueue_text(
                "system", f"⚠️ {text}"
            )
        if plan.with_bot:
            await self._start_bot()
        self._start_scheduler()
        self.pump.start()
        # Everything built so far lives for the whole run: move it out of the collector's
        # reach, so a full collection no longer pauses the loop ~100 ms (bot latency).
        gc.collect()
        gc.freeze()

    def _open_ledger(self) -> Ledger:
        url = self.plan.db_url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            upgrade(url)
            return Ledger(create_engine_for(url), self.clock)
        except Exception as exc:
            from core.logs import redact

            raise StartupError(f"the ledger database cannot be used: {redact(str(exc))}") from None

    def _feed(self) -> tuple[BarFeed, BarRecorder | None]:
        if self.plan.replay is not None:
            return self.plan.replay.feed(self.clock), None
        return live_feed(
            self.connected,
            self.symbols,
            self.settings,
            self.clock,
            self.calendar,
            self.plan.data_dir,
        )

    async def _start_bot(self) -> None:
        assert self.services is not None and self.notifications is not None
        try:
            self.app = build_application(
                self.services,
                self.settings,
                clock=self.clock,
                notifications=self.notifications,
                poll_seconds=self.plan.notifier_poll_seconds,
                reports=ReportService(self.plan.data_dir),
            )
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        try:
            await start_bot(self.app, poll_timeout=self.plan.bot_poll_timeout)
        except Exception as exc:
            url = self.settings.secrets.TELEGRAM_API_BASE_URL
            raise StartupError(
                f"the Telegram bot could not start against {url}: "
                f"{type(exc).__name__}: {exc} (check TELEGRAM_BOT_TOKEN and the network)"
            ) from None
        self._bot_started = True

    def _start_scheduler(self) -> None:
        assert self.services is not None and self.pump is not None and self.ledger is not None
        sessions = self.settings.sessions
        self.jobs = DayJobs(
            services=self.services,
            engines=self.engines,
            pump=self.pump,
            symbols=self.symbols,
            params=self.settings.params,
            events=self.settings.events,
            calendar=self.calendar,
            bus=self.bus,
            ledger=self.ledger,
            clock=self.clock,
            data_dir=self.plan.data_dir,
            reconcile_every_seconds=sessions.reconcile_every_seconds,
        )
        flatten_times = [e.ctx.sessions.flatten_at for e in self.engines.values()]
        self.scheduler = ClockScheduler(self.clock)
        self.planner = DayPlanner(
            self.scheduler,
            self.clock,
            self.calendar,
            sessions,
            self.jobs,
            flatten_at=min(flatten_times, default=None),
            on_job_error=self._job_failed,
        )
        self.scheduler.start()
        self.planner.start()

    async def stop(self, *, drain_seconds: float = 10.0) -> list[str]:
        """Graceful but bounded: no new bars or jobs, in-flight work finishes (up to
        `drain_seconds`), then everything closes. Every close has a time limit
        (`plan.close_seconds`) and the whole stop a deadline (`plan.stop_seconds`): what
        does not close in time is logged, given up on, and returned."""
        deadline = StopDeadline(self.plan.stop_seconds, self.plan.close_seconds)
        if self.pump is not None:
            await self.pump.stop(deadline)  # each of its steps is bounded by `deadline`
        if self.scheduler is not None:
            # Pause (no new jobs), let the running ones finish, then shut down: the
            # executor's shutdown would cancel a job still in flight.
            with contextlib.suppress(Exception):
                self.scheduler.pause()
            for _ in range(3):  # a job handed to the executor just before starts now
                await asyncio.sleep(0)
            if self.jobs is not None:
                await deadline.run(
                    "day jobs", self.jobs.drain(deadline.budget(drain_seconds)), drain_seconds
                )
            with contextlib.suppress(Exception):
                self.scheduler.shutdown(wait=False)
            self.scheduler = None
        for engine in self._started_engines:
            await _finish(engine, deadline.budget(drain_seconds))
        if self.app is not None and self._bot_started:
            await deadline.run("telegram bot", stop_bot(self.app))
            self._bot_started = False
        for engine in self._started_engines:
            await deadline.run(f"engine {engine.name}", engine.stop())
        self._started_engines.clear()
        for connected in self.connected:
            await deadline.run(f"broker {connected.account.name}", connected.broker.close())
        self.connected.clear()
        if self.notifications is not None:
            self.notifications.close()
            self.notifications = None
        if self.ledger is not None:
            self.ledger.engine.dispose()
            self.ledger = None
        if deadline.not_closed:
            logger.warning("stop: finished without waiting for: {}", ", ".join(deadline.not_closed))
        return deadline.not_closed

    # --- wiring helpers -------------------------------------------------------------------

    def _equity(self) -> Decimal:
        engine = self.engines.get(self.plan.accounts[0].name)
        snapshot = engine.risk.last_account if engine is not None else None
        if snapshot is not None:
            return snapshot.equity
        return Decimal(str(self.settings.params.equity))

    def _entry_status(self, symbol: str, day: date) -> EntryStatus:
        """Rule 5 from the ledger: a working entry stop-buy, entries filled today."""
        if self.ledger is None:
            return EntryStatus(False, 0)
        start, end = day_bounds(day)
        pending, filled = False, 0
        with self.ledger.unit_of_work(read_only=True) as uow:
            for engine in self.engines.values():
                for row in uow.orders.between(engine.ctx.account.row_id, start, end):
                    if row.symbol != symbol.upper() or row.role is not OrderRole.ENTRY:
                        continue
                    pending = pending or not row.status.is_terminal
                    filled += 1 if row.filled_qty > 0 else 0
        return EntryStatus(pending, filled)

    async def _job_failed(self, job: DayJob, exc: Exception) -> None:
        if self.notifications is not None:
            self.notifications.enqueue_text("system", f"⚠️ The {job.value} job failed: {exc}")

    # --- for the startup summary, the demo and tests --------------------------------------

    def threads_busy(self) -> bool:
        """A day job is writing files in a worker thread (a driven replay waits for it)."""
        return self.jobs is not None and self.jobs.threads > 0

    @property
    def active(self) -> TradingEngine:
        return self.engines[self.plan.accounts[0].name]

    def flatten_at(self) -> time:
        return self.active.ctx.sessions.flatten_at


def _reconcile_hook(engine: TradingEngine) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        engine.broker_back()
        await engine.reconciler.run("broker reconnect")

    return run


async def _finish(engine: TradingEngine, seconds: float) -> None:
    """Wait (real time) for the engine's in-flight tasks: a submit, a kill, protection."""
    for _ in range(max(1, int(seconds / 0.05))):
        if not engine.ctx.busy:
            return
        await asyncio.sleep(0.05)
    if engine.ctx.busy:
        logger.warning("{}: work still in flight at shutdown; canceling it", engine.name)


__all__ = ["Runtime", "RuntimePlan", "account_sessions"]
