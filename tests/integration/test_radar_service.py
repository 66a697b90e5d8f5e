"""The live radar service: bars in; regime changes and signals recorded and published,
equal to the batch evaluation of the same session."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from core.calendar import xnys
from core.clock import SimClock
from core.config_models import RiskConfig
from core.event_calendar import EventCalendar, parse_events
from core.events import DomainEvent, EventBus, RegimeChanged, SignalRaised
from core.ledger import Ledger, create_engine_for, upgrade
from core.marketdata.synthetic import generate_scenario
from core.params import DEFAULT_PARAMS
from core.radar import EntryStatus, RadarService
from core.settings import DEFAULT_CONFIG_DIR, load_model
from core.signals import evaluate_sessions

RISK = load_model(DEFAULT_CONFIG_DIR / "risk.yaml", RiskConfig)


def _radar(
    tmp_path: Path,
    events: EventCalendar | None = None,
    status: EntryStatus | None = None,
    alert_regimes: tuple[str, ...] = ("trend_up", "forming", "range", "trend_down", "event"),
) -> tuple[RadarService, list[DomainEvent], Ledger]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    clock = SimClock(xnys().require_session(generate_scenario("trend_up_pullback").day.day).open)
    ledger = Ledger(create_engine_for(url), clock)
    bus = EventBus()
    seen: list[DomainEvent] = []
    bus.subscribe(seen.append)
    radar = RadarService(
        symbols=["DEMO"],
        params=DEFAULT_PARAMS,
        risk=RISK,
        calendar=xnys(),
        events=events or EventCalendar([]),
        bus=bus,
        ledger=ledger,
        clock=clock,
        alert_regimes=alert_regimes,
        equity=lambda: Decimal("25000"),
        entry_status=(lambda _s, _d: status) if status else (lambda _s, _d: EntryStatus(False, 0)),
    )
    return radar, seen, ledger


async def test_trend_day_announces_regimes_and_one_signal_like_the_batch(tmp_path: Path) -> None:
    data = generate_scenario("trend_up_pullback")
    radar, seen, ledger = _radar(tmp_path)
    radar.seed_history("DEMO", data.warmup)
    for bar in data.day.bars():
        await radar.on_bar(bar)
    signals = [e for e in seen if isinstance(e, SignalRaised)]
    regimes = [e for e in seen if isinstance(e, RegimeChanged)]
    evaluation = evaluate_sessions(data.sessions, DEFAULT_PARAMS)
    batch = evaluation.signals(DEFAULT_PARAMS)[-1]  # the scenario day is the last session
    assert len(signals) == len(batch) == 1
    assert signals[0].signal_time == batch[0].proposal.signal_time
    assert signals[0].trigger == batch[0].proposal.trigger
    assert signals[0].stop == batch[0].proposal.stop
    assert signals[0].suggested_qty > 0 and signals[0].signal_id is not None
    assert regimes[0].previous is None
    assert regimes[-1].current.value == "trend_up"
    assert all(a.current != b.current for a, b in itertools.pairwise(regimes))
    with ledger.unit_of_work(read_only=True) as uow:
        assert len(uow.signals.for_day(data.day.day)) == len(signals)
        assert [r.label for r in uow.regimes.history(data.day.day)] == [r.current for r in regimes]


async def test_rule_five_blocks_signals_while_an_entry_is_pending(tmp_path: Path) -> None:
    data = generate_scenario("trend_up_pullback")
    radar, seen, _ = _radar(tmp_path, status=EntryStatus(pending=True, entries_filled=0))
    radar.seed_history("DEMO", data.warmup)
    for bar in data.day.bars():
        await radar.on_bar(bar)
    assert not [e for e in seen if isinstance(e, SignalRaised)]


async def test_alert_filter_records_but_does_not_push(tmp_path: Path) -> None:
    data = generate_scenario("trend_up_pullback")
    radar, seen, ledger = _radar(tmp_path, alert_regimes=("range",))
    radar.seed_history("DEMO", data.warmup)
    for bar in data.day.bars():
        await radar.on_bar(bar)
    assert not [e for e in seen if isinstance(e, SignalRaised)]
    with ledger.unit_of_work(read_only=True) as uow:
        assert uow.signals.for_day(data.day.day)


async def test_event_day_is_labelled_event(tmp_path: Path) -> None:
    data = generate_scenario("event_burst")
    events = parse_events([{"date": data.day.day.isoformat(), "symbols": "*"}], "events")
    radar, seen, _ = _radar(tmp_path, events=events)
    radar.seed_history("DEMO", data.warmup)
    for bar in data.day.bars():
        await radar.on_bar(bar)
    labels = [e.current.value for e in seen if isinstance(e, RegimeChanged)]
    assert labels == ["event"]


async def test_without_history_the_day_is_warm_up_and_bad_bars_are_skipped(
    tmp_path: Path,
) -> None:
    data = generate_scenario("trend_up_pullback")
    radar, seen, _ = _radar(tmp_path)
    bars = data.day.bars()
    for bar in bars[:50]:
        await radar.on_bar(bar)
    assert await radar.on_bar(bars[10]) is None  # out of order: skipped, no crash
    assert not seen  # warm-up: no label, no signal
    assert radar.bars_seen == 50


@pytest.mark.parametrize("symbol", ["OTHER"])
async def test_unwatched_symbols_are_ignored(tmp_path: Path, symbol: str) -> None:
    data = generate_scenario("trend_up_pullback", symbol=symbol)
    radar, seen, _ = _radar(tmp_path)
    assert await radar.on_bar(data.day.bar(0)) is None
    assert not seen
