"""Backtests of the real bar sets in ../shared/data (skipped cleanly when absent)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.backtest_cmd import run_backtest
from core.backtest.engine import execute_block, replay_session
from core.backtest.run import load_symbol
from core.marketdata.loader import discover
from core.params import SignalParams
from core.signals import evaluate_sessions

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SETS = ("spy-1m-2024", "shock-1m-2025q2", "megacaps-5m-2025")

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data at {SHARED.resolve()}"),
]


def _folder(name: str) -> Path:
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(f"no {folder}")
    return folder


@pytest.mark.parametrize("exit_model", ["trail", "half_1r"])
@pytest.mark.parametrize("name", SETS)
def test_fast_execution_equals_the_literal_replay_on_real_sessions(
    name: str, exit_model: str
) -> None:
    params = SignalParams(exit_model=exit_model)
    for symbol, path in discover(_folder(name)).items():
        data = load_symbol(path, symbol)
        ev = evaluate_sessions(data.sessions, params)
        picked = [s for s in range(len(data.sessions)) if not ev.levels[s].warm_up][:8]
        for s in picked:
            mask = [k == s for k in range(len(data.sessions))]
            fast = execute_block(ev, params, mask)  # type: ignore[arg-type]
            assert fast == replay_session(data.sessions[s], ev.levels[s], False, params)


def test_megacaps_command_is_fast_and_consistent(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = run_backtest(_folder("megacaps-5m-2025"), tmp_path, charts=True)
    elapsed = time.perf_counter() - started
    result = summary.result
    assert elapsed < 20  # the target is < 10 s for the whole command (benchmark)
    assert result.sessions == 6 * (207 - 20)
    assert [s.regime for s in result.summary][-1] == "all"
    assert result.summary[-1].n_trades == len(result.trades) > 100
    for row in result.rows:
        assert row.entry_time < row.exit_time
        if row.exit_reason == "flatten":
            assert row.exit_time.strftime("%H:%M") in ("15:50", "12:50")


def test_event_days_of_the_tariff_shock(tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text(
        "- {date: 2025-04-03, symbols: '*'}\n- {date: 2025-04-04, symbols: '*'}\n"
        "- {date: 2025-04-09, symbols: [NVDA, TSLA]}\n"
    )
    summary = run_backtest(
        _folder("shock-1m-2025q2"),
        tmp_path / "out",
        events_path=events,
        daily_dir=_folder("daily-2024-2026"),  # the warm-up from daily bars: day 1 is labelled
        charts=False,
    )
    labels = {(d.day.isoformat(), d.symbol): d.label.value for d in summary.result.days}
    assert summary.result.sessions == 2 * 62
    assert labels[("2025-04-09", "NVDA")] == labels[("2025-04-03", "TSLA")] == "event"
    assert all(
        row.regime.value == "event"
        for row in summary.result.rows
        if row.day.isoformat() in ("2025-04-03", "2025-04-04", "2025-04-09")
    )
