"""The real bar sets in ../shared/data: every session loads, labels after warm-up, live == batch.

Skipped cleanly when ../shared/data is absent. Run with -s to see the label distribution.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from app.signals_cmd import run_signals
from core.domain import Regime
from core.marketdata.sessions import DailyBars, SymbolSessions, load_folder
from core.params import SignalParams
from core.signals import RadarState, evaluate_sessions

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
INTRADAY = ("spy-1m-2024", "shock-1m-2025q2", "megacaps-5m-2025")
EXPECTED_SESSIONS = {"spy-1m-2024": 63, "shock-1m-2025q2": 62, "megacaps-5m-2025": 207}
P = SignalParams()

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data at {SHARED.resolve()}"),
]


@pytest.fixture(scope="module")
def sets() -> dict[str, dict[str, SymbolSessions]]:
    present = [name for name in INTRADAY if (SHARED / name).is_dir()]
    if not present:
        pytest.skip(f"none of {INTRADAY} in {SHARED.resolve()}")
    return {name: load_folder(SHARED / name) for name in present}


def test_every_session_loads_and_is_labelled_after_warm_up(
    sets: dict[str, dict[str, SymbolSessions]],
) -> None:
    print()
    for name, symbols in sets.items():
        for symbol, series in symbols.items():
            assert len(series.sessions) == EXPECTED_SESSIONS[name], (name, symbol)
            assert series.skipped_outside == 0
            ev = evaluate_sessions(series.sessions, P)
            labels = [ev.day_label(s) for s in range(len(series.sessions))]
            assert all(label is None for label in labels[:20])
            assert all(label is not None for label in labels[20:])
            counts = Counter(label.value for label in labels[20:] if label is not None)
            signals = sum(len(r) for r in ev.signals(P))
            shown = ", ".join(f"{r.value} {counts.get(r.value, 0)}" for r in Regime)
            print(f"{name:18} {symbol:5} labelled {len(labels) - 20:3}: {shown}; signals {signals}")


@pytest.mark.parametrize(
    "every",
    [pytest.param(7, id="every-7th-session"), pytest.param(1, marks=pytest.mark.slow, id="all")],
)
def test_live_equals_batch_on_real_bars(
    sets: dict[str, dict[str, SymbolSessions]], every: int
) -> None:
    """Every bar of every (or every 7th) session; the full run is marked slow (~10 s)."""
    checked = 0
    for symbols in sets.values():
        for symbol, series in symbols.items():
            ev = evaluate_sessions(series.sessions, P)
            for s, session in enumerate(series.sessions):
                if s % every:
                    continue
                radar = RadarState(symbol, session.session, ev.levels[s], False, P)
                for k, bar in enumerate(session.bars()):
                    assert radar.on_bar(bar).reading == ev.reading(s, k), (symbol, session.day, k)
                    checked += 1
    assert checked > 100_000 // every


def test_daily_file_warm_up(sets: dict[str, dict[str, SymbolSessions]]) -> None:
    daily_dir = SHARED / "daily-2024-2026"
    if "megacaps-5m-2025" not in sets or not daily_dir.is_dir():
        pytest.skip("needs megacaps-5m-2025 and daily-2024-2026")
    series = sets["megacaps-5m-2025"]["SPY"]
    daily = DailyBars.load(daily_dir / "SPY.csv")
    ev = evaluate_sessions(series.sessions, P, daily=daily)
    # the daily file starts 2024-04-01: the first intraday session (2025-05-12) is labelled
    assert ev.day_label(0) is not None
    assert ev.levels[0].prev_close == int(
        daily.close[daily.day < series.sessions[0].day.toordinal()][-1]
    )


def test_signals_command_is_fast_on_spy(tmp_path: Path) -> None:
    if not (SHARED / "spy-1m-2024").is_dir():
        pytest.skip("needs spy-1m-2024")
    started = time.perf_counter()
    summary = run_signals(SHARED / "spy-1m-2024", tmp_path, ["SPY"])
    assert time.perf_counter() - started < 10
    assert summary.sessions == 63 and summary.labelled == 43
    assert (tmp_path / "regime_daily.csv").read_text().count("\n") == 44
