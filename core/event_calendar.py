"""Scheduled market events (CPI, FOMC, NFP, earnings) and the windows they block.

Source: `config/events.yaml` (or any file given with `--events`). Two shapes are read:
- the signal spec's minimal list: `[{date: 2024-03-12, symbols: "*"}, ...]`;
- the full form, a mapping with defaults and a list:
    defaults: {block_before_min: 15, block_after_min: 30}
    events:
      - {date: 2024-03-12, time: "08:30", kind: CPI, symbols: "*"}
      - {date: 2024-05-01, time: "14:00", kind: FOMC, symbols: "*", block_after_min: 60}
      - {date: 2024-04-25, kind: earnings, symbols: [MSFT]}
An event without a time blocks its whole day (earnings whose hour is unknown).
A day is an event day for a symbol when an entry lists that symbol or "*".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml

from core.clock import NEW_YORK, ensure_aware

ALL_SYMBOLS = "*"
DEFAULT_BLOCK_BEFORE_MIN = 15
DEFAULT_BLOCK_AFTER_MIN = 30


class EventCalendarError(ValueError):
    """The events file cannot be used; the message names the file, entry and field."""


@dataclass(frozen=True, slots=True)
class MarketEvent:
    day: date
    kind: str
    symbols: frozenset[str] | None  # None means every symbol ("*")
    at: time | None = None  # New York wall time; None blocks the whole day
    block_before_min: int = DEFAULT_BLOCK_BEFORE_MIN
    block_after_min: int = DEFAULT_BLOCK_AFTER_MIN
    note: str = ""

    def applies_to(self, symbol: str) -> bool:
        return self.symbols is None or symbol.upper() in self.symbols

    def window(self) -> tuple[datetime, datetime]:
        """The blocked interval [start, end) in New York time."""
        if self.at is None:
            start = datetime.combine(self.day, time(0, 0), tzinfo=NEW_YORK)
            return start, start + timedelta(days=1)
        moment = datetime.combine(self.day, self.at, tzinfo=NEW_YORK)
        return (
            moment - timedelta(minutes=self.block_before_min),
            moment + timedelta(minutes=self.block_after_min),
        )

    def describe(self) -> str:
        when = self.at.strftime("%H:%M") if self.at else "all day"
        who = "all symbols" if self.symbols is None else ", ".join(sorted(self.symbols))
        return f"{self.kind} {self.day.isoformat()} {when} ({who})"


class EventCalendar:
    def __init__(self, events: list[MarketEvent]) -> None:
        self._events = sorted(events, key=lambda e: (e.day, e.at or time(0, 0), e.kind))
        self._by_day: dict[date, list[MarketEvent]] = {}
        for event in self._events:
            self._by_day.setdefault(event.day, []).append(event)

    @property
    def events(self) -> list[MarketEvent]:
        return list(self._events)

    def events_on(self, day: date, symbol: str | None = None) -> list[MarketEvent]:
        todays = self._by_day.get(day, [])
        return todays if symbol is None else [e for e in todays if e.applies_to(symbol)]

    def is_event_day(self, symbol: str, day: date) -> bool:
        return any(e.applies_to(symbol) for e in self._by_day.get(day, []))

    def blocking_event(self, symbol: str, moment: datetime) -> MarketEvent | None:
        """The event whose block window contains `moment` for `symbol`, if any."""
        local = ensure_aware(moment).astimezone(NEW_YORK)
        for day in (local.date(), local.date() - timedelta(days=1)):
            for event in self.events_on(day, symbol):
                start, end = event.window()
                if start <= local < end:
                    return event
        return None

    def upcoming(self, start: date, days: int) -> list[MarketEvent]:
        end = start + timedelta(days=days)
        return [e for e in self._events if start <= e.day < end]


def _parse_date(raw: object, where: str) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise EventCalendarError(f"{where}: 'date' must be YYYY-MM-DD, got {raw!r}")


def _parse_time(raw: object, where: str) -> time | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        # YAML 1.1 reads an unquoted 08:30 as the sexagesimal integer 510.
        hours, minutes = divmod(raw, 60)
        if 0 <= hours < 24:
            return time(hours, minutes)
    if isinstance(raw, str):
        try:
            return time.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise EventCalendarError(f"{where}: 'time' must be HH:MM (New York), got {raw!r}")


def _parse_symbols(raw: object, where: str) -> frozenset[str] | None:
    if raw is None or raw == ALL_SYMBOLS:
        return None
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list) and raw and all(isinstance(s, str) and s.strip() for s in raw):
        if ALL_SYMBOLS in raw:
            return None
        return frozenset(s.strip().upper() for s in raw)
    raise EventCalendarError(f"{where}: 'symbols' must be \"*\" or a list of symbols")


def _parse_minutes(raw: object, default: int, key: str, where: str) -> int:
    if raw is None:
        return default
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 24 * 60:
        return raw
    raise EventCalendarError(f"{where}: '{key}' must be whole minutes 0..1440, got {raw!r}")


_KNOWN_KEYS = {
    "date",
    "time",
    "kind",
    "symbols",
    "block_before_min",
    "block_after_min",
    "note",
}


def parse_events(document: Any, source: str) -> EventCalendar:
    """Build a calendar from parsed YAML; errors name the source, entry and field."""
    if document is None:
        return EventCalendar([])
    defaults: dict[str, Any] = {}
    if isinstance(document, dict):
        defaults = document.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise EventCalendarError(f"{source}: 'defaults' must be a mapping")
        entries = document.get("events") or []
    else:
        entries = document
    if not isinstance(entries, list):
        raise EventCalendarError(f"{source}: expected a list of events")
    before_default = _parse_minutes(
        defaults.get("block_before_min"),
        DEFAULT_BLOCK_BEFORE_MIN,
        "block_before_min",
        f"{source}: defaults",
    )
    after_default = _parse_minutes(
        defaults.get("block_after_min"),
        DEFAULT_BLOCK_AFTER_MIN,
        "block_after_min",
        f"{source}: defaults",
    )
    events = []
    for index, entry in enumerate(entries):
        where = f"{source}: events[{index}]"
        if not isinstance(entry, dict):
            raise EventCalendarError(f"{where}: each event must be a mapping")
        unknown = set(entry) - _KNOWN_KEYS
        if unknown:
            raise EventCalendarError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if "date" not in entry:
            raise EventCalendarError(f"{where}: 'date' is required")
        events.append(
            MarketEvent(
                day=_parse_date(entry["date"], where),
                kind=str(entry.get("kind") or "event"),
                symbols=_parse_symbols(entry.get("symbols", ALL_SYMBOLS), where),
                at=_parse_time(entry.get("time"), where),
                block_before_min=_parse_minutes(
                    entry.get("block_before_min"), before_default, "block_before_min", where
                ),
                block_after_min=_parse_minutes(
                    entry.get("block_after_min"), after_default, "block_after_min", where
                ),
                note=str(entry.get("note") or ""),
            )
        )
    return EventCalendar(events)


def load_event_calendar(path: Path | None) -> EventCalendar:
    """Read an events file; a missing path (None) means no events."""
    if path is None:
        return EventCalendar([])
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EventCalendarError(f"{path}: cannot read events file ({exc.strerror})") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EventCalendarError(f"{path}: not valid YAML ({exc})") from exc
    return parse_events(document, str(path))
