"""When a working order triggers and fills on a price tick, and at what price.

A tick is a bar (o, h, l, c) or a single price p (o = h = l = c = p). The rules, per order
(buy side; sell mirrors with low/high and min/max swapped):

- market: fills at the tick's open.
- limit: fills when low <= limit, at min(open, limit).
- stop: triggers when high >= stop, fills at max(open, stop); once triggered it is a
  market order for any remainder (open of later ticks).
- stop_limit: triggers like a stop; fills at the trigger price max(open, stop) if that is
  <= limit, otherwise it rests as a limit order (limit rule from the next tick on).
- trailing_stop (sell): the stop level is hwm * (1 - trail_percent/100) or hwm - trail_price,
  rounded to the tick. It triggers when low <= the level held BEFORE this tick, filling at
  min(open, level); otherwise hwm rises to the tick's high and the level is recomputed
  (no second trigger check inside the same tick). Buy side tracks the lowest price.
  hwm starts at the first price seen while active.

Eligibility (session) is decided by the engine; these functions only price.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from .models import FakeOrder
from .wire import round_to_tick


@dataclass(frozen=True)
class Tick:
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    start: datetime

    @classmethod
    def price(cls, price: Decimal, at: datetime) -> Tick:
        return cls(price, price, price, price, Decimal(0), at)


def trail_level(order: FakeOrder, hwm: Decimal) -> Decimal:
    if order.trail_percent is not None:
        offset = hwm * order.trail_percent / 100
    else:
        assert order.trail_price is not None
        offset = order.trail_price
    return round_to_tick(hwm - offset if order.side == "sell" else hwm + offset)


def _crossed(side: str, level: Decimal, tick: Tick) -> Decimal | None:
    """Price at which a stop-like level is hit on this tick, if it is."""
    if side == "buy":
        return max(tick.open, level) if tick.high >= level else None
    return min(tick.open, level) if tick.low <= level else None


def _limit_fill(side: str, limit: Decimal, tick: Tick) -> Decimal | None:
    if side == "buy":
        return min(tick.open, limit) if tick.low <= limit else None
    return max(tick.open, limit) if tick.high >= limit else None


def fill_price(order: FakeOrder, tick: Tick) -> Decimal | None:
    """The fill price for `order` on `tick`, or None. Updates trigger state and trails."""
    if order.type == "market" or (order.triggered and order.type in ("stop", "trailing_stop")):
        return tick.open
    if order.type == "limit":
        assert order.limit_price is not None
        return _limit_fill(order.side, order.limit_price, tick)
    if order.type == "stop":
        assert order.stop_price is not None
        price = _crossed(order.side, order.stop_price, tick)
        order.triggered = price is not None
        return price
    if order.type == "stop_limit":
        assert order.limit_price is not None and order.stop_price is not None
        if order.triggered:
            return _limit_fill(order.side, order.limit_price, tick)
        trigger = _crossed(order.side, order.stop_price, tick)
        if trigger is None:
            return None
        order.triggered = True
        acceptable = (
            trigger <= order.limit_price if order.side == "buy" else (trigger >= order.limit_price)
        )
        return trigger if acceptable else None
    if order.type == "trailing_stop":
        return _trailing(order, tick)
    raise ValueError(f"unknown order type {order.type}")


def _trailing(order: FakeOrder, tick: Tick) -> Decimal | None:
    if order.hwm is None:
        order.hwm = tick.open
        order.stop_price = trail_level(order, order.hwm)
    assert order.stop_price is not None
    price = _crossed(order.side, order.stop_price, tick)
    if price is not None:
        order.triggered = True
        return price
    order.hwm = max(order.hwm, tick.high) if order.side == "sell" else min(order.hwm, tick.low)
    order.stop_price = trail_level(order, order.hwm)
    return None


def fill_qty(
    remaining: Decimal, cap: Decimal | None, partial_probability: float, rng: random.Random
) -> Decimal:
    """How much fills now: all that is left, capped by the symbol's liquidity per tick,
    and with `partial_probability` a random whole part of it (at least one share)."""
    qty = remaining if cap is None else min(remaining, cap)
    if partial_probability > 0 and qty > 1 and rng.random() < partial_probability:
        part = (qty * Decimal(str(rng.uniform(0.1, 0.9)))).to_integral_value(ROUND_FLOOR)
        qty = max(Decimal(1), part)
    return qty


def reference_price(order: FakeOrder, last: Decimal | None) -> Decimal | None:
    """The price used to reserve buying power for an open order."""
    if order.type in ("limit", "stop_limit"):
        return order.limit_price
    if order.type == "stop":
        return max(order.stop_price or Decimal(0), last or Decimal(0)) or None
    if order.type == "trailing_stop" and order.stop_price is not None:
        return order.stop_price
    return last
