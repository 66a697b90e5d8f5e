"""What the engine knows about the market: the last bar and recent bars per symbol.

The engine never fetches market data itself; a provider is injected. `BarMemory` is the
default: the live feed (or a replay) hands every closed bar to `TradingEngine.note_bar`,
which stores it here. The trail policy reads `recent_bars` (prior sessions' noise); the
bot reads `last_bar` to compute trigger presets.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from core.marketdata.bar import Bar


@runtime_checkable
class MarketState(Protocol):
    def last_bar(self, symbol: str) -> Bar | None: ...

    def recent_bars(self, symbol: str) -> Sequence[Bar]:
        """Bars of the last sessions (for the trail policy); may be empty."""
        ...


class BarMemory:
    """Keeps the last `max_bars` bars per symbol (about ten 1-minute sessions)."""

    def __init__(self, max_bars: int = 4000) -> None:
        self._max = max_bars
        self._bars: dict[str, deque[Bar]] = {}

    def add(self, bar: Bar) -> None:
        bars = self._bars.setdefault(bar.symbol.upper(), deque(maxlen=self._max))
        if bars and bar.start <= bars[-1].start:
            return  # a replayed or duplicate bar: keep time moving forward
        bars.append(bar)

    def extend(self, bars: Iterable[Bar]) -> None:
        for bar in bars:
            self.add(bar)

    def last_bar(self, symbol: str) -> Bar | None:
        bars = self._bars.get(symbol.upper())
        return bars[-1] if bars else None

    def recent_bars(self, symbol: str) -> Sequence[Bar]:
        return tuple(self._bars.get(symbol.upper(), ()))


__all__ = ["BarMemory", "MarketState"]
