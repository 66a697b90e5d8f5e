"""Sessions of one symbol laid out as padded 2-D arrays, the input of the batch path.

Row s is session s, column k its k-th bar PRESENT in the data (missing bars are not
filled, SPEC "Time and bars"); rows shorter than the longest are padded at the END with
zeros, so every prefix computation along a row (cumulative sums in bar order, running
max/min) is exactly what the same session alone would give. `valid` marks real bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray

from core.calendar import TradingSession
from core.marketdata.loader import I64, PRICE_SCALE
from core.marketdata.sessions import NS_PER_S, DailyBars, SessionBars, to_ns

F64 = NDArray[np.float64]
B = NDArray[np.bool_]


def clock_seconds(session: TradingSession) -> int:
    """Seconds after New York midnight of the session open (09:30 -> 34200)."""
    wall = session.open.timetz()
    return wall.hour * 3600 + wall.minute * 60 + wall.second


@dataclass(frozen=True, slots=True, eq=False)
class SessionBlock:
    symbol: str
    sessions: tuple[TradingSession, ...]
    lengths: I64  # (S,) bars per session
    bar_ns: I64  # (S,) bar size
    open_ns: I64  # (S,) session open, UTC epoch ns
    close_ns: I64  # (S,)
    open_clock: I64  # (S,) seconds after New York midnight of the session open
    start_ns: I64  # (S, B) bar starts
    open: I64  # (S, B) ten-thousandths
    high: I64
    low: I64
    close: I64
    volume: I64
    valid: NDArray[np.bool_]  # (S, B)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.lengths), self.start_ns.shape[1])

    @property
    def n_bars(self) -> int:
        return int(self.lengths.sum())

    def floats(self, prices: I64) -> F64:
        """Each price as the float64 nearest its decimal value (== float(Decimal(...)))."""
        return prices / float(PRICE_SCALE)

    def clock(self) -> I64:
        """(S, B) seconds after New York midnight of each bar START.

        A regular session never spans a DST switch, so open clock + elapsed is exact.
        """
        return self.open_clock[:, None] + (self.start_ns - self.open_ns[:, None]) // NS_PER_S

    def daily(self) -> DailyBars:
        """Daily bars of the sessions: open of first, max high, min low, close of last, sum."""
        rows = np.arange(len(self.lengths))
        big = np.iinfo(np.int64).max
        return DailyBars(
            self.symbol,
            np.asarray([m.day.toordinal() for m in self.sessions], dtype=np.int64),
            self.open[:, 0].copy(),
            self.high.max(axis=1),  # padding is 0, never above a real high
            np.where(self.valid, self.low, big).min(axis=1),
            self.close[rows, self.lengths - 1],
            self.volume.sum(axis=1),
        )

    @staticmethod
    def from_sessions(sessions: Sequence[SessionBars], symbol: str | None = None) -> SessionBlock:
        if not sessions:
            raise ValueError("a block needs at least one session")
        lengths = np.asarray([len(s) for s in sessions], dtype=np.int64)
        if (lengths == 0).any():
            raise ValueError("every session of a block needs at least one bar")
        width = int(lengths.max())
        rows = np.repeat(np.arange(len(sessions)), lengths)
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        cols = np.arange(int(lengths.sum())) - np.repeat(offsets, lengths)

        flat = rows * width + cols

        def lay(name: str) -> I64:
            out = np.zeros(len(sessions) * width, dtype=np.int64)
            out[flat] = np.concatenate([getattr(s, name) for s in sessions])
            return out.reshape(len(sessions), width)

        marks = np.zeros(len(sessions) * width, dtype=bool)
        marks[flat] = True
        valid = marks.reshape(len(sessions), width)
        meta = [s.session for s in sessions]
        return SessionBlock(
            symbol=symbol or sessions[0].symbol,
            sessions=tuple(meta),
            lengths=lengths,
            bar_ns=np.asarray([s.bar_ns for s in sessions], dtype=np.int64),
            open_ns=np.asarray([to_ns(m.open) for m in meta], dtype=np.int64),
            close_ns=np.asarray([to_ns(m.close) for m in meta], dtype=np.int64),
            open_clock=np.asarray([clock_seconds(m) for m in meta], dtype=np.int64),
            start_ns=lay("start_ns"),
            open=lay("open"),
            high=lay("high"),
            low=lay("low"),
            close=lay("close"),
            volume=lay("volume"),
            valid=valid,
        )


def minutes_ns(minutes: float) -> int:
    return int(timedelta(minutes=minutes) / timedelta(microseconds=1)) * 1000
