"""Writers: report.md + report.json + SYMBOL.png under reports/YYYY-MM-DD, read back."""

from __future__ import annotations

import json
import struct
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from core.calendar import xnys
from core.clock import SimClock
from core.event_calendar import EventCalendar
from core.ledger import AccountRow, Ledger
from core.marketdata.sessions import DailyBars, SessionBars
from core.marketdata.synthetic import generate_scenario
from core.reports import (
    ReportFormatError,
    build_brief,
    build_eod_report,
    load_brief,
    load_report,
    report_dir,
    write_brief,
    write_report,
)
from tests.integration.test_reports_eod import DAY, populate


@pytest.fixture
def bars() -> dict[str, SessionBars]:
    return {
        "AAPL": generate_scenario("trend_up_pullback", symbol="AAPL", day=DAY, start_price=191).day,
        "MU": generate_scenario("choppy_range", symbol="MU", day=DAY, start_price=100).day,
        "QQQM": generate_scenario("trend_down", symbol="QQQM", day=DAY, start_price=440).day,
    }


def test_round_trip_of_a_full_day(
    ledger: Ledger,
    account: AccountRow,
    sim_clock: SimClock,
    bars: dict[str, SessionBars],
    tmp_path: Path,
) -> None:
    populate(ledger, account, sim_clock)
    report = build_eod_report(ledger, "paper-main", DAY, xnys(), bars)
    stored = write_report(tmp_path, report, bars)

    folder = tmp_path / "reports" / "2026-03-02"
    assert stored.directory == folder == report_dir(tmp_path, DAY)
    # Charts for the traded symbols only; nothing temporary left behind.
    assert sorted(p.name for p in folder.iterdir()) == [
        "AAPL.png",
        "MU.png",
        "report.json",
        "report.md",
    ]
    for chart in stored.charts:
        data = chart.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (1200, 800)

    loaded = load_report(tmp_path, DAY)
    assert loaded is not None
    assert loaded.report == report
    assert loaded.markdown == stored.markdown == (folder / "report.md").read_text()
    assert loaded.charts == stored.charts

    document = json.loads((folder / "report.json").read_text())
    assert document["format"] == 1 and document["charts"] == ["AAPL.png", "MU.png"]
    body = document["report"]
    assert body["pnl"]["net"] == "-1.7000"  # Decimals as strings, exact
    assert body["trades"][0]["entry_time"] == "2026-03-02T10:05:00-05:00"  # ISO with offset
    assert body["trades"][0]["exits"][1]["reason"] == "trailing"

    text = stored.markdown
    assert text.startswith("---\ndate: 2026-03-02\naccount: paper-main\n")
    assert "# 2026-03-02 end of day · paper-main" in text
    assert "| Net P&L | -$1.70 |" in text
    assert (
        "| AAPL | 10:05 @ 191.52 | 11:30 @ 193.00 | 15 | +$22.05 | +0.91R | manual sell |" in text
    )
    assert (
        "| MU | 14:00 @ 100.05 | 14:40 @ 98.95 | 50 | -$55.50 | -1.06R | protection stop |" in text
    )
    assert "| AAPL | 191.50 | 191.52 | +0.02 | +1.04 | +$0.80 |" in text
    assert "A mismatch was recorded at 11:00 ET. position_mismatch=['MU']" in text
    assert "![AAPL](AAPL.png)" in text and "![MU](MU.png)" in text
    assert "- QQQM: classifier –; you: trend / range / event" in text


def test_empty_day_round_trip(ledger: Ledger, account: AccountRow, tmp_path: Path) -> None:
    report = build_eod_report(ledger, "paper-main", DAY, xnys(), {})
    stored = write_report(tmp_path, report)
    assert stored.charts == ()
    loaded = load_report(tmp_path, DAY)
    assert loaded is not None and loaded.report == report
    assert "No trades today." in loaded.markdown
    assert "No reconciliation result given and no mismatch recorded today." in loaded.markdown
    assert "## Charts" not in loaded.markdown


def test_rewriting_replaces_and_missing_markdown_is_rebuilt(
    ledger: Ledger, account: AccountRow, tmp_path: Path
) -> None:
    report = build_eod_report(ledger, "paper-main", DAY, xnys(), {})
    write_report(tmp_path, report)
    write_report(tmp_path, report)  # the 16:10 job re-run: same files, replaced atomically
    folder = report_dir(tmp_path, DAY)
    assert sorted(p.name for p in folder.iterdir()) == ["report.json", "report.md"]
    markdown = (folder / "report.md").read_text()
    (folder / "report.md").unlink()
    loaded = load_report(tmp_path, DAY)
    assert loaded is not None and loaded.markdown == markdown


def test_missing_and_corrupt_reports(tmp_path: Path) -> None:
    assert load_report(tmp_path, DAY) is None
    folder = report_dir(tmp_path, DAY)
    folder.mkdir(parents=True)
    (folder / "report.json").write_text("{not json")
    with pytest.raises(ReportFormatError, match="not JSON"):
        load_report(tmp_path, DAY)
    (folder / "report.json").write_text(json.dumps({"format": 1, "kind": "eod", "report": {}}))
    with pytest.raises(ReportFormatError, match="missing"):
        load_report(tmp_path, DAY)
    (folder / "report.json").write_text(json.dumps({"format": 99, "kind": "eod"}))
    with pytest.raises(ReportFormatError, match="format 99"):
        load_report(tmp_path, DAY)


def test_brief_round_trip(tmp_path: Path) -> None:
    sessions = generate_scenario("trend_up_pullback", symbol="AAPL", day=DAY).sessions
    daily = {"AAPL": DailyBars.from_sessions(sessions)}
    brief = build_brief(
        DAY, ["AAPL", "MU"], xnys(), EventCalendar([]), daily, last_prices={"AAPL": Decimal("101")}
    )
    path = write_brief(tmp_path, brief)
    assert path == report_dir(tmp_path, DAY) / "brief.json"
    assert (path.parent / "brief.md").is_file()
    assert load_brief(tmp_path, DAY) == brief
    assert load_brief(tmp_path, date(2026, 3, 3)) is None
