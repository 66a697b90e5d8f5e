"""Speed of the backtester: bars/s of a full backtest (one core) and a 100-point sweep.

    uv run python benchmarks/backtest_speed.py [--symbols 100] [--sessions 250] [DATA_DIR]

1. every intraday set of ../shared/data: the full backtest (evaluation + execution +
   summary) with the data already in memory, and including parsing the CSV files;
2. a generated set (core.marketdata.synthetic random-walk sessions, 1-minute bars,
   100 symbols x 250 sessions by default; generation time excluded);
3. a 100-point sweep (band_bps x trail_pct x exit_model) over one generated symbol-year of
   1-minute bars, across the machine's cores.
Targets: >= 1,000,000 bars/s on one core; the sweep < 30 s.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date
from pathlib import Path

from core.backtest.run import SymbolData, load_symbol, run_all
from core.backtest.sweep import grid, parse_axes, run_sweep
from core.calendar import xnys
from core.marketdata.loader import discover
from core.marketdata.synthetic import warmup_sessions
from core.params import SignalParams

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
P = SignalParams()


def _best(fn: object, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def shared(root: Path) -> None:
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith("daily")]
    if not folders:
        print(f"shared data: none in {root}")
        return
    total_bars, in_memory, with_parse = 0, 0.0, 0.0
    for folder in folders:
        files = discover(folder)

        def load(files: dict[str, Path] = files) -> list[SymbolData]:
            return [load_symbol(path, symbol) for symbol, path in files.items()]

        datas = load()
        bars = sum(d.n_bars for d in datas)
        memory = _best(lambda datas=datas: run_all(datas, P))
        parsed = _best(lambda load=load: run_all(load(), P))
        trades = len(run_all(datas, P).trades)
        print(
            f"  {folder.name}: {bars:,} bars, {trades} trades: in memory {memory:.3f} s "
            f"({bars / memory:,.0f} bars/s), with parsing {parsed:.3f} s "
            f"({bars / parsed:,.0f} bars/s)"
        )
        total_bars, in_memory, with_parse = (
            total_bars + bars,
            in_memory + memory,
            with_parse + parsed,
        )
    print(
        f"shared data, all sets: {total_bars:,} bars: in memory {total_bars / in_memory:,.0f} "
        f"bars/s, including parsing {total_bars / with_parse:,.0f} bars/s"
    )


def generate(symbols: int, sessions: int) -> list[SymbolData]:
    return [
        SymbolData(
            f"S{k:03d}",
            warmup_sessions(sessions, date(2025, 1, 2), symbol=f"S{k:03d}", seed=k),
        )
        for k in range(symbols)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=250)
    args = parser.parse_args()
    xnys()
    print(f"cores: {os.cpu_count()}")
    if args.data.is_dir():
        shared(args.data)

    started = time.perf_counter()
    datas = generate(args.symbols, args.sessions)
    bars = sum(d.n_bars for d in datas)
    print(
        f"generated {args.symbols} x {args.sessions} 1-min: {bars:,} bars "
        f"(in {time.perf_counter() - started:.1f} s, not timed)"
    )
    started = time.perf_counter()
    result = run_all(datas, P)
    elapsed = time.perf_counter() - started
    print(
        f"  full backtest, one core: {elapsed:.2f} s = {bars / elapsed:,.0f} bars/s "
        f"({len(result.trades):,} trades, {result.sessions:,} sessions after warm-up)"
    )

    year = datas[:1]
    axes = parse_axes(
        [
            "band_bps=0,5,10,15,20",
            "trail_pct=0.3,0.4,0.5,0.6,0.8,1.0,1.2,1.5,2.0,2.5",
            "exit_model=trail,half_1r",
        ]
    )
    sets = grid(P, axes)
    started = time.perf_counter()
    results = run_sweep(year, sets)
    elapsed = time.perf_counter() - started
    print(
        f"sweep: {len(results)} sets over 1 symbol x {args.sessions} sessions "
        f"({year[0].n_bars:,} 1-min bars) on {os.cpu_count()} cores: {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
