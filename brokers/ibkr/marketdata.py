"""IbkrBarFeed: closed 1-minute TRADES bars from `reqHistoricalData(keepUpToDate=True)`.

Per symbol: `reqHistoricalDataAsync(contract, "", "1 D", "1 min", "TRADES", useRTH=True,
formatDate=2, keepUpToDate=True)`. The initial answer is the warm-up (the bars already
closed by the clock); afterwards `updateEvent(bars, hasNewBar=True)` means a new bar has
started, so `bars[-2]` is closed. Bars are emitted in (end, symbol) order: a closed bar is
held until every symbol has closed that minute or `grace_seconds` of clock time passed.
After a reconnect (and on 1101, market data lost) every symbol is requested again and
the bars missed in between are emitted (gap fill), never one twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from ib_async import BarData, BarDataList, Contract
from loguru import logger

from brokers.ibkr.mapping import dec
from core.clock import NEW_YORK
from core.domain import Symbol
from core.marketdata.bar import Bar

if TYPE_CHECKING:
    from brokers.ibkr.base import IbkrBase

MINUTE = timedelta(minutes=1)


def bar_from_ib(symbol: str, data: BarData, size: timedelta = MINUTE) -> Bar | None:
    """A Bar with Decimal prices; None when IB's data cannot make a valid bar."""
    moment = data.date
    if not isinstance(moment, datetime):
        if not isinstance(moment, date):
            return None
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=NEW_YORK)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=NEW_YORK)  # formatDate=1 without a zone: exchange time
    prices = [dec(data.open), dec(data.high), dec(data.low), dec(data.close)]
    if any(p is None or p <= 0 for p in prices):
        return None
    o, h, lo, c = (p for p in prices if p is not None)
    try:
        return Bar(
            symbol=Symbol(symbol),
            start=moment,
            size=size,
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=max(0, int(data.volume)),
        )
    except ValueError as exc:
        logger.warning("ibkr: dropping bar {} {}: {}", symbol, moment, exc)
        return None


class IbkrBarFeed:
    """A `core.marketdata.feed.BarFeed`. Iterating starts the subscriptions."""

    def __init__(
        self,
        broker: IbkrBase,
        symbols: Iterable[str],
        *,
        include_warmup: bool = True,
        duration: str = "1 D",
        use_rth: bool = True,
        grace_seconds: float = 5.0,
        history_limit: int = 2000,
    ) -> None:
        self._broker = broker
        self._clock = broker.clock
        self._symbols = frozenset(symbols)
        self._include_warmup = include_warmup
        self._duration = duration
        self._use_rth = use_rth
        self._grace = timedelta(seconds=grace_seconds)
        self._history_limit = history_limit
        self._lists: dict[str, BarDataList] = {}
        self._contracts: dict[str, Contract] = {}
        self._history: dict[str, list[Bar]] = {s: [] for s in self._symbols}
        self._latest_closed: dict[str, datetime] = {}
        self._pending: list[tuple[datetime, str, Bar]] = []
        self._queues: list[asyncio.Queue[Bar | None]] = []
        self._started = False
        self._start_lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._closed = False
        self._holding = False

    @property
    def symbols(self) -> frozenset[str]:
        return self._symbols

    def history(self, symbol: str) -> list[Bar]:
        """Closed bars emitted so far for `symbol` (warm-up included), oldest first."""
        return list(self._history.get(symbol, ()))

    def __aiter__(self) -> AsyncIterator[Bar]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Bar]:
        queue: asyncio.Queue[Bar | None] = asyncio.Queue()
        if self._include_warmup:
            for bar in sorted(
                (b for bars in self._history.values() for b in bars),
                key=lambda b: (b.end, b.symbol),
            ):
                queue.put_nowait(bar)
        self._queues.append(queue)
        try:
            await self.start()
            while (item := await queue.get()) is not None:
                yield item
        finally:
            if queue in self._queues:
                self._queues.remove(queue)

    async def start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            await self._subscribe_all()
            self._started = True
            self._broker.connection.add_resubscriber(self.resubscribe)

    async def resubscribe(self) -> None:
        """Request every symbol again (after a reconnect or 1101) and fill the gap."""
        for symbol in sorted(self._symbols):
            old = self._lists.pop(symbol, None)
            if old is not None:
                old.updateEvent -= self._on_update
                with contextlib.suppress(Exception):
                    self._broker.ib.cancelHistoricalData(old)
        await self._subscribe_all()

    async def _subscribe_all(self) -> None:
        # Hold releases until every symbol's history is in: (end, symbol) order across all.
        self._holding = True
        try:
            for symbol in sorted(self._symbols):
                await self._subscribe(symbol)
        finally:
            self._holding = False
        self._release()

    async def _subscribe(self, symbol: str) -> None:
        contract = await self._broker.contracts.resolve(symbol)
        self._contracts[symbol] = contract
        bars = await self._broker.request(
            lambda: self._broker.ib.reqHistoricalDataAsync(
                contract,
                "",
                self._duration,
                "1 min",
                "TRADES",
                useRTH=self._use_rth,
                formatDate=2,
                keepUpToDate=True,
            ),
            f"bars for {symbol}",
        )
        if not bars:
            logger.warning("ibkr: no bars for {} (no data permission or no session yet)", symbol)
        self._lists[symbol] = bars
        now = self._clock.now()
        for data in bars:
            bar = bar_from_ib(symbol, data)
            if bar is not None and bar.end <= now:
                self._closed_bar(bar)
        bars.updateEvent += self._on_update
        self._release()

    def _on_update(self, bars: BarDataList, has_new_bar: bool) -> None:
        if not has_new_bar or len(bars) < 2 or self._closed:
            return
        symbol = next((s for s, held in self._lists.items() if held is bars), None)
        if symbol is None:
            return
        bar = bar_from_ib(symbol, bars[-2])
        if bar is not None:
            self._closed_bar(bar)
            self._release()

    def _closed_bar(self, bar: Bar) -> None:
        latest = self._latest_closed.get(bar.symbol)
        if latest is not None and bar.end <= latest:
            return  # already emitted (a resubscription repeats the session's bars)
        self._latest_closed[bar.symbol] = bar.end
        heapq.heappush(self._pending, (bar.end, bar.symbol, bar))

    def _release(self) -> None:
        if self._holding:
            return
        now = self._clock.now()
        watermark = (
            min(self._latest_closed[s] for s in self._symbols)
            if all(s in self._latest_closed for s in self._symbols)
            else None
        )
        while self._pending:
            end, _, bar = self._pending[0]
            if not ((watermark is not None and end <= watermark) or end + self._grace <= now):
                break
            heapq.heappop(self._pending)
            self._emit(bar)
        if self._pending and (self._timer is None or self._timer.done()) and not self._closed:
            self._timer = asyncio.ensure_future(self._release_later(self._pending[0][0]))

    async def _release_later(self, end: datetime) -> None:
        await self._clock.sleep_until(end + self._grace)
        self._release()

    def _emit(self, bar: Bar) -> None:
        history = self._history.setdefault(bar.symbol, [])
        history.append(bar)
        del history[: -self._history_limit]
        for queue in self._queues:
            queue.put_nowait(bar)

    async def close(self) -> None:
        self._closed = True
        self._broker.connection.remove_resubscriber(self.resubscribe)
        if self._timer is not None:
            self._timer.cancel()
        for bars in self._lists.values():
            bars.updateEvent -= self._on_update
            with contextlib.suppress(Exception):
                self._broker.ib.cancelHistoricalData(bars)
        for queue in self._queues:
            queue.put_nowait(None)
