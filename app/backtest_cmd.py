"""`centaur backtest --data DIR --out DIR [...]`: the spec's backtest over recorded bars.

Writes `regime_daily.csv`, `trades.csv`, `summary_by_regime.csv`, `report.md` and PNG
charts; with `--stability` also `stability.csv`, with `--sweep` also `sweep.csv`.

Parameters, lowest to highest precedence: the spec defaults, `--params FILE`,
`--friction alpaca|ibkr` (sets spread_bps, slippage_bps, commission_per_share and
commission_min_per_order from core.fills' profiles), `--exit-model`, then each
`--set key=value`. `--from` / `--to` choose the sessions that trade and are reported;
earlier sessions still serve the warm-up. Bad input raises DataError, ParamsError,
EventCalendarError or BacktestError with a message naming what to fix.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from app.signals_cmd import load_events_option
from core.backtest.model import BacktestError
from core.backtest.outputs import (
    write_csv,
    write_regimes,
    write_summary,
    write_trades,
)
from core.backtest.report import ReportInputs, verdict, write_report
from core.backtest.run import BacktestResult, SymbolData, check_dates, load_symbol, run_symbol
from core.backtest.stability import STABILITY_COLUMNS, stability
from core.backtest.sweep import grid, parse_axes, run_sweep, sweep_columns, sweep_row
from core.calendar import xnys
from core.csv_text import number_text
from core.fills import FRICTION_PROFILES
from core.marketdata.sessions import select_files
from core.params import SignalParams, load_params, with_overrides

FRICTIONS = ("alpaca", "ibkr")
TRAIL_POLICIES = ("fixed",)


@dataclass
class BacktestSummary:
    result: BacktestResult
    written: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped_outside: int = 0


def parse_sets(items: Sequence[str]) -> dict[str, str]:
    """`key=value` strings -> overrides (values are read as YAML scalars later)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BacktestError(f"--set {item!r}: expected key=value (e.g. --set trail_pct=1.0)")
        out[key.strip()] = value.strip()
    return out


def resolve_params(
    params_path: Path | None,
    friction: str | None,
    exit_model: str | None,
    overrides: Sequence[str],
) -> SignalParams:
    params = load_params(params_path)
    if friction is not None:
        if friction not in FRICTIONS:
            raise BacktestError(f"--friction {friction!r}: choose one of {', '.join(FRICTIONS)}")
        profile = FRICTION_PROFILES[friction]
        params = with_overrides(
            params,
            {
                "spread_bps": profile.spread_bps,
                "slippage_bps": profile.slippage_bps,
                "commission_per_share": profile.commission_per_share,
                "commission_min_per_order": profile.min_commission_per_order,
            },
        )
    if exit_model is not None:
        params = with_overrides(params, {"exit_model": exit_model})
    params = with_overrides(params, parse_sets(overrides))
    if params.trail_policy not in TRAIL_POLICIES:
        raise BacktestError(
            f"trail_policy {params.trail_policy!r} is not available in the backtest "
            f"(available: {', '.join(TRAIL_POLICIES)})"
        )
    return params


def friction_name(params: SignalParams) -> str:
    for name in FRICTIONS:
        p = FRICTION_PROFILES[name]
        if (
            params.spread_bps,
            params.slippage_bps,
            params.commission_per_share,
            params.commission_min_per_order,
        ) == (p.spread_bps, p.slippage_bps, p.commission_per_share, p.min_commission_per_order):
            return name
    return (
        f"custom (spread {params.spread_bps} bps, slippage {params.slippage_bps} bps, "
        f"commission {params.commission_per_share}/share, min {params.commission_min_per_order})"
    )


