"""The whole `centaur run --broker alpaca --account <name>` process against the fake
Alpaca on 127.0.0.1, reached only through the account's `base_url` / `data_url` in a
temporary config dir: it starts, reconciles against the fake (the start-up summary
shows the fake's position), and stops cleanly on SIGTERM with exit code 0."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from decimal import Decimal
from pathlib import Path

import yaml

from bot.emulator import start_emulator
from core.settings import DEFAULT_CONFIG_DIR
from tests.fakes.alpaca import start_fake_alpaca
from tests.fakes.alpaca.models import PositionState

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "alpaca-fake"


def config_dir(tmp_path: Path, base_url: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    accounts = yaml.safe_load((config / "accounts.yaml").read_text())
    accounts["accounts"].append(
        {
            "name": ACCOUNT,
            "broker": "alpaca",
            "mode": "paper",
            "credentials_env": "ALPACA_FAKE",
            "base_url": base_url,
            "data_url": base_url,
        }
    )
    (config / "accounts.yaml").write_text(yaml.safe_dump(accounts))
    return config


async def test_centaur_run_on_alpaca_reconciles_with_the_fake_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    fake = await start_fake_alpaca(key="fake-key-id", secret="fake-secret-key")
    fake.market.set_price("MSFT", 400)
    fake.engine.book.positions["MSFT"] = PositionState("MSFT", Decimal(7), Decimal(7 * 400))
    emulator = await start_emulator()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CENTAUR_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=emulator.token,
        TELEGRAM_ALLOWED_USERS=str(emulator.user_id),
        TELEGRAM_API_BASE_URL=emulator.api_base_url,
        CENTAUR_CONFIG_DIR=str(config_dir(tmp_path, fake.base_url)),
        CENTAUR_DATA_DIR=str(tmp_path / "data"),
        ALPACA_FAKE_KEY_ID=fake.key,
        ALPACA_FAKE_SECRET_KEY=fake.secret,
        COLUMNS="300",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from app.cli import main; main()",
        "run",
        "--broker",
        "alpaca",
        "--account",
        ACCOUNT,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(25):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(output)
                output.append(line)
                if "stops Centaur gracefully" in line:
                    break
        started = "".join(output)
        assert "Centaur is running" in started, started
        assert f"{ACCOUNT} (alpaca, paper)" in started
        assert "MSFT 7 @ 400" in started  # the fake's position, read at the start-up reconcile
        assert fake.trade_stream.connects >= 1  # trade_updates at the fake, not Alpaca
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 20)
        output.append(rest.decode())
        text = "".join(output)
        assert proc.returncode == 0, text
        assert "Stopped." in text and "Traceback" not in text
        assert "fake-secret-key" not in text
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await emulator.stop()
        await fake.stop()
