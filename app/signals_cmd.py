"""`centaur signals --data DIR --out DIR [--symbols A,B] [--params FILE] [--events FILE]`.

Labels every session of every symbol file in DIR and lists the entry signals, writing
`regime_daily.csv` (the spec's columns) and `signals.csv`.

signals.csv lists every signal that rule 5 allows under the spec's simulated execution:
a signal's stop-buy works for `stop_valid_bars` bars, fills on the first bar whose high
reaches the trigger (then, with the default max_entries_per_session = 1, the session
signals no more), or expires / is consumed (no trade: R <= 0 or qty < 1), after which the
session may signal again, from that very bar's close. So the rows are exactly the signals
a backtest with the same parameters sees, with the stop-buy's outcome.

Formatting (the spec's "Outputs" readings): prices (trigger, stop, vwap, entry_price,
risk_per_share, atr20, ma20) are rounded to 4 decimals, halves up, from the shortest
decimal form of the value; evidence is written unrounded (Python's shortest round-trip
float); an undefined value (before OR15, zero volume, no previous close) is an empty cell;
times are bar STARTS in ISO 8601 with the New York offset.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from core.calendar import xnys
from core.csv_text import REGIME_COLUMNS, number_text, price_text
from core.domain import Regime
from core.event_calendar import EventCalendar, EventCalendarError, load_event_calendar
from core.marketdata.errors import DataError
from core.marketdata.loader import read_intraday
from core.marketdata.sessions import DailyBars, group_sessions, select_files
from core.params import SignalParams, load_params
from core.regime import LABELS
from core.signals import BlockEvaluation, SignalRecord, evaluate_sessions

SIGNAL_COLUMNS = (
    "date",
    "symbol",
    "signal_time",
    "trigger",
    "stop",
    "regime_at_signal",
    "cross_count",
    "pct_above",
    "range_atr",
    "vwap",
    "or_width_atr",
    "early_volume_ratio",
    "gap_pct",
    "pullback_time",
    "outcome",
    "fill_time",
    "entry_price",
    "risk_per_share",
    "qty",
)


@dataclass
class SignalsSummary:
    symbols: list[str]
    bars: int = 0
    sessions: int = 0
    labelled: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    signals: int = 0
    filled: int = 0
    skipped_outside: int = 0
    parse_seconds: float = 0.0
    compute_seconds: float = 0.0
    regime_csv: Path | None = None
    signals_csv: Path | None = None


def _regime_rows(symbol: str, ev: BlockEvaluation) -> list[list[str]]:
    rows = []
    block = ev.block
    for s, session in enumerate(block.sessions):
        last = int(block.lengths[s]) - 1
        label = ev.day_label(s)
        if label is None:
            continue  # warm-up: no row
        e = ev.regime.evidence(s, last)
        level = ev.levels[s]
        assert level.ma20 is not None
        close = int(block.close[s, last]) / 10_000
        rows.append(
            [
                session.day.isoformat(),
                symbol,
                label.value,
                str(e.cross_count),
                number_text(e.pct_above),
                number_text(e.range_atr),
                number_text(e.or_width_atr),
                number_text(e.early_volume_ratio),
                number_text(e.gap_pct),
                price_text(level.atr20),
                price_text(level.ma20),
                number_text((close - level.ma20) / level.ma20 if level.ma20 else None),
            ]
        )
    return rows


def _signal_row(symbol: str, ev: BlockEvaluation, s: int, record: SignalRecord) -> list[str]:
    p = record.proposal
    i = p.signal_index
    e = ev.regime.evidence(s, i)
    sizing = record.sizing
    return [
        ev.block.sessions[s].day.isoformat(),
        symbol,
        p.signal_time.isoformat(),
        price_text(p.trigger),
        price_text(p.stop),
        record.regime.value if record.regime else "",
        str(e.cross_count),
        number_text(e.pct_above),
        number_text(e.range_atr),
        price_text(float(ev.indicators.vwap[s, i])),
        number_text(e.or_width_atr),
        number_text(e.early_volume_ratio),
        number_text(e.gap_pct),
        p.pullback_time.isoformat(),
        record.outcome,
        record.fill_time.isoformat() if record.fill_time else "",
        price_text(sizing.entry_price) if sizing else "",
        price_text(sizing.risk_per_share) if sizing else "",
        str(sizing.qty) if sizing else "",
    ]


def load_events_option(events_path: Path | None) -> EventCalendar:
    try:
        return load_event_calendar(events_path)
    except EventCalendarError as exc:
        where = events_path or Path("events")
        raise DataError(where, None, str(exc).removeprefix(f"{where}: ")) from None


def _daily_for(daily_dir: Path | None, symbol: str) -> DailyBars | None:
    if daily_dir is None:
        return None
    path = daily_dir / f"{symbol}.csv"
    return DailyBars.load(path) if path.is_file() else None


def _write(path: Path, header: Sequence[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run_signals(
    data_dir: Path,
    out_dir: Path,
    symbols: Sequence[str] | None = None,
    params_path: Path | None = None,
    events_path: Path | None = None,
    console: Console | None = None,
    *,
    daily_dir: Path | None = None,
    params: SignalParams | None = None,
) -> SignalsSummary:
    """Label and signal every session; raises DataError / ParamsError on bad input.

    `daily_dir` (optional) holds daily files `SYMBOL.csv` used for ATR20 / MA20 / previous
    close instead of daily bars built from the intraday sessions; `params` (optional)
    overrides `params_path` (for `--set` overrides applied by the caller).
    """
    params = params or load_params(params_path)
    events = load_events_option(events_path)
    xnys()  # build the exchange calendar once, outside the timings (about 1 s)
    files = select_files(data_dir, symbols)
    summary = SignalsSummary(symbols=list(files))
    regime_rows: list[list[str]] = []
    signal_rows: list[list[str]] = []
    labels: Counter[str] = Counter()
    with Progress(console=console, transient=True, disable=console is None) as progress:
        task = progress.add_task("signals", total=len(files))
        for symbol, path in files.items():
            progress.update(task, description=f"{symbol}")
            started = time.perf_counter()
            series = group_sessions(read_intraday(path, symbol))
            daily = _daily_for(daily_dir, symbol)
            summary.parse_seconds += time.perf_counter() - started
            summary.skipped_outside += series.skipped_outside
            if not series.sessions:
                progress.advance(task)
                continue
            started = time.perf_counter()
            ev = evaluate_sessions(series.sessions, params, daily, events)
            per_session = ev.signals(params)
            summary.compute_seconds += time.perf_counter() - started
            summary.bars += series.n_bars
            summary.sessions += len(series.sessions)
            regime_rows += _regime_rows(symbol, ev)
            for s, records in enumerate(per_session):
                signal_rows += [_signal_row(symbol, ev, s, r) for r in records]
                summary.filled += sum(r.outcome == "filled" for r in records)
            progress.advance(task)
    for row in regime_rows:
        labels[row[2]] += 1
    regime_rows.sort(key=lambda r: (r[0], r[1]))
    signal_rows.sort(key=lambda r: (r[0], r[1], r[2]))
    summary.labelled = len(regime_rows)
    summary.labels = {r.value: labels.get(r.value, 0) for r in LABELS}
    summary.signals = len(signal_rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.regime_csv = _write(out_dir / "regime_daily.csv", REGIME_COLUMNS, regime_rows)
    summary.signals_csv = _write(out_dir / "signals.csv", SIGNAL_COLUMNS, signal_rows)
    if console is not None:
        console.print(summary_table(summary))
    return summary


def summary_table(summary: SignalsSummary) -> Table:
    table = Table(title="centaur signals", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("symbols", ", ".join(summary.symbols))
    table.add_row("bars", f"{summary.bars:,}")
    table.add_row("sessions", str(summary.sessions))
    table.add_row("labelled sessions (after warm-up)", str(summary.labelled))
    for regime in (r.value for r in Regime if r.value in summary.labels):
        count = summary.labels[regime]
        share = count / summary.labelled if summary.labelled else 0.0
        table.add_row(f"  {regime}", f"{count} ({share:.0%})")
    table.add_row("signals (rule 5 applied)", str(summary.signals))
    table.add_row("  stop-buys filled", str(summary.filled))
    if summary.skipped_outside:
        table.add_row("bars outside a session (skipped)", str(summary.skipped_outside))
    table.add_row(
        "time (parse + compute)", f"{summary.parse_seconds:.2f} s + {summary.compute_seconds:.2f} s"
    )
    if summary.regime_csv is not None:
        table.add_row("written", f"{summary.regime_csv}, {summary.signals_csv}")
    return table
