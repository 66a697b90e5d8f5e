"""Seeded, deterministic synthetic sessions: the project's fixtures and the demo's data.

Named scenarios (one symbol, one real XNYS session, 1-minute bars, optionally 5-minute):
- `trend_up_pullback`: climbs, pulls back cleanly to VWAP around 10:10-10:25, reclaims it
  (the VWAP pullback reclaim fires once, its stop-buy fills on the next bar), climbs on;
- `trend_down`: sells off all day below VWAP;
- `choppy_range`: oscillates around VWAP, crossing it many times;
- `gap_and_fade`: gaps up ~1.5 % and fades below VWAP all day (a trend_down label);
- `event_burst`: a quiet day with a volatility and volume burst at 10:00-10:20 (label
  `event` when the events file lists the day);
- `half_day`: a trend-up half session (closes 13:00).
`warmup_sessions` makes the random-walk sessions before the scenario day (ATR20 / MA20
need 20) with a daily range near 1.2 %. Prices sit on the 0.01 tick, volume is U-shaped.
The generator steers bars against the running VWAP (computed with the indicator formula),
so the intended label does not depend on luck; the tests assert every label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from core.calendar import TradingCalendar, TradingSession, xnys
from core.clock import NEW_YORK
from core.marketdata.sessions import NS_PER_MIN, SessionBars, from_ns, to_ns

SCENARIOS = (
    "trend_up_pullback",
    "trend_down",
    "choppy_range",
    "gap_and_fade",
    "event_burst",
    "half_day",
)
DEFAULT_DAYS = {
    "trend_up_pullback": date(2024, 3, 14),
    "trend_down": date(2024, 4, 16),
    "choppy_range": date(2024, 5, 8),
    "gap_and_fade": date(2024, 4, 30),
    "event_burst": date(2024, 3, 12),
    "half_day": date(2024, 11, 29),
}
_CENTS_TO_TICKS = 100  # one cent is 100 ten-thousandths


class _Builder:
    """Appends bars in cents and keeps the running VWAP exactly as the indicators do."""

    def __init__(self, volumes: np.ndarray, rng: np.random.Generator) -> None:
        self.volumes = volumes
        self.rng = rng
        self.rows: list[tuple[int, int, int, int]] = []
        self._pv = 0.0
        self._v = 0
        self.vwap = math.nan

    @property
    def k(self) -> int:
        return len(self.rows)

    @property
    def last_close(self) -> float:
        return self.rows[-1][3] / 100

    def add(self, o: float, h: float, lo: float, c: float) -> None:
        oc, hc, lc, cc = (round(x * 100) for x in (o, h, lo, c))
        hc = max(hc, oc, cc)
        lc = max(1, min(lc, oc, cc))
        self.rows.append((oc, hc, lc, cc))
        tp = (hc / 100 + lc / 100 + cc / 100) / 3
        vol = int(self.volumes[self.k - 1])
        self._pv += tp * float(vol)
        self._v += vol
        self.vwap = self._pv / self._v if self._v else tp

    def wick(self, price: float, scale: float) -> float:
        return abs(float(self.rng.normal(0.0, scale))) * price


def _u_volume(n: int, rng: np.random.Generator, base: int) -> np.ndarray:
    x = np.linspace(-1.0, 1.0, n)
    shape = 0.55 + 2.2 * x**2
    noise = rng.lognormal(0.0, 0.25, n)
    return np.maximum(100, (base * shape * noise).astype(np.int64))


def _walk(b: _Builder, n: int, start: float, sigma: float, drift: float = 0.0) -> None:
    """Free random-walk bars (warm-up days, quiet stretches)."""
    price = start
    for _ in range(n):
        o = b.last_close if b.rows else start
        price = o * (1 + drift + float(b.rng.normal(0.0, sigma)))
        b.add(o, max(o, price) + b.wick(o, sigma / 2), min(o, price) - b.wick(o, sigma / 2), price)


def _trend(b: _Builder, n: int, target: float, side: int, sigma: float, margin: float) -> None:
    """Bars walking toward `target`, kept entirely on one side of VWAP (side +1 / -1)."""
    steps = n
    for _ in range(n):
        o = b.last_close
        c = o + (target - o) / steps + float(b.rng.normal(0.0, sigma)) * o
        steps = max(1, steps - 1)
        if side > 0:
            floor = b.vwap * (1 + margin)
            c = max(c, floor + 0.02)
            lo = max(min(o, c) - b.wick(o, sigma / 2), floor)
            h = max(o, c) + 0.01 * float(b.rng.integers(0, 2))
        else:
            cap = b.vwap * (1 - margin)
            c = min(c, cap - 0.02)
            h = min(max(o, c) + b.wick(o, sigma / 2), cap)
            lo = min(o, c) - 0.01 * float(b.rng.integers(0, 2))
        b.add(o, h, lo, c)


def _opening(b: _Builder, open_price: float, side: int) -> None:
    """Bar 0 closing at its extreme, so it is already on the trend's side of VWAP."""
    o = open_price
    c = o * (1 + side * 0.0012)
    b.add(o, max(o, c) + (0.01 if side < 0 else 0.0), min(o, c) - (0.01 if side > 0 else 0), c)


