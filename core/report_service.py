"""Stored day reports for the chat: `/report [date]`, and the reports carried by events.

`ReportService` reads what `core.reports.write_report` wrote under
`<data_dir>/reports/YYYY-MM-DD/`; it never builds a report (the 16:10 job does).
`brief_of` / `report_of` turn the JSON a `BriefReady` / `ReportReady` carries back into
the typed dataclasses, so a push rendered after a restart reads exactly as the first time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from core.events import BriefReady, JsonValue, ReportReady

if TYPE_CHECKING:  # core.reports draws with matplotlib: loaded on first use, not at start-up
    from core.reports import Brief, EodReport, StoredReport

REPORT_JSON = "report.json"  # core.reports.writers.REPORT_JSON


def thaw(value: object) -> object:
    """An event's frozen JSON (mapping proxies, tuples) back to dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def brief_json(brief: Brief) -> dict[str, JsonValue]:
    from core.reports.codec import encode

    data: dict[str, JsonValue] = encode(brief)
    return data


def report_json(report: EodReport) -> dict[str, JsonValue]:
    from core.reports.codec import encode

    data: dict[str, JsonValue] = encode(report)
    return data


def brief_of(event: BriefReady) -> Brief:
    """The brief an event carries (ReportFormatError, a ValueError, when unreadable)."""
    from core.reports import Brief
    from core.reports.codec import decode_dataclass

    return decode_dataclass(Brief, thaw(event.brief))


def report_of(event: ReportReady) -> EodReport:
    """The report an event carries (ReportFormatError, a ValueError, when unreadable)."""
    from core.reports import EodReport
    from core.reports.codec import decode_dataclass

    return decode_dataclass(EodReport, thaw(event.report))


class ReportService:
    """The day reports on disk, for `/report [date]`."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = Path(data_dir)

    @property
    def root(self) -> Path:
        return self._data_dir / "reports"

    def days(self) -> list[date]:
        """Days with a complete stored report (report.json present), newest first."""
        if not self.root.is_dir():
            return []
        found: list[date] = []
        for child in self.root.iterdir():
            try:
                day = date.fromisoformat(child.name)
            except ValueError:
                continue
            if (child / REPORT_JSON).is_file():
                found.append(day)
        return sorted(found, reverse=True)

    def load(self, day: date) -> StoredReport | None:
        """The report of `day`; None when there is none; ReportFormatError if unreadable."""
        from core.reports import load_report

        return load_report(self._data_dir, day)

    def latest(self, on_or_before: date | None = None) -> StoredReport | None:
        """The newest stored report (on or before a day, when given)."""
        for day in self.days():
            if on_or_before is None or day <= on_or_before:
                return self.load(day)
        return None


__all__ = [
    "ReportService",
    "brief_json",
    "brief_of",
    "report_json",
    "report_of",
    "thaw",
]
