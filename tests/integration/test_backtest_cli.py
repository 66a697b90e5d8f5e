"""`centaur backtest` end to end: files, columns, stability, sweep, and clean errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.signals_cmd import run_signals
from core.backtest.outputs import SUMMARY_COLUMNS, TRADE_COLUMNS
from tests.kit.market import scenario_folder

runner = CliRunner()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    return scenario_folder(
        folder, {"UPP": "trend_up_pullback", "CHP": "choppy_range", "EVT": "event_burst"}
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def backtest(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, ["backtest", *map(str, args)])
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def test_writes_every_output(data_dir: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text('- {date: 2024-03-12, symbols: ["EVT"]}\n')
    code, output = backtest(
        "--data", data_dir, "--out", tmp_path / "out", "--events", events, "--stability"
    )
    assert code == 0, output
    out = tmp_path / "out"
    names = {p.name for p in out.iterdir()}
    assert {"regime_daily.csv", "trades.csv", "summary_by_regime.csv", "report.md"} <= names
    assert {"stability.csv", "equity.png", "r_by_regime.png", "day_trend_up.png"} <= names
    trades = _rows(out / "trades.csv")
    assert tuple(trades[0]) == TRADE_COLUMNS
    keys = [(t["entry_time"], t["symbol"], t["exit_time"]) for t in trades]
    assert keys == sorted(keys)
    upp = [t for t in trades if t["symbol"] == "UPP" and t["date"] == "2024-03-14"]
    assert [(t["signal_time"], t["entry_time"], t["regime_at_entry"]) for t in upp] == [
        ("2024-03-14T10:26:00-04:00", "2024-03-14T10:27:00-04:00", "trend_up")
    ]
    summary = _rows(out / "summary_by_regime.csv")
    assert tuple(summary[0]) == SUMMARY_COLUMNS
    assert [s["regime"] for s in summary] == [
        "event", "forming", "trend_up", "trend_down", "range", "all",
    ]  # fmt: skip
    assert int(summary[-1]["n_trades"]) == len({(t["symbol"], t["entry_time"]) for t in trades})
    assert len(_rows(out / "stability.csv")) == 6
    report = (out / "report.md").read_text()
    assert "## Summary by regime" in report and "## Stability" in report
    assert "trend_up: expectancy" in report and "![equity](equity.png)" in report
    assert "centaur backtest" in output


def test_regime_daily_is_what_signals_writes(data_dir: Path, tmp_path: Path) -> None:
    code, output = backtest("--data", data_dir, "--out", tmp_path / "bt", "--no-charts")
    assert code == 0, output
    run_signals(data_dir, tmp_path / "sig")
    assert (tmp_path / "bt" / "regime_daily.csv").read_bytes() == (
        tmp_path / "sig" / "regime_daily.csv"
    ).read_bytes()
    filled = [r for r in _rows(tmp_path / "sig" / "signals.csv") if r["outcome"] == "filled"]
    trades = _rows(tmp_path / "bt" / "trades.csv")
    assert {(r["symbol"], r["fill_time"], r["entry_price"], r["qty"]) for r in filled} == {
        (t["symbol"], t["entry_time"], t["entry_price"], t["qty"]) for t in trades
    }


def test_options_half_1r_ibkr_dates_set_and_a_parallel_sweep(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, output = backtest(
        "--data", data_dir, "--out", out, "--symbols", "upp,chp", "--exit-model", "half_1r",
        "--friction", "ibkr", "--from", "2024-03-08", "--to", "2024-03-14",
        "--set", "risk_per_trade=200", "--sweep", "trail_pct=0.5,1", "--sweep",
        "stop_valid_bars=2,3", "--no-charts",
    )  # fmt: skip
    assert code == 0, output
    trades = _rows(out / "trades.csv")
    assert {t["symbol"] for t in trades} <= {"UPP", "CHP"}
    assert all("2024-03-08" <= t["date"] <= "2024-03-14" for t in trades)
    assert all(float(t["fees"]) >= 1.0 for t in trades)  # IBKR: at least 1.00 an order
    assert {t["exit_reason"] for t in trades} <= {"stop", "target", "breakeven", "flatten"}
    sweep = _rows(out / "sweep.csv")
    assert [(s["trail_pct"], s["stop_valid_bars"]) for s in sweep] == [
        ("0.5", "2"), ("0.5", "3"), ("1", "2"), ("1", "3"),
    ]  # fmt: skip
    # half_1r ignores trail_pct: its sets differ only by stop_valid_bars
    assert sweep[0]["trades"] == sweep[2]["trades"]
    report = (out / "report.md").read_text()
    assert "## Sweep" in report and "risk_per_trade | **200** (changed)" in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbols", "NOPE"], "no file for symbol(s) NOPE"),
        (["--from", "2030-01-01"], "no session of the data"),
        (["--from", "2024-03-14", "--to", "2024-03-01"], "is after --to"),
        (["--from", "14/03/2024"], "YYYY-MM-DD"),
        (["--set", "nope=1"], "unknown parameter 'nope'"),
        (["--set", "trail_pct=-1"], "trail_pct"),
        (["--set", "trail_pct"], "expected key=value"),
        (["--exit-model", "moon"], "exit_model"),
        (["--friction", "schwab"], "choose one of alpaca, ibkr"),
        (["--sweep", "trail_pct"], "key=v1,v2"),
        (["--set", "trail_policy=noise"], "not available in the backtest"),
    ],
)
def test_bad_options_end_with_one_clear_message(
    data_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, output = backtest("--data", data_dir, "--out", tmp_path / "o", *args)
    assert code == 1
    assert message in output
    assert "Traceback" not in output and not (tmp_path / "o").exists()


def test_bad_data_ends_with_one_clear_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, output = backtest("--data", empty, "--out", tmp_path / "o")
    assert code == 1 and "no bar files" in output and "Traceback" not in output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "X.csv").write_text("timestamp,open,high,low,close\n2024-03-14T09:30:00-04:00,1,1,1,1\n")
    code, output = backtest("--data", bad, "--out", tmp_path / "o")
    assert code == 1 and "header must be" in output and "Traceback" not in output
    code, output = backtest("--data", tmp_path / "missing", "--out", tmp_path / "o")
    assert code == 1 and "not a folder" in output
