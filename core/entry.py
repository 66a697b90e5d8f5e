"""The simulated entry of SPEC-signals.md: the stop-buy a signal proposes, its fill or
expiry, and the position size. Shared by `core.signals.simulate_session` (the reference
loop of the spec's steps 2 and 4), the backtester and the tests that replay SimBroker.

One implementation of each rule (DESIGN: "the fill rules live once in core"):
- the stop-buy's fill price is `core.fills.stop_buy_fill` (what SimBroker matches with):
  on a bar with `high >= trigger`, at `max(open, trigger)`;
- the booked entry price is `FrictionProfile.fill_price(BUY, fill)` (SimBroker's friction)
  with the profile built from the parameters (`friction_profile`);
- `size_entry` is the spec's sizing reading:
  `qty = min(max(min_qty, floor(risk / R)), floor(equity * pct / 100 / entry_price))`,
  no trade when R <= 0 or qty < 1 (the stop-buy is consumed; the session may signal again).

A stop-buy works over the `stop_valid_bars` bars PRESENT after the signal bar and expires
after the last of them without a fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Context, Decimal

from core.domain import Side, Symbol
from core.fills import FrictionProfile, stop_buy_fill
from core.marketdata.bar import Bar
from core.params import SignalParams

# Exact decimal arithmetic with its own context (independent of the thread's): prices
# have <= 4 decimals, so every product and quotient by 10^k below is exact in 50 digits,
# and divide_int (floor for positives) is exact by definition.
CTX = Context(prec=50, rounding=ROUND_FLOOR)
_HUNDRED = Decimal(100)
_NO_TIME = timedelta(0)


@dataclass(frozen=True, slots=True)
class StopBuyProposal:
    """What a signal proposes: a stop-buy at `trigger` with the initial `stop`."""

    symbol: str
    signal_time: datetime  # start of bar i
    pullback_time: datetime  # start of bar P
    signal_index: int  # i, in bars present in the session
    trigger: Decimal  # high_i + tick, exactly
    stop: Decimal  # low_P * (1 - stop_offset_bps / 10000), rounded DOWN to the tick


class StopBuyOrder:
    """A working stop-buy: bars i+1 .. i+stop_valid_bars (bars present in the data).

    `on(bar)` / `on_bar(open, high)` return the raw fill price (`core.fills.stop_buy_fill`)
    on the first bar whose high reaches the trigger, `EXPIRED` after its last bar without
    a fill, else `WORKING`.
    """

    WORKING = "working"
    EXPIRED = "expired"

    __slots__ = ("bars_seen", "proposal", "valid_bars")

    def __init__(self, proposal: StopBuyProposal, valid_bars: int) -> None:
        self.proposal = proposal
        self.valid_bars = valid_bars
        self.bars_seen = 0

    def on(self, bar: Bar) -> Decimal | str:
        if self.bars_seen >= self.valid_bars:
            raise RuntimeError("this stop-buy has already expired")
        self.bars_seen += 1
        fill = stop_buy_fill(bar, self.proposal.trigger)
        if fill is not None:
            return fill
        return self.EXPIRED if self.bars_seen == self.valid_bars else self.WORKING

    def on_bar(self, bar_open: Decimal, bar_high: Decimal) -> Decimal | str:
        """The same from the two prices the rule reads (the bar's low and close do not
        matter to a stop-buy, so the bar handed to the rule carries the open for them)."""
        bar = Bar(
            Symbol(self.proposal.symbol),
            self.proposal.signal_time,
            _NO_TIME,
            bar_open,
            bar_high,
            bar_open,
            bar_open,
            0,
        )
        return self.on(bar)


def friction_profile(params: SignalParams) -> FrictionProfile:
    """The parameters' friction as the profile SimBroker applies (`core.fills`)."""
    return FrictionProfile(
        "params",
        params.spread_bps,
        params.slippage_bps,
        params.commission_per_share,
        params.commission_min_per_order,
    )


@dataclass(frozen=True, slots=True)
class EntrySizing:
    entry_price: Decimal  # the booked price, friction included
    risk_per_share: Decimal  # R = entry_price - stop
    qty: int


def size_entry(
    raw_fill: Decimal,
    stop: Decimal,
    params: SignalParams,
    friction: FrictionProfile | None = None,
) -> EntrySizing | None:
    """SPEC readings "Prices and sizing"; None = no trade (R <= 0 or qty < 1)."""
    c = CTX
    entry = (friction or friction_profile(params)).fill_price(Side.BUY, raw_fill)
    risk = c.subtract(entry, stop)
    if risk <= 0:
        return None
    by_risk = int(c.divide_int(params.risk_per_trade, risk))
    budget = c.divide(c.multiply(params.equity, params.max_position_pct), _HUNDRED)
    by_cap = int(c.divide_int(budget, entry))
    qty = min(max(params.min_qty, by_risk), by_cap)
    return EntrySizing(entry, risk, qty) if qty >= 1 else None


__all__ = [
    "CTX",
    "EntrySizing",
    "StopBuyOrder",
    "StopBuyProposal",
    "friction_profile",
    "size_entry",
]
