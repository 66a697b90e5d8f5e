"""Trail policy: noise percentile, buckets, event widening, overrides, fallback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from core.calendar import TradingCalendar, xnys
from core.clock import NEW_YORK
from core.config_models import ProtectionConfig, TrailBucket
from core.domain import Symbol
from core.event_calendar import parse_events
from core.marketdata.bar import Bar
from core.trail import RuntimeTrail, TrailPolicy, TrailSource, percentile, session_ranges

D = Decimal
DAY = date(2024, 3, 12)  # CPI day in the events below
NORMAL_DAY = date(2024, 3, 13)
CONFIG = ProtectionConfig(
    trail_lookback_sessions=10,
    trail_percentile=D(90),
    trail_bar_minutes=5,
    trail_buckets=[
        TrailBucket(name="low", up_to_range_pct=D("0.35"), trail_pct=D("0.6")),
        TrailBucket(name="medium", up_to_range_pct=D("0.7"), trail_pct=D("0.8")),
        TrailBucket(name="high", trail_pct=D("1.2")),
    ],
    default_trail_pct=D("0.8"),
    event_day_widen_factor=D("1.5"),
    trail_overrides={"MU": D("1.5")},
    partial_fill_wait_seconds=20,
    protection_confirm_timeout_seconds=10,
)
EVENTS = parse_events([{"date": "2024-03-12", "symbols": "*"}], "test")


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return xnys()


@pytest.fixture(scope="module")
def policy(calendar: TradingCalendar) -> TrailPolicy:
    return TrailPolicy(CONFIG, EVENTS, calendar)


def bar(symbol: str, start: datetime, range_pct: Decimal, minutes: int = 5) -> Bar:
    """A bar closing at 100 whose range is `range_pct` % of the close."""
    close = D(100)
    return Bar(
        symbol=Symbol(symbol),
        start=start,
        size=timedelta(minutes=minutes),
        open=close,
        high=close + range_pct,
        low=close,
        close=close,
        volume=1000,
    )


def sessions_before(calendar: TradingCalendar, day: date, count: int) -> list[date]:
    days: list[date] = []
    while len(days) < count:
        day = calendar.previous_session(day).day
        days.append(day)
    return days


def five_minute_bars(
    calendar: TradingCalendar, symbol: str, day: date, sessions: int, range_pct: Decimal
) -> Iterator[Bar]:
    for session_day in sessions_before(calendar, day, sessions):
        session = calendar.require_session(session_day)
        start = session.open
        while start < session.close:
            yield bar(symbol, start, range_pct)
            start += timedelta(minutes=5)


@pytest.mark.parametrize(
    ("noise", "bucket", "trail"),
    [
        (D("0.2"), "low", D("0.60")),
        (D("0.35"), "low", D("0.60")),  # a bucket's bound is inclusive
        (D("0.36"), "medium", D("0.80")),
        (D("0.7"), "medium", D("0.80")),
        (D("1.1"), "high", D("1.20")),
    ],
)
def test_noise_maps_into_buckets(
    policy: TrailPolicy, calendar: TradingCalendar, noise: Decimal, bucket: str, trail: Decimal
) -> None:
    bars = list(five_minute_bars(calendar, "AAPL", NORMAL_DAY, 10, noise))
    decision = policy.decide("AAPL", bars, day=NORMAL_DAY)
    assert decision.source is TrailSource.POLICY
    assert (decision.bucket, decision.trail_pct, decision.noise_pct) == (bucket, trail, noise)
    assert decision.sessions_used == 10 and not decision.event_widened
    assert decision.explanation == (
        f"AAPL trail {trail:.2f}%: p90 of 5-min ranges {noise:.2f}% over 10 sessions "
        f"-> {bucket} {trail:.2f}%"
    )


def test_percentile_interpolates_exactly() -> None:
    values = [D(v) for v in range(10, 0, -1)]  # unsorted on purpose
    assert percentile(values, D(90)) == D("9.1")
    assert percentile(values, D(100)) == D(10)
    assert percentile(values, D(50)) == D("5.5")
    assert percentile([D(3)], D(90)) == D(3)
    with pytest.raises(ValueError):
        percentile([], D(90))


def test_a_high_percentile_ignores_rare_spikes(
    policy: TrailPolicy, calendar: TradingCalendar
) -> None:
    bars = list(five_minute_bars(calendar, "AAPL", NORMAL_DAY, 10, D("0.3")))
    spikes = [replace_range(b, D("3")) for b in bars[::20]]  # 5% of the bars
    calm = [b for i, b in enumerate(bars) if i % 20]
    decision = policy.decide("AAPL", calm + spikes, day=NORMAL_DAY)
    assert decision.bucket == "low"


def replace_range(b: Bar, range_pct: Decimal) -> Bar:
    return bar(b.symbol, b.start, range_pct, int(b.size.total_seconds() // 60))


def test_one_minute_bars_are_grouped_by_five(calendar: TradingCalendar) -> None:
    session = calendar.require_session(date(2024, 3, 11))
    # Five 1-min bars stepping up 0.1 each: each has a range of 0.1, the bucket 0.5.
    bars = [
        Bar(
            symbol=Symbol("AAPL"),
            start=session.open + timedelta(minutes=i),
            size=timedelta(minutes=1),
            open=D(100) + D("0.1") * i,
            high=D(100) + D("0.1") * (i + 1),
            low=D(100) + D("0.1") * i,
            close=D(100) + D("0.1") * (i + 1),
            volume=10,
        )
        for i in range(10)
    ]
    ranges = session_ranges(bars, calendar, 5, before=NORMAL_DAY)
    assert ranges == {date(2024, 3, 11): [D("0.5") / D("100.5") * 100, D("0.5") / D("101.0") * 100]}


def test_only_regular_hours_of_earlier_sessions_count(calendar: TradingCalendar) -> None:
    session = calendar.require_session(date(2024, 3, 11))
    today = calendar.require_session(NORMAL_DAY)
    bars = [
        bar("AAPL", session.open - timedelta(minutes=30), D(5)),  # pre-market
        bar("AAPL", session.close, D(5)),  # after hours
        bar("AAPL", today.open, D(5)),  # today: not yet a full session
        bar("AAPL", session.open, D("0.4")),
    ]
    assert session_ranges(bars, calendar, 5, before=NORMAL_DAY) == {date(2024, 3, 11): [D("0.4")]}


def test_event_day_widens(policy: TrailPolicy, calendar: TradingCalendar) -> None:
    bars = list(five_minute_bars(calendar, "AAPL", DAY, 10, D("0.5")))
    decision = policy.decide("AAPL", bars, day=DAY)
    assert decision.trail_pct == D("1.20") and decision.event_widened
    assert decision.bucket == "medium" and decision.source is TrailSource.POLICY
    assert decision.explanation.endswith("-> medium 0.80%, x1.5 on an event day")


def test_widening_rounds_to_a_cent_of_a_percent(calendar: TradingCalendar) -> None:
    buckets = [TrailBucket(name="only", trail_pct=D("0.65"))]
    config = CONFIG.model_copy(update={"trail_buckets": buckets})
    bars = list(five_minute_bars(calendar, "AAPL", DAY, 10, D("0.5")))
    decision = TrailPolicy(config, EVENTS, calendar).decide("AAPL", bars, day=DAY)
    assert decision.trail_pct == D("0.98")  # 0.975 rounded half up


def test_config_override_wins_over_the_policy_and_is_widened(
    policy: TrailPolicy, calendar: TradingCalendar
) -> None:
    bars = list(five_minute_bars(calendar, "MU", NORMAL_DAY, 10, D("0.2")))
    decision = policy.decide("mu", bars, day=NORMAL_DAY)
    assert (decision.source, decision.trail_pct, decision.bucket) == (
        TrailSource.OVERRIDE,
        D("1.50"),
        "low",
    )
    assert "config override 1.50%" in decision.explanation
    event = policy.decide("MU", [], day=DAY)
    assert (event.source, event.trail_pct, event.event_widened) == (
        TrailSource.OVERRIDE,
        D("2.25"),
        True,
    )


def test_runtime_override_wins_for_its_day_only(
    policy: TrailPolicy, calendar: TradingCalendar
) -> None:
    bars = list(five_minute_bars(calendar, "MU", DAY, 10, D("0.2")))
    runtime = RuntimeTrail(symbol="MU", day=DAY, trail_pct=D("1.234"))
    decision = policy.decide("MU", bars, day=DAY, runtime=runtime)
    assert (decision.source, decision.trail_pct, decision.event_widened) == (
        TrailSource.RUNTIME,
        D("1.23"),
        False,
    )
    assert decision.explanation == "MU trail 1.23%: set by /trail for 2024-03-12"
    stale = policy.decide("MU", bars, day=NORMAL_DAY, runtime=runtime)
    assert stale.source is TrailSource.OVERRIDE
    other = policy.decide("AAPL", bars, day=DAY, runtime=runtime)
    assert other.source is TrailSource.DEFAULT  # the bars were MU's, the runtime is MU's


def test_default_without_enough_history(policy: TrailPolicy, calendar: TradingCalendar) -> None:
    few = list(five_minute_bars(calendar, "AAPL", NORMAL_DAY, 4, D("1.1")))
    decision = policy.decide("AAPL", few, day=NORMAL_DAY)
    assert (decision.source, decision.trail_pct, decision.bucket, decision.noise_pct) == (
        TrailSource.DEFAULT,
        D("0.80"),
        None,
        None,
    )
    assert decision.sessions_used == 4
    assert decision.explanation == (
        "AAPL trail 0.80%: default 0.80%, only 4 of 10 sessions of history"
    )
    enough = list(five_minute_bars(calendar, "AAPL", NORMAL_DAY, 5, D("1.1")))
    assert policy.decide("AAPL", enough, day=NORMAL_DAY).source is TrailSource.POLICY
    on_event = policy.decide("AAPL", [], day=DAY)
    assert on_event.trail_pct == D("1.20") and on_event.event_widened


def test_only_the_last_sessions_count(policy: TrailPolicy, calendar: TradingCalendar) -> None:
    recent = list(five_minute_bars(calendar, "AAPL", NORMAL_DAY, 10, D("0.2")))
    oldest_recent = min(b.start for b in recent).astimezone(NEW_YORK).date()
    wild = list(five_minute_bars(calendar, "AAPL", oldest_recent, 10, D("2")))
    decision = policy.decide("AAPL", wild + recent, day=NORMAL_DAY)
    assert decision.bucket == "low" and decision.sessions_used == 10


def test_deterministic_whatever_the_bar_order(
    policy: TrailPolicy, calendar: TradingCalendar
) -> None:
    bars = [
        bar("AAPL", b.start, D("0.1") * (i % 9 + 1))
        for i, b in enumerate(five_minute_bars(calendar, "AAPL", NORMAL_DAY, 10, D(1)))
    ]
    forward = policy.decide("AAPL", bars, day=NORMAL_DAY)
    backward = policy.decide("AAPL", list(reversed(bars)), day=NORMAL_DAY)
    assert forward == backward
    assert forward.noise_pct == D("0.9000") and forward.bucket == "high"


def test_min_sessions_is_configurable(calendar: TradingCalendar) -> None:
    bars = list(five_minute_bars(calendar, "AAPL", NORMAL_DAY, 2, D("0.5")))
    strict = TrailPolicy(CONFIG, EVENTS, calendar, min_sessions=3)
    lenient = TrailPolicy(CONFIG, EVENTS, calendar, min_sessions=2)
    assert strict.decide("AAPL", bars, day=NORMAL_DAY).source is TrailSource.DEFAULT
    assert lenient.decide("AAPL", bars, day=NORMAL_DAY).source is TrailSource.POLICY
