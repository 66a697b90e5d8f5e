"""Event calendar: both file shapes, windows, whole-day events, clear errors."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pytest

from core.clock import NEW_YORK
from core.event_calendar import EventCalendarError, load_event_calendar, parse_events


def ny(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=NEW_YORK)


CPI = date(2024, 3, 12)


def test_spec_minimal_shape() -> None:
    calendar = parse_events(
        [{"date": "2024-03-12", "symbols": "*"}, {"date": "2024-04-25", "symbols": ["MSFT"]}],
        "events.yaml",
    )
    assert calendar.is_event_day("SPY", CPI)
    assert calendar.is_event_day("msft", date(2024, 4, 25))
    assert not calendar.is_event_day("AAPL", date(2024, 4, 25))
    assert not calendar.is_event_day("SPY", date(2024, 3, 13))


def test_window_blocks_before_and_after_the_release() -> None:
    calendar = parse_events(
        {
            "defaults": {"block_before_min": 15, "block_after_min": 30},
            "events": [{"date": CPI, "time": "10:00", "kind": "CPI", "symbols": "*"}],
        },
        "events.yaml",
    )
    assert calendar.blocking_event("AAPL", ny(CPI, 9, 44)) is None
    assert calendar.blocking_event("AAPL", ny(CPI, 9, 45)) is not None
    assert calendar.blocking_event("AAPL", ny(CPI, 10, 29)) is not None
    assert calendar.blocking_event("AAPL", ny(CPI, 10, 30)) is None


def test_per_event_window_override_and_unquoted_yaml_time(tmp_path: Path) -> None:
    path = tmp_path / "events.yaml"
    # YAML 1.1 reads an unquoted 14:00 as the integer 840: it must still mean 14:00.
    path.write_text(
        "events:\n  - {date: 2024-05-01, time: 14:00, kind: FOMC, symbols: '*', "
        "block_after_min: 60}\n"
    )
    calendar = load_event_calendar(path)
    fomc = date(2024, 5, 1)
    assert calendar.events[0].at == time(14, 0)
    assert calendar.blocking_event("SPY", ny(fomc, 14, 59)) is not None
    assert calendar.blocking_event("SPY", ny(fomc, 15, 0)) is None


def test_event_without_time_blocks_the_whole_day() -> None:
    calendar = parse_events(
        [{"date": "2024-04-25", "kind": "earnings", "symbols": ["MSFT"]}], "events.yaml"
    )
    assert calendar.blocking_event("MSFT", ny(date(2024, 4, 25), 15, 59)) is not None
    assert calendar.blocking_event("AAPL", ny(date(2024, 4, 25), 12, 0)) is None


def test_upcoming_lists_in_order() -> None:
    calendar = parse_events(
        [{"date": "2024-05-01", "kind": "FOMC"}, {"date": "2024-03-12", "kind": "CPI"}], "e"
    )
    assert [e.kind for e in calendar.upcoming(date(2024, 3, 1), 90)] == ["CPI", "FOMC"]
    assert calendar.upcoming(date(2024, 3, 13), 10) == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([{"symbols": "*"}], r"events\[0\]: 'date' is required"),
        ([{"date": "2024-13-01"}], r"events\[0\]: 'date' must be YYYY-MM-DD"),
        ([{"date": "2024-03-12", "time": "25:00"}], r"'time' must be HH:MM"),
        ([{"date": "2024-03-12", "symbols": 5}], r"'symbols' must be"),
        ([{"date": "2024-03-12", "colour": "red"}], r"unknown key\(s\) colour"),
        ([{"date": "2024-03-12", "block_after_min": -5}], r"'block_after_min' must be"),
        ("not a list", r"expected a list of events"),
    ],
)
def test_bad_entries_name_file_entry_and_field(document: object, message: str) -> None:
    with pytest.raises(EventCalendarError, match=message) as info:
        parse_events(document, "config/events.yaml")
    assert "config/events.yaml" in str(info.value)


def test_unreadable_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(EventCalendarError, match="cannot read events file"):
        load_event_calendar(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("events: [ {date: ")
    with pytest.raises(EventCalendarError, match="not valid YAML"):
        load_event_calendar(broken)


def test_shipped_events_file_loads() -> None:
    calendar = load_event_calendar(Path(__file__).resolve().parents[2] / "config" / "events.yaml")
    assert calendar.events
