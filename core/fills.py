"""The fill rules, written once: SimBroker and the backtester both execute through here.

SPEC-signals.md "Simulated execution" and its "Readings" are the contract:
- a stop-buy fills on a bar with `high >= trigger`, at `max(open, trigger)` (a gap up
  through the trigger fills at the open, never at the better trigger price);
- a stop level (sell) fills with `low <= level`, at `min(open, level)`;
- a limit sell fills with `high >= limit`, at `max(open, limit)`; a limit buy mirrors it;
- when one bar reaches both a stop and a limit exit, the stop is taken first (we cannot
  know the order inside the bar, so assume the worse);
- a trailing stop's level at bar k is `hwm * (1 - trail_pct/100)`, where hwm starts at
  the entry price and is raised by the highs of the bars AFTER the fill bar and BEFORE k
  (so the fill bar never triggers an exit, and bar k cannot raise its own level);
- friction moves every fill price against the trader by half the spread plus slippage,
  and commission is per share with a per-order minimum.

Everything is exact Decimal arithmetic on the bars' own decimal prices; levels are not
rounded (the spec compares unrounded levels with prices).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from core.domain import ZERO, Side
from core.marketdata.bar import Bar

BPS = Decimal(10000)
HUNDRED = Decimal(100)
TWO = Decimal(2)


# --- entry / exit price rules --------------------------------------------------------------


def stop_buy_fill(bar: Bar, trigger: Decimal) -> Decimal | None:
    return max(bar.open, trigger) if bar.high >= trigger else None


def stop_sell_fill(bar: Bar, level: Decimal) -> Decimal | None:
    return min(bar.open, level) if bar.low <= level else None


def limit_sell_fill(bar: Bar, limit: Decimal) -> Decimal | None:
    return max(bar.open, limit) if bar.high >= limit else None


def limit_buy_fill(bar: Bar, limit: Decimal) -> Decimal | None:
    return min(bar.open, limit) if bar.low <= limit else None


def stop_fill(side: Side, bar: Bar, stop: Decimal) -> Decimal | None:
    return stop_buy_fill(bar, stop) if side is Side.BUY else stop_sell_fill(bar, stop)


def limit_fill(side: Side, bar: Bar, limit: Decimal) -> Decimal | None:
    return limit_buy_fill(bar, limit) if side is Side.BUY else limit_sell_fill(bar, limit)


def market_fill(price: Decimal) -> Decimal:
    """A market order fills at the market price it meets (the open of the next bar, or the
    last close when it arrives mid-session); friction is applied separately."""
    return price


def marketable_limit_fill(side: Side, limit: Decimal, market: Decimal) -> Decimal | None:
    """A limit order meeting a known market price: it fills there if the price is at or
    better than the limit."""
    crosses = market <= limit if side is Side.BUY else market >= limit
    return market if crosses else None


@dataclass(frozen=True, slots=True)
class StopLimitOutcome:
    triggered: bool
    price: Decimal | None  # the fill price, if it filled on this bar


def stop_limit_fill(side: Side, bar: Bar, stop: Decimal, limit: Decimal) -> StopLimitOutcome:
    """The stop triggers as a stop would; it fills on this bar only if the trigger price is
    within the limit. A gap through the limit leaves a working limit order (the caller
    checks it with `limit_fill` from the next bar on): the bar's path is unknown, so no
    fill at the limit is assumed on the bar that gapped through it."""
    trigger_price = stop_fill(side, bar, stop)
    if trigger_price is None:
        return StopLimitOutcome(False, None)
    within = trigger_price <= limit if side is Side.BUY else trigger_price >= limit
    return StopLimitOutcome(True, trigger_price if within else None)


class ExitKind(StrEnum):
    STOP = "stop"
    LIMIT = "limit"


@dataclass(frozen=True, slots=True)
class ExitFill:
    kind: ExitKind
    price: Decimal


def first_exit(bar: Bar, stop_level: Decimal | None, limit: Decimal | None) -> ExitFill | None:
    """Exit of a long position on one bar: the stop first when the bar reaches both."""
    if stop_level is not None:
        price = stop_sell_fill(bar, stop_level)
        if price is not None:
            return ExitFill(ExitKind.STOP, price)
    if limit is not None:
        price = limit_sell_fill(bar, limit)
        if price is not None:
            return ExitFill(ExitKind.LIMIT, price)
    return None


# --- trailing stops ------------------------------------------------------------------------


def trailing_level(hwm: Decimal, trail_pct: Decimal, side: Side = Side.SELL) -> Decimal:
    """A sell trail sits `trail_pct` % below the high-water mark; a buy trail (covering a
    short) the same distance above the low-water mark."""
    factor = trail_pct / HUNDRED
    return hwm * (1 - factor) if side is Side.SELL else hwm * (1 + factor)


@dataclass(frozen=True, slots=True)
class TrailingStop:
    """A trailing stop's state between bars. `mark` is the high-water mark of a sell trail
    (the low-water mark of a buy trail). Use: `fill = trail.check(bar)`; if None,
    `trail = trail.after(bar)` before the next bar, so bar k's level only sees the marks
    of bars before k."""

    side: Side
    trail_pct: Decimal
    mark: Decimal

    @property
    def level(self) -> Decimal:
        return trailing_level(self.mark, self.trail_pct, self.side)

    def check(self, bar: Bar) -> Decimal | None:
        return stop_fill(self.side, bar, self.level)

    def after(self, bar: Bar) -> TrailingStop:
        if self.side is Side.SELL:
            return self if bar.high <= self.mark else replace(self, mark=bar.high)
        return self if bar.low >= self.mark else replace(self, mark=bar.low)


# --- friction ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrictionProfile:
    """Costs applied to every simulated fill (SPEC-signals.md "Friction")."""

    name: str
    spread_bps: Decimal = ZERO
    slippage_bps: Decimal = ZERO
    commission_per_share: Decimal = ZERO
    min_commission_per_order: Decimal = ZERO

    @property
    def adverse_bps(self) -> Decimal:
        return self.spread_bps / TWO + self.slippage_bps

    def fill_price(self, side: Side, price: Decimal) -> Decimal:
        """Buys pay up, sells receive less: `price * (1 +/- (spread/2 + slippage)/10000)`."""
        factor = self.adverse_bps / BPS
        return price * (1 + factor) if side is Side.BUY else price * (1 - factor)

    def order_commission(self, qty: Decimal) -> Decimal:
        """Commission for an order that filled `qty` shares in total."""
        if qty <= 0 or (self.commission_per_share == 0 and self.min_commission_per_order == 0):
            return ZERO
        return max(self.commission_per_share * qty, self.min_commission_per_order)

    def fill_commission(self, filled_before: Decimal, qty: Decimal) -> Decimal:
        """Commission for one execution of an order that had `filled_before` shares filled:
        the per-order minimum is charged once per order, not once per partial fill."""
        return self.order_commission(filled_before + qty) - self.order_commission(filled_before)


NO_FRICTION = FrictionProfile("none")
ALPACA_FRICTION = FrictionProfile("alpaca", Decimal(2), Decimal(2), ZERO)
IBKR_FRICTION = FrictionProfile("ibkr", Decimal(2), Decimal(2), Decimal("0.005"), Decimal("1.00"))
FRICTION_PROFILES = MappingProxyType(
    {p.name: p for p in (NO_FRICTION, ALPACA_FRICTION, IBKR_FRICTION)}
)


__all__ = [
    "ALPACA_FRICTION",
    "FRICTION_PROFILES",
    "IBKR_FRICTION",
    "NO_FRICTION",
    "ExitFill",
    "ExitKind",
    "FrictionProfile",
    "StopLimitOutcome",
    "TrailingStop",
    "first_exit",
    "limit_buy_fill",
    "limit_fill",
    "limit_sell_fill",
    "market_fill",
    "marketable_limit_fill",
    "stop_buy_fill",
    "stop_fill",
    "stop_limit_fill",
    "stop_sell_fill",
    "trailing_level",
]
