"""Stub factories for bars, sessions and scenario data (market math fixtures).

Prices are written as strings or Decimals ("100.25"): the tests speak in exact prices.
Sessions default to a normal XNYS day (2024-03-14) and 1-minute bars from the open.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

from core.calendar import TradingSession, xnys
from core.domain import Symbol
from core.indicators import DailyLevels
from core.marketdata.bar import Bar
from core.marketdata.sessions import NS_PER_MIN, SessionBars, ticks, to_ns
from core.marketdata.synthetic import ScenarioData, generate_scenario, write_folder

DAY = date(2024, 3, 14)
HALF_DAY = date(2024, 11, 29)

Row = tuple[str | Decimal, str | Decimal, str | Decimal, str | Decimal, int]


def session_of(day: date = DAY) -> TradingSession:
    return xnys().require_session(day)


def make_session(
    rows: Sequence[Row],
    *,
    day: date = DAY,
    symbol: str = "TEST",
    minutes: int = 1,
    offsets: Sequence[int] | None = None,
) -> SessionBars:
    """A session from (open, high, low, close, volume) rows, one bar per `minutes`.

    `offsets` (in bars from the open) places bars explicitly, to leave gaps.
    """
    session = session_of(day)
    places = list(offsets) if offsets is not None else list(range(len(rows)))
    starts = to_ns(session.open) + np.asarray(places, dtype=np.int64) * minutes * NS_PER_MIN

    def col(k: int) -> np.ndarray:
        return np.asarray([ticks(Decimal(str(r[k]))) for r in rows], dtype=np.int64)

    return SessionBars(
        symbol,
        session,
        minutes * NS_PER_MIN,
        starts,
        col(0),
        col(1),
        col(2),
        col(3),
        np.asarray([r[4] for r in rows], dtype=np.int64),
    )


def flat_rows(n: int, price: str = "100.00", volume: int = 1000) -> list[Row]:
    return [(price, price, price, price, volume)] * n


def make_bar(
    start_minute: int,
    o: str,
    h: str,
    lo: str,
    c: str,
    volume: int = 1000,
    *,
    day: date = DAY,
    symbol: str = "TEST",
    minutes: int = 1,
) -> Bar:
    session = session_of(day)
    return Bar(
        symbol=Symbol(symbol),
        start=session.open + timedelta(minutes=start_minute),
        size=timedelta(minutes=minutes),
        open=Decimal(o),
        high=Decimal(h),
        low=Decimal(lo),
        close=Decimal(c),
        volume=volume,
    )


def labelled_levels(
    atr20: float = 1.0, ma20: float = 100.0, prev_close: str = "100.00"
) -> DailyLevels:
    """Levels of a session past its warm-up (ATR20 and MA20 exist)."""
    return DailyLevels(ticks(Decimal(prev_close)), atr20, ma20)


WARM_UP = DailyLevels(None, None, None)


def scenario(name: str, *, seed: int = 0, symbol: str = "DEMO", minutes: int = 1) -> ScenarioData:
    return generate_scenario(name, seed=seed, symbol=symbol, bar_minutes=minutes)


def scenario_folder(folder: Path, names: dict[str, str], *, seed: int = 0) -> Path:
    """Write one CSV per symbol (symbol -> scenario name) and return the folder."""
    data = {sym: scenario(name, seed=seed, symbol=sym).sessions for sym, name in names.items()}
    write_folder(folder, data)
    return folder
