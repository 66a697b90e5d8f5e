"""The pre-market brief: session type, event windows, prior close vs MA20, gap, ATR20."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

import numpy as np

from core.calendar import xnys
from core.clock import NEW_YORK
from core.event_calendar import EventCalendar, MarketEvent
from core.marketdata.sessions import DailyBars
from core.reports import brief_markdown, build_brief
from core.reports.brief import Brief

NORMAL = date(2024, 3, 14)
HALF_DAY = date(2024, 11, 29)
HOLIDAY = date(2024, 7, 4)


def ramp_daily(symbol: str, before: date, n: int = 20, first_close: int = 100) -> DailyBars:
    """n sessions before `before`: closes first_close, +1, ...; high/low = close +/- 1.

    So MA20 = first_close + 9.5, every true range is 2 (ATR20 = 2), prior close =
    first_close + n - 1.
    """
    sessions = xnys().sessions_between(date(2023, 1, 1), before)
    days = [s.day for s in sessions if s.day < before][-n:]
    closes = np.arange(first_close, first_close + n, dtype=np.int64) * 10_000
    return DailyBars(
        symbol,
        np.asarray([d.toordinal() for d in days], dtype=np.int64),
        closes.copy(),
        closes + 10_000,
        closes - 10_000,
        closes.copy(),
        np.full(n, 1_000_000, dtype=np.int64),
    )


def events_for(day: date) -> EventCalendar:
    return EventCalendar(
        [
            MarketEvent(day=day, kind="CPI", symbols=None, at=time(8, 30)),
            MarketEvent(day=day, kind="FOMC", symbols=None, at=time(14, 0), block_after_min=60),
            MarketEvent(day=day, kind="earnings", symbols=frozenset({"MU"})),
            MarketEvent(day=date(2024, 1, 2), kind="CPI", symbols=None, at=time(8, 30)),
        ]
    )


def brief_for(day: date, last: dict[str, Decimal] | None = None) -> Brief:
    daily = {sym: ramp_daily(sym, day) for sym in ("AAPL", "MU")}
    return build_brief(
        day, ["AAPL", "MU", "QQQM"], xnys(), events_for(day), daily, last_prices=last
    )


def test_normal_day_levels_gap_and_events() -> None:
    brief = brief_for(NORMAL, {"AAPL": Decimal("120.19")})
    assert brief.session_kind == "normal" and brief.market_open
    assert brief.open == datetime(2024, 3, 14, 9, 30, tzinfo=NEW_YORK)
    assert brief.close == datetime(2024, 3, 14, 16, 0, tzinfo=NEW_YORK)
    assert brief.headline == "normal session (09:30-16:00 ET)"
    assert brief.next_session is None

    # The event calendar's order: all-day events first, then by time.
    assert [e.kind for e in brief.events] == ["earnings", "CPI", "FOMC"]
    earnings, cpi, fomc = brief.events
    assert (cpi.block_start.time(), cpi.block_end.time()) == (time(8, 15), time(9, 0))
    assert (fomc.block_start.time(), fomc.block_end.time()) == (time(13, 45), time(15, 0))
    assert earnings.at is None and earnings.symbols == ("MU",)

    aapl, mu, qqqm = brief.symbols
    assert aapl.prior_close == Decimal("119") and aapl.prior_day == date(2024, 3, 13)
    assert aapl.ma20 == Decimal("109.5")
    assert aapl.close_vs_ma20_pct == Decimal("8.68")  # (119 - 109.5) / 109.5
    assert aapl.above_ma20 is True
    assert aapl.atr20 == Decimal("2") and aapl.atr20_pct == Decimal("1.68")
    assert aapl.last_price == Decimal("120.19") and aapl.gap_pct == Decimal("1.00")
    assert aapl.events == ("CPI", "FOMC")
    assert mu.gap_pct is None  # no pre-market price: the gap is omitted, not zero
    assert mu.events == ("earnings", "CPI", "FOMC")
    # A symbol without daily data is still listed, with nothing invented.
    assert qqqm.prior_close is None and qqqm.ma20 is None and qqqm.atr20 is None


def test_below_ma20_and_warm_up() -> None:
    falling = ramp_daily("AAPL", NORMAL)
    falling = DailyBars(
        "AAPL",
        falling.day,
        falling.open[::-1].copy(),
        falling.high[::-1].copy(),
        falling.low[::-1].copy(),
        falling.close[::-1].copy(),
        falling.volume,
    )
    short = ramp_daily("MU", NORMAL, n=5)
    brief = build_brief(
        NORMAL, ["AAPL", "MU"], xnys(), EventCalendar([]), {"AAPL": falling, "MU": short}
    )
    aapl, mu = brief.symbols
    assert aapl.prior_close == Decimal("100") and aapl.above_ma20 is False
    assert aapl.close_vs_ma20_pct == Decimal("-8.68")
    assert mu.prior_close == Decimal("104") and mu.ma20 is None and mu.atr20 is None
    assert brief.events == ()


def test_bars_of_the_day_itself_are_ignored() -> None:
    daily = ramp_daily("AAPL", date(2024, 3, 15), n=21)  # includes 2024-03-14
    brief = build_brief(NORMAL, ["AAPL"], xnys(), EventCalendar([]), {"AAPL": daily})
    assert brief.symbols[0].prior_close == Decimal("119")
    assert brief.symbols[0].prior_day == date(2024, 3, 13)


def test_half_day_says_when_it_closes() -> None:
    brief = brief_for(HALF_DAY)
    assert brief.session_kind == "half day"
    assert brief.close == datetime(2024, 11, 29, 13, 0, tzinfo=NEW_YORK)
    assert brief.headline == "half day: closes 13:00 ET (09:30-13:00 ET)"
    assert brief.symbols[0].prior_day == date(2024, 11, 27)  # Thanksgiving skipped


def test_holiday_is_market_closed_with_next_session_and_events() -> None:
    brief = brief_for(HOLIDAY)
    assert brief.session_kind == "closed" and not brief.market_open
    assert brief.headline == "market closed today"
    assert brief.open is None and brief.close is None
    assert brief.next_session == date(2024, 7, 5)
    assert [e.kind for e in brief.events] == ["earnings", "CPI", "FOMC"]


def test_markdown_of_the_brief() -> None:
    text = brief_markdown(brief_for(NORMAL, {"AAPL": Decimal("120.19")}))
    assert "# 2024-03-14 pre-market brief" in text
    assert "| CPI | 08:30 | all | 08:15–09:00 |" in text
    assert "| earnings | all day | MU | all day |" in text
    assert "| AAPL | 119.00 | +8.68% (above) | +1.00% | $2.00 (1.68%) | CPI, FOMC |" in text
    holiday = brief_markdown(brief_for(HOLIDAY))
    assert "market closed today" in holiday and "Next session: 2024-07-05" in holiday
