"""Reports on disk: `<data_dir>/reports/YYYY-MM-DD/` holds report.md, report.json and
one SYMBOL.png per traded symbol (and brief.md / brief.json for the morning brief).

Every file is written atomically (`core.reports.files`), charts first, then the
Markdown, then the JSON last: report.json is what `load_report` reads, so its presence
means the whole set is complete (a crash mid-way leaves the previous set or none).
The JSON wraps the report with a format number and the chart names:
`{"format": 1, "kind": "eod", "charts": ["AAPL.png"], "report": {...}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from core.calendar import TradingCalendar
from core.marketdata.sessions import SessionBars
from core.params import DEFAULT_PARAMS, SignalParams
from core.reports.brief import Brief
from core.reports.charts import chart_png
from core.reports.codec import ReportFormatError, decode_dataclass, encode
from core.reports.files import atomic_write, atomic_write_text
from core.reports.markdown import brief_markdown, eod_markdown
from core.reports.model import EodReport

FORMAT = 1
REPORT_JSON, REPORT_MD = "report.json", "report.md"
BRIEF_JSON, BRIEF_MD = "brief.json", "brief.md"


def report_dir(data_dir: Path, day: date) -> Path:
    return data_dir / "reports" / day.isoformat()


@dataclass(frozen=True, slots=True)
class StoredReport:
    """A day report as written: the data, its Markdown and its chart files."""

    report: EodReport
    markdown: str
    charts: tuple[Path, ...]
    directory: Path

    @property
    def markdown_path(self) -> Path:
        return self.directory / REPORT_MD

    @property
    def json_path(self) -> Path:
        return self.directory / REPORT_JSON


def _dump(document: Mapping[str, Any]) -> str:
    # Sorted keys and fixed indentation: the same report is the same bytes (diffable).
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_report(
    data_dir: Path,
    report: EodReport,
    bars_by_symbol: Mapping[str, SessionBars] | None = None,
    *,
    params: SignalParams = DEFAULT_PARAMS,
    calendar: TradingCalendar | None = None,
) -> StoredReport:
    """Write charts (traded symbols with bars), report.md and report.json; returns them."""
    directory = report_dir(data_dir, report.day)
    bars = bars_by_symbol or {}
    charts: list[Path] = []
    for symbol in report.traded_symbols:
        session = bars.get(symbol)
        if session is None or not len(session):
            continue  # no bars, no chart: the text still says everything
        png = chart_png(
            session, report.trades_for(symbol), None, None, None, params=params, calendar=calendar
        )
        charts.append(atomic_write(directory / f"{symbol}.png", png))
    names = [path.name for path in charts]
    markdown = eod_markdown(report, names)
    atomic_write_text(directory / REPORT_MD, markdown)
    document = {"format": FORMAT, "kind": "eod", "charts": names, "report": encode(report)}
    atomic_write_text(directory / REPORT_JSON, _dump(document))
    return StoredReport(report, markdown, tuple(charts), directory)


def _read(path: Path, kind: str) -> Mapping[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportFormatError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("kind") != kind:
        raise ReportFormatError(f"{path}: not a stored {kind} report")
    if document.get("format") != FORMAT:
        raise ReportFormatError(f"{path}: format {document.get('format')!r}, expected {FORMAT}")
    return document


def load_report(data_dir: Path, day: date) -> StoredReport | None:
    """The stored report of `day` (for `/report [date]`), or None when there is none."""
    directory = report_dir(data_dir, day)
    document = _read(directory / REPORT_JSON, "eod")
    if document is None:
        return None
    try:
        report = decode_dataclass(EodReport, document["report"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportFormatError(f"{directory / REPORT_JSON}: {exc}") from exc
    names = document.get("charts") or []
    charts = tuple(directory / str(n) for n in names if (directory / str(n)).is_file())
    md_path = directory / REPORT_MD
    # The Markdown is derived data: if someone deleted it, rebuild it rather than fail.
    markdown = (
        md_path.read_text(encoding="utf-8")
        if md_path.is_file()
        else eod_markdown(report, [c.name for c in charts])
    )
    return StoredReport(report, markdown, charts, directory)


def write_brief(data_dir: Path, brief: Brief) -> Path:
    """brief.md and brief.json beside the day's report; returns the JSON path."""
    directory = report_dir(data_dir, brief.day)
    atomic_write_text(directory / BRIEF_MD, brief_markdown(brief))
    document = {"format": FORMAT, "kind": "brief", "report": encode(brief)}
    return atomic_write_text(directory / BRIEF_JSON, _dump(document))


def load_brief(data_dir: Path, day: date) -> Brief | None:
    path = report_dir(data_dir, day) / BRIEF_JSON
    document = _read(path, "brief")
    if document is None:
        return None
    try:
        return decode_dataclass(Brief, document["report"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportFormatError(f"{path}: {exc}") from exc
