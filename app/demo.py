"""`centaur demo`: the README's main command. No accounts, no network.

On 127.0.0.1 it starts the local Telegram Bot API emulator with its web chat, the real
bot (token and allowed user from the emulator, TELEGRAM_API_BASE_URL = the emulator's),
a simulated broker, and a replay on a simulated clock of a session generated at start
(core.marketdata.synthetic `trend_up_pullback`, 25 warm-up sessions: nothing is read
from disk) from 09:28, shortly before the first entry window, so the brief comes first.

- interactive (default): time runs at `--speed` x (30: a minute of market in two seconds,
  enough to tap [Allow], [Draft it] and [Confirm] in time); after the 16:10 report time
  holds still and the chat stays up until Ctrl-C.
- `--headless`: a scripted user plays the day (app/demo_script.py) while the script
  holds and releases time; prints the transcript; exit 0 when everything happened.
- `--data DIR --date D [--from HH:MM]`: replay a recorded session instead.

Its data (ledger, reports, logs) go to a fresh temporary folder, printed at start and
left in place (the report's Markdown and charts are there); the user's real ledger and
`.env` are never read or touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, time
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from app.adapters import StartupError
from app.clock_driver import ClockDriver
from app.demo_script import ScriptFailed, format_transcript, run_script
from app.probes import EventLog, OutboxProbe
from app.runtime import Runtime, RuntimePlan
from app.warmup import Replay, load_replay, scenario_replay
from bot.emulator import RunningEmulator, start_emulator
from core.calendar import xnys
from core.clock import SimClock
from core.config_models import AccountConfig, BrokerKind, WatchlistConfig
from core.logs import setup_logging
from core.settings import DEFAULT_CONFIG_DIR, ConfigError, Settings, load_settings

DEMO_SCENARIO = "trend_up_pullback"
DEMO_SYMBOL = "DEMO"
DEMO_FROM = time(9, 28)
DEMO_SPEED = 30.0


@dataclass(frozen=True)
class DemoOptions:
    headless: bool = False
    speed: float = DEMO_SPEED
    data: Path | None = None
    day: date | None = None
    start: time | None = None
    workdir: Path | None = None  # default: a fresh temporary folder


def demo_settings(emulator: RunningEmulator, workdir: Path, symbols: list[str]) -> Settings:
    """The embedded defaults, the emulator's bot, the work folder; no .env, no real keys."""
    environ = {
        "TELEGRAM_BOT_TOKEN": emulator.token,
        "TELEGRAM_ALLOWED_USERS": str(emulator.user_id),
        "TELEGRAM_API_BASE_URL": emulator.api_base_url,
        "CENTAUR_DATA_DIR": str(workdir),
    }
    settings = load_settings(DEFAULT_CONFIG_DIR, env_file=None, environ=environ)
    watchlist = WatchlistConfig(
        watchlist=symbols, radar_alert_regimes=settings.watchlist.radar_alert_regimes
    )
    return replace(settings, watchlist=watchlist)


def _replay(options: DemoOptions) -> Replay:
    start = options.start or DEMO_FROM
    if options.data is not None:
        if options.day is None:
            raise StartupError("--data needs --date YYYY-MM-DD (the session to replay)")
        return load_replay(options.data, options.day, start, xnys())
    return scenario_replay(DEMO_SCENARIO, symbol=DEMO_SYMBOL, start=start, day=options.day)


def run_demo(console: Console, options: DemoOptions | None = None) -> int:
    options = options or DemoOptions()
    try:
        return asyncio.run(_demo(console, options))
    except KeyboardInterrupt:
        return 130


@dataclass
class DemoRig:
    """A started demo: the runtime on its simulated clock, the emulator, the driver."""

    runtime: Runtime
    emulator: RunningEmulator
    driver: ClockDriver
    log: EventLog
    probe: OutboxProbe
    replay: Replay
    workdir: Path

    async def close(self) -> None:
        self.log.close()
        self.probe.close()
        await self.runtime.stop()
        await self.emulator.stop()


