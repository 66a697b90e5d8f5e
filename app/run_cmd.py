"""`centaur run`: the production entry point, or a replay of a recorded session.

    centaur run [--broker sim|alpaca|ibkr] [--account NAME]
    centaur run --replay DIR --date YYYY-MM-DD [--from HH:MM] [--speed N]

Live: the real clock, the account's broker, live 1-minute bars (Alpaca's stream, or the
IBKR gateway's), the Telegram bot, the day's schedule. A replay runs on a simulated clock
at N x (0: as fast as the work allows) with the simulated broker, starting at `--from`
(default 09:00) of `--date`; the folder's earlier sessions are the warm-up. A replay
never touches the real ledger: it works in `<data>/replays/<date>/` (wiped at start).
After the replayed day's report, time holds still and the bot stays up.

Refusals (bad config, missing keys, an unreachable gateway, a holiday) are one readable
message and exit code 2; SIGINT / SIGTERM stop gracefully (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import Path

from loguru import logger
from rich.console import Console
from rich.table import Table

from app.adapters import StartupError, alpaca_history
from app.clock_driver import ClockDriver
from app.probes import OutboxProbe
from app.runtime import Runtime, RuntimePlan
from app.warmup import Replay, alpaca_daily_sessions, load_replay, recorded_sessions, seed
from core.calendar import xnys
from core.clock import NEW_YORK, Clock, LiveClock, SimClock
from core.config_models import AccountConfig, AccountMode, BrokerKind, WatchlistConfig
from core.logs import redact
from core.scheduler import plan_day
from core.settings import Settings
from core.status import StatusQueries

# After the stop, how long (real time) the exit waits for leftover tasks and threads.
EXIT_GRACE_SECONDS = 2.0
DEFAULT_FROM = time(9, 0)
DEFAULT_REPLAY_SPEED = 60.0


@dataclass(frozen=True)
class RunOptions:
    broker: BrokerKind | None = None
    account: str | None = None
    replay: Path | None = None
    day: date | None = None
    start: time | None = None
    speed: float = DEFAULT_REPLAY_SPEED


def choose_account(settings: Settings, options: RunOptions) -> AccountConfig:
    """The account to run (StartupError explains a contradiction)."""
    accounts = settings.accounts
    if options.account is not None:
        try:
            account = accounts.get(options.account)
        except KeyError as exc:
            raise StartupError(str(exc.args[0])) from None
        if options.broker is not None and account.broker is not options.broker:
            raise StartupError(
                f"account '{account.name}' is a {account.broker} account, not {options.broker}"
            )
    elif options.broker is not None:
        default = accounts.get(accounts.default)
        matching = [a for a in accounts.accounts if a.broker is options.broker]
        if default.broker is options.broker:
            account = default
        elif matching:
            account = matching[0]
        elif options.broker is BrokerKind.SIM and options.replay is not None:
            account = AccountConfig(name="sim", broker=BrokerKind.SIM)
        else:
            raise StartupError(f"config/accounts.yaml has no {options.broker} account")
    else:
        account = accounts.get(accounts.default)
    if options.replay is not None and account.broker is not BrokerKind.SIM:
        if options.account is not None or options.broker is not None:
            raise StartupError(
                f"a replay runs on the simulated broker; '{account.name}' is a "
                f"{account.broker} account (use --broker sim)"
            )
        sims = [a for a in accounts.accounts if a.broker is BrokerKind.SIM]
        account = sims[0] if sims else AccountConfig(name="sim", broker=BrokerKind.SIM)
    return account


def check_telegram(settings: Settings) -> None:
    secrets = settings.secrets
    if secrets.TELEGRAM_BOT_TOKEN is None:
        raise StartupError(
            "TELEGRAM_BOT_TOKEN is not set (see .env.example); to try Centaur without "
            "Telegram: centaur demo"
        )
    if not secrets.allowed_user_ids:
        raise StartupError(
            "TELEGRAM_ALLOWED_USERS is empty: nobody could use the bot or receive its alerts"
        )


def build_plan(settings: Settings, options: RunOptions) -> RuntimePlan:
    """Everything decided before anything starts (StartupError on a refusal)."""
    if (options.replay is None) != (options.day is None):
        raise StartupError("--replay DIR and --date YYYY-MM-DD go together")
    if options.replay is None and options.start is not None:
        raise StartupError("--from only applies to a replay (--replay DIR --date D)")
    account = choose_account(settings, options)
    check_telegram(settings)
    if options.replay is not None and options.day is not None:
        replay = load_replay(options.replay, options.day, options.start or DEFAULT_FROM, xnys())
        work = settings.data_dir / "replays" / options.day.isoformat()
        if work.exists():
            shutil.rmtree(work)
        symbols = replay.symbols
        watchlist = WatchlistConfig(
            watchlist=symbols, radar_alert_regimes=settings.watchlist.radar_alert_regimes
        )
        return RuntimePlan(
            settings=replace(settings, watchlist=watchlist),
            accounts=[account],
            clock=SimClock(replay.start),
            db_url=f"sqlite:///{(work / 'db' / 'centaur.db').as_posix()}",
            data_dir=work,
            symbols=symbols,
            replay=replay,
            bot_poll_timeout=2.0,
            notifier_poll_seconds=60.0,
        )
    return RuntimePlan(
        settings=settings,
        accounts=[account],
        clock=LiveClock(),
        db_url=settings.db_url(),
        data_dir=settings.data_dir,
        sim_state_dir=settings.data_dir / "sim",
        warmup=live_warmup,
    )


async def live_warmup(runtime: Runtime) -> int:
    """Earlier sessions for a live start: recorded bars, then Alpaca's daily history."""
    assert runtime.radar is not None
    now = runtime.clock.now()
    today = now.astimezone(NEW_YORK).date()
    sessions = recorded_sessions(
        runtime.plan.data_dir / "bars", runtime.symbols, today, runtime.calendar
    )
    history = alpaca_history(runtime.connected, runtime.settings, runtime.clock)
    if history is not None:
        try:
            daily = await alpaca_daily_sessions(history, runtime.symbols, now, runtime.calendar)
            for symbol, found in daily.items():
                known = {s.day for s in sessions.get(symbol, [])}
                sessions.setdefault(symbol, []).extend(s for s in found if s.day not in known)
        except Exception as exc:  # the warm-up helps; its absence must not stop the start
            logger.warning("warm-up: Alpaca history unavailable: {}", exc)
        finally:
            await history.close()
    return seed(
        sessions,
        radar=runtime.radar,
        engines=runtime.engines.values(),
        history=runtime.history,
        memory_sessions=runtime.settings.protection.trail_lookback_sessions,
    )


