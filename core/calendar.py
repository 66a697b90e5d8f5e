"""The XNYS trading calendar and the session phase at any instant.

Trading days, half days, holidays and DST all come from `exchange_calendars`; nothing
here is a hand-written holiday table. The schedule is loaded once (it is slow to build)
and then answered from a dict.

Phases (America/New_York wall time, on a session day):
    [00:00, 04:00)        OVERNIGHT   (Alpaca's overnight venue runs 20:00 -> 04:00)
    [04:00, open)         PRE_MARKET
    [open, close)         REGULAR     (09:30 -> 16:00, or 13:00 on a half day)
    [close, ext_end)      AFTER_HOURS (ext_end is 20:00, or 17:00 after a half day)
    [ext_end, 24:00)      OVERNIGHT if the next calendar day is a session, else CLOSED
On a day that is not a session: OVERNIGHT from 20:00 when the next day is a session,
otherwise CLOSED.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path

from core.clock import NEW_YORK, ensure_aware

PRE_MARKET_START = time(4, 0)
AFTER_HOURS_END = time(20, 0)
HALF_DAY_AFTER_HOURS_END = time(17, 0)
FULL_SESSION = timedelta(hours=6, minutes=30)

# exchange_calendars needs a bounded range. A fixed one keeps the calendar independent of
# the wall clock; extend CALENDAR_END before it comes close (rule-based holidays are known).
CALENDAR_START = "2015-01-01"
CALENDAR_END = "2030-12-31"


class SessionPhase(StrEnum):
    OVERNIGHT = "overnight"
    PRE_MARKET = "pre_market"
    REGULAR = "regular"
    AFTER_HOURS = "after_hours"
    CLOSED = "closed"


class CalendarRangeError(LookupError):
    """A date outside the loaded exchange calendar."""


@dataclass(frozen=True, slots=True)
class TradingSession:
    """One XNYS regular session; open and close are aware datetimes in New York time."""

    day: date
    open: datetime
    close: datetime

    @property
    def is_half_day(self) -> bool:
        return self.close - self.open < FULL_SESSION

    @property
    def kind(self) -> str:
        return "half day" if self.is_half_day else "normal"

    def at(self, wall: time) -> datetime:
        """This session's date at a New York wall-clock time."""
        return datetime.combine(self.day, wall, tzinfo=NEW_YORK)

    def contains(self, moment: datetime) -> bool:
        return self.open <= moment < self.close


