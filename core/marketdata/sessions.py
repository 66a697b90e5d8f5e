"""Grouping bars into XNYS sessions, the padded session block, and daily bars.

Readings (SPEC-signals.md "Bars and sessions"):
- a bar belongs to the session of its New York date when `open <= start` and
  `start + size <= close`; every other bar (pre/after hours, a non-session day, a bar
  running past a half-day close) is skipped and counted, never an error;
- the bar size of a file is the most common step between consecutive bars of one day
  (ties: the smaller step); a file with no two bars on one day needs an explicit size;
- a session with no bar left is not a session of the data (it does not count for warm-up).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

from core.calendar import CalendarRangeError, TradingCalendar, TradingSession, xnys
from core.domain import Symbol
from core.marketdata.bar import Bar
from core.marketdata.errors import DataError
from core.marketdata.loader import (
    I64,
    PRICE_SCALE,
    RawBars,
    RawDaily,
    discover,
    read_daily,
    read_intraday,
)

NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S
NS_PER_DAY = 86_400 * NS_PER_S
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Any bar of a regular session (09:30-16:00 New York, UTC-5 or UTC-4) shifted by -5 h lands
# on its own New York date, so grouping needs no timezone conversion per bar.
_GROUP_SHIFT_NS = 5 * 3600 * NS_PER_S
_SCALE = Decimal(PRICE_SCALE)


def to_ns(moment: datetime) -> int:
    """Aware datetime -> int UTC epoch nanoseconds (exact, no float)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def from_ns(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def price(ticks: int) -> Decimal:
    """Ten-thousandths -> the exact Decimal price with 4 places."""
    return Decimal(ticks) / _SCALE


def ticks(value: Decimal) -> int:
    """Exact Decimal price -> ten-thousandths (refuses more than 4 decimals)."""
    scaled = value * _SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"price {value} has more than 4 decimals")
    return int(scaled)


