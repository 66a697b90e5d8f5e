"""What the assistant knows before its first bar: earlier sessions, and the replayed day.

- A replay (`centaur run --replay DIR --date D`, the demo): the sessions before D in the
  folder are the warm-up, never replayed; D's bars are replayed from `--from` on (the
  bars of D that closed before `--from` are fed at once, so the day's VWAP starts at the
  open as it would live).
- Live: the sessions recorded under `data/bars/` (every live bar is recorded there),
  plus Alpaca's daily history when an Alpaca account with keys exists.

The warm-up seeds the radar's daily history (ATR20 / MA20), the engines' bar memory
(the trail policy reads the last sessions' noise) and the day jobs' market history (the
brief's levels).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from app.adapters import StartupError
from app.bar_pump import MarketHistory
from core.calendar import CalendarRangeError, TradingCalendar, xnys
from core.clock import NEW_YORK, Clock
from core.engine import TradingEngine
from core.market_state import BarMemory
from core.marketdata.errors import DataError
from core.marketdata.replay import ReplayFeed
from core.marketdata.sessions import SessionBars, SymbolSessions, load_folder
from core.marketdata.synthetic import generate_scenario
from core.radar import RadarService

if TYPE_CHECKING:
    from brokers.alpaca import AlpacaHistoricalBars


WARMUP_SESSIONS = 25  # ATR20 / MA20 need 20 completed sessions


@dataclass(frozen=True)
class Replay:
    """A recorded (or generated) day to replay, with its warm-up."""

    day: date
    start: datetime  # New York time on `day` (--from)
    warmup: dict[str, list[SessionBars]]
    today: dict[str, SessionBars]
    source: str  # what it is, for the startup summary
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return sorted(self.today)

    def feed(self, clock: Clock) -> ReplayFeed:
        data = {s: SymbolSessions(s, None, bars.bar_ns, [bars]) for s, bars in self.today.items()}
        return ReplayFeed(data, clock, start=self.day, end=self.day)


def load_replay(folder: Path, day: date, start: time, calendar: TradingCalendar) -> Replay:
    """The replay of `day` from a folder of recorded bars (StartupError when unusable)."""
    if not folder.is_dir():
        raise StartupError(f"--replay {folder}: no such folder")
    try:
        session = calendar.session(day)
    except CalendarRangeError as exc:
        raise StartupError(f"--date {day}: {exc}") from None
    if session is None:
        try:
            following: object = calendar.next_session(day).day
        except CalendarRangeError:
            following = "unknown"
        raise StartupError(
            f"--date {day} is not a trading day on XNYS (weekend or holiday); "
            f"the next session is {following}"
        )
    try:
        data = load_folder(folder, None, calendar)
    except DataError as exc:
        raise StartupError(str(exc)) from None
    today: dict[str, SessionBars] = {}
    warmup: dict[str, list[SessionBars]] = {}
    for symbol, series in data.items():
        before = [s for s in series.sessions if s.day < day]
        warmup[symbol] = before[-WARMUP_SESSIONS:]
        found = [s for s in series.sessions if s.day == day]
        if found:
            today[symbol] = found[0]
    if not today:
        days = sorted({s.day for series in data.values() for s in series.sessions})
        span = f"{days[0]} .. {days[-1]}" if days else "no sessions"
        raise StartupError(f"--date {day}: {folder} has no bars for that day (it holds {span})")
    return Replay(
        day=day,
        start=datetime.combine(day, start, tzinfo=NEW_YORK),
        warmup=warmup,
        today=today,
        source=f"{folder} ({', '.join(sorted(today))})",
        skipped={s: d.skipped_outside for s, d in data.items() if d.skipped_outside},
    )


def scenario_replay(scenario: str, *, symbol: str, start: time, day: date | None = None) -> Replay:
    """A generated session (core.marketdata.synthetic) with its warm-up, nothing on disk."""
    if day is not None:
        calendar = xnys()
        try:
            if calendar.session(day) is None:
                following = calendar.next_session(day).day
                raise StartupError(
                    f"--date {day} is not a trading day on XNYS; the next session is {following}"
                )
        except CalendarRangeError as exc:
            raise StartupError(f"--date {day}: {exc}") from None
    data = generate_scenario(scenario, symbol=symbol, day=day, warmup=WARMUP_SESSIONS)
    the_day = data.day.day
    return Replay(
        day=the_day,
        start=datetime.combine(the_day, start, tzinfo=NEW_YORK),
        warmup={symbol: list(data.warmup)},
        today={symbol: data.day},
        source=f"synthetic '{scenario}' session ({symbol}, {the_day})",
    )


def seed(
    warmup: Mapping[str, Sequence[SessionBars]],
    *,
    radar: RadarService,
    engines: Iterable[TradingEngine],
    history: MarketHistory,
    memory_sessions: int,
) -> int:
    """Feed earlier sessions to the radar, the engines' bar memory and the history.
    Returns how many sessions were seeded."""
    engines = list(engines)
    count = 0
    for symbol, sessions in warmup.items():
        ordered = sorted(sessions, key=lambda s: s.day)
        radar.seed_history(symbol, ordered)
        history.seed(symbol, ordered)
        recent = [s for s in ordered if len(s) > 1][-memory_sessions:]
        bars = [bar for s in recent for bar in s.bars()]
        for engine in engines:
            if isinstance(engine.market, BarMemory):
                engine.market.extend(bars)
        count += len(ordered)
    return count


def recorded_sessions(
    root: Path, symbols: Sequence[str], before: date, calendar: TradingCalendar
) -> dict[str, list[SessionBars]]:
    """Sessions recorded live under `root/YYYY-MM-DD/SYMBOL.csv`, before `before`."""
    out: dict[str, list[SessionBars]] = {}
    if not root.is_dir():
        return out
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name < before.isoformat())
    for folder in folders[-WARMUP_SESSIONS:]:
        try:
            data = load_folder(folder, None, calendar)
        except DataError as exc:
            logger.warning("warm-up: skipping {}: {}", folder, exc)
            continue
        for symbol, series in data.items():
            if symbol.upper() in symbols:
                out.setdefault(symbol.upper(), []).extend(series.sessions)
    return out


async def alpaca_daily_sessions(
    history: AlpacaHistoricalBars,
    symbols: Sequence[str],
    before: datetime,
    calendar: TradingCalendar,
) -> dict[str, list[SessionBars]]:
    """Daily bars as one-bar sessions (all the radar's daily levels read)."""
    bars = await history.bars(symbols, before - timedelta(days=45), before, timeframe="1Day")
    out: dict[str, list[SessionBars]] = {}
    for symbol, series in bars.items():
        for bar in series:
            session = calendar.session(bar.start.astimezone(NEW_YORK).date())
            if session is not None and session.day < before.astimezone(NEW_YORK).date():
                out.setdefault(symbol.upper(), []).append(SessionBars.from_bars([bar], session))
    return out


__all__ = [
    "WARMUP_SESSIONS",
    "Replay",
    "alpaca_daily_sessions",
    "load_replay",
    "recorded_sessions",
    "scenario_replay",
    "seed",
]
