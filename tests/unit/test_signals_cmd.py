"""`run_signals`: the two CSV files, their columns and formatting, and clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from rich.console import Console

from app.signals_cmd import REGIME_COLUMNS, SIGNAL_COLUMNS, run_signals
from core.csv_text import price_text
from core.marketdata.errors import DataError
from core.params import ParamsError
from tests.kit.market import scenario_folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    return scenario_folder(folder, {"UPP": "trend_up_pullback", "DWN": "trend_down"})


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_writes_regime_daily_and_signals(data_dir: Path, tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    summary = run_signals(data_dir, tmp_path, console=console)
    regimes = _rows(tmp_path / "regime_daily.csv")
    assert tuple(regimes[0]) == REGIME_COLUMNS
    # 26 sessions each, the first 20 are warm-up: 6 rows per symbol, sorted by date, symbol
    assert len(regimes) == 12
    assert [(r["date"], r["symbol"]) for r in regimes] == sorted(
        (r["date"], r["symbol"]) for r in regimes
    )
    day = {r["symbol"]: r for r in regimes if r["date"] == "2024-03-14"}
    assert day["UPP"]["regime"] == "trend_up"
    assert len(day["UPP"]["atr20"].split(".")[1]) == 4
    assert float(day["UPP"]["pct_above"]) == 1.0
    signals = _rows(tmp_path / "signals.csv")
    assert tuple(signals[0]) == SIGNAL_COLUMNS
    mine = [s for s in signals if s["date"] == "2024-03-14" and s["symbol"] == "UPP"]
    assert len(mine) == 1
    assert mine[0]["signal_time"] == "2024-03-14T10:26:00-04:00"
    assert mine[0]["outcome"] == "filled"
    assert mine[0]["regime_at_signal"] == "trend_up"
    assert summary.sessions == 52 and summary.labelled == 12
    assert summary.signals == len(signals)
    assert sum(summary.labels.values()) == 12
    assert "labelled sessions" in console.export_text()


def test_events_file_and_symbol_selection(data_dir: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text('- {date: 2024-03-14, symbols: ["UPP"]}\n')
    summary = run_signals(data_dir, tmp_path / "out", ["upp"], events_path=events)
    assert summary.symbols == ["UPP"]
    regimes = _rows(tmp_path / "out" / "regime_daily.csv")
    assert {r["symbol"] for r in regimes} == {"UPP"}
    assert [r["regime"] for r in regimes if r["date"] == "2024-03-14"] == ["event"]


def test_bad_inputs_raise_one_clear_error(data_dir: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("trend_pct: 2\n")
    with pytest.raises(ParamsError, match=r"params.yaml: trend_pct"):
        run_signals(data_dir, tmp_path, params_path=params)
    params.write_text("no_such_key: 1\n")
    with pytest.raises(ParamsError, match="no_such_key"):
        run_signals(data_dir, tmp_path, params_path=params)
    with pytest.raises(DataError, match="no file for symbol"):
        run_signals(data_dir, tmp_path, ["NOPE"])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "X.csv").write_text("timestamp,open,high,low,close,volume\nxx,1,1,1,1,1\n")
    with pytest.raises(DataError, match="line 2"):
        run_signals(broken, tmp_path)
    events = tmp_path / "bad_events.yaml"
    events.write_text("- {symbols: '*'}\n")
    with pytest.raises(DataError, match="date"):
        run_signals(data_dir, tmp_path, events_path=events)


def test_price_text_rounds_halves_up() -> None:
    assert price_text(1.23455) == "1.2346"
    assert price_text(2.5) == "2.5000"
    assert price_text(None) == ""
    assert price_text(float("inf")) == ""