async def summary(runtime: Runtime, options: RunOptions) -> Table:
    """The one-screen startup summary."""
    plan, settings, engine = runtime.plan, runtime.settings, runtime.active
    account = plan.accounts[0]
    table = Table(title="Centaur is running", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    if plan.replay is not None:
        pace = "as fast as possible" if options.speed <= 0 else f"{options.speed:g}x"
        mode = f"REPLAY of {plan.replay.source} from {plan.replay.start:%H:%M} ET at {pace}"
    else:
        live = account.mode is AccountMode.LIVE
        mode = "LIVE (real money)" if live else "paper"
    table.add_row("mode", mode)
    table.add_row("account", f"{account.name} ({account.broker}, {account.mode})")
    table.add_row("watchlist", ", ".join(runtime.symbols))
    now = runtime.clock.now()
    day = engine.day.day
    session = runtime.calendar.session(day)
    if session is not None:
        times = {
            j.job.value: f"{j.at:%H:%M}"
            for j in plan_day(session, settings.sessions, runtime.flatten_at())
        }
        schedule = (
            f"{day} {session.kind}: brief {times['brief']}, allow prompt "
            f"{times['opening_window_over']}, flatten {times['flatten']}, report {times['report']}"
        )
    else:
        schedule = f"{day}: no session"
    table.add_row("today", schedule)
    info = engine.day.m.info
    switch = {None: "unanswered", True: "allowed", False: "not today"}[info.allowed]
    table.add_row("session", f"{engine.day.state} (day switch: {switch}); now {_ny(now)} ET")
    positions, _ok = await StatusQueries(engine).positions()
    if positions:
        lines = []
        for p in positions:
            badge = p.protection
            kind = "UNPROTECTED" if not badge.complete else f"{badge.kind} stop"
            level = f" at {badge.level}" if badge.level is not None else ""
            lines.append(f"{p.symbol} {p.qty} @ {p.avg_entry_price}: {kind}{level}")
        table.add_row("protected", "; ".join(lines))
    else:
        table.add_row("protected", "no open positions")
    start = runtime.start_reports.get(engine.name)
    if start is not None:
        verdict = "in sync" if start.in_sync else "NOT in sync: " + "; ".join(start.mismatches)
        table.add_row("reconcile", verdict)
    table.add_row("warm-up", f"{runtime.warm_sessions} earlier session(s)")
    table.add_row("telegram", redact(settings.secrets.TELEGRAM_API_BASE_URL))
    table.add_row("data", f"{plan.data_dir} · ledger {redact(plan.db_url)}")
    return table


def _ny(moment: datetime) -> str:
    return moment.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M")


async def run(settings: Settings, options: RunOptions, console: Console) -> int:
    try:
        plan = build_plan(settings, options)
    except StartupError as exc:
        console.print(f"[bold red]Centaur will not start:[/] {exc}")
        return 2
    runtime = Runtime(plan)
    try:
        await runtime.start()
    except StartupError as exc:
        console.print(f"[bold red]Centaur will not start:[/] {exc}")
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        console.print(await summary(runtime, options))
        console.print("Ctrl-C (SIGINT) or SIGTERM stops Centaur gracefully.")
        if plan.replay is not None:
            await _replay(runtime, plan.replay, plan.clock, options, stop, console)
        else:
            await stop.wait()
    finally:
        console.print("Stopping: letting in-flight work finish…")
        await runtime.stop()
        console.print("Stopped.")
    return 0


def run_process(settings: Settings, options: RunOptions, console: Console) -> int:
    """`centaur run` on its own event loop. Unlike `asyncio.run`, whose exit waits for
    every leftover task and executor thread without limit, the exit here waits
    `EXIT_GRACE_SECONDS`; work the stop gave up on (a close that ignores its cancel, a
    thread stuck in a socket call) is reported and the process exits without it."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    code = 1
    try:
        code = loop.run_until_complete(run(settings, options, console))
        return code
    finally:
        clean = loop.run_until_complete(_wind_down(loop))
        if not clean:
            console.print("Some work did not stop in time; exiting without it.")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        asyncio.set_event_loop(None)
        loop.close()


async def _wind_down(loop: asyncio.AbstractEventLoop) -> bool:
    """Cancel what is left, bounded; False when something did not end in time."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for task in tasks:
        task.cancel()
    pending: set[asyncio.Task[object]] = set()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=EXIT_GRACE_SECONDS)
    for task in pending:
        logger.warning("exit: {} did not stop; exiting without it", task.get_name())
    closing = [
        asyncio.ensure_future(loop.shutdown_asyncgens()),
        asyncio.ensure_future(loop.shutdown_default_executor()),
    ]
    _, stuck = await asyncio.wait(closing, timeout=EXIT_GRACE_SECONDS)
    if stuck:
        logger.warning("exit: worker threads or generators did not stop; exiting without them")
    return not pending and not stuck


async def _replay(
    runtime: Runtime,
    replay: Replay,
    clock: Clock,
    options: RunOptions,
    stop: asyncio.Event,
    console: Console,
) -> None:
    assert isinstance(clock, SimClock) and runtime.jobs is not None
    assert runtime.notifications is not None and runtime.pump is not None
    jobs, pump = runtime.jobs, runtime.pump
    probe = OutboxProbe(runtime.notifications, runtime.bus)
    driver = ClockDriver(clock, busy=[probe, lambda: pump.busy, runtime.threads_busy])
    loop = asyncio.get_running_loop()
    runner = loop.create_task(
        driver.run_speed(options.speed, stop=lambda: jobs.finished(replay.day))
    )
    waiter = loop.create_task(stop.wait())
    try:
        await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done() and not stop.is_set():
            runner.result()
            console.print(
                f"Replay of {replay.day} finished (report sent, {pump.bars} bars); time holds "
                "still and the bot stays up until Ctrl-C."
            )
            await waiter
    finally:
        probe.close()
        for task in (runner, waiter):
            task.cancel()
        await asyncio.gather(runner, waiter, return_exceptions=True)


__all__ = ["RunOptions", "build_plan", "choose_account", "run", "run_process"]
