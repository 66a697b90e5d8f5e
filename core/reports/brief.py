"""The 09:00 pre-market brief as data (DESIGN.md section 1).

Per symbol it reads the daily bars strictly before the day through
`core.indicators.daily_levels` (the same ATR20/MA20 the regime uses), so the brief and
the radar never disagree about a level. Floats from the indicators become Decimal here,
rounded to 4 decimals for prices and 2 for percentages.

A holiday still gets a brief: "market closed today", the next session, and any event of
the day (macro releases can fall on a market holiday, e.g. NFP on Good Friday).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal

from core.calendar import CalendarRangeError, TradingCalendar
from core.event_calendar import EventCalendar, MarketEvent
from core.indicators import daily_levels
from core.marketdata.sessions import DailyBars, price
from core.reports.trades import div, q

_PRICE_Q = Decimal("0.0001")
_PCT_Q = Decimal("0.01")
CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class EventWindow:
    kind: str  # CPI, FOMC, earnings, ...
    at: time | None  # New York wall time; None: the whole day is blocked
    symbols: tuple[str, ...] | None  # None: every symbol
    block_start: datetime  # New York time
    block_end: datetime
    note: str

    def applies_to(self, symbol: str) -> bool:
        return self.symbols is None or symbol.upper() in self.symbols


@dataclass(frozen=True, slots=True)
class SymbolBrief:
    symbol: str
    prior_close: Decimal | None  # None: no daily bar before the day
    prior_day: date | None  # the session that close belongs to (spot stale data)
    ma20: Decimal | None  # None: fewer than 20 earlier sessions (warm-up)
    close_vs_ma20_pct: Decimal | None  # (prior close - MA20) / MA20 * 100
    above_ma20: bool | None
    atr20: Decimal | None
    atr20_pct: Decimal | None  # ATR20 / prior close * 100
    last_price: Decimal | None  # pre-market / last trade, when supplied
    gap_pct: Decimal | None  # (last - prior close) / prior close * 100; None without one
    events: tuple[str, ...]  # kinds of the day's events that apply to this symbol


@dataclass(frozen=True, slots=True)
class Brief:
    day: date
    session_kind: str  # "normal", "half day" or "closed"
    open: datetime | None  # New York time; None when closed
    close: datetime | None
    next_session: date | None  # when closed: the next trading day
    events: tuple[EventWindow, ...]
    symbols: tuple[SymbolBrief, ...]

    @property
    def market_open(self) -> bool:
        return self.session_kind != CLOSED

    @property
    def headline(self) -> str:
        """One line a trader reads first."""
        if self.open is None or self.close is None:
            return "market closed today"
        hours = f"{self.open:%H:%M}-{self.close:%H:%M} ET"
        if self.session_kind == "half day":
            return f"half day: closes {self.close:%H:%M} ET ({hours})"
        return f"normal session ({hours})"


def _window(event: MarketEvent) -> EventWindow:
    start, end = event.window()
    symbols = None if event.symbols is None else tuple(sorted(event.symbols))
    return EventWindow(event.kind, event.at, symbols, start, end, event.note)


def _dec(value: float, quantum: Decimal) -> Decimal:
    # repr() is the shortest decimal that reads back as the same float: no binary noise.
    return Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP)


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    return q(div(part, whole) * 100, _PCT_Q)


def symbol_brief(
    symbol: str,
    day: date,
    daily: DailyBars | None,
    last_price: Decimal | None,
    events: Sequence[EventWindow],
    lookback: int = 20,
) -> SymbolBrief:
    applicable = tuple(e.kind for e in events if e.applies_to(symbol))
    prior_close = prior_day = ma20 = atr20 = None
    if daily is not None and len(daily):
        (levels,) = daily_levels(daily, [day.toordinal()], lookback)
        if levels.prev_close is not None:
            prior_close = price(levels.prev_close)
            before = int((daily.day < day.toordinal()).sum())
            prior_day = date.fromordinal(int(daily.day[before - 1]))
        ma20 = None if levels.ma20 is None else _dec(levels.ma20, _PRICE_Q)
        atr20 = None if levels.atr20 is None else _dec(levels.atr20, _PRICE_Q)
    vs_ma = above = atr_pct = gap = None
    if prior_close is not None and ma20 is not None and ma20 > 0:
        vs_ma = _pct(prior_close - ma20, ma20)
        above = prior_close > ma20
    if prior_close is not None and prior_close > 0:
        atr_pct = None if atr20 is None else _pct(atr20, prior_close)
        gap = None if last_price is None else _pct(last_price - prior_close, prior_close)
    return SymbolBrief(
        symbol=symbol,
        prior_close=prior_close,
        prior_day=prior_day,
        ma20=ma20,
        close_vs_ma20_pct=vs_ma,
        above_ma20=above,
        atr20=atr20,
        atr20_pct=atr_pct,
        last_price=last_price,
        gap_pct=gap,
        events=applicable,
    )


def build_brief(
    day: date,
    symbols: Sequence[str],
    calendar: TradingCalendar,
    events: EventCalendar,
    daily_bars_by_symbol: Mapping[str, DailyBars],
    *,
    last_prices: Mapping[str, Decimal] | None = None,
    lookback: int = 20,
) -> Brief:
    """The pre-market brief of `day` for `symbols` (order kept).

    `daily_bars_by_symbol` may include the day itself or later days: only sessions
    strictly before `day` are read. `last_prices` (pre-market quotes) give the gap.
    """
    session = calendar.session(day)
    next_session: date | None = None
    if session is None:
        try:
            next_session = calendar.next_session(day).day
        except CalendarRangeError:
            next_session = None
    windows = tuple(_window(e) for e in events.events_on(day))
    prices = last_prices or {}
    return Brief(
        day=day,
        session_kind=session.kind if session is not None else CLOSED,
        open=session.open if session is not None else None,
        close=session.close if session is not None else None,
        next_session=next_session,
        events=windows,
        symbols=tuple(
            symbol_brief(
                symbol,
                day,
                daily_bars_by_symbol.get(symbol),
                prices.get(symbol),
                windows,
                lookback,
            )
            for symbol in symbols
        ),
    )