async def open_demo(
    options: DemoOptions, settings_hook: Callable[[Settings], Settings] | None = None
) -> DemoRig:
    """Start everything (StartupError with the reason); the caller closes the rig."""
    replay = _replay(options)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="centaur-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    clock = SimClock(replay.start)
    emulator = await start_emulator(now=lambda: clock.now().timestamp())
    try:
        settings = demo_settings(emulator, workdir, replay.symbols)
        if settings_hook is not None:
            settings = settings_hook(settings)
        plan = RuntimePlan(
            settings=settings,
            accounts=[AccountConfig(name="sim", broker=BrokerKind.SIM)],
            clock=clock,
            db_url=f"sqlite:///{(workdir / 'db' / 'centaur.db').as_posix()}",
            data_dir=workdir,
            symbols=replay.symbols,
            replay=replay,
            bot_poll_timeout=1.0,
            notifier_poll_seconds=60.0,
        )
        runtime = Runtime(plan)
        log = EventLog(runtime.bus)  # before start: the catch-up jobs publish at once
        await runtime.start()
    except BaseException:
        await emulator.stop()
        raise
    assert runtime.notifications is not None and runtime.pump is not None
    probe = OutboxProbe(runtime.notifications, runtime.bus)
    pump = runtime.pump
    driver = ClockDriver(clock, busy=[probe, lambda: pump.busy, runtime.threads_busy])
    return DemoRig(runtime, emulator, driver, log, probe, replay, workdir)


async def _demo(console: Console, options: DemoOptions) -> int:
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="centaur-demo-"))
    options = replace(options, workdir=workdir)
    setup_logging(log_dir=workdir / "logs", level="WARNING", console=not options.headless)
    try:
        rig = await open_demo(options)
    except (StartupError, ConfigError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    console.print(f"Chat: [bold]{rig.emulator.url}[/]", highlight=False)
    try:
        if options.headless:
            return await _headless(console, rig)
        return await _interactive(console, options, rig)
    finally:
        await rig.close()


async def _headless(console: Console, rig: DemoRig) -> int:
    async with rig.emulator.client() as user:
        try:
            result = await run_script(rig.driver, user, rig.log, rig.replay.day)
            failure = None
        except ScriptFailed as exc:
            failure = exc
            result = None
        transcript = await user.transcript()
    for line in format_transcript(transcript):
        console.print(line, highlight=False, markup=False)
    if failure is not None:
        console.print(f"[bold red]demo failed:[/] {failure}")
        return 1
    assert result is not None
    console.print(
        f"[bold green]demo ok:[/] {len(result.steps)} steps: " + "; ".join(result.steps),
        highlight=False,
    )
    return 0


async def _interactive(console: Console, options: DemoOptions, rig: DemoRig) -> int:
    jobs, driver, replay, workdir = rig.runtime.jobs, rig.driver, rig.replay, rig.workdir
    assert jobs is not None
    console.print(
        Panel(
            f"Replaying {replay.source}\nfrom {replay.start:%H:%M} ET at {options.speed:g}x "
            f"(a market minute every {60 / options.speed:.1f} s).\n"
            "In the chat: [Allow] the day at 09:45, [Draft it] and [Confirm] the signal, "
            "watch the fill and its trailing stop, try /status and /kill.\n"
            f"Data (ledger, reports, logs): {workdir}\nCtrl-C to stop.",
            title="centaur demo",
            border_style="cyan",
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    runner = loop.create_task(
        driver.run_speed(options.speed, stop=lambda: jobs.finished(replay.day))
    )
    waiter = loop.create_task(stop.wait())
    await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done() and not stop.is_set():
        console.print("The day is over: the report is in the chat. Ctrl-C to quit.")
        await waiter
    runner.cancel()
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    console.print("Stopping…")
    return 0


__all__ = [
    "DEMO_FROM",
    "DEMO_SPEED",
    "DemoOptions",
    "DemoRig",
    "demo_settings",
    "open_demo",
    "run_demo",
]
