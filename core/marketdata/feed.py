"""The `BarFeed` protocol: an async stream of CLOSED bars for a set of symbols.

A feed yields each bar once it is known, i.e. when its clock reaches `bar.end`
(start + size); bars come in `(end, symbol)` order. Live adapters (Alpaca, IBKR) and the
replay feed implement it; consumers (the radar, the SimBroker) never know which one runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from core.marketdata.bar import Bar


@runtime_checkable
class BarFeed(Protocol):
    @property
    def symbols(self) -> frozenset[str]:
        """The symbols this feed delivers."""
        ...

    def __aiter__(self) -> AsyncIterator[Bar]:
        """Closed bars, each emitted at (clock) time `bar.end`, in (end, symbol) order."""
        ...
