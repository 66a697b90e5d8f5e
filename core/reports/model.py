"""The end-of-day report as plain data: frozen dataclasses, Decimal money, aware times.

Core builds these (`core.reports.eod`), the writers turn them into Markdown/JSON/PNG, and
the bot renders them into Telegram messages. Nothing here formats text for a channel.

Conventions (they make the JSON round-trip exact, see `core.reports.codec`):
- every datetime is timezone-aware and expressed in New York time (ISO with offset);
- money and prices are Decimal; ratios that a trader reads (R, bps, %) are Decimal too,
  rounded once where they are computed (R to 0.0001, bps and % to 0.01);
- free-form ledger JSON (regime evidence, risk detail, reconcile summary) stays a dict;
- collections are tuples, so a report compares equal to its own reloaded copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import StrEnum
from typing import Any

from core.domain import Regime

Json = dict[str, Any]
# Our own context: the thread's default could have been changed by anyone.
_CTX = Context(prec=34, rounding=ROUND_HALF_UP)


class ExitReason(StrEnum):
    """Why shares were sold, derived from the selling order's role and type."""

    PROTECTION_STOP = "protection stop"  # a plain stop protecting the position
    TRAILING = "trailing"  # the trailing-stop protection
    MANUAL_SELL = "manual sell"  # /sell (role EXIT)
    FLATTEN = "flatten"  # the 15:55 flatten (role FLATTEN)
    KILL = "kill"  # /kill (role FLATTEN, order_ref or client order id marked "kill")
    EXTERNAL = "external"  # an order placed outside Centaur and adopted by reconcile


class StopSource(StrEnum):
    INITIAL = "initial"  # the draft's initial stop, at the entry fill
    STOP = "stop"  # a plain stop order's level
    TRAIL = "trail"  # a trailing stop's level, reported by an order event


@dataclass(frozen=True, slots=True)
class StopPoint:
    """The protective level from `at` on (a step path)."""

    at: datetime
    level: Decimal
    source: StopSource


@dataclass(frozen=True, slots=True)
class TradeExit:
    """The shares one selling order took from one entry (FIFO)."""

    order_id: int
    at: datetime  # last fill of that order against this entry
    price: Decimal  # volume-weighted, 4 decimals
    qty: Decimal
    reason: ExitReason
    pnl: Decimal  # (price - entry price) * qty - commissions of these shares, both sides
    r_multiple: Decimal | None  # pnl / (R * qty); None when R is unknown


@dataclass(frozen=True, slots=True)
class ExecutionDeviation:
    """An entry's fill against its trigger: positive means paid more than asked."""

    trigger: Decimal
    fill: Decimal
    per_share: Decimal  # fill - trigger
    bps: Decimal  # per_share / trigger * 10000, 0.01
    total: Decimal  # per_share * filled qty


@dataclass(frozen=True, slots=True)
class Trade:
    """One entry order and everything sold out of it (FIFO per symbol)."""

    symbol: str
    entry_order_id: int
    entry_time: datetime  # first fill
    entry_price: Decimal  # volume-weighted fill price, 4 decimals
    qty: Decimal  # shares bought by this entry
    initial_stop: Decimal | None  # from the entry's draft (or its signal)
    risk_per_share: Decimal | None  # R = entry price - initial stop; None if unknown or <= 0
    exits: tuple[TradeExit, ...]
    open_qty: Decimal  # still held at the end of the report day
    pnl: Decimal  # sum of the exits' P&L realised on the report day
    r_multiple: Decimal | None  # pnl / (R * qty)
    commissions: Decimal  # commissions allocated to this trade's realised shares
    deviation: ExecutionDeviation | None  # None when the trigger is unknown
    stop_path: tuple[StopPoint, ...]

    @property
    def exit_time(self) -> datetime | None:
        return self.exits[-1].at if self.exits else None

    @property
    def exit_price(self) -> Decimal | None:
        """Volume-weighted over every exit (a partial exit has several)."""
        sold = sum((e.qty for e in self.exits), Decimal(0))
        if not sold:
            return None
        value = sum((e.price * e.qty for e in self.exits), Decimal(0))
        return _CTX.divide(value, sold).quantize(Decimal("0.0001"), context=_CTX)

    @property
    def exit_reason(self) -> ExitReason | None:
        """The reason of the last exit (the one that closed the trade, or the latest)."""
        return self.exits[-1].reason if self.exits else None


@dataclass(frozen=True, slots=True)
class PnlSummary:
    trades: int  # trades with at least one exit on the day
    wins: int  # realised P&L > 0
    losses: int  # realised P&L <= 0
    gross: Decimal  # before commissions
    commissions: Decimal  # commissions of the realised shares
    net: Decimal  # gross - commissions: the day's realised P&L
    r_total: Decimal | None  # sum of trade R; None when no trade has a known R
    r_unknown: int  # trades with exits whose R is unknown (not in r_total)
    fees_paid: Decimal  # every commission of the day's fills (open shares included)
    unrealized: Decimal | None  # open shares at the last bar's close, when bars are given


@dataclass(frozen=True, slots=True)
class RegimeSummary:
    symbol: str
    label: Regime  # the last label of the day (regimes table)
    at: datetime
    evidence: Json | None
    changes: tuple[tuple[datetime, Regime], ...]  # the day's announced labels, in order


@dataclass(frozen=True, slots=True)
class SymbolSession:
    """The symbol's regular session from its bars (for the text and the chart)."""

    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vwap_close: Decimal  # session VWAP at the last bar (core.indicators), 4 decimals
    close_vs_vwap_pct: Decimal
    or15_high: Decimal | None  # None when the data ends before the range is complete
    or15_low: Decimal | None


@dataclass(frozen=True, slots=True)
class RiskEventItem:
    at: datetime
    kind: str
    blocking: bool
    detail: Json | None


@dataclass(frozen=True, slots=True)
class SessionTransitionItem:
    at: datetime
    from_state: str | None
    to_state: str
    trigger: str | None
    cause: str


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    at: datetime
    in_sync: bool
    summary: Json
    source: str  # "parameter" or "notification": where the report found it


@dataclass(frozen=True, slots=True)
class DayStatus:
    """The `trading_days` row: the day's answer, lock and SAFE MODE (None when absent)."""

    trading_allowed: bool | None
    locked_reason: str | None
    safe_mode_reason: str | None
    trades_count: int


@dataclass(frozen=True, slots=True)
class LabelPrompt:
    """One [Trend] [Range] [Event] question under the report."""

    symbol: str
    traded: bool
    regime: Regime | None  # the classifier's label, shown for comparison


LABEL_CHOICES = ("trend", "range", "event")


@dataclass(frozen=True, slots=True)
class EodReport:
    day: date
    account: str
    session_kind: str  # "normal", "half day" or "closed"
    generated_at: datetime  # from the injected clock (the ledger's), New York time
    pnl: PnlSummary
    trades: tuple[Trade, ...]
    regimes: tuple[RegimeSummary, ...]
    sessions: tuple[SymbolSession, ...]
    risk_events: tuple[RiskEventItem, ...]
    transitions: tuple[SessionTransitionItem, ...]
    reconcile: ReconcileResult | None
    day_status: DayStatus | None
    labels: tuple[LabelPrompt, ...]

    @property
    def traded_symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.symbol for t in self.trades))

    def trades_for(self, symbol: str) -> tuple[Trade, ...]:
        return tuple(t for t in self.trades if t.symbol == symbol)

    def session_for(self, symbol: str) -> SymbolSession | None:
        return next((s for s in self.sessions if s.symbol == symbol), None)
