"""Indicators of SPEC-signals.md: session VWAP, opening ranges, ATR20 and MA20 (daily).

Each indicator exists in two forms that are proven equal bar for bar by the tests:
- the batch form over a `SessionBlock` (numpy, one row per session);
- the incremental form (`IndicatorState.update`, one bar at a time, plain Python floats).

Float arithmetic (the only place floats are allowed) follows one rule, so that both forms,
and an independent implementation of the spec, get the same bits: every price enters as
the float64 nearest its decimal value, each formula is evaluated left to right as the spec
writes it (`tp = (high + low + close) / 3`, `VWAP = sum(tp * vol) / sum(vol)`), and every
sum is sequential in bar (or session) order, never pairwise. Volumes and running
maxima/minima are exact integers; so are prices (int ten-thousandths).

Opening range reading: OR_N spans the bars starting before open + N minutes and is
defined from the close of the first bar ending at or after open + N (with at least one
bar inside). That is "the last of those bars" whenever it is present; if it is missing,
only a later bar can tell that the range is complete, so OR_N is defined there (no
lookahead). The early-volume window is clock time ([09:30, 10:30) by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from core.calendar import TradingSession
from core.marketdata.block import F64, SessionBlock, clock_seconds, minutes_ns
from core.marketdata.loader import I64, PRICE_SCALE
from core.marketdata.sessions import DailyBars, to_ns
from core.params import SignalParams

_SCALE = float(PRICE_SCALE)


def seconds_of(clock_time: object) -> int:
    """A `datetime.time` as seconds after midnight."""
    return clock_time.hour * 3600 + clock_time.minute * 60 + clock_time.second  # type: ignore[attr-defined, no-any-return]


# --- daily: ATR20, MA20, previous close ------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyLevels:
    """What a session takes from the sessions before it. None while they are missing."""

    prev_close: int | None  # ten-thousandths
    atr20: float | None  # None = warm-up (fewer than `daily_lookback` earlier sessions)
    ma20: float | None

    @property
    def warm_up(self) -> bool:
        return self.atr20 is None


def daily_levels(daily: DailyBars, days: Sequence[int], lookback: int = 20) -> list[DailyLevels]:
    """Levels for sessions on `days` (date ordinals) from the daily bars strictly before.

    TR = max(high - low, |high - prev_close|, |low - prev_close|); the first daily bar of
    the data has no previous close and its TR is high - low. ATR20 and MA20 are the
    sequential float sums of the `lookback` previous sessions (oldest first) / lookback.
    """
    count = np.searchsorted(daily.day, np.asarray(days, dtype=np.int64), side="left")
    high, low, close = (x / _SCALE for x in (daily.high, daily.low, daily.close))
    tr = high - low
    if len(tr) > 1:
        prev = close[:-1]
        tr[1:] = np.maximum(
            np.maximum(high[1:] - low[1:], np.abs(high[1:] - prev)), np.abs(low[1:] - prev)
        )
    atr_sums: F64 = np.empty(0)
    ma_sums: F64 = np.empty(0)
    if len(tr) >= lookback:
        atr_sums = np.cumsum(sliding_window_view(tr, lookback), axis=1)[:, -1]
        ma_sums = np.cumsum(sliding_window_view(close, lookback), axis=1)[:, -1]
    out = []
    for n in count.tolist():
        prev_close = int(daily.close[n - 1]) if n >= 1 else None
        if n >= lookback:
            atr = float(atr_sums[n - lookback]) / lookback
            ma = float(ma_sums[n - lookback]) / lookback
            out.append(DailyLevels(prev_close, atr, ma))
        else:
            out.append(DailyLevels(prev_close, None, None))
    return out


# --- intraday, batch form --------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class OpeningRange:
    high: I64  # (S, B) ten-thousandths, running over the bars starting before open + N
    low: I64
    defined: NDArray[np.bool_]  # from the close of the first bar ending at/after open + N


@dataclass(frozen=True, slots=True, eq=False)
class IndicatorArrays:
    """Per bar (S, B): what the regime and the signal read."""

    vwap: F64
    above: NDArray[np.bool_]  # close > VWAP (a bar with close == VWAP is not above)
    sign: NDArray[np.int8]  # sign(close - VWAP)
    cum_volume: I64
    high_max: I64  # running max high (ten-thousandths)
    low_min: I64
    early_volume: I64  # running volume of bars starting in the early-volume window
    clock: I64  # seconds after New York midnight of each bar start
    opening_ranges: dict[int, OpeningRange]


def compute_indicators(block: SessionBlock, params: SignalParams) -> IndicatorArrays:
    high, low, close = block.floats(block.high), block.floats(block.low), block.floats(block.close)
    tp = (high + low + close) / 3
    pv = tp * block.volume.astype(np.float64)
    cum_pv = np.cumsum(pv, axis=1)  # sequential along each row: bar order
    cum_volume = np.cumsum(block.volume, axis=1)
    vwap = tp.copy()
    has_volume = cum_volume > 0
    np.divide(cum_pv, cum_volume, out=vwap, where=has_volume)
    above = close > vwap
    sign = (above.astype(np.int8) - (close < vwap).astype(np.int8)).astype(np.int8)

    clock = block.clock()
    early_start, early_end = (seconds_of(t) for t in params.early_volume_window)
    early = (clock >= early_start) & (clock < early_end)
    early_volume = np.cumsum(np.where(early, block.volume, 0), axis=1)

    end_ns = block.start_ns + block.bar_ns[:, None]
    ranges: dict[int, OpeningRange] = {}
    for minutes in params.or_minutes:
        cutoff = block.open_ns[:, None] + minutes_ns(minutes)
        inside = (block.start_ns < cutoff) & block.valid
        hi = np.maximum.accumulate(np.where(inside, block.high, np.iinfo(np.int64).min), axis=1)
        lo = np.minimum.accumulate(np.where(inside, block.low, np.iinfo(np.int64).max), axis=1)
        seen = np.logical_or.accumulate(inside, axis=1)
        ranges[minutes] = OpeningRange(hi, lo, seen & (end_ns >= cutoff) & block.valid)

    return IndicatorArrays(
        vwap=vwap,
        above=above,
        sign=sign,
        cum_volume=cum_volume,
        high_max=np.maximum.accumulate(block.high, axis=1),
        low_min=np.minimum.accumulate(block.low, axis=1),  # padding sits after the bars
        early_volume=early_volume,
        clock=clock,
        opening_ranges=ranges,
    )


# --- intraday, incremental form ---------------------------------------------------------


class IndicatorState:
    """The same indicators, one bar at a time, for one symbol and one session."""

    __slots__ = (
        "_cum_pv",
        "_early",
        "_open_clock",
        "_open_ns",
        "_or_cutoffs",
        "above",
        "bar_count",
        "clock",
        "cum_volume",
        "early_volume",
        "high_max",
        "low_min",
        "or_defined",
        "or_high",
        "or_low",
        "sign",
        "vwap",
    )

    def __init__(self, session: TradingSession, params: SignalParams) -> None:
        self._open_ns = to_ns(session.open)
        self._open_clock = clock_seconds(session)
        self._early = tuple(seconds_of(t) for t in params.early_volume_window)
        self._or_cutoffs = {n: self._open_ns + minutes_ns(n) for n in params.or_minutes}
        self._cum_pv = 0.0
        self.cum_volume = 0
        self.early_volume = 0
        self.bar_count = 0
        self.vwap = 0.0
        self.above = False
        self.sign = 0
        self.clock = 0
        self.high_max = 0
        self.low_min = 0
        self.or_high: dict[int, int] = {}
        self.or_low: dict[int, int] = {}
        self.or_defined: dict[int, bool] = dict.fromkeys(params.or_minutes, False)

    def update(
        self, start_ns: int, bar_ns: int, high: int, low: int, close: int, volume: int
    ) -> None:
        """Advance by one closed bar (prices in ten-thousandths)."""
        close_f = close / _SCALE
        tp = (high / _SCALE + low / _SCALE + close_f) / 3
        self._cum_pv += tp * float(volume)
        self.cum_volume += volume
        self.vwap = self._cum_pv / self.cum_volume if self.cum_volume > 0 else tp
        self.above = close_f > self.vwap
        self.sign = 1 if self.above else (-1 if close_f < self.vwap else 0)
        self.clock = self._open_clock + (start_ns - self._open_ns) // 1_000_000_000
        if self._early[0] <= self.clock < self._early[1]:
            self.early_volume += volume
        if self.bar_count == 0:
            self.high_max, self.low_min = high, low
        else:
            self.high_max = max(self.high_max, high)
            self.low_min = min(self.low_min, low)
        for minutes, cutoff in self._or_cutoffs.items():
            if start_ns < cutoff:
                self.or_high[minutes] = max(self.or_high.get(minutes, high), high)
                self.or_low[minutes] = min(self.or_low.get(minutes, low), low)
            if minutes in self.or_high and start_ns + bar_ns >= cutoff:
                self.or_defined[minutes] = True
        self.bar_count += 1
