"""The one bar type shared by replay, live feeds, the radar and the backtester."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core.clock import ensure_aware
from core.domain import Symbol


@dataclass(frozen=True, slots=True)
class Bar:
    """A closed OHLCV bar, labelled by its START; it is known at `end` (start + size).

    Prices keep the file's (or the API's) exact decimals so that fills compare levels with
    prices exactly; indicators convert to float internally.
    """

    symbol: Symbol
    start: datetime
    size: timedelta
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    def __post_init__(self) -> None:
        ensure_aware(self.start)
        if not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            raise ValueError(
                f"{self.symbol} bar {self.start.isoformat()}: OHLC inconsistent "
                f"(o={self.open} h={self.high} l={self.low} c={self.close})"
            )
        if self.volume < 0:
            raise ValueError(f"{self.symbol} bar {self.start.isoformat()}: negative volume")

    @property
    def end(self) -> datetime:
        return self.start + self.size