def _trend_up_pullback(b: _Builder, n: int, p0: float) -> None:
    _opening(b, p0, +1)
    _trend(b, 39, p0 * 1.011, +1, 0.0002, 0.0015)  # 09:31-10:09 climb
    peak = b.last_close
    for k in range(15):  # 10:10-10:24: an orderly pullback toward VWAP, lows above the band
        o = b.last_close
        goal = b.vwap * 1.004 + (peak - b.vwap * 1.004) * (1 - (k + 1) / 15)
        c = max(min(o - 0.01, goal), b.vwap * 1.0035)
        b.add(o, o + 0.01, max(c - 0.01, b.vwap * 1.0025), c)
    o = b.last_close  # 10:25, P: touches VWAP, closes well above it (a hammer)
    b.add(o, o + 0.01, b.vwap * 0.9998, min(o - 0.01, b.vwap * 1.0030))
    o = b.last_close  # 10:26, i: a rising bar that reclaims
    b.add(o, o + 0.12, o - 0.01, o + 0.10)
    o = b.last_close  # 10:27: trades through the trigger
    b.add(o, o + 0.15, o - 0.01, o + 0.13)
    _trend(b, n - b.k, b.last_close * 1.012, +1, 0.0002, 0.0025)


def _choppy(b: _Builder, n: int, p0: float) -> None:
    b.add(p0, p0 + 0.02, p0 - 0.02, p0)
    for k in range(1, n):
        o = b.last_close
        c = p0 * (1 + 0.004 * math.sin(2 * math.pi * k / 37)) + float(b.rng.normal(0, 0.0004)) * p0
        b.add(o, max(o, c) + b.wick(o, 0.0002), min(o, c) - b.wick(o, 0.0002), c)


def _event_burst(b: _Builder, n: int, p0: float) -> None:
    _walk(b, 30, p0, 0.0003)
    for _ in range(20):  # 10:00-10:20: +-1 % swings on heavy volume
        o = b.last_close
        c = o * (1 + float(b.rng.normal(0.0, 0.004)))
        b.add(o, max(o, c) + b.wick(o, 0.002), min(o, c) - b.wick(o, 0.002), c)
    _walk(b, n - b.k, b.last_close, 0.0003)


def _steady(b: _Builder, n: int, p0: float, side: int, move: float) -> None:
    """A whole-day trend: bar 0 at its extreme, then bars kept on one side of VWAP."""
    _opening(b, p0, side)
    _trend(b, n - 1, p0 * (1 + move), side, 2e-4 if side > 0 else 3e-4, 2e-3)


def _build(scenario: str, b: _Builder, n: int, p0: float) -> None:
    makers: dict[str, Callable[[], None]] = {
        "trend_up_pullback": lambda: _trend_up_pullback(b, n, p0),
        "trend_down": lambda: _steady(b, n, p0, -1, -0.025),
        "choppy_range": lambda: _choppy(b, n, p0),
        "gap_and_fade": lambda: _steady(b, n, p0, -1, -0.018),
        "event_burst": lambda: _event_burst(b, n, p0),
        "half_day": lambda: _steady(b, n, p0, +1, 0.012),
    }
    if scenario not in makers:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    makers[scenario]()


def _session_bars(
    symbol: str, session: TradingSession, rows: list[tuple[int, int, int, int]], vols: np.ndarray
) -> SessionBars:
    cents = np.asarray(rows, dtype=np.int64) * _CENTS_TO_TICKS
    starts = to_ns(session.open) + np.arange(len(rows), dtype=np.int64) * NS_PER_MIN
    return SessionBars(
        symbol,
        session,
        NS_PER_MIN,
        starts,
        cents[:, 0].copy(),
        cents[:, 1].copy(),
        cents[:, 2].copy(),
        cents[:, 3].copy(),
        vols[: len(rows)].astype(np.int64),
    )


def _minutes(session: TradingSession) -> int:
    return int((session.close - session.open) / timedelta(minutes=1))


def _rng(seed: int, tag: str, day: date) -> np.random.Generator:
    return np.random.default_rng([seed, sum(map(ord, tag)), day.toordinal()])


