"""The per-session execution of SPEC-signals.md, in two forms proven equal by the tests.

Order of work at each bar: 1. exits of an open position (never on its fill bar), 2. the
working stop-buy (fills, or expires after its `stop_valid_bars`-th bar), 3. the flatten
(the last bar ending at or before close - 5 min: exit checks first, then the remainder
at that bar's close, stamped at the bar's start), 4. a new signal at the bar's close.

- `execute_block` (fast): steps 2 and 4 are `core.signals.simulate_session` (the reference
  loop of the entries, proportional to candidates); positions do not interact, so steps 1
  and 3 of each filled entry are solved on their own by `core.backtest.vectorized`.
- `replay_session` (literal): one bar at a time through `RadarState`, `StopBuyOrder` and
  the `core.fills` rules, exactly the order of work above. Slow; the tests' yardstick.

Readings: an entry filled after the flatten bar (only possible with entry windows or
`stop_valid_bars` reaching past it) is sold at the close of the session's last bar,
reason `flatten`. Entries are not gated by the regime. Rows carry the fees of their own
shares on both sides: the entry order's commission shared pro rata by shares, plus the
row's own exit order's commission (per share, with the per-order minimum).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from core.backtest.model import ExitReason, TradeRow
from core.backtest.vectorized import ExitLeg, exit_legs, flatten_index
from core.calendar import TradingSession
from core.domain import Regime, Side
from core.entry import CTX, StopBuyOrder, friction_profile, size_entry
from core.fills import ExitKind, FrictionProfile, TrailingStop, first_exit, stop_sell_fill
from core.indicators import DailyLevels
from core.marketdata.bar import Bar
from core.marketdata.sessions import SessionBars, to_ns
from core.params import SignalParams
from core.signals import BlockEvaluation, RadarState, simulate_session


@dataclass(frozen=True, slots=True)
class Entry:
    """A filled entry: what the rows of its trade share."""

    day: date
    symbol: str
    regime: Regime
    signal_time: datetime
    entry_time: datetime
    entry_price: Decimal
    stop: Decimal
    risk: Decimal
    qty: int


def make_rows(
    entry: Entry,
    exits: Sequence[tuple[datetime, Decimal, int, ExitReason]],
    friction: FrictionProfile,
) -> list[TradeRow]:
    """Rows from exit fills (start of the exit bar, raw price, shares, reason)."""
    entry_fee = friction.order_commission(Decimal(entry.qty))
    rows = []
    shared = Decimal(0)
    for leg, (when, raw, qty, reason) in enumerate(exits):
        last = leg == len(exits) - 1
        # The entry order's commission (a minimum may apply once) split by shares; the
        # last row takes the remainder so the rows add up to it exactly.
        part = entry_fee - shared if last else CTX.divide(entry_fee * qty, Decimal(entry.qty))
        shared += part
        fees = part + friction.order_commission(Decimal(qty))
        rows.append(
            TradeRow(
                entry.day,
                entry.symbol,
                entry.regime,
                entry.signal_time,
                entry.entry_time,
                entry.entry_price,
                entry.stop,
                entry.risk,
                entry.qty,
                qty,
                when,
                friction.fill_price(Side.SELL, raw),
                reason,
                fees,
                leg,
            )
        )
    return rows


def _time(session: TradingSession, open_ns: int, ns: int) -> datetime:
    return session.open + timedelta(microseconds=(ns - open_ns) // 1000)


def execute_session(ev: BlockEvaluation, s: int, params: SignalParams) -> list[TradeRow]:
    """Every trade of session s of an evaluated block (fast form)."""
    block = ev.block
    cand = np.flatnonzero(ev.candidates[s])
    if len(cand) == 0:
        return []
    records = simulate_session(block, s, cand.tolist(), ev.regime.label[s], params)
    friction = friction_profile(params)
    session, open_ns = block.sessions[s], int(block.open_ns[s])
    n = int(block.lengths[s])
    f0 = flatten_index(block, s, params)
    rows: list[TradeRow] = []
    for record in records:
        if record.sizing is None or record.fill_index is None or record.fill_time is None:
            continue
        assert record.regime is not None  # candidates exist only after warm-up
        j, sizing, proposal = record.fill_index, record.sizing, record.proposal
        f = f0 if j <= f0 else n - 1
        entry = Entry(
            session.day,
            block.symbol,
            record.regime,
            proposal.signal_time,
            record.fill_time,
            sizing.entry_price,
            proposal.stop,
            sizing.risk_per_share,
            sizing.qty,
        )
        legs: list[ExitLeg] = exit_legs(
            block, s, j, f, entry.entry_price, entry.stop, entry.risk, entry.qty, params
        )
        starts = block.start_ns[s]
        exits = [
            (_time(session, open_ns, int(starts[leg.index])), leg.raw_price, leg.qty, leg.reason)
            for leg in legs
        ]
        rows += make_rows(entry, exits, friction)
    return rows


def execute_block(
    ev: BlockEvaluation, params: SignalParams, sessions: NDArray[np.bool_] | None = None
) -> list[TradeRow]:
    """Every trade of the block's sessions (all, or those marked in `sessions`)."""
    rows: list[TradeRow] = []
    active = ev.candidates.any(axis=1)
    if sessions is not None:
        active &= sessions
    for s in np.flatnonzero(active).tolist():
        rows += execute_session(ev, s, params)
    return rows


