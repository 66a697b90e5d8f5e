"""Footprint of `centaur demo --headless`: start-up time and peak memory.

    uv run python benchmarks/footprint.py [RUNS]

Runs the installed `centaur demo --headless` as a fresh process RUNS times (default 3)
and prints, per run and as the median:
- ready: process spawn -> the chat URL printed. The demo prints it once everything is
  up: ledger migrated, engine reconciled, the bot polling the emulator, the scheduler
  planned. Target < 3 s.
- whole day: spawn -> exit (the scripted user plays the full replayed day).
- peak RSS: the child's maximum resident set size (getrusage via wait4). Target < 300 MB.
"""

from __future__ import annotations

import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path


def centaur() -> list[str]:
    script = Path(sys.executable).with_name("centaur")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def one_run() -> tuple[float, float, float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CENTAUR_"))}
    started = time.monotonic()
    proc = subprocess.Popen(
        [*centaur(), "demo", "--headless"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    ready = float("nan")
    buffer = b""
    fd = proc.stdout.fileno()
    while True:
        readable, _, _ = select.select([fd], [], [], 1.0)
        if not readable:
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffer += chunk
        if ready != ready and b"Chat: http" in buffer:  # NaN: not seen yet
            ready = time.monotonic() - started
    _, status, usage = os.wait4(proc.pid, 0)
    whole = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    peak_mb = usage.ru_maxrss / 1024  # Linux: KiB
    return ready, whole, peak_mb, code


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results = []
    for i in range(runs):
        ready, whole, peak, code = one_run()
        results.append((ready, whole, peak))
        print(
            f"run {i + 1}: ready {ready:.2f} s · whole day {whole:.1f} s · "
            f"peak RSS {peak:.0f} MB · exit {code}"
        )
    ready = statistics.median(r[0] for r in results)
    whole = statistics.median(r[1] for r in results)
    peak = max(r[2] for r in results)
    print(
        f"median: ready {ready:.2f} s (target < 3 s) · whole day {whole:.1f} s · "
        f"peak RSS max {peak:.0f} MB (target < 300 MB) · {os.cpu_count()} CPU(s)"
    )


if __name__ == "__main__":
    main()
