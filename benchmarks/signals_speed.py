"""Speed of the market math: batch bars/s over ../shared/data, live µs per bar per symbol.

    uv run python benchmarks/signals_speed.py [DATA_DIR]

Batch = daily levels + indicators + regime + candidates + the rule-5 simulation, per symbol
file (parse time, i.e. CSV -> exact arrays -> sessions, is reported separately).
Incremental = `RadarState.on_bar` for every bar of one symbol (Bar objects built beforehand).
Falls back to synthetic sessions when the shared data is absent.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from core.calendar import xnys
from core.marketdata.sessions import SessionBars, load_folder
from core.marketdata.synthetic import generate_scenario
from core.params import SignalParams
from core.signals import RadarState, evaluate_sessions

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
P = SignalParams()


def _series(root: Path) -> tuple[list[list[SessionBars]], float]:
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith("daily")]
    started = time.perf_counter()
    out = [s.sessions for d in folders for s in load_folder(d).values()]
    return out, time.perf_counter() - started


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    xnys()
    if root.is_dir():
        series, parse = _series(root)
        print(f"data: {root.resolve()}")
    else:
        started = time.perf_counter()
        series = [generate_scenario(n, symbol=n).sessions for n in ("choppy_range", "trend_down")]
        parse = time.perf_counter() - started
        print("data: synthetic (no shared data found)")
    bars = sum(len(s) for sessions in series for s in sessions)
    print(f"parse: {bars:,} bars in {parse:.3f} s ({bars / parse:,.0f} bars/s)")

    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for sessions in series:
            evaluate_sessions(sessions, P).signals(P)
        runs.append(time.perf_counter() - started)
    best = min(runs)
    print(f"batch: {bars:,} bars in {best:.3f} s = {bars / best:,.0f} bars/s (best of 5)")

    sessions = max(series, key=len)[-40:]
    ev = evaluate_sessions(sessions, P)
    prepared = [(s, s.bars()) for s in sessions]
    per_bar = []
    for _ in range(3):
        for k, (session, session_bars) in enumerate(prepared):
            radar = RadarState(session.symbol, session.session, ev.levels[k], False, P)
            started = time.perf_counter()
            for bar in session_bars:
                radar.on_bar(bar)
            per_bar.append((time.perf_counter() - started) / len(session_bars) * 1e6)
    print(
        f"incremental: RadarState.on_bar median {statistics.median(per_bar):.1f} µs/bar/symbol, "
        f"p95 {sorted(per_bar)[int(0.95 * len(per_bar))]:.1f} µs ({sessions[0].symbol})"
    )


if __name__ == "__main__":
    main()
