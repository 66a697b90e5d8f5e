"""PNG charts of a backtest (matplotlib, Agg, no pyplot global state).

- `equity.png`: the running sum of trade R in (entry_time, symbol) order, with drawdowns;
- `r_by_regime.png`: each trade's R by regime_at_entry (box and points);
- `day_<regime>.png`: one example day per regime: closes, session VWAP, the OR15 range
  and the trades (entry, exits, initial stop). The example is the trade with the median
  R of that regime (a typical day, not the best); without trades, the first day labelled
  so; a regime with neither has no chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median_low

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.backtest.model import REGIME_ORDER, Trade, TradeRow
from core.backtest.run import RegimeDay, SymbolData
from core.indicators import compute_indicators
from core.marketdata.block import SessionBlock
from core.marketdata.sessions import SessionBars, to_ns
from core.params import SignalParams

_DPI = 100


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI)
    return path


def equity_chart(trades: Sequence[Trade], path: Path) -> Path:
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.add_subplot()
    rs = np.asarray([float(t.r) for t in trades], dtype=np.float64)
    total = np.concatenate(([0.0], np.cumsum(rs)))
    peak = np.maximum.accumulate(total)
    x = np.arange(len(total))
    ax.plot(x, total, color="tab:blue", lw=1.4, label="cumulative R")
    ax.fill_between(x, total, peak, color="tab:red", alpha=0.2, lw=0, label="drawdown")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("trade (in entry-time order)")
    ax.set_ylabel("R")
    ax.set_title(f"Equity curve in R: {len(trades)} trades, total {total[-1]:+.2f} R")
    ax.legend(loc="upper left")
    return _save(fig, path)


def r_distribution_chart(trades: Sequence[Trade], path: Path) -> Path:
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    names = [r.value for r in REGIME_ORDER]
    groups = [[float(t.r) for t in trades if t.regime is r] for r in REGIME_ORDER]
    rng = np.random.default_rng(0)
    for k, values in enumerate(groups, start=1):
        if values:
            ax.boxplot([values], positions=[k], widths=0.5, showfliers=False)
            jitter = rng.uniform(-0.15, 0.15, len(values))
            colors = ["tab:green" if v > 0 else "tab:red" for v in values]
            ax.scatter(k + jitter, values, s=10, c=colors, alpha=0.6)
    ax.set_xticks(range(1, len(names) + 1))
    ax.set_xticklabels([f"{n}\n({len(g)})" for n, g in zip(names, groups, strict=True)])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("trade R")
    ax.set_title("R per trade by regime at entry")
    return _save(fig, path)


def _minute(bars: SessionBars, moment: datetime) -> float:
    """x position: minutes after the session open (plain floats keep the axis typed)."""
    return (moment - bars.session.open) / timedelta(minutes=1)


def day_chart(
    bars: SessionBars,
    rows: Sequence[TradeRow],
    title: str,
    params: SignalParams,
    path: Path,
) -> Path:
    block = SessionBlock.from_sessions([bars])
    ind = compute_indicators(block, params)
    n = len(bars)
    times = (bars.start_ns - int(to_ns(bars.session.open))) / 60e9
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(times, bars.close / 10_000, color="black", lw=1.0, label="close")
    ax.plot(times, ind.vwap[0, :n], color="tab:purple", lw=1.2, label="VWAP")
    rng = ind.opening_ranges.get(params.or_width_minutes)
    if rng is not None and rng.defined[0, :n].any():
        k = int(np.argmax(rng.defined[0, :n]))
        hi, lo = rng.high[0, k] / 10_000, rng.low[0, k] / 10_000
        ax.axhspan(lo, hi, color="tab:orange", alpha=0.12, label=f"OR{params.or_width_minutes}")
    for row in rows:
        x0, x1 = _minute(bars, row.entry_time), _minute(bars, row.exit_time)
        ax.scatter([x0], [float(row.entry_price)], marker="^", s=70, c="tab:green")
        ax.scatter([x1], [float(row.exit_price)], marker="v", s=70, c="tab:red")
        ax.annotate(row.exit_reason.value, (x1, float(row.exit_price)), fontsize=8)
        ax.hlines(float(row.stop), x0, x1, colors="tab:red", lw=0.8)
    length = (bars.session.close - bars.session.open) / timedelta(minutes=1)
    ticks = np.arange(0.0, length + 1, 30.0)
    ax.set_xticks(ticks)
    ax.set_xticklabels(
        [f"{bars.session.open + timedelta(minutes=float(t)):%H:%M}" for t in ticks], fontsize=8
    )
    ax.set_title(title)
    ax.set_ylabel("price")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def example_days(
    trades: Sequence[Trade], rows: Sequence[TradeRow], days: Sequence[RegimeDay]
) -> dict[str, tuple[str, datetime | None, str]]:
    """regime -> (symbol, entry time of the example trade or None, ISO date)."""
    out: dict[str, tuple[str, datetime | None, str]] = {}
    for regime in REGIME_ORDER:
        mine = [t for t in trades if t.regime is regime]
        if mine:
            mid = median_low(sorted(t.r for t in mine))
            pick = next(t for t in mine if t.r == mid)
            out[regime.value] = (pick.symbol, pick.entry_time, pick.day.isoformat())
            continue
        labelled = next((d for d in days if d.label is regime), None)
        if labelled is not None:
            out[regime.value] = (labelled.symbol, None, labelled.day.isoformat())
    return out


def write_charts(
    out_dir: Path,
    trades: Sequence[Trade],
    rows: Sequence[TradeRow],
    days: Sequence[RegimeDay],
    datas: Sequence[SymbolData],
    params: SignalParams,
) -> list[Path]:
    paths = [
        equity_chart(trades, out_dir / "equity.png"),
        r_distribution_chart(trades, out_dir / "r_by_regime.png"),
    ]
    by_symbol = {d.symbol: d for d in datas}
    for regime, (symbol, entry_time, day) in example_days(trades, rows, days).items():
        sessions = [s for s in by_symbol[symbol].sessions if s.day.isoformat() == day]
        if not sessions:
            continue
        shown = [r for r in rows if r.symbol == symbol and r.entry_time == entry_time]
        what = "the median-R trade" if shown else "no trade, day labelled so"
        title = f"{regime}: {symbol} {day} ({what})"
        paths.append(day_chart(sessions[0], shown, title, params, out_dir / f"day_{regime}.png"))
    return paths