class TradingCalendar:
    """XNYS sessions and phases. Build once (see `xnys()`) and share."""

    def __init__(self, sessions: dict[date, TradingSession]) -> None:
        if not sessions:
            raise ValueError("a trading calendar needs at least one session")
        self._sessions = sessions
        self._days = sorted(sessions)
        self._first, self._last = self._days[0], self._days[-1]

    @property
    def first_day(self) -> date:
        return self._first

    @property
    def last_day(self) -> date:
        return self._last

    def _check_range(self, day: date) -> None:
        if not (self._first <= day <= self._last):
            raise CalendarRangeError(
                f"{day} is outside the exchange calendar ({self._first} .. {self._last})"
            )

    def is_session(self, day: date) -> bool:
        self._check_range(day)
        return day in self._sessions

    def session(self, day: date) -> TradingSession | None:
        self._check_range(day)
        return self._sessions.get(day)

    def require_session(self, day: date) -> TradingSession:
        found = self.session(day)
        if found is None:
            raise CalendarRangeError(f"{day} is not an XNYS trading day")
        return found

    def next_session(self, after: date) -> TradingSession:
        """The first session strictly after `after`."""
        from bisect import bisect_right

        index = bisect_right(self._days, after)
        if index >= len(self._days):
            raise CalendarRangeError(f"no session after {after} in the loaded calendar")
        return self._sessions[self._days[index]]

    def previous_session(self, before: date) -> TradingSession:
        """The last session strictly before `before`."""
        from bisect import bisect_left

        index = bisect_left(self._days, before) - 1
        if index < 0:
            raise CalendarRangeError(f"no session before {before} in the loaded calendar")
        return self._sessions[self._days[index]]

    def sessions_between(self, start: date, end: date) -> list[TradingSession]:
        """Sessions with start <= day <= end."""
        return [self._sessions[d] for d in self._days if start <= d <= end]

    def phase(self, moment: datetime) -> SessionPhase:
        local = ensure_aware(moment).astimezone(NEW_YORK)
        day = local.date()
        session = self.session(day)
        next_is_session = (day + timedelta(days=1)) in self._sessions
        if session is None:
            if next_is_session and local.time() >= AFTER_HOURS_END:
                return SessionPhase.OVERNIGHT
            return SessionPhase.CLOSED
        if local.time() < PRE_MARKET_START:
            return SessionPhase.OVERNIGHT
        if local < session.open:
            return SessionPhase.PRE_MARKET
        if local < session.close:
            return SessionPhase.REGULAR
        ext_end = HALF_DAY_AFTER_HOURS_END if session.is_half_day else AFTER_HOURS_END
        if local.time() < ext_end:
            return SessionPhase.AFTER_HOURS
        return SessionPhase.OVERNIGHT if next_is_session else SessionPhase.CLOSED

    def session_for_instant(self, moment: datetime) -> TradingSession | None:
        """The session whose regular hours contain `moment`, if any."""
        local = ensure_aware(moment).astimezone(NEW_YORK)
        session = self.session(local.date())
        return session if session is not None and session.contains(local) else None


def build_xnys(start: str = CALENDAR_START, end: str = CALENDAR_END) -> TradingCalendar:
    import exchange_calendars as xcals

    calendar = xcals.get_calendar("XNYS", start=start, end=end)
    schedule = calendar.schedule
    sessions: dict[date, TradingSession] = {}
    for label, opens, closes in zip(
        schedule.index, schedule["open"], schedule["close"], strict=True
    ):
        day = label.date()
        sessions[day] = TradingSession(
            day=day,
            open=opens.to_pydatetime().astimezone(NEW_YORK),
            close=closes.to_pydatetime().astimezone(NEW_YORK),
        )
    return TradingCalendar(sessions)


def _cache_file(start: str, end: str) -> Path:
    """Where the built session table is kept, keyed by the exchange_calendars version (a
    new release may correct a holiday, and then the table is built again)."""
    from importlib.metadata import version

    root = os.environ.get("CENTAUR_CACHE_DIR") or str(Path.home() / ".cache" / "centaur")
    tag = f"xnys-{version('exchange-calendars')}-{start}-{end}.json"
    return Path(root) / tag


def _load_cached(path: Path) -> TradingCalendar | None:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        sessions = {
            date.fromisoformat(d): TradingSession(
                day=date.fromisoformat(d),
                open=datetime.fromisoformat(o).astimezone(NEW_YORK),
                close=datetime.fromisoformat(c).astimezone(NEW_YORK),
            )
            for d, o, c in rows
        }
        return TradingCalendar(sessions)
    except (OSError, ValueError, TypeError):
        return None  # missing or damaged: build it again


def _store(path: Path, calendar: TradingCalendar) -> None:
    rows = [
        [s.day.isoformat(), s.open.isoformat(), s.close.isoformat()]
        for s in calendar.sessions_between(calendar.first_day, calendar.last_day)
    ]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(rows), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        pass  # a read-only home: the calendar still works, it is just built each start


@cache
def xnys() -> TradingCalendar:
    """The process-wide XNYS calendar.

    Building it from exchange_calendars costs 1-2 s (pandas), so the session table is
    cached on disk after the first build and read back in milliseconds; the data still
    comes only from exchange_calendars.
    """
    path = _cache_file(CALENDAR_START, CALENDAR_END)
    cached = _load_cached(path)
    if cached is not None:
        return cached
    built = build_xnys()
    _store(path, built)
    return built
