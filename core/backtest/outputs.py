"""The backtest's CSV files, with the spec's exact columns and formatting.

- Prices (`entry_price`, `stop`, `exit_price`, `atr20`, `ma20`) are rounded to 4 decimals,
  halves up, from their exact value (a float from its shortest decimal form, `repr`).
- `pnl` and `fees` are exact decimals written in full (plain notation, no trailing zeros);
  `r_multiple`, evidence, ratios and statistics are written unrounded: the shortest
  round-trip form of the float nearest the computed value (R multiples are 34-digit
  decimal quotients, statistics exact from them). Undefined values are empty cells.
- Times are bar STARTS in ISO 8601 with the New York offset.
- `regime_daily.csv` is byte for byte what `centaur signals` writes for the same data.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from core.backtest.model import TradeRow
from core.backtest.run import RegimeDay
from core.backtest.summary import RegimeStats
from core.csv_text import REGIME_COLUMNS, decimal_text, number_text, price_text

TRADE_COLUMNS = (
    "date",
    "symbol",
    "regime_at_entry",
    "signal_time",
    "entry_time",
    "entry_price",
    "stop",
    "qty",
    "exit_time",
    "exit_price",
    "exit_reason",
    "pnl",
    "r_multiple",
    "fees",
)
SUMMARY_COLUMNS = (
    "regime",
    "n_trades",
    "win_rate",
    "avg_r",
    "median_r",
    "max_loss_r",
    "max_drawdown_r",
    "expectancy_r",
    "trades_per_session",
)


def regime_row(day: RegimeDay) -> list[str]:
    e = day.evidence
    return [
        day.day.isoformat(),
        day.symbol,
        day.label.value,
        str(e.cross_count),
        number_text(e.pct_above),
        number_text(e.range_atr),
        number_text(e.or_width_atr),
        number_text(e.early_volume_ratio),
        number_text(e.gap_pct),
        price_text(day.atr20),
        price_text(day.ma20),
        number_text(day.close_vs_ma20),
    ]


def trade_row(row: TradeRow) -> list[str]:
    return [
        row.day.isoformat(),
        row.symbol,
        row.regime.value,
        row.signal_time.isoformat(),
        row.entry_time.isoformat(),
        price_text(row.entry_price),
        price_text(row.stop),
        str(row.qty),
        row.exit_time.isoformat(),
        price_text(row.exit_price),
        row.exit_reason.value,
        decimal_text(row.pnl),
        number_text(row.r_multiple),
        decimal_text(row.fees),
    ]


def summary_row(stats: RegimeStats) -> list[str]:
    return [
        stats.regime,
        str(stats.n_trades),
        number_text(stats.win_rate),
        number_text(stats.avg_r),
        number_text(stats.median_r),
        number_text(stats.max_loss_r),
        number_text(stats.max_drawdown_r),
        number_text(stats.expectancy_r),
        number_text(stats.trades_per_session) if stats.n_trades else "0",
    ]


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_regimes(path: Path, days: Iterable[RegimeDay]) -> Path:
    return write_csv(path, REGIME_COLUMNS, (regime_row(d) for d in days))


def write_trades(path: Path, rows: Iterable[TradeRow]) -> Path:
    return write_csv(path, TRADE_COLUMNS, (trade_row(r) for r in rows))


def write_summary(path: Path, summary: Iterable[RegimeStats]) -> Path:
    return write_csv(path, SUMMARY_COLUMNS, (summary_row(s) for s in summary))
