"""Synthetic scenarios: the intended label, one clean signal, determinism, realistic bars."""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from core.domain import Regime
from core.event_calendar import parse_events
from core.marketdata.sessions import load_folder
from core.marketdata.synthetic import (
    SCENARIOS,
    ScenarioData,
    generate_scenario,
    resample,
    write_folder,
)
from core.params import SignalParams
from core.signals import evaluate_sessions

P = SignalParams()


@functools.cache
def scenario(name: str, seed: int = 0, minutes: int = 1) -> ScenarioData:
    return generate_scenario(name, seed=seed, bar_minutes=minutes)


INTENDED = {
    "trend_up_pullback": Regime.TREND_UP,
    "trend_down": Regime.TREND_DOWN,
    "choppy_range": Regime.RANGE,
    "gap_and_fade": Regime.TREND_DOWN,
    "half_day": Regime.TREND_UP,
}


@pytest.mark.parametrize("minutes", [1, 5])
@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("name", sorted(INTENDED))
def test_each_scenario_ends_with_its_label(name: str, seed: int, minutes: int) -> None:
    data = scenario(name, seed, minutes)
    ev = evaluate_sessions(data.sessions, P)
    assert ev.day_label(len(data.sessions) - 1) is INTENDED[name]
    assert all(ev.day_label(s) is None for s in range(20))  # the warm-up


@pytest.mark.parametrize("seed", [0, 7])
def test_trend_up_pullback_fires_once_and_its_stop_buy_fills(seed: int) -> None:
    data = scenario("trend_up_pullback", seed)
    ev = evaluate_sessions(data.sessions, P)
    last = len(data.sessions) - 1
    assert ev.candidates[last].sum() == 1
    [record] = ev.signals(P)[last]
    assert record.proposal.signal_time.strftime("%H:%M") == "10:26"
    assert record.outcome == "filled"
    assert record.regime is Regime.TREND_UP


def test_event_day_with_an_events_file_is_event() -> None:
    data = scenario("event_burst")
    events = parse_events([{"date": data.day.day.isoformat(), "symbols": ["demo"]}], "events")
    ev = evaluate_sessions(data.sessions, P, events=events)
    assert ev.day_label(len(data.sessions) - 1) is Regime.EVENT
    plain = evaluate_sessions(data.sessions, P)
    assert plain.day_label(len(data.sessions) - 1) is not Regime.EVENT
    # the burst: 10:00-10:20 ranges dwarf the rest of the day
    day = data.day
    ranges = (day.high - day.low).astype(float)
    assert ranges[30:50].mean() > 4 * np.delete(ranges, range(30, 50)).mean()


def test_generation_is_deterministic_and_seeded() -> None:
    a, b = generate_scenario("choppy_range", seed=3), generate_scenario("choppy_range", seed=3)
    c = generate_scenario("choppy_range", seed=4)
    assert np.array_equal(a.day.close, b.day.close)
    assert np.array_equal(a.warmup[5].volume, b.warmup[5].volume)
    assert not np.array_equal(a.day.close, c.day.close)


@pytest.mark.parametrize("name", SCENARIOS)
def test_bars_are_on_the_tick_consistent_and_u_shaped(name: str) -> None:
    data = scenario(name, 7)
    for s in data.sessions:
        for prices in (s.open, s.high, s.low, s.close):
            assert (prices % 100 == 0).all()  # whole cents
        assert (s.low <= np.minimum(s.open, s.close)).all()
        assert (s.high >= np.maximum(s.open, s.close)).all()
        assert (s.low > 0).all()
    vol = data.warmup[0].volume
    edges = np.concatenate((vol[:30], vol[-30:])).mean()
    assert edges > 1.5 * vol[150:240].mean()


def test_days_are_real_sessions_and_half_day_closes_at_13() -> None:
    data = generate_scenario("half_day", warmup=22)
    assert data.day.day == date(2024, 11, 29)
    assert len(data.day) == 210
    assert data.day.session.close.strftime("%H:%M") == "13:00"
    assert len(resample(data.day, 5)) == 42
    days = [s.day for s in data.sessions]
    assert days == sorted(days) and len(set(days)) == 23
    assert date(2024, 11, 28) not in days  # Thanksgiving


def test_written_folder_loads_back_identically(tmp_path: Path) -> None:
    data = generate_scenario("trend_up_pullback", symbol="AAA", warmup=3, bar_minutes=5)
    write_folder(tmp_path, {"AAA": data.sessions})
    [loaded] = load_folder(tmp_path).values()
    assert loaded.skipped_outside == 0
    assert len(loaded.sessions) == 4
    for mine, theirs in zip(data.sessions, loaded.sessions, strict=True):
        assert mine.day == theirs.day
        for name in ("start_ns", "open", "high", "low", "close", "volume"):
            assert np.array_equal(getattr(mine, name), getattr(theirs, name))


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        generate_scenario("moon")