def run_backtest(
    data_dir: Path,
    out_dir: Path,
    symbols: Sequence[str] | None = None,
    *,
    exit_model: str | None = None,
    params_path: Path | None = None,
    events_path: Path | None = None,
    first: date | None = None,
    last: date | None = None,
    overrides: Sequence[str] = (),
    friction: str | None = None,
    stability_run: bool = False,
    sweep: Sequence[str] = (),
    daily_dir: Path | None = None,
    charts: bool = True,
    workers: int | None = None,
    console: Console | None = None,
) -> BacktestSummary:
    """The whole command; raises DataError / ParamsError / EventCalendarError /
    BacktestError on bad input, before writing anything."""
    params = resolve_params(params_path, friction, exit_model, overrides)
    axes = parse_axes(sweep)
    sets = grid(params, axes) if axes else []
    events = load_events_option(events_path)
    xnys()  # build the exchange calendar once, outside the timings (about 1.7 s)
    files = select_files(data_dir, symbols)
    result = BacktestResult(params, list(files))
    summary = BacktestSummary(result)
    seconds = summary.seconds
    datas: list[SymbolData] = []
    with Progress(console=console, transient=True, disable=console is None) as progress:
        task = progress.add_task("parse", total=len(files))
        started = time.perf_counter()
        for symbol, path in files.items():
            progress.update(task, description=f"parse {symbol}")
            datas.append(load_symbol(path, symbol, daily_dir))
            summary.skipped_outside += datas[-1].skipped_outside
            progress.advance(task)
        seconds["parse"] = time.perf_counter() - started
        check_dates(datas, first, last)
        task = progress.add_task("backtest", total=len(datas))
        started = time.perf_counter()
        for data in datas:
            progress.update(task, description=f"backtest {data.symbol}")
            result.add(run_symbol(data, params, events, first, last))
            progress.advance(task)
        result.finish()
        seconds["backtest"] = time.perf_counter() - started
        sweep_results = None
        if sets:
            task = progress.add_task(f"sweep ({len(sets)} sets)", total=len(sets))
            started = time.perf_counter()
            sweep_results = run_sweep(
                datas,
                sets,
                events,
                first,
                last,
                workers=workers,
                on_done=lambda _: progress.advance(task),
            )
            seconds["sweep"] = time.perf_counter() - started

    out_dir.mkdir(parents=True, exist_ok=True)
    written = summary.written
    written.append(write_regimes(out_dir / "regime_daily.csv", result.days))
    written.append(write_trades(out_dir / "trades.csv", result.rows))
    written.append(write_summary(out_dir / "summary_by_regime.csv", result.summary))
    stability_rows = None
    if stability_run:
        stability_rows = stability(result.days, params)
        written.append(
            write_csv(
                out_dir / "stability.csv",
                STABILITY_COLUMNS,
                ([r.threshold, r.direction, number_text(r.changed_share)] for r in stability_rows),
            )
        )
    if sweep_results is not None:
        written.append(
            write_csv(out_dir / "sweep.csv", sweep_columns(axes), map(sweep_row, sweep_results))
        )
    chart_paths: list[Path] = []
    if charts:
        started = time.perf_counter()
        from core.backtest.charts import write_charts  # matplotlib: only when drawing

        chart_paths = write_charts(out_dir, result.trades, result.rows, result.days, datas, params)
        written += chart_paths
        seconds["charts"] = time.perf_counter() - started
    report = ReportInputs(
        result,
        str(data_dir),
        friction_name(params),
        first,
        last,
        chart_paths,
        stability_rows,
        axes,
        sweep_results,
    )
    written.append(write_report(out_dir / "report.md", report))
    if console is not None:
        console.print(summary_table(summary))
    return summary


def summary_table(summary: BacktestSummary) -> Table:
    result = summary.result
    table = Table(title="centaur backtest", show_header=True)
    for column in ("regime", "trades", "win rate", "avg R", "max DD R", "verdict"):
        table.add_column(column, justify="left" if column in ("regime", "verdict") else "right")
    for s in result.summary:
        table.add_row(
            s.regime,
            str(s.n_trades),
            "" if s.win_rate is None else f"{float(s.win_rate):.0%}",
            "" if s.avg_r is None else f"{float(s.avg_r):+.2f}",
            "" if s.max_drawdown_r is None else f"{float(s.max_drawdown_r):+.2f}",
            verdict(s).partition(" — ")[2] or "-",
        )
    timing = ", ".join(f"{k} {v:.2f} s" for k, v in summary.seconds.items())
    table.caption = (
        f"{', '.join(result.symbols)}: {result.bars:,} bars, {result.sessions} sessions after "
        f"warm-up, {len(result.trades)} trades ({len(result.rows)} rows). {timing}.\n"
        f"written: {', '.join(p.name for p in summary.written)} in "
        f"{summary.written[0].parent if summary.written else '-'}"
    )
    return table
