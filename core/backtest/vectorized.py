"""Exits of a filled entry, found with numpy and decided by the exact rules of core.fills.

The spec's exits are sequential (a trailing high-water mark, a stop that moves after the
target) but each is a "first bar k after the fill where a level is reached" search. The
search runs in float64 over the session's arrays as a PRE-FILTER only: it keeps every bar
where the level could be reached, with a relative margin (1e-9) far wider than float
error (~1e-15), so no true exit is ever missed. Each kept bar, in order, is then decided
by `core.fills` on the exact `Bar` with exact `Decimal` levels (what SimBroker does); a
near miss that the exact rule rejects is skipped. So per-bar Python work is proportional
to exits, not to bars, and the result is exactly the spec's.

`exit_legs` returns the exit fills (raw prices, before friction) of one position opened
on bar j, checked from bar j + 1 (never on its fill bar) up to the flatten bar f, where
the exit checks run first and the remainder is sold at the close.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from core.backtest.model import ExitReason
from core.domain import Side
from core.fills import ExitKind, TrailingStop, first_exit, stop_sell_fill
from core.marketdata.block import SessionBlock
from core.marketdata.loader import PRICE_SCALE
from core.marketdata.sessions import price
from core.params import SignalParams
from core.signals import block_bar

_SCALE = float(PRICE_SCALE)
_UP = 1 + 1e-9  # pre-filter margins: a superset of the exact hits
_DOWN = 1 - 1e-9


@dataclass(frozen=True, slots=True)
class ExitLeg:
    index: int  # the exit bar (its start is the row's exit_time)
    raw_price: Decimal  # before friction
    qty: int
    reason: ExitReason


def flatten_index(block: SessionBlock, s: int, params: SignalParams) -> int:
    """The last bar ending at or before close - flatten minutes (-1 if none)."""
    n = int(block.lengths[s])
    limit = int(block.close_ns[s]) - params.flatten_minutes_before_close * 60 * 1_000_000_000
    ends = block.start_ns[s, :n] + int(block.bar_ns[s])
    return int(np.searchsorted(ends, limit, side="right")) - 1


def _flatten(block: SessionBlock, s: int, f: int, qty: int) -> ExitLeg:
    return ExitLeg(f, price(int(block.close[s, f])), qty, ExitReason.FLATTEN)


def trail_legs(
    block: SessionBlock, s: int, j: int, f: int, entry: Decimal, qty: int, trail_pct: Decimal
) -> list[ExitLeg]:
    """Trailing stop: level at bar k = hwm * (1 - trail_pct/100), hwm = max(entry, highs
    of bars j+1 .. k-1)."""
    if f > j:
        running = np.maximum.accumulate(block.high[s, j + 1 : f])  # hwm source for k >= j+2
        hwm = np.empty(f - j)
        hwm[0] = float(entry) * _SCALE
        np.maximum(running, hwm[0], out=hwm[1:])
        level = hwm * (1 - float(trail_pct) / 100)
        near = np.flatnonzero(block.low[s, j + 1 : f + 1] <= level * _UP)
        for c in near.tolist():
            mark = entry if c == 0 else max(entry, price(int(running[c - 1])))
            k = j + 1 + c
            fill = TrailingStop(Side.SELL, trail_pct, mark).check(block_bar(block, s, k))
            if fill is not None:
                return [ExitLeg(k, fill, qty, ExitReason.TRAIL)]
    return [_flatten(block, s, f, qty)]


def _breakeven_legs(
    block: SessionBlock, s: int, k0: int, f: int, entry: Decimal, qty: int
) -> list[ExitLeg]:
    """The rest after the target: a stop at the entry price, live from bar k0."""
    if f >= k0:
        near = np.flatnonzero(block.low[s, k0 : f + 1] <= float(entry) * _SCALE * _UP)
        for c in near.tolist():
            k = k0 + c
            fill = stop_sell_fill(block_bar(block, s, k), entry)
            if fill is not None:
                return [ExitLeg(k, fill, qty, ExitReason.BREAKEVEN)]
    return [_flatten(block, s, f, qty)]


def half_1r_legs(
    block: SessionBlock,
    s: int,
    j: int,
    f: int,
    entry: Decimal,
    stop: Decimal,
    risk: Decimal,
    qty: int,
) -> list[ExitLeg]:
    """Initial stop; floor(qty/2) at the limit entry + R (none when that is 0 shares);
    after the target the stop moves to the entry price from the next bar. A bar reaching
    both stop and limit stops the whole position out (`first_exit`: the stop first)."""
    half = qty // 2
    limit = entry + risk if half > 0 else None
    if f > j:
        lows = block.low[s, j + 1 : f + 1]
        near = lows <= float(stop) * _SCALE * _UP
        if limit is not None:
            near |= block.high[s, j + 1 : f + 1] >= float(limit) * _SCALE * _DOWN
        for c in np.flatnonzero(near).tolist():
            k = j + 1 + c
            hit = first_exit(block_bar(block, s, k), stop, limit)
            if hit is None:
                continue
            if hit.kind is ExitKind.STOP:
                return [ExitLeg(k, hit.price, qty, ExitReason.STOP)]
            target = ExitLeg(k, hit.price, half, ExitReason.TARGET)
            return [target, *_breakeven_legs(block, s, k + 1, f, entry, qty - half)]
    return [_flatten(block, s, f, qty)]


def exit_legs(
    block: SessionBlock,
    s: int,
    j: int,
    f: int,
    entry: Decimal,
    stop: Decimal,
    risk: Decimal,
    qty: int,
    params: SignalParams,
) -> list[ExitLeg]:
    if params.exit_model == "half_1r":
        return half_1r_legs(block, s, j, f, entry, stop, risk, qty)
    return trail_legs(block, s, j, f, entry, qty, params.trail_pct)
