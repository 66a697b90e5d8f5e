"""Replay recorded bars (the `../shared/data` format) as a `BarFeed` driven by a Clock.

Everything is read and validated when the feed is built (`ReplayFeed.from_folder`), so a
bad file fails before the first bar with a `DataError` naming file and line, and nothing
can crash mid-run. Then each bar is emitted when the injected clock reaches `bar.end`
(`clock.sleep_until`): a `SimClock` run at real pace, N x, or as fast as possible
(`SimClock.run(None)`) drives the replay; so does a `LiveClock` (real time).
Bars outside their session are skipped and counted (`skipped`, per symbol).
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path

from core.calendar import TradingCalendar
from core.clock import Clock
from core.marketdata.bar import Bar
from core.marketdata.sessions import SessionBars, SymbolSessions, load_folder


class ReplayFeed:
    """A multi-symbol replay of recorded sessions."""

    def __init__(
        self,
        data: Mapping[str, SymbolSessions],
        clock: Clock,
        *,
        start: date | None = None,
        end: date | None = None,
    ) -> None:
        self._clock = clock
        self._sessions: dict[str, list[SessionBars]] = {
            symbol: [
                s
                for s in series.sessions
                if (start is None or s.day >= start) and (end is None or s.day <= end)
            ]
            for symbol, series in data.items()
        }
        self.skipped: dict[str, int] = {s: d.skipped_outside for s, d in data.items()}

    @classmethod
    def from_folder(
        cls,
        folder: Path,
        clock: Clock,
        symbols: Sequence[str] | None = None,
        *,
        start: date | None = None,
        end: date | None = None,
        calendar: TradingCalendar | None = None,
    ) -> ReplayFeed:
        return cls(load_folder(folder, symbols, calendar), clock, start=start, end=end)

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._sessions)

    def sessions(self, symbol: str) -> list[SessionBars]:
        return list(self._sessions[symbol])

    def _ordered(self) -> Iterator[tuple[int, str, SessionBars, int]]:
        """(end ns, symbol, session, index) of every bar, merged in (end, symbol) order."""

        def one(symbol: str) -> Iterator[tuple[int, str, SessionBars, int]]:
            for session in self._sessions[symbol]:
                ends = (session.start_ns + session.bar_ns).tolist()
                for k, end_ns in enumerate(ends):
                    yield end_ns, symbol, session, k

        return heapq.merge(*(one(s) for s in sorted(self._sessions)), key=lambda t: t[:2])

    def __len__(self) -> int:
        return sum(len(s) for sessions in self._sessions.values() for s in sessions)

    async def __aiter__(self) -> AsyncIterator[Bar]:
        for _, _, session, k in self._ordered():
            bar = session.bar(k)
            await self._clock.sleep_until(bar.end)
            yield bar
