"""`centaur doctor`: one screen that says whether Centaur can run here, and why not.

Credentials are reported as present or missing, never printed. Exit code 0 when nothing
failed (warnings allowed), 1 otherwise, so a container healthcheck can call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from rich.console import Console
from rich.table import Table

from core.logs import redact


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    area: str
    verdict: Verdict
    detail: str


_STYLE = {Verdict.OK: "green", Verdict.WARN: "yellow", Verdict.FAIL: "bold red"}


def _check_config(config_dir: Path | None) -> tuple[list[Check], object | None]:
    from core.settings import ConfigError, load_settings, resolve_config_dir

    directory = resolve_config_dir(config_dir)
    try:
        settings = load_settings(directory)
    except ConfigError as exc:
        return [Check("config", Verdict.FAIL, redact(p)) for p in exc.problems], None
    redact.add(settings.secret_values())
    accounts = ", ".join(f"{a.name} ({a.broker}, {a.mode})" for a in settings.accounts.accounts)
    return [
        Check("config", Verdict.OK, f"{directory}: all files valid"),
        Check("watchlist", Verdict.OK, ", ".join(settings.watchlist.watchlist)),
        Check("accounts", Verdict.OK, f"default {settings.accounts.default}; {accounts}"),
        Check("events", Verdict.OK, f"{len(settings.events.events)} scheduled events"),
    ], settings


def _check_database(settings: object) -> Check:
    from core.ledger.migrate import current_revision, head_revision
    from core.settings import Settings

    assert isinstance(settings, Settings)
    url = settings.db_url()
    try:
        if url.startswith("sqlite:///"):
            db_file = Path(url.removeprefix("sqlite:///"))
            if not db_file.exists():
                return Check(
                    "database",
                    Verdict.WARN,
                    f"{db_file} does not exist yet (start-up or `centaur db upgrade` creates it)",
                )
        current = current_revision(url)
        head = head_revision()
    except Exception as exc:
        return Check("database", Verdict.FAIL, f"{redact(url)}: {redact(str(exc))}")
    if current == head:
        return Check("database", Verdict.OK, f"{redact(url)} at revision {current}")
    return Check(
        "database",
        Verdict.WARN,
        f"{redact(url)} at revision {current}, head is {head} (start-up migrates)",
    )


def _check_calendar() -> Check:
    from core.calendar import xnys
    from core.clock import NEW_YORK, LiveClock

    try:
        calendar = xnys()
        now = LiveClock().now()
        today = now.astimezone(NEW_YORK).date()
        session = calendar.session(today)
        upcoming = session or calendar.next_session(today)
    except Exception as exc:
        return Check("calendar", Verdict.FAIL, str(exc))
    detail = (
        f"now {calendar.phase(now)}; "
        f"{'today' if session else 'next session'} {upcoming.day} "
        f"{upcoming.open:%H:%M}-{upcoming.close:%H:%M} ET ({upcoming.kind})"
    )
    return Check("calendar", Verdict.OK, detail)


def _check_credentials(settings: object) -> list[Check]:
    from core.config_models import AccountMode, BrokerKind
    from core.settings import Settings

    assert isinstance(settings, Settings)
    checks = []
    secrets = settings.secrets
    if secrets.TELEGRAM_BOT_TOKEN is None:
        checks.append(
            Check("telegram", Verdict.WARN, "TELEGRAM_BOT_TOKEN missing (demo needs none)")
        )
    else:
        checks.append(Check("telegram", Verdict.OK, "TELEGRAM_BOT_TOKEN present"))
    if not secrets.allowed_user_ids:
        checks.append(
            Check("telegram", Verdict.WARN, "TELEGRAM_ALLOWED_USERS empty: nobody may use the bot")
        )
    else:
        checks.append(
            Check("telegram", Verdict.OK, f"{len(secrets.allowed_user_ids)} allowed user id(s)")
        )
    for account in settings.accounts.accounts:
        if account.broker is BrokerKind.SIM:
            checks.append(Check(f"account {account.name}", Verdict.OK, "simulated, no keys"))
            continue
        if account.broker is BrokerKind.IBKR:
            host = secrets.IBKR_HOST
            checks.append(
                Check(
                    f"account {account.name}",
                    Verdict.OK if host else Verdict.WARN,
                    f"IBKR_HOST {'set' if host else 'missing'}, port {secrets.IBKR_PORT}",
                )
            )
            continue
        present = settings.credentials(account.name) is not None
        prefix = account.credentials_env
        detail = f"{prefix}_KEY_ID / {prefix}_SECRET_KEY {'present' if present else 'missing'}"
        if account.mode is AccountMode.LIVE:
            detail += "; live: " + (
                "CENTAUR_LIVE=1" if secrets.CENTAUR_LIVE else "CENTAUR_LIVE not set"
            )
        # Where orders and data go: a proxy, recorder or fake must be visible at a glance.
        detail += f"; trading {account.base_url or f'Alpaca ({account.mode})'}"
        detail += f"; data {account.data_url or 'Alpaca'}"
        checks.append(
            Check(f"account {account.name}", Verdict.OK if present else Verdict.WARN, detail)
        )
    return checks


def run_doctor(console: Console, config_dir: Path | None) -> int:
    checks, settings = _check_config(config_dir)
    if settings is not None:
        checks.append(_check_database(settings))
    checks.append(_check_calendar())
    if settings is not None:
        checks.extend(_check_credentials(settings))
    table = Table(title="centaur doctor", show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in checks:
        table.add_row(check.area, f"[{_STYLE[check.verdict]}]{check.verdict}[/]", check.detail)
    console.print(table)
    failed = [c for c in checks if c.verdict is Verdict.FAIL]
    if failed:
        console.print(
            f"[bold red]{len(failed)} problem(s) must be fixed before Centaur can run.[/]"
        )
        return 1
    console.print("[green]Centaur can run here.[/]")
    return 0