@dataclass(frozen=True, slots=True, eq=False)
class SessionBars:
    """The bars of one symbol in one session, as exact arrays (prices in ten-thousandths)."""

    symbol: str
    session: TradingSession
    bar_ns: int
    start_ns: I64
    open: I64
    high: I64
    low: I64
    close: I64
    volume: I64
    lines: I64 | None = None

    def __len__(self) -> int:
        return len(self.start_ns)

    @property
    def day(self) -> date:
        return self.session.day

    @property
    def bar_size(self) -> timedelta:
        return timedelta(microseconds=self.bar_ns // 1000)

    def head(self, n: int) -> SessionBars:
        """The first n bars (what was known at the close of bar n - 1)."""
        lines = None if self.lines is None else self.lines[:n]
        return SessionBars(
            self.symbol,
            self.session,
            self.bar_ns,
            self.start_ns[:n],
            self.open[:n],
            self.high[:n],
            self.low[:n],
            self.close[:n],
            self.volume[:n],
            lines,
        )

    def bar(self, k: int) -> Bar:
        return Bar(
            symbol=Symbol(self.symbol),
            start=from_ns(int(self.start_ns[k])).astimezone(self.session.open.tzinfo),
            size=self.bar_size,
            open=price(int(self.open[k])),
            high=price(int(self.high[k])),
            low=price(int(self.low[k])),
            close=price(int(self.close[k])),
            volume=int(self.volume[k]),
        )

    def bars(self) -> list[Bar]:
        return [self.bar(k) for k in range(len(self))]

    @staticmethod
    def from_bars(bars: Sequence[Bar], session: TradingSession) -> SessionBars:
        """Arrays from Bar objects (all of one symbol, one session, one size)."""
        if not bars:
            raise ValueError("a session needs at least one bar")

        def col(name: str) -> I64:
            return np.asarray([ticks(getattr(b, name)) for b in bars], dtype=np.int64)

        return SessionBars(
            bars[0].symbol,
            session,
            bars[0].size // timedelta(microseconds=1) * 1000,
            np.asarray([to_ns(b.start) for b in bars], dtype=np.int64),
            col("open"),
            col("high"),
            col("low"),
            col("close"),
            np.asarray([b.volume for b in bars], dtype=np.int64),
        )


@dataclass(frozen=True, slots=True, eq=False)
class SymbolSessions:
    """Every session of one symbol in one file, plus what was skipped and why."""

    symbol: str
    path: Path | None
    bar_ns: int
    sessions: list[SessionBars]
    skipped_outside: int = 0
    skipped_lines: list[int] = field(default_factory=list)  # the first few, for messages

    @property
    def n_bars(self) -> int:
        return sum(len(s) for s in self.sessions)


def infer_bar_ns(start_ns: I64, path: Path) -> int:
    """The most common step between consecutive bars of one day (ties: the smaller)."""
    day = (start_ns - _GROUP_SHIFT_NS) // NS_PER_DAY
    steps = np.diff(start_ns)[np.diff(day) == 0]
    if len(steps) == 0:
        raise DataError(path, None, "cannot infer the bar size: no two bars share a day")
    values, counts = np.unique(steps, return_counts=True)
    return int(values[int(np.argmax(counts))])  # argmax takes the first (smallest) on ties


def group_sessions(
    raw: RawBars, calendar: TradingCalendar | None = None, bar_ns: int | None = None
) -> SymbolSessions:
    """Split a file's bars into sessions; bars outside a session are skipped and counted."""
    calendar = calendar or xnys()
    size = bar_ns if bar_ns is not None else infer_bar_ns(raw.start_ns, raw.path)
    day_key = (raw.start_ns - _GROUP_SHIFT_NS) // NS_PER_DAY
    cuts = np.flatnonzero(np.diff(day_key)) + 1
    bounds = [0, *cuts.tolist(), len(day_key)]
    sessions: list[SessionBars] = []
    skipped = 0
    skipped_lines: list[int] = []
    for a, b in itertools.pairwise(bounds):
        day = date.fromordinal(_EPOCH_ORDINAL + int(day_key[a]))
        try:
            session = calendar.session(day)
        except CalendarRangeError as exc:
            raise DataError(raw.path, int(raw.lines[a]), str(exc)) from None
        starts = raw.start_ns[a:b]
        if session is None:
            keep = np.zeros(b - a, dtype=bool)
        else:
            keep = (starts >= to_ns(session.open)) & (starts + size <= to_ns(session.close))
        if not keep.all():
            skipped += int((~keep).sum())
            skipped_lines += raw.lines[a:b][~keep][: max(0, 5 - len(skipped_lines))].tolist()
        if session is None or not keep.any():
            continue
        idx = np.flatnonzero(keep) + a
        if keep.all():
            idx = slice(a, b)  # type: ignore[assignment]  # a view, no copy
        sessions.append(
            SessionBars(
                raw.symbol,
                session,
                size,
                raw.start_ns[idx],
                raw.open[idx],
                raw.high[idx],
                raw.low[idx],
                raw.close[idx],
                raw.volume[idx],
                raw.lines[idx],
            )
        )
    return SymbolSessions(raw.symbol, raw.path, size, sessions, skipped, skipped_lines)


def load_symbol(path: Path, calendar: TradingCalendar | None = None) -> SymbolSessions:
    return group_sessions(read_intraday(path), calendar)


def load_folder(
    folder: Path, symbols: Sequence[str] | None = None, calendar: TradingCalendar | None = None
) -> dict[str, SymbolSessions]:
    """Every (or the selected) symbol of a folder, one file per symbol."""
    files = select_files(folder, symbols)
    return {symbol: load_symbol(path, calendar) for symbol, path in files.items()}


def select_files(folder: Path, symbols: Sequence[str] | None) -> dict[str, Path]:
    """Symbol -> file; requested symbols match file names case-insensitively."""
    files = discover(folder)
    if not symbols:
        return files
    by_upper = {s.upper(): s for s in files}
    missing = [s for s in symbols if s.upper() not in by_upper]
    if missing:
        raise DataError(
            folder,
            None,
            f"no file for symbol(s) {', '.join(missing)} (have {', '.join(sorted(files))})",
        )
    return {by_upper[s.upper()]: files[by_upper[s.upper()]] for s in symbols}


@dataclass(frozen=True, slots=True, eq=False)
class DailyBars:
    """Daily OHLCV of one symbol in day order; `day` is the date's ordinal (int64)."""

    symbol: str
    day: I64
    open: I64
    high: I64
    low: I64
    close: I64
    volume: I64

    def __len__(self) -> int:
        return len(self.day)

    @staticmethod
    def from_sessions(sessions: Sequence[SessionBars]) -> DailyBars:
        """Open of first bar, max high, min low, close of last bar, sum of volume."""
        symbol = sessions[0].symbol if sessions else ""

        def col(values: list[int]) -> I64:
            return np.asarray(values, dtype=np.int64)

        return DailyBars(
            symbol,
            col([s.day.toordinal() for s in sessions]),
            col([int(s.open[0]) for s in sessions]),
            col([int(s.high.max()) for s in sessions]),
            col([int(s.low.min()) for s in sessions]),
            col([int(s.close[-1]) for s in sessions]),
            col([int(s.volume.sum()) for s in sessions]),
        )

    @staticmethod
    def from_raw(raw: RawDaily) -> DailyBars:
        return DailyBars(
            raw.symbol,
            raw.day + _EPOCH_ORDINAL,
            raw.open,
            raw.high,
            raw.low,
            raw.close,
            raw.volume,
        )

    @staticmethod
    def load(path: Path) -> DailyBars:
        return DailyBars.from_raw(read_daily(path))
