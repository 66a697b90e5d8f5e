"""The day's scheduled pushes as data and text: the 09:45 verdicts (always definite), the
brief and snapshot renderers, the stored-report lookup, and the events' JSON."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from bot.render.day import render_allow_prompt, render_brief, render_no_report
from core.calendar import xnys
from core.clock import NEW_YORK
from core.day_verdicts import day_verdicts, verdict_for
from core.domain import Regime, Symbol
from core.event_calendar import EventCalendar, MarketEvent
from core.events import AllowPrompt, BriefReady, SymbolVerdict, event_from_payload
from core.marketdata.bar import Bar
from core.marketdata.sessions import DailyBars
from core.marketdata.synthetic import generate_scenario
from core.params import DEFAULT_PARAMS
from core.regime import Evidence
from core.report_service import ReportService, brief_json, brief_of
from core.reports import build_brief
from core.signals import RadarUpdate

DAY = date(2024, 3, 14)


def update(label: Regime | None, pct: float, crosses: int, day: date = DAY) -> RadarUpdate:
    start = datetime.combine(day, time(9, 44), tzinfo=NEW_YORK)
    bar = Bar(
        symbol=Symbol("AAPL"),
        start=start,
        size=timedelta(minutes=1),
        open=Decimal("100"),
        high=Decimal("101"),
        low=Decimal("99"),
        close=Decimal("100.5"),
        volume=1000,
    )
    evidence = Evidence(crosses, pct, 0.8, 0.3, 1.0, 0.1, False)
    return RadarUpdate("AAPL", 14, bar, 100.2, evidence, label, False, False, None)


def test_every_verdict_is_definite() -> None:
    no_events = EventCalendar([])
    cases = [
        (update(Regime.TREND_UP, 0.86, 2), True, "trend up (pct above VWAP 0.86, 2 crosses)"),
        (update(Regime.FORMING, 0.9, 1), True, "forming, leaning trend up"),
        (update(Regime.FORMING, 0.4, 6), False, "forming, no trend yet"),
        (update(Regime.RANGE, 0.5, 7), False, "range (7 crosses)"),
        (update(Regime.TREND_DOWN, 0.1, 1), False, "trend down"),
        (update(None, 0.9, 0), False, "no regime yet"),
        (update(Regime.TREND_UP, 0.9, 0, DAY - timedelta(days=1)), False, "no data yet"),
        (None, False, "no data yet"),
    ]
    for radar, tradable, reason in cases:
        verdict = verdict_for("AAPL", DAY, radar, no_events, DEFAULT_PARAMS)
        assert verdict.tradable is tradable and reason in verdict.reason, verdict
    cpi = EventCalendar([MarketEvent(DAY, "CPI", None, time(8, 30))])
    verdict = verdict_for("QQQM", DAY, update(Regime.TREND_UP, 0.9, 0), cpi, DEFAULT_PARAMS)
    assert verdict == SymbolVerdict("QQQM", False, Regime.EVENT, "CPI at 08:30")
    listed = day_verdicts(
        ["MU", "AAPL"], DAY, {"AAPL": update(Regime.TREND_UP, 0.9, 0)}, cpi, DEFAULT_PARAMS
    )
    assert [v.symbol for v in listed] == ["MU", "AAPL"]


def test_the_snapshot_asks_and_says_what_no_answer_means() -> None:
    verdicts = (
        SymbolVerdict("AAPL", True, Regime.TREND_UP, "trend up (pct above VWAP 0.86, 2 crosses)"),
        SymbolVerdict("MU", False, Regime.RANGE, "range (7 crosses)"),
    )
    at = datetime(2024, 3, 14, 13, 45, tzinfo=UTC)
    event = AllowPrompt(at=at, account="paper", day=DAY, verdicts=verdicts)
    text = render_allow_prompt(event)
    assert "Regime snapshot 09:45 ET" in text
    assert "✅ <b>AAPL</b>: tradable, trend up (pct above VWAP 0.86, 2 crosses)" in text
    assert "⛔ <b>MU</b>: not today, range (7 crosses)" in text
    assert text.endswith("Allow trading today?</b> No answer means not allowed.")
    back = event_from_payload(json.loads(json.dumps(event.to_payload())))
    assert back == event and back.kind == "allow_prompt"


def test_the_brief_reads_back_from_its_event_and_renders() -> None:
    data = generate_scenario("trend_up_pullback", symbol="DEMO")
    daily = {"DEMO": DailyBars.from_sessions(data.warmup)}
    events = EventCalendar([MarketEvent(DAY, "CPI", None, time(8, 30))])
    brief = build_brief(DAY, ["DEMO", "MU"], xnys(), events, daily)
    at = datetime(2024, 3, 14, 13, 0, tzinfo=UTC)
    event = BriefReady(at=at, day=DAY, brief=brief_json(brief))
    back = event_from_payload(json.loads(json.dumps(event.to_payload())))
    assert isinstance(back, BriefReady) and brief_of(back) == brief
    text = render_brief(brief_of(back))
    assert text.startswith("☀️ <b>Brief 2024-03-14</b> · normal session (09:30-16:00 ET)")
    assert "CPI 08:30 (all symbols; blocks 08:15-09:00)" in text
    assert "<b>DEMO</b>: prior close" in text and "ATR20" in text and "⚠️ CPI" in text
    assert "<b>MU</b>: no prior close" in text


def test_a_holiday_brief_says_the_market_is_closed() -> None:
    brief = build_brief(date(2024, 7, 4), ["SPY"], xnys(), EventCalendar([]), {})
    text = render_brief(brief)
    assert "market closed today" in text and "next session 2024-07-05" in text
    assert "Watchlist" not in text


def test_stored_reports_are_listed_newest_first(tmp_path: Path) -> None:
    service = ReportService(tmp_path)
    assert service.days() == [] and service.latest() is None and service.load(DAY) is None
    for day in ("2024-03-13", "2024-03-14", "not-a-day"):
        (tmp_path / "reports" / day).mkdir(parents=True)
    (tmp_path / "reports" / "2024-03-13" / "report.json").write_text("{}")
    (tmp_path / "reports" / "2024-03-14" / "brief.json").write_text("{}")  # no report
    assert service.days() == [date(2024, 3, 13)]
    assert "Reports stored: 2024-03-13" in render_no_report("2024-03-14", ["2024-03-13"])
