"""Indicators: VWAP, opening ranges, ATR20 / MA20 from daily bars, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.indicators import compute_indicators, daily_levels
from core.marketdata.block import SessionBlock
from core.marketdata.sessions import DailyBars
from core.params import SignalParams
from tests.kit.market import flat_rows, make_session

P = SignalParams()


def _ind(session):  # type: ignore[no-untyped-def]
    return compute_indicators(SessionBlock.from_sessions([session]), P)


def test_vwap_is_the_volume_weighted_typical_price() -> None:
    session = make_session([("10", "11", "9", "10", 100), ("10", "12", "10", "12", 300)])
    vwap = _ind(session).vwap[0]
    assert vwap[0] == 10.0
    assert vwap[1] == pytest.approx((10 * 100 + (34 / 3) * 300) / 400, rel=1e-15)


def test_vwap_equals_typical_price_while_volume_is_zero() -> None:
    session = make_session([("10", "13", "10", "11", 0), ("11", "12", "11", "12", 0)])
    ind = _ind(session)
    assert ind.vwap[0].tolist() == [(13 + 10 + 11) / 3, (12 + 11 + 12) / 3]
    assert ind.cum_volume[0].tolist() == [0, 0]


def test_close_equal_to_vwap_is_not_above() -> None:
    session = make_session([("100", "100", "100", "100", 5)] * 3)
    ind = _ind(session)
    assert not ind.above.any()
    assert (ind.sign == 0).all()


@pytest.mark.parametrize(("minutes", "last_bar"), [(1, 14), (5, 2)])
def test_or15_is_defined_from_the_close_of_the_last_bar_starting_before_0945(
    minutes: int, last_bar: int
) -> None:
    rows = [(f"{100 + k}", f"{101 + k}", f"{99 + k}", f"{100 + k}", 10) for k in range(20)]
    ind = _ind(make_session(rows, minutes=minutes))
    rng = ind.opening_ranges[15]
    assert not rng.defined[0, last_bar - 1]
    assert rng.defined[0, last_bar]
    assert rng.high[0, last_bar] == (101 + last_bar) * 10_000
    assert rng.low[0, -1] == 99 * 10_000
    assert rng.high[0, -1] == rng.high[0, last_bar]  # later bars do not widen it


def test_or15_with_its_last_bar_missing_is_defined_at_the_first_later_bar() -> None:
    # 09:30..09:43 present, 09:44 missing: knowing OR15 is complete needs a bar ending >= 09:45.
    offsets = [*range(14), 15]
    rows = [("100", "101", "99", "100", 10)] * 14 + [("100", "130", "99", "100", 10)]
    rng = _ind(make_session(rows, offsets=offsets)).opening_ranges[15]
    assert not rng.defined[0, 13]
    assert rng.defined[0, 14]
    assert rng.high[0, 14] == 101 * 10_000  # the 09:45 bar is not in OR15


def _daily(n: int, *, high: int = 102, low: int = 100, close: int = 101) -> DailyBars:
    col = lambda v: np.full(n, v * 10_000, dtype=np.int64)  # noqa: E731
    return DailyBars(
        "T",
        np.arange(n, dtype=np.int64) + 738_000,
        col(100),
        col(high),
        col(low),
        col(close),
        col(1),
    )


def test_atr_and_ma_need_twenty_previous_sessions() -> None:
    daily = _daily(25)
    days = [*daily.day[[0, 1, 19, 20, 24]].tolist(), int(daily.day[-1]) + 3]
    levels = daily_levels(daily, days, 20)
    assert [lv.warm_up for lv in levels] == [True, True, True, False, False, False]
    assert levels[0].prev_close is None
    assert levels[1].prev_close == 101 * 10_000
    assert levels[3].atr20 == 2.0
    assert levels[3].ma20 == 101.0


def test_true_range_uses_the_previous_close_and_the_first_is_high_minus_low() -> None:
    n = 21
    daily = _daily(n)
    close = daily.close.copy()
    close[0] = 110 * 10_000  # the gap makes day 1's TR = |low - prev close| = 10
    daily = DailyBars("T", daily.day, daily.open, daily.high, daily.low, close, daily.volume)
    [level] = daily_levels(daily, [int(daily.day[-1]) + 1], 20)
    # window = days 1..20: day 1 TR 10, days 2..20 TR 2 -> (10 + 19 * 2) / 20
    assert level.atr20 == (10 + 19 * 2) / 20
    [first] = daily_levels(daily, [int(daily.day[20])], 20)
    assert first.atr20 == (2 + 10 + 18 * 2) / 20  # day 0 has no previous close: TR = h - l


def test_flat_session_has_constant_vwap() -> None:
    ind = _ind(make_session(flat_rows(30, "50.00")))
    assert set(ind.vwap[0].tolist()) == {50.0}


def test_daily_bars_from_the_block_equal_daily_bars_from_sessions() -> None:
    rows = [("10", "11", "9", "10", 100), ("10", "12", "8.5", "11", 300)]
    sessions = [make_session(rows), make_session(rows[:1], minutes=5)]
    a = SessionBlock.from_sessions(sessions).daily()
    b = DailyBars.from_sessions(sessions)
    for name in ("day", "open", "high", "low", "close", "volume"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist()