# --- the literal form -------------------------------------------------------------------


class _Position:
    """An open position in the literal replay: its exit orders, checked bar by bar."""

    def __init__(self, entry: Entry, fill_index: int, params: SignalParams) -> None:
        self.entry = entry
        self.fill_index = fill_index
        self.remaining = entry.qty
        self.half_1r = params.exit_model == "half_1r"
        self.trail = TrailingStop(Side.SELL, params.trail_pct, entry.entry_price)
        self.half = entry.qty // 2
        self.target_done = False
        self.breakeven_from: int | None = None
        self.exits: list[tuple[datetime, Decimal, int, ExitReason]] = []

    def _sell(self, bar: Bar, raw: Decimal, qty: int, reason: ExitReason) -> None:
        self.exits.append((bar.start, raw, qty, reason))
        self.remaining -= qty

    def check(self, bar: Bar, k: int) -> None:
        """Step 1 on bar k (> the fill bar)."""
        if not self.half_1r:
            fill = self.trail.check(bar)
            if fill is not None:
                self._sell(bar, fill, self.remaining, ExitReason.TRAIL)
            else:
                self.trail = self.trail.after(bar)
            return
        e = self.entry
        if not self.target_done:
            limit = e.entry_price + e.risk if self.half > 0 else None
            hit = first_exit(bar, e.stop, limit)
            if hit is not None and hit.kind is ExitKind.STOP:
                self._sell(bar, hit.price, self.remaining, ExitReason.STOP)
            elif hit is not None:
                self._sell(bar, hit.price, self.half, ExitReason.TARGET)
                self.target_done, self.breakeven_from = True, k + 1
        elif self.breakeven_from is not None and k >= self.breakeven_from:
            fill = stop_sell_fill(bar, e.entry_price)
            if fill is not None:
                self._sell(bar, fill, self.remaining, ExitReason.BREAKEVEN)

    def flatten(self, bar: Bar) -> None:
        if self.remaining > 0:
            self._sell(bar, bar.close, self.remaining, ExitReason.FLATTEN)


def replay_session(
    bars: SessionBars, levels: DailyLevels, event: bool, params: SignalParams
) -> list[TradeRow]:
    """The spec's order of work, literally, one bar at a time (the tests' yardstick)."""
    radar = RadarState(bars.symbol, bars.session, levels, event, params)
    gate, friction = radar.gate, friction_profile(params)
    flatten_ns = to_ns(bars.session.close) - params.flatten_minutes_before_close * 60 * 10**9
    ends = bars.start_ns + bars.bar_ns
    f = int(np.searchsorted(ends, flatten_ns, side="right")) - 1
    n = len(bars)
    order: StopBuyOrder | None = None
    regime: Regime | None = None
    positions: list[_Position] = []
    rows: list[TradeRow] = []
    for k, bar in enumerate(bars.bars()):
        for position in positions:  # 1. exits, never on the fill bar
            if position.remaining > 0 and k > position.fill_index:
                position.check(bar, k)
        if order is not None:  # 2. the working stop-buy
            outcome = order.on(bar)
            if isinstance(outcome, Decimal):
                sizing = size_entry(outcome, order.proposal.stop, params, friction)
                if sizing is None:
                    gate.consumed()
                else:
                    gate.filled()
                    assert regime is not None
                    p = order.proposal
                    entry = Entry(
                        bars.day,
                        bars.symbol,
                        regime,
                        p.signal_time,
                        bar.start,
                        sizing.entry_price,
                        p.stop,
                        sizing.risk_per_share,
                        sizing.qty,
                    )
                    positions.append(_Position(entry, k, params))
                order = None
            elif outcome == StopBuyOrder.EXPIRED:
                gate.expired()
                order = None
        for position in positions:  # 3. the flatten (a late entry: the last bar)
            if (k == f and position.fill_index <= f) or k == n - 1:
                position.flatten(bar)
        update = radar.on_bar(bar)  # 4. a new signal at the bar's close
        if update.signal is not None:
            gate.placed()
            order = StopBuyOrder(update.signal, params.stop_valid_bars)
            regime = update.label
    for position in positions:
        rows += make_rows(position.entry, position.exits, friction)
    return rows
