"""The day's reports as data, Markdown, JSON and PNG charts (DESIGN.md section 1).

Core returns data; the bot formats the Telegram messages.

    brief = build_brief(day, symbols, xnys(), events, daily_bars)          # 09:00
    report = build_eod_report(ledger, "paper-main", day, xnys(), bars)     # 16:10
    stored = write_report(data_dir, report, bars)   # reports/YYYY-MM-DD/{report.md,json,*.png}
    again = load_report(data_dir, day)              # /report [date]
"""

from core.reports.brief import Brief, EventWindow, SymbolBrief, build_brief
from core.reports.charts import chart_png, render_symbol_chart
from core.reports.codec import ReportFormatError
from core.reports.eod import build_eod_report
from core.reports.lines import SessionLines, session_lines
from core.reports.markdown import brief_markdown, eod_markdown
from core.reports.model import (
    LABEL_CHOICES,
    DayStatus,
    EodReport,
    ExecutionDeviation,
    ExitReason,
    LabelPrompt,
    PnlSummary,
    ReconcileResult,
    RegimeSummary,
    RiskEventItem,
    SessionTransitionItem,
    StopPoint,
    StopSource,
    SymbolSession,
    Trade,
    TradeExit,
)
from core.reports.writers import (
    StoredReport,
    load_brief,
    load_report,
    report_dir,
    write_brief,
    write_report,
)

__all__ = [
    "LABEL_CHOICES",
    "Brief",
    "DayStatus",
    "EodReport",
    "EventWindow",
    "ExecutionDeviation",
    "ExitReason",
    "LabelPrompt",
    "PnlSummary",
    "ReconcileResult",
    "RegimeSummary",
    "ReportFormatError",
    "RiskEventItem",
    "SessionLines",
    "SessionTransitionItem",
    "StopPoint",
    "StopSource",
    "StoredReport",
    "SymbolBrief",
    "SymbolSession",
    "Trade",
    "TradeExit",
    "brief_markdown",
    "build_brief",
    "build_eod_report",
    "chart_png",
    "eod_markdown",
    "load_brief",
    "load_report",
    "render_symbol_chart",
    "report_dir",
    "session_lines",
    "write_brief",
    "write_report",
]
