"""`centaur run`: refusals are one readable line (exit 2, no traceback); a short replay
runs against a Bot API emulator, sends the report, and stops gracefully on SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import date, time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.adapters import StartupError
from app.cli import app as cli
from app.run_cmd import RunOptions, build_plan
from bot.emulator import start_emulator
from core.config_models import BrokerKind
from core.marketdata.synthetic import generate_scenario, write_folder
from core.settings import DEFAULT_CONFIG_DIR, Settings, load_settings

DAY = date(2024, 3, 14)
REPO = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path, **env: str) -> Settings:
    environ = {
        "TELEGRAM_BOT_TOKEN": "1:x",
        "TELEGRAM_ALLOWED_USERS": "7",
        "CENTAUR_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    return load_settings(DEFAULT_CONFIG_DIR, env_file=None, environ=environ)


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bars")
    data = generate_scenario("trend_up_pullback", symbol="DEMO")
    write_folder(folder, {"DEMO": data.sessions})
    return folder


@pytest.mark.parametrize(
    ("options", "env", "reason"),
    [
        (RunOptions(day=date(2024, 7, 4)), {}, "go together"),
        (RunOptions(start=time(10, 0)), {}, "--from only applies to a replay"),
        (RunOptions(account="nope"), {}, "no account named 'nope'"),
        (RunOptions(account="sim", broker=BrokerKind.ALPACA), {}, "is a sim account"),
        (RunOptions(broker=BrokerKind.SIM), {"TELEGRAM_BOT_TOKEN": ""}, "TELEGRAM_BOT_TOKEN"),
        (RunOptions(broker=BrokerKind.SIM), {"TELEGRAM_ALLOWED_USERS": ""}, "nobody could use"),
    ],
)
def test_refusals_say_why(
    tmp_path: Path, options: RunOptions, env: dict[str, str], reason: str
) -> None:
    with pytest.raises(StartupError, match=reason):
        build_plan(settings(tmp_path, **env), options)


def test_replay_refusals_say_why(tmp_path: Path, bars: Path) -> None:
    s = settings(tmp_path)
    cases = [
        (RunOptions(replay=bars, day=date(2024, 7, 4)), "not a trading day"),
        (RunOptions(replay=bars, day=date(2024, 3, 15)), "has no bars for that day"),
        (RunOptions(replay=tmp_path / "missing", day=DAY), "no such folder"),
        (
            RunOptions(replay=bars, day=DAY, broker=BrokerKind.ALPACA),
            "a replay runs on the simulated broker",
        ),
    ]
    for options, reason in cases:
        with pytest.raises(StartupError, match=reason):
            build_plan(s, options)
    plan = build_plan(s, RunOptions(replay=bars, day=DAY))
    assert plan.accounts[0].broker is BrokerKind.SIM and plan.symbols == ["DEMO"]
    assert plan.db_url.endswith("replays/2024-03-14/db/centaur.db")


def test_the_command_refuses_a_holiday_in_one_line(
    tmp_path: Path, bars: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process: keep loguru's process-wide configuration as the other tests expect it.
    monkeypatch.setattr("app.wiring.configure_logging", lambda *_a, **_k: None)
    env = {
        "TELEGRAM_BOT_TOKEN": "424242:run-cmd-holiday-test",
        "TELEGRAM_ALLOWED_USERS": "7",
        "CENTAUR_DATA_DIR": str(tmp_path),
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(
        cli, ["run", "--replay", str(bars), "--date", "2024-07-04"], env=env
    )
    assert result.exit_code == 2, result.output
    assert "Centaur will not start" in result.output
    assert "2024-07-04 is not a trading day" in result.output
    assert "Traceback" not in result.output
    bad = CliRunner().invoke(cli, ["run", "--broker", "schwab"], env=env)
    assert bad.exit_code == 2 and "--broker must be one of" in bad.output


async def test_a_short_replay_against_an_emulator_then_sigint(tmp_path: Path, bars: Path) -> None:
    emulator = await start_emulator()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CENTAUR_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=emulator.token,
        TELEGRAM_ALLOWED_USERS=str(emulator.user_id),
        TELEGRAM_API_BASE_URL=emulator.api_base_url,
        CENTAUR_DATA_DIR=str(tmp_path / "data"),
        COLUMNS="200",
    )
    args = ["run", "--broker", "sim", "--replay", str(bars), "--date", "2024-03-14"]
    args += ["--from", "15:45", "--speed", "0"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from app.cli import main; main()",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(output)
                output.append(line)
                if "finished (report sent" in line:
                    break
        async with emulator.client() as user:
            report = await user.wait_for_text("📊 Day report 2024-03-14", timeout=10)
            texts = [m["text"] for m in await user.bot_messages()]
        assert "No trades today." in report["text"]
        assert any("flatten_time due at 15:55" in (t or "") for t in texts)
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
        output.append(rest.decode())
        assert proc.returncode == 0, "".join(output)
        text = "".join(output)
        assert "Centaur is running" in text and "REPLAY of" in text and "Stopped." in text
        assert "Traceback" not in text
        replay_dir = tmp_path / "data" / "replays" / "2024-03-14"
        assert (replay_dir / "db" / "centaur.db").is_file()
        assert (replay_dir / "reports" / "2024-03-14" / "report.md").is_file()
        assert not (tmp_path / "data" / "db").exists()  # the real ledger is never touched
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await emulator.stop()


@pytest.mark.parametrize(
    ("broker", "reason"),
    [
        (BrokerKind.ALPACA, "has no Alpaca keys: set ALPACA_PAPER_KEY_ID"),
        (BrokerKind.IBKR, "cannot reach IB Gateway at 127.0.0.1:"),
        (BrokerKind.SIM, "live bars need a data source"),
    ],
)
async def test_a_live_start_without_its_broker_refuses_in_one_line(
    tmp_path: Path, broker: BrokerKind, reason: str
) -> None:
    from io import StringIO

    from rich.console import Console

    from app.run_cmd import run

    out = StringIO()
    console = Console(file=out, width=400)
    env = {"IBKR_HOST": "127.0.0.1", "IBKR_PORT": "9"}  # nothing listens on port 9
    code = await run(settings(tmp_path, **env), RunOptions(broker=broker), console)
    text = out.getvalue()
    assert code == 2, text
    assert "Centaur will not start" in text and reason in text
    assert "Traceback" not in text
