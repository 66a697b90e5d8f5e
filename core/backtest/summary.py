"""summary_by_regime statistics (SPEC "Backtest outputs" and its readings).

Per TRADE (not per row), grouped by `regime_at_entry`; rows `event, forming, trend_up,
trend_down, range, all` always, in that order. Exact arithmetic on the trades' R (exact
decimal sums, then `Fraction`s for the few divisions), so nothing rounds until written:
- `win_rate` = share of trades with R > 0; a loss is R <= 0, so `expectancy_r =
  win_rate * mean win R + (1 - win_rate) * mean loss R` equals `avg_r` exactly;
- `median_r`: the middle trade R, or the mean of the two middle ones;
- `max_loss_r = min(worst trade R, 0)`;
- `max_drawdown_r` (<= 0): the deepest fall of the running sum of trade R, which starts at
  0 and takes the group's trades in (entry_time, symbol) order;
- `trades_per_session` = trades / post-warm-up (date, symbol) sessions of the run (the same
  denominator for every row; 0 without trades). A group without trades has empty stats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from core.backtest.model import REGIME_ORDER, SUMS, Trade

ALL = "all"
ZERO = Fraction(0)


@dataclass(frozen=True, slots=True)
class RegimeStats:
    regime: str
    n_trades: int
    win_rate: Fraction | None
    avg_r: Fraction | None
    median_r: Fraction | None
    max_loss_r: Fraction | None
    max_drawdown_r: Fraction | None
    expectancy_r: Fraction | None
    trades_per_session: Fraction


def total(values: Sequence[Decimal]) -> Decimal:
    out = Decimal(0)
    for value in values:
        out = SUMS.add(out, value)
    return out


def max_drawdown(rs: Sequence[Decimal]) -> Decimal:
    """Deepest fall of the running sum (from 0) below its running peak; <= 0."""
    running = peak = worst = Decimal(0)
    for r in rs:
        running = SUMS.add(running, r)
        if running > peak:
            peak = running
        fall = SUMS.subtract(running, peak)
        if fall < worst:
            worst = fall
    return worst


def median(values: Sequence[Decimal]) -> Fraction:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return Fraction(ordered[mid])
    return (Fraction(ordered[mid - 1]) + Fraction(ordered[mid])) / 2


def regime_stats(name: str, trades: Sequence[Trade], sessions: int) -> RegimeStats:
    """Statistics of `trades` (already in (entry_time, symbol) order)."""
    n = len(trades)
    if n == 0:
        return RegimeStats(name, 0, None, None, None, None, None, None, ZERO)
    rs = [t.r for t in trades]
    wins = [r for r in rs if r > 0]
    losses = [r for r in rs if r <= 0]
    win_rate = Fraction(len(wins), n)
    sum_win, sum_loss = Fraction(total(wins)), Fraction(total(losses))
    mean_win = sum_win / len(wins) if wins else ZERO
    mean_loss = sum_loss / len(losses) if losses else ZERO
    return RegimeStats(
        regime=name,
        n_trades=n,
        win_rate=win_rate,
        avg_r=(sum_win + sum_loss) / n,
        median_r=median(rs),
        max_loss_r=min(Fraction(min(rs)), ZERO),
        max_drawdown_r=Fraction(max_drawdown(rs)),
        expectancy_r=win_rate * mean_win + (1 - win_rate) * mean_loss,
        trades_per_session=Fraction(n, sessions) if sessions else ZERO,
    )


def summarize(trades: Sequence[Trade], sessions: int) -> list[RegimeStats]:
    """The summary_by_regime rows; `trades` in (entry_time, symbol) order."""
    out = [
        regime_stats(regime.value, [t for t in trades if t.regime is regime], sessions)
        for regime in REGIME_ORDER
    ]
    out.append(regime_stats(ALL, trades, sessions))
    return out
