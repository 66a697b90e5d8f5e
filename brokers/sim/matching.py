"""Which working orders fill on a bar, and at what raw price (before friction).

The price rules themselves are core.fills (shared with the backtester); this module only
adds the broker's session rules: outside regular hours only extended-hours limit orders
work, and stops and trailing stops neither trigger nor trail (Alpaca: "trails and
triggers only in RTH").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokers.sim.state import SimOrder
from core.calendar import SessionPhase
from core.domain import OrderType, Side
from core.fills import TrailingStop, limit_fill, stop_fill, stop_limit_fill
from core.marketdata.bar import Bar

_STOP_KINDS = (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)


@dataclass(frozen=True, slots=True)
class BarMatch:
    price: Decimal | None  # raw fill price on this bar, if it fills
    triggered: bool  # the stop has triggered (it stays triggered)
    trail_mark: Decimal | None  # the trailing mark to use from the next bar on


def priority(order: SimOrder) -> tuple[int, int, int]:
    """Processing order on a bar: exits (sells) before entries, as the spec's "order of
    work" puts exits first; among them stops before limits ("the stop is taken first when
    one bar reaches both"); then by age."""
    return (
        0 if order.side is Side.SELL else 1,
        0 if order.order_type in _STOP_KINDS else 1,
        order.seq,
    )


def works_in(order: SimOrder, phase: SessionPhase) -> bool:
    if phase is SessionPhase.REGULAR:
        return True
    return order.extended_hours and order.order_type is OrderType.LIMIT


def match_bar(order: SimOrder, bar: Bar, phase: SessionPhase) -> BarMatch:
    """The order's outcome on `bar` (it must be open and active for the bar)."""
    idle = BarMatch(None, order.triggered, order.trail_mark)
    if not works_in(order, phase):
        return idle
    kind = order.order_type
    if kind is OrderType.MARKET or (order.triggered and kind is not OrderType.STOP_LIMIT):
        # A market order waiting for a bar, or the remainder of a triggered stop.
        return BarMatch(bar.open, True, order.trail_mark)
    if kind is OrderType.LIMIT:
        assert order.limit_price is not None
        return BarMatch(limit_fill(order.side, bar, order.limit_price), False, None)
    if kind is OrderType.STOP:
        assert order.stop_price is not None
        price = stop_fill(order.side, bar, order.stop_price)
        return BarMatch(price, price is not None, None)
    if kind is OrderType.STOP_LIMIT:
        assert order.stop_price is not None and order.limit_price is not None
        if order.triggered:
            return BarMatch(limit_fill(order.side, bar, order.limit_price), True, None)
        outcome = stop_limit_fill(order.side, bar, order.stop_price, order.limit_price)
        return BarMatch(outcome.price, outcome.triggered, None)
    assert kind is OrderType.TRAILING_STOP and order.trail_percent is not None
    # A trail that starts with no known price (queued for the open) starts at the open.
    mark = order.trail_mark if order.trail_mark is not None else bar.open
    trail = TrailingStop(order.side, order.trail_percent, mark)
    price = trail.check(bar)
    if price is not None:
        return BarMatch(price, True, mark)
    return BarMatch(None, False, trail.after(bar).mark)
