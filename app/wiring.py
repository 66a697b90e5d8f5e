"""The composition root: the only place that chooses adapters and wires core, bot and
brokers together. Nothing imports `app`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from core.logs import redact, setup_logging
from core.settings import ConfigError, Settings, load_settings


def load_settings_or_exit(config_dir: Path | None, err_console: Console) -> Settings:
    """Load settings; on any problem print each one and refuse to start (exit 2)."""
    try:
        settings = load_settings(config_dir)
    except ConfigError as exc:
        err_console.print("[bold red]Centaur will not start: the configuration has problems[/]")
        for problem in exc.problems:
            err_console.print(f"  - {redact(problem)}")
        raise typer.Exit(2) from exc
    redact.add(settings.secret_values())
    return settings


def configure_logging(settings: Settings, *, console: bool = True) -> None:
    setup_logging(
        log_dir=settings.data_dir / "logs",
        level=settings.secrets.CENTAUR_LOG_LEVEL,
        secrets=settings.secret_values(),
        console=console,
    )


def database_url_from_settings(config_dir: Path | None) -> str:
    settings = load_settings_or_exit(config_dir, Console(stderr=True))
    url = settings.db_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return url
