"""Session VWAP and OR15 for reports and charts, from the shared indicator code.

Why not recompute here: the chart must show exactly the VWAP the radar and the backtest
used (SPEC-signals.md), so this only calls `core.indicators.compute_indicators` on a
one-session block and reads its arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from core.calendar import TradingCalendar, xnys
from core.clock import NEW_YORK
from core.indicators import compute_indicators
from core.marketdata.bar import Bar
from core.marketdata.block import SessionBlock
from core.marketdata.sessions import SessionBars, from_ns, price
from core.params import DEFAULT_PARAMS, SignalParams

_PRICE_Q = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class SessionLines:
    times: tuple[datetime, ...]  # bar starts, New York time
    vwap: tuple[float, ...]  # at the close of each bar
    or15: tuple[Decimal, Decimal] | None  # (low, high) once complete, else None

    @property
    def vwap_close(self) -> Decimal:
        return Decimal(repr(self.vwap[-1])).quantize(_PRICE_Q, rounding=ROUND_HALF_UP)


def as_session_bars(
    bars: SessionBars | Sequence[Bar], calendar: TradingCalendar | None = None
) -> SessionBars:
    """SessionBars from either form (a list of Bar needs its session from the calendar)."""
    if isinstance(bars, SessionBars):
        return bars
    if not bars:
        raise ValueError("a chart needs at least one bar")
    day = bars[0].start.astimezone(NEW_YORK).date()
    return SessionBars.from_bars(bars, (calendar or xnys()).require_session(day))


def session_lines(bars: SessionBars, params: SignalParams = DEFAULT_PARAMS) -> SessionLines:
    arrays = compute_indicators(SessionBlock.from_sessions([bars]), params)
    n = len(bars)
    opening = arrays.opening_ranges.get(params.or_width_minutes)
    or15: tuple[Decimal, Decimal] | None = None
    if opening is not None and bool(opening.defined[0, n - 1]):
        or15 = (price(int(opening.low[0, n - 1])), price(int(opening.high[0, n - 1])))
    return SessionLines(
        times=tuple(from_ns(int(ns)).astimezone(NEW_YORK) for ns in bars.start_ns),
        vwap=tuple(float(v) for v in arrays.vwap[0, :n]),
        or15=or15,
    )
