"""The stability run (thresholds moved as written) and sweeps (grid, parallel == serial)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.backtest.model import BacktestError
from core.backtest.run import RegimeDay, SymbolData, run_all
from core.backtest.stability import moved, relabel, stability
from core.backtest.sweep import grid, parse_axes, ranked, run_sweep, sweep_columns, sweep_row
from core.domain import Regime
from core.params import ParamsError, SignalParams
from core.regime import CODE, Evidence
from tests.kit.market import scenario

P = SignalParams()


def day(label: Regime, pct: float, crosses: int, range_atr: float, symbol: str = "A") -> RegimeDay:
    evidence = Evidence(crosses, pct, range_atr, None, None, None, label is Regime.EVENT)
    return RegimeDay(date(2024, 3, 14), symbol, label, evidence, False, range_atr, 1.0, 100, 100)


def test_thresholds_move_as_written() -> None:
    assert [moved(0.75, 10, s) for s in (-1, 1)] == [0.675, 0.825]
    assert [moved(4.0, 10, s) for s in (-1, 1)] == [3.6, 4.4]
    assert [moved(0.5, 10, s) for s in (-1, 1)] == [0.45, 0.55]


def test_changed_share_per_threshold_and_direction() -> None:
    days = [
        day(Regime.TREND_UP, 0.8, 4, 1.0),  # 4 > 3.6 and 0.8 < 0.825: changes twice
        day(Regime.RANGE, 0.5, 9, 1.0, "B"),
        day(Regime.EVENT, 0.9, 0, 1.0, "C"),  # event wins whatever the thresholds
    ]
    assert relabel(days, P).tolist() == [CODE[d.label] for d in days]
    rows = stability(days, P)
    got = [(r.threshold, r.direction, r.changed, r.total) for r in rows]
    assert got == [
        ("trend_pct", "-10%", 0, 3),
        ("trend_pct", "+10%", 1, 3),
        ("trend_max_crosses", "-10%", 1, 3),
        ("trend_max_crosses", "+10%", 0, 3),
        ("trend_min_range_atr", "-10%", 0, 3),
        ("trend_min_range_atr", "+10%", 0, 3),
    ]
    assert rows[1].changed_share == pytest.approx(1 / 3)


def test_sweep_axes_and_grid_are_validated() -> None:
    axes = parse_axes(["trail_pct=0.5, 1", "exit_model=trail,half_1r"])
    sets = grid(P, axes)
    assert [s.values for s in sets] == [
        ("0.5", "trail"),
        ("0.5", "half_1r"),
        ("1", "trail"),
        ("1", "half_1r"),
    ]
    assert sets[3].params.trail_pct == Decimal(1) and sets[3].params.exit_model == "half_1r"
    for bad in ("trail_pct", "=1,2", "trail_pct="):
        with pytest.raises(BacktestError, match="key=v1,v2"):
            parse_axes([bad])
    with pytest.raises(BacktestError, match="twice"):
        parse_axes(["trail_pct=1", "trail_pct=2"])
    with pytest.raises(ParamsError, match="unknown parameter"):
        grid(P, parse_axes(["trail_percent=1"]))
    with pytest.raises(ParamsError, match="trail_pct"):
        grid(P, parse_axes(["trail_pct=-1"]))


@pytest.fixture(scope="module")
def datas() -> list[SymbolData]:
    return [
        SymbolData(sym, scenario(name, symbol=sym).sessions)
        for sym, name in (("UPP", "trend_up_pullback"), ("CHP", "choppy_range"))
    ]


def test_a_sweep_equals_the_backtest_of_each_set(datas: list[SymbolData]) -> None:
    axes = parse_axes(["trail_pct=0.4,0.8", "band_bps=5,10"])
    sets = grid(P, axes)
    results = run_sweep(datas, sets, workers=1)
    assert [r.set.index for r in results] == [0, 1, 2, 3]
    for result in results:
        alone = run_all(datas, result.set.params)
        assert list(result.summary) == alone.summary
    columns = sweep_columns(axes)
    assert columns[:6] == [
        "trail_pct",
        "band_bps",
        "trades",
        "win_rate",
        "expectancy_r",
        "max_drawdown_r",
    ]
    assert "trend_up_expectancy_r" in columns and len(columns) == 2 + 6 * 4
    assert all(len(sweep_row(r)) == len(columns) for r in results)
    best = ranked(results)[0].stats("all")
    assert all(
        best.expectancy_r is None
        or r.stats("all").expectancy_r is None
        or r.stats("all").expectancy_r <= best.expectancy_r  # type: ignore[operator]
        for r in results
    )