def generate_session(
    scenario: str,
    day: date,
    *,
    symbol: str = "DEMO",
    open_price: float = 100.0,
    seed: int = 0,
    bar_minutes: int = 1,
    calendar: TradingCalendar | None = None,
) -> SessionBars:
    """One scenario session on `day` (a real XNYS session), opening at `open_price`."""
    session = (calendar or xnys()).require_session(day)
    if scenario == "half_day" and not session.is_half_day:
        raise ValueError(f"{day} is not a half day")
    n = _minutes(session)
    rng = _rng(seed, scenario, day)
    volumes = _u_volume(n, rng, 40_000)
    if scenario == "event_burst":
        volumes[30:50] *= 5
    builder = _Builder(volumes, rng)
    _build(scenario, builder, n, open_price)
    return resample(_session_bars(symbol, session, builder.rows, volumes), bar_minutes)


def warmup_sessions(
    count: int,
    before: date,
    *,
    symbol: str = "DEMO",
    start_price: float = 100.0,
    seed: int = 0,
    bar_minutes: int = 1,
    calendar: TradingCalendar | None = None,
) -> list[SessionBars]:
    """`count` random-walk sessions on the XNYS sessions just before `before`."""
    calendar = calendar or xnys()
    days: list[TradingSession] = []
    cursor = before
    while len(days) < count:
        days.append(calendar.previous_session(cursor))
        cursor = days[-1].day
    out: list[SessionBars] = []
    price = start_price
    for session in reversed(days):
        rng = _rng(seed, "warmup", session.day)
        n = _minutes(session)
        volumes = _u_volume(n, rng, 40_000)
        builder = _Builder(volumes, rng)
        _walk(builder, n, price * (1 + float(rng.normal(0.0, 0.002))), 0.00045)
        out.append(resample(_session_bars(symbol, session, builder.rows, volumes), bar_minutes))
        price = builder.last_close
    return out


@dataclass(frozen=True, slots=True)
class ScenarioData:
    symbol: str
    scenario: str
    warmup: list[SessionBars]
    day: SessionBars

    @property
    def sessions(self) -> list[SessionBars]:
        return [*self.warmup, self.day]


def generate_scenario(
    scenario: str,
    *,
    symbol: str = "DEMO",
    day: date | None = None,
    warmup: int = 25,
    start_price: float = 100.0,
    seed: int = 0,
    bar_minutes: int = 1,
    calendar: TradingCalendar | None = None,
) -> ScenarioData:
    """Warm-up sessions then the scenario day, chained (each day opens near the last close)."""
    day = day or DEFAULT_DAYS.get(scenario)
    if day is None:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    before = warmup_sessions(
        warmup,
        day,
        symbol=symbol,
        start_price=start_price,
        seed=seed,
        bar_minutes=bar_minutes,
        calendar=calendar,
    )
    last = int(before[-1].close[-1]) / 10_000 if before else start_price
    gap = 1.015 if scenario == "gap_and_fade" else 1.001
    open_price = round(last * gap, 2)
    the_day = generate_session(
        scenario,
        day,
        symbol=symbol,
        open_price=open_price,
        seed=seed,
        bar_minutes=bar_minutes,
        calendar=calendar,
    )
    return ScenarioData(symbol, scenario, before, the_day)


def resample(session: SessionBars, minutes: int) -> SessionBars:
    """Aggregate 1-minute bars into `minutes`-minute bars aligned on the open."""
    if minutes == 1:
        return session
    slot = (session.start_ns - to_ns(session.session.open)) // (minutes * NS_PER_MIN)
    cuts = np.flatnonzero(np.diff(slot)) + 1
    first = np.concatenate(([0], cuts))
    last = np.concatenate((cuts - 1, [len(slot) - 1]))
    return SessionBars(
        session.symbol,
        session.session,
        minutes * NS_PER_MIN,
        to_ns(session.session.open) + slot[first] * minutes * NS_PER_MIN,
        session.open[first],
        np.maximum.reduceat(session.high, first),
        np.minimum.reduceat(session.low, first),
        session.close[last],
        np.add.reduceat(session.volume, first),
    )


def _price_text(value: int) -> str:
    return f"{value // 10_000}.{value % 10_000:04d}"


def write_csv(sessions: Sequence[SessionBars], path: Path) -> Path:
    """Write sessions of one symbol in the `../shared/data` intraday format."""
    lines = ["timestamp,open,high,low,close,volume"]
    for s in sessions:
        for k in range(len(s)):
            stamp = from_ns(int(s.start_ns[k])).astimezone(NEW_YORK).isoformat()
            prices = ",".join(_price_text(int(x[k])) for x in (s.open, s.high, s.low, s.close))
            lines.append(f"{stamp},{prices},{int(s.volume[k])}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_folder(folder: Path, data: Mapping[str, Sequence[SessionBars]]) -> list[Path]:
    """One CSV per symbol (file name = symbol), the layout `centaur signals --data` reads."""
    return [write_csv(sessions, folder / f"{symbol}.csv") for symbol, sessions in data.items()]
