"""FakeMarket: the test's hand on time and prices. Nothing here reads the wall clock.

- `set_time(t)` / `advance(dt)` move the fake's clock forward; crossing a pre-market open,
  an open, a close or an extended close activates queued orders and expires day orders.
- `set_price(symbol, p)` is a one-price tick: orders on the symbol are checked against it.
- `push_bar(symbol, o, h, l, c, v, start)` moves the clock to the bar's start, evaluates
  orders against the bar with the clock at the bar's end (so fills are stamped then), runs
  any boundary inside the bar, stores it for `GET /v2/stocks/bars` and publishes it to
  subscribers of the market-data stream.
- `add_history(...)` stores bars for the REST API only (no orders, no stream).
- `set_liquidity(symbol, qty)` caps each order's fill per tick: partial fills.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from .bars import ONE_MINUTE, BarRecord
from .fills import Tick
from .sessions import SessionCalendar

if TYPE_CHECKING:
    from .engine import OrderEngine

Number = Decimal | float | int | str


def _d(value: Number) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: give the fake aware times")
    return moment.astimezone(UTC)


class FakeMarket:
    def __init__(self, now: datetime, calendar: SessionCalendar | None = None) -> None:
        self.calendar = calendar or SessionCalendar()
        self._now = _aware(now)
        self._prices: dict[str, Decimal] = {}
        self._liquidity: dict[str, Decimal] = {}
        self._prev_close: dict[str, Decimal] = {}
        self.bars: dict[str, list[BarRecord]] = {}
        self.bar_listeners: list[Callable[[BarRecord], None]] = []
        self.engine: OrderEngine | None = None

    # ------------------------------------------------------------ the engine's view
    def now(self) -> datetime:
        return self._now

    def last_price(self, symbol: str) -> Decimal | None:
        return self._prices.get(symbol.upper())

    def prev_close(self, symbol: str) -> Decimal | None:
        """The price at the last regular close crossed (before any: the first price seen)."""
        return self._prev_close.get(symbol.upper())

    def liquidity(self, symbol: str) -> Decimal | None:
        return self._liquidity.get(symbol.upper())

    # ------------------------------------------------------------ controls
    def set_time(self, moment: datetime) -> None:
        target = _aware(moment)
        if target < self._now:
            raise ValueError(f"time only moves forward ({target} < {self._now})")
        self._cross(self._now, target)

    def advance(self, delta: timedelta) -> None:
        self.set_time(self._now + delta)

    def set_liquidity(self, symbol: str, max_qty_per_tick: Number | None) -> None:
        if max_qty_per_tick is None:
            self._liquidity.pop(symbol.upper(), None)
        else:
            self._liquidity[symbol.upper()] = _d(max_qty_per_tick)

    def set_price(self, symbol: str, price: Number) -> None:
        symbol = symbol.upper()
        self._remember(symbol, _d(price))
        if self.engine is not None:
            self.engine.on_tick(symbol, Tick.price(_d(price), self._now))

    def push_bar(
        self,
        symbol: str,
        o: Number,
        h: Number,
        l: Number,  # noqa: E741
        c: Number,
        v: int = 1000,
        start: datetime | None = None,
        *,
        trade_count: int | None = 10,
        vwap: Number | None = None,
        publish: bool = True,
    ) -> BarRecord:
        symbol = symbol.upper()
        begin = _aware(start) if start else self._now.replace(second=0, microsecond=0)
        bar = BarRecord(
            symbol,
            begin,
            _d(o),
            _d(h),
            _d(l),
            _d(c),
            v,
            trade_count,
            _d(vwap) if vwap is not None else (_d(h) + _d(l) + _d(c)) / 3,
        )
        if begin > self._now:
            self.set_time(begin)
        before = self._now
        self._now = max(self._now, begin + ONE_MINUTE)
        self._remember(symbol, bar.o)
        if self.engine is not None:
            self.engine.on_tick(symbol, Tick(bar.o, bar.h, bar.low, bar.c, Decimal(v), begin))
        self._prices[symbol] = bar.c
        self._store(bar)
        self._cross(before, self._now)
        if publish:
            for listener in list(self.bar_listeners):
                listener(bar)
        return bar

    def add_history(self, bars: list[BarRecord]) -> None:
        for bar in bars:
            self._store(bar)

    # ------------------------------------------------------------ internals
    def _store(self, bar: BarRecord) -> None:
        series = self.bars.setdefault(bar.symbol, [])
        series[:] = [b for b in series if b.t != bar.t]
        series.append(bar)
        series.sort(key=lambda b: b.t)

    def _remember(self, symbol: str, price: Decimal) -> None:
        self._prices[symbol] = price
        self._prev_close.setdefault(symbol, price)

    def _cross(self, start: datetime, end: datetime) -> None:
        for moment, kind, _session in self.calendar.boundaries(start, end):
            self._now = moment
            if kind == "close":
                self._prev_close.update(self._prices)
            if self.engine is not None:
                self.engine.on_boundary(kind)
        self._now = end
