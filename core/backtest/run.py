"""A backtest over loaded data: per symbol, evaluate (indicators, regime, candidates) then
execute; collect trades, the day labels and what the report and the stability run need.

`--from` / `--to` select the sessions that trade and are reported; earlier sessions of the
data still count for the warm-up, ATR20 and MA20 (as they would live).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from core.backtest.engine import execute_block
from core.backtest.model import BacktestError, Trade, TradeRow, group_trades, sort_rows
from core.backtest.summary import RegimeStats, summarize
from core.domain import Regime
from core.event_calendar import EventCalendar
from core.marketdata.loader import read_intraday
from core.marketdata.sessions import DailyBars, SessionBars, group_sessions
from core.params import SignalParams
from core.regime import Evidence
from core.signals import BlockEvaluation, evaluate_sessions

# The parameters the evaluation (indicators, regime labels, candidates) depends on; the
# others only change the execution, so a sweep over them reuses one evaluation.
EVALUATION_FIELDS = (
    "trend_pct",
    "trend_max_crosses",
    "trend_min_range_atr",
    "forming_minutes",
    "early_volume_window",
    "daily_lookback",
    "or_minutes",
    "or_width_minutes",
    "band_bps",
    "entry_windows",
)


def evaluation_key(params: SignalParams) -> tuple[object, ...]:
    return tuple(getattr(params, name) for name in EVALUATION_FIELDS)


@dataclass(frozen=True, slots=True, eq=False)
class SymbolData:
    """One symbol's sessions (and optional daily bars), parsed once."""

    symbol: str
    sessions: list[SessionBars]
    daily: DailyBars | None = None
    skipped_outside: int = 0

    @property
    def n_bars(self) -> int:
        return sum(len(s) for s in self.sessions)


def load_symbol(path: Path, symbol: str, daily_dir: Path | None = None) -> SymbolData:
    series = group_sessions(read_intraday(path, symbol))
    daily = None
    if daily_dir is not None and (daily_dir / f"{symbol}.csv").is_file():
        daily = DailyBars.load(daily_dir / f"{symbol}.csv")
    return SymbolData(symbol, series.sessions, daily, series.skipped_outside)


@dataclass(frozen=True, slots=True)
class RegimeDay:
    """A post-warm-up session's label and its evidence at the last bar."""

    day: date
    symbol: str
    label: Regime
    evidence: Evidence
    forming: bool  # at the last bar (a session cut short before 10:00)
    range_atr: float  # raw (NaN / inf kept) for relabelling
    atr20: float
    ma20: float
    close: float  # the session's last close

    @property
    def close_vs_ma20(self) -> float | None:
        return (self.close - self.ma20) / self.ma20 if self.ma20 else None


@dataclass(frozen=True, slots=True, eq=False)
class SymbolRun:
    symbol: str
    rows: list[TradeRow]
    days: list[RegimeDay]  # post-warm-up sessions in the date range
    bars: int


def in_range(data: SymbolData, first: date | None, last: date | None) -> np.ndarray:
    days = [s.day for s in data.sessions]
    return np.asarray(
        [(first is None or d >= first) and (last is None or d <= last) for d in days], dtype=bool
    )


def evaluate(
    data: SymbolData, params: SignalParams, events: EventCalendar | None
) -> BlockEvaluation:
    return evaluate_sessions(data.sessions, params, data.daily, events)


def regime_days(ev: BlockEvaluation, mask: np.ndarray) -> list[RegimeDay]:
    out = []
    block = ev.block
    for s in np.flatnonzero(mask & ~ev.regime.warm_up).tolist():
        last = int(block.lengths[s]) - 1
        label = ev.day_label(s)
        level = ev.levels[s]
        assert label is not None and level.atr20 is not None and level.ma20 is not None
        out.append(
            RegimeDay(
                block.sessions[s].day,
                block.symbol,
                label,
                ev.regime.evidence(s, last),
                bool(ev.regime.forming[s, last]),
                float(ev.regime.range_atr[s, last]),
                level.atr20,
                level.ma20,
                int(block.close[s, last]) / 10_000,
            )
        )
    return out


def run_symbol(
    data: SymbolData,
    params: SignalParams,
    events: EventCalendar | None = None,
    first: date | None = None,
    last: date | None = None,
    ev: BlockEvaluation | None = None,
) -> SymbolRun:
    if not data.sessions:
        return SymbolRun(data.symbol, [], [], 0)
    ev = ev or evaluate(data, params, events)
    mask = in_range(data, first, last)
    rows = execute_block(ev, params, mask)
    return SymbolRun(data.symbol, rows, regime_days(ev, mask), int(ev.block.lengths[mask].sum()))


@dataclass(eq=False)
class BacktestResult:
    params: SignalParams
    symbols: list[str]
    rows: list[TradeRow] = field(default_factory=list)  # sorted, see `finish`
    trades: list[Trade] = field(default_factory=list)
    days: list[RegimeDay] = field(default_factory=list)  # sorted by date, symbol
    summary: list[RegimeStats] = field(default_factory=list)
    bars: int = 0

    @property
    def sessions(self) -> int:
        """Post-warm-up (date, symbol) sessions: the trades_per_session denominator."""
        return len(self.days)

    def add(self, run: SymbolRun) -> None:
        self.rows += run.rows
        self.days += run.days
        self.bars += run.bars

    def finish(self) -> BacktestResult:
        self.rows = sort_rows(self.rows)
        self.trades = group_trades(self.rows)
        self.days.sort(key=lambda d: (d.day, d.symbol))
        self.summary = summarize(self.trades, self.sessions)
        return self


def run_all(
    datas: Sequence[SymbolData],
    params: SignalParams,
    events: EventCalendar | None = None,
    first: date | None = None,
    last: date | None = None,
) -> BacktestResult:
    """The whole backtest over data already in memory (what the sweep runs per set)."""
    result = BacktestResult(params, [d.symbol for d in datas])
    for data in datas:
        result.add(run_symbol(data, params, events, first, last))
    return result.finish()


def check_dates(datas: Sequence[SymbolData], first: date | None, last: date | None) -> None:
    """Refuse a date range with no session of the data in it."""
    if first is not None and last is not None and first > last:
        raise BacktestError(f"--from {first} is after --to {last}")
    days = sorted({s.day for d in datas for s in d.sessions})
    if not days:
        raise BacktestError("the data has no bars inside a regular session")
    inside = [d for d in days if (first is None or d >= first) and (last is None or d <= last)]
    if not inside:
        span = f"{first or '...'} .. {last or '...'}"
        raise BacktestError(
            f"no session of the data in {span}: the data covers {days[0]} .. {days[-1]}"
        )
