"""`centaur demo --headless` as a user runs it: a subprocess, exit 0, the whole day in the
printed transcript, well under the two minutes it is allowed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def centaur_command() -> list[str]:
    script = Path(sys.executable).with_name("centaur")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from app.cli import main; main()"]


def test_headless_demo_plays_the_whole_day(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CENTAUR_"))}
    env["COLUMNS"] = "200"
    started = time.monotonic()
    done = subprocess.run(
        [*centaur_command(), "demo", "--headless"],
        cwd=tmp_path,  # no .env, no config/ here: the demo needs neither
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr[-3000:]}"
    assert "demo ok: 6 steps" in out
    for fragment in (
        "Chat: http://127.0.0.1:",
        "☀️ Brief 2024-03-14",
        "Regime snapshot 09:45",
        "Trading allowed",
        "📈 Signal DEMO",
        "📝 Draft #1",
        "💰 filled",
        "trailing stop",
        "you │ /kill",
        "Kill done: all flat",
        "flatten_time due at 15:55",
        "📊 Day report 2024-03-14",
        "[photo 1200x800]",
    ):
        assert fragment in out, fragment
    assert elapsed < 120
    assert "Traceback" not in done.stderr
