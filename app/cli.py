"""The `centaur` command line (typer). Commands import their machinery lazily so that
`centaur --help` stays instant."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="centaur",
    help="Centaur: a Telegram-driven trading assistant for US stocks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)

ConfigDirOption = Annotated[
    Path | None,
    typer.Option("--config", help="config folder (default: ./config or CENTAUR_CONFIG_DIR)"),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@app.command()
def demo(
    headless: Annotated[
        bool, typer.Option("--headless", help="a scripted user plays the day; prints the chat")
    ] = False,
    speed: Annotated[
        float, typer.Option(help="simulated seconds per real second (interactive)", min=0.1)
    ] = 30.0,
    data: Annotated[
        Path | None, typer.Option("--data", help="replay a folder of recorded bars instead")
    ] = None,
    day: Annotated[
        str | None, typer.Option("--date", help="the session to replay, YYYY-MM-DD")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="replay from this New York time, HH:MM")
    ] = None,
) -> None:
    """Try Centaur with no accounts and no network (the README's main command)."""
    from app.demo import DemoOptions, run_demo

    options = DemoOptions(
        headless=headless,
        speed=speed,
        data=data,
        day=_date_option("--date", day),
        start=_time_option("--from", start),
    )
    raise typer.Exit(run_demo(console, options))


def _date_option(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{name} must be YYYY-MM-DD, got {value!r}", 2) from None


def _time_option(name: str, value: str | None) -> time | None:
    if value is None:
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise _fail(f"{name} must be HH:MM (New York time), got {value!r}", 2) from None


@app.command()
def run(
    broker: Annotated[
        str | None, typer.Option("--broker", help="sim | alpaca | ibkr (default: the account's)")
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="account name from accounts.yaml")
    ] = None,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="replay this folder of recorded bars")
    ] = None,
    day: Annotated[str | None, typer.Option("--date", help="the session to replay")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="replay from this New York time (09:00)")
    ] = None,
    speed: Annotated[
        float, typer.Option(help="replay speed, x real time (0 = as fast as possible)", min=0)
    ] = 60.0,
    config: ConfigDirOption = None,
) -> None:
    """Run the assistant: live on the account's broker, or a replay of a recorded session."""
    from app.run_cmd import RunOptions, run_process
    from app.wiring import configure_logging, load_settings_or_exit
    from core.config_models import BrokerKind

    kinds = {k.value: k for k in BrokerKind}
    if broker is not None and broker.lower() not in kinds:
        raise _fail(f"--broker must be one of {', '.join(kinds)}, got {broker!r}", 2)
    options = RunOptions(
        broker=kinds[broker.lower()] if broker else None,
        account=account,
        replay=replay,
        day=_date_option("--date", day),
        start=_time_option("--from", start),
        speed=speed,
    )
    settings = load_settings_or_exit(config, err_console)
    configure_logging(settings)
    try:
        code = run_process(settings, options, console)  # a bounded exit, unlike asyncio.run
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


@app.command()
def doctor(config: ConfigDirOption = None) -> None:
    """Check configuration, database, calendar and which credentials are present."""
    from app.doctor import run_doctor

    raise typer.Exit(run_doctor(console, config))


@db_app.command("upgrade")
def db_upgrade(config: ConfigDirOption = None) -> None:
    """Migrate the ledger to the newest schema (start-up does this too)."""
    from app.wiring import database_url_from_settings
    from core.ledger.migrate import current_revision, upgrade
    from core.logs import redact

    try:
        url = database_url_from_settings(config)
        upgrade(url)
        revision = current_revision(url)
    except Exception as exc:
        raise _fail(f"database upgrade failed: {redact(str(exc))}") from exc
    console.print(f"ledger at revision [bold]{revision}[/] ({redact(url)})")


