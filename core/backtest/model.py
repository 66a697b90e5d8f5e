"""The backtest's records: one `TradeRow` per exit fill, trades as groups of rows.

Money is exact `Decimal` (prices carry friction, so they are not on the tick) computed in
a 60-digit context, so P&L and fees are exact. An R multiple is a quotient: it is the
decimal quotient rounded to 34 significant digits (IEEE decimal128, ~10^17 times finer than
the float it is written as). Sums of R (statistics, the drawdown's running sum) are exact
in a 200-digit context, so the statistics are exact functions of these R values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from enum import StrEnum

from core.domain import Regime

# summary_by_regime.csv rows, in the spec's order (then "all").
REGIME_ORDER: tuple[Regime, ...] = (
    Regime.EVENT,
    Regime.FORMING,
    Regime.TREND_UP,
    Regime.TREND_DOWN,
    Regime.RANGE,
)


MONEY = Context(prec=60, rounding=ROUND_HALF_EVEN)  # exact for money (no rounding occurs)
RATIO = Context(prec=34, rounding=ROUND_HALF_EVEN)  # R multiples: decimal128 quotients
SUMS = Context(prec=200, rounding=ROUND_HALF_EVEN)  # exact sums of R multiples


class BacktestError(ValueError):
    """Input the backtest cannot use (dates, --set / --sweep syntax, options); the message
    says what and how to fix it. The command turns it into one line and exit code 1."""


class ExitReason(StrEnum):
    TRAIL = "trail"
    STOP = "stop"
    TARGET = "target"
    BREAKEVEN = "breakeven"
    FLATTEN = "flatten"


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One exit fill of a trade (a half_1r trade has two rows with the same entry)."""

    day: date
    symbol: str
    regime: Regime  # regime_at_entry: the label at the signal bar i
    signal_time: datetime  # start of bar i
    entry_time: datetime  # start of the fill bar j
    entry_price: Decimal  # friction included
    stop: Decimal  # the signal's initial stop
    risk: Decimal  # R per share = entry_price - stop
    trade_qty: int  # the whole position
    qty: int  # this row's shares
    exit_time: datetime  # start of the exit bar
    exit_price: Decimal  # friction included
    exit_reason: ExitReason
    fees: Decimal  # commissions of this row's shares, both sides
    leg: int  # 0, 1: order of the rows of one trade

    @property
    def pnl(self) -> Decimal:
        """`(exit_price - entry_price) * qty - commissions` (friction is in the prices)."""
        gross = MONEY.multiply(MONEY.subtract(self.exit_price, self.entry_price), self.qty)
        return MONEY.subtract(gross, self.fees)

    @property
    def r_multiple(self) -> Decimal:
        """This row's P&L / (R * its shares)."""
        return RATIO.divide(self.pnl, MONEY.multiply(self.risk, self.qty))

    @property
    def sort_key(self) -> tuple[datetime, str, datetime, int]:
        # A target before a flatten on the same bar: legs keep their order.
        return (self.entry_time, self.symbol, self.exit_time, self.leg)


@dataclass(frozen=True, slots=True)
class Trade:
    """All the rows of one entry; its R is the sum of the rows' P&L / (R * qty)."""

    day: date
    symbol: str
    regime: Regime
    entry_time: datetime
    pnl: Decimal
    r: Decimal  # the sum of the rows' P&L / (R * qty)

    @staticmethod
    def of(rows: Sequence[TradeRow]) -> Trade:
        first = rows[0]
        pnl = Decimal(0)
        for row in rows:
            pnl = MONEY.add(pnl, row.pnl)
        r = RATIO.divide(pnl, MONEY.multiply(first.risk, first.trade_qty))
        return Trade(first.day, first.symbol, first.regime, first.entry_time, pnl, r)


def sort_rows(rows: Iterable[TradeRow]) -> list[TradeRow]:
    return sorted(rows, key=lambda row: row.sort_key)


def group_trades(rows: Iterable[TradeRow]) -> list[Trade]:
    """Trades in (entry_time, symbol) order, the order of the drawdown's running sum."""
    groups: dict[tuple[datetime, str], list[TradeRow]] = {}
    for row in sort_rows(rows):
        groups.setdefault((row.entry_time, row.symbol), []).append(row)
    return [Trade.of(group) for group in groups.values()]
