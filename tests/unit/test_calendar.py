"""XNYS sessions and phases: half days, holidays, both DST switches, phase boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from core.calendar import CalendarRangeError, SessionPhase, xnys
from core.clock import NEW_YORK, NaiveDatetimeError

UTC_OFFSET_WINTER = timedelta(hours=-5)
UTC_OFFSET_SUMMER = timedelta(hours=-4)


def ny(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=NEW_YORK)


def test_half_day_after_thanksgiving_closes_at_13() -> None:
    session = xnys().require_session(date(2024, 11, 29))
    assert session.is_half_day
    assert session.close == ny(date(2024, 11, 29), 13, 0)
    assert xnys().phase(ny(date(2024, 11, 29), 12, 59, 59)) is SessionPhase.REGULAR
    assert xnys().phase(ny(date(2024, 11, 29), 13, 0)) is SessionPhase.AFTER_HOURS
    assert xnys().phase(ny(date(2024, 11, 29), 17, 0)) is SessionPhase.CLOSED  # Sat follows


def test_christmas_eve_and_july_3_half_days() -> None:
    assert xnys().require_session(date(2024, 12, 24)).is_half_day
    assert xnys().require_session(date(2024, 7, 3)).is_half_day


def test_holidays_are_not_sessions() -> None:
    calendar = xnys()
    for holiday in (date(2024, 12, 25), date(2024, 7, 4), date(2025, 1, 9), date(2024, 3, 29)):
        assert not calendar.is_session(holiday), holiday
        assert calendar.phase(ny(holiday, 11, 0)) is SessionPhase.CLOSED


def test_weekend_closed_and_sunday_evening_is_overnight() -> None:
    calendar = xnys()
    assert calendar.phase(ny(date(2024, 3, 9), 11, 0)) is SessionPhase.CLOSED  # Saturday
    assert calendar.phase(ny(date(2024, 3, 10), 19, 59)) is SessionPhase.CLOSED
    assert calendar.phase(ny(date(2024, 3, 10), 20, 0)) is SessionPhase.OVERNIGHT


def test_spring_forward_dst_switch() -> None:
    # DST began Sunday 2024-03-10: Friday's open is 14:30 UTC, Monday's is 13:30 UTC.
    calendar = xnys()
    friday = calendar.require_session(date(2024, 3, 8))
    monday = calendar.require_session(date(2024, 3, 11))
    assert friday.open.utcoffset() == UTC_OFFSET_WINTER
    assert monday.open.utcoffset() == UTC_OFFSET_SUMMER
    assert friday.open.time() == monday.open.time() == time(9, 30)
    assert friday.open.astimezone(UTC).time() == time(14, 30)
    assert monday.open.astimezone(UTC).time() == time(13, 30)


def test_fall_back_dst_switch() -> None:
    calendar = xnys()
    friday = calendar.require_session(date(2024, 11, 1))
    monday = calendar.require_session(date(2024, 11, 4))
    assert friday.open.utcoffset() == UTC_OFFSET_SUMMER
    assert monday.open.utcoffset() == UTC_OFFSET_WINTER
    assert monday.close - monday.open == timedelta(hours=6, minutes=30)


@pytest.mark.parametrize(
    ("wall", "phase"),
    [
        ((3, 59, 59), SessionPhase.OVERNIGHT),
        ((4, 0, 0), SessionPhase.PRE_MARKET),
        ((9, 29, 59), SessionPhase.PRE_MARKET),
        ((9, 30, 0), SessionPhase.REGULAR),
        ((15, 59, 59), SessionPhase.REGULAR),
        ((16, 0, 0), SessionPhase.AFTER_HOURS),
        ((19, 59, 59), SessionPhase.AFTER_HOURS),
        ((20, 0, 0), SessionPhase.OVERNIGHT),
    ],
)
def test_phase_boundaries(wall: tuple[int, int, int], phase: SessionPhase) -> None:
    assert xnys().phase(ny(date(2024, 3, 5), *wall)) is phase


def test_phase_in_utc_instant_is_the_same() -> None:
    moment = ny(date(2024, 3, 5), 9, 30).astimezone(NEW_YORK).astimezone()
    assert xnys().phase(moment) is SessionPhase.REGULAR


def test_friday_evening_before_weekend_is_closed() -> None:
    assert xnys().phase(ny(date(2024, 3, 8), 20, 30)) is SessionPhase.CLOSED


def test_naive_datetime_refused() -> None:
    with pytest.raises(NaiveDatetimeError):
        xnys().phase(datetime(2024, 3, 5, 10, 0))


def test_next_and_previous_session_skip_holidays_and_weekends() -> None:
    calendar = xnys()
    assert calendar.next_session(date(2024, 12, 24)).day == date(2024, 12, 26)
    assert calendar.previous_session(date(2024, 3, 11)).day == date(2024, 3, 8)
    assert [s.day for s in calendar.sessions_between(date(2024, 3, 28), date(2024, 4, 2))] == [
        date(2024, 3, 28),
        date(2024, 4, 1),
        date(2024, 4, 2),
    ]


def test_out_of_range_date_is_a_clear_error() -> None:
    with pytest.raises(CalendarRangeError, match="outside the exchange calendar"):
        xnys().session(date(1999, 1, 4))


def test_session_for_instant() -> None:
    calendar = xnys()
    assert calendar.session_for_instant(ny(date(2024, 3, 5), 10, 0)) is not None
    assert calendar.session_for_instant(ny(date(2024, 3, 5), 16, 0)) is None


def test_session_table_cache_round_trips_and_survives_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.calendar import CALENDAR_END, CALENDAR_START, _cache_file, _load_cached, _store

    monkeypatch.setenv("CENTAUR_CACHE_DIR", str(tmp_path))
    path = _cache_file(CALENDAR_START, CALENDAR_END)
    assert path.parent == tmp_path and "exchange" not in path.name
    assert _load_cached(path) is None  # nothing cached yet
    built = xnys()
    _store(path, built)
    cached = _load_cached(path)
    assert cached is not None
    everything = (built.first_day, built.last_day)
    assert cached.sessions_between(*everything) == built.sessions_between(*everything)
    assert cached.require_session(date(2024, 11, 29)).is_half_day
    path.write_text("[[garbage")
    assert _load_cached(path) is None  # damaged: the caller builds it again