@app.command()
def events(
    days: Annotated[int, typer.Option(help="how many days ahead", min=1, max=3650)] = 30,
    start: Annotated[
        str | None, typer.Option("--from", help="first day, YYYY-MM-DD (default: today)")
    ] = None,
    config: ConfigDirOption = None,
) -> None:
    """List upcoming scheduled events (CPI, FOMC, earnings) and their block windows."""
    from rich.table import Table

    from app.wiring import load_settings_or_exit
    from core.clock import NEW_YORK, LiveClock

    settings = load_settings_or_exit(config, err_console)
    try:
        first = (
            date.fromisoformat(start) if start else LiveClock().now().astimezone(NEW_YORK).date()
        )
    except ValueError as exc:
        raise _fail(f"--from must be YYYY-MM-DD, got {start!r}") from exc
    upcoming = settings.events.upcoming(first, days)
    table = Table(title=f"Events from {first} for {days} days")
    for column in ("date", "time (ET)", "kind", "symbols", "blocks entries"):
        table.add_column(column)
    for event in upcoming:
        window_start, window_end = event.window()
        blocks = "all day" if event.at is None else f"{window_start:%H:%M} - {window_end:%H:%M}"
        who = "all" if event.symbols is None else ", ".join(sorted(event.symbols))
        table.add_row(
            event.day.isoformat(),
            event.at.strftime("%H:%M") if event.at else "-",
            event.kind,
            who,
            blocks,
        )
    console.print(table if upcoming else f"No events from {first} for {days} days.")


@app.command()
def signals(
    data: Annotated[Path, typer.Option("--data", help="folder of <SYMBOL>.csv / .parquet bars")],
    out: Annotated[Path, typer.Option("--out", help="output folder")],
    symbols: Annotated[str | None, typer.Option(help="comma-separated symbols")] = None,
    params: Annotated[Path | None, typer.Option(help="params YAML (spec defaults)")] = None,
    events_file: Annotated[Path | None, typer.Option("--events", help="events YAML")] = None,
) -> None:
    """Label regimes and find entry signals over recorded bars (regime_daily.csv, signals.csv)."""
    from app.signals_cmd import run_signals
    from core.event_calendar import EventCalendarError
    from core.marketdata.errors import DataError
    from core.params import ParamsError

    symbol_list = [s.strip().upper() for s in symbols.split(",") if s.strip()] if symbols else None
    try:
        run_signals(data, out, symbol_list, params, events_file, console)
    except (DataError, ParamsError, EventCalendarError) as exc:
        raise _fail(str(exc)) from exc


@app.command()
def backtest(
    data: Annotated[Path, typer.Option("--data", help="folder of <SYMBOL>.csv / .parquet bars")],
    out: Annotated[Path, typer.Option("--out", help="output folder")],
    symbols: Annotated[str | None, typer.Option(help="comma-separated symbols")] = None,
    exit_model: Annotated[
        str | None, typer.Option("--exit-model", help="trail (default) | half_1r")
    ] = None,
    params: Annotated[Path | None, typer.Option(help="params YAML (spec defaults)")] = None,
    events_file: Annotated[Path | None, typer.Option("--events", help="events YAML")] = None,
    start: Annotated[str | None, typer.Option("--from", help="first session, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last session, YYYY-MM-DD")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="key=value parameter override (repeat)")
    ] = None,
    friction: Annotated[
        str | None, typer.Option(help="friction profile: alpaca | ibkr (default: params)")
    ] = None,
    stability: Annotated[
        bool, typer.Option("--stability", help="also move each regime threshold -/+10%")
    ] = False,
    sweep: Annotated[
        list[str] | None, typer.Option("--sweep", help="key=v1,v2,... grid axis (repeat)")
    ] = None,
    daily: Annotated[
        Path | None, typer.Option("--daily", help="folder of daily <SYMBOL>.csv bars")
    ] = None,
    charts: Annotated[bool, typer.Option(help="draw the PNG charts")] = True,
) -> None:
    """Backtest regimes, signals and execution over recorded bars (trades, summary, report)."""
    from app.backtest_cmd import run_backtest
    from core.backtest.model import BacktestError
    from core.event_calendar import EventCalendarError
    from core.marketdata.errors import DataError
    from core.params import ParamsError

    symbol_list = [s.strip().upper() for s in symbols.split(",") if s.strip()] if symbols else None
    try:
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
    except ValueError as exc:
        raise _fail(f"--from / --to must be YYYY-MM-DD, got {start or end!r}") from exc
    try:
        run_backtest(
            data,
            out,
            symbol_list,
            exit_model=exit_model,
            params_path=params,
            events_path=events_file,
            first=first,
            last=last,
            overrides=overrides or (),
            friction=friction,
            stability_run=stability,
            sweep=sweep or (),
            daily_dir=daily,
            charts=charts,
            console=console,
        )
    except (DataError, ParamsError, EventCalendarError, BacktestError) as exc:
        raise _fail(str(exc)) from exc


def main() -> None:
    app()
