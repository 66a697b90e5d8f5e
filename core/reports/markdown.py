"""Markdown for the day report and the brief, for Obsidian and any Markdown viewer.

Choices:
- YAML front matter (date, account, net P&L, R, trades, tags): Obsidian shows it as note
  properties and can query it (Dataview), so a month of reports becomes a table for free.
- Charts are embedded with standard relative links `![AAPL](AAPL.png)`, not Obsidian's
  `![[AAPL.png]]`: every day folder has an `AAPL.png`, and a wikilink resolves by file
  name across the vault (it could show another day's chart), while a relative link always
  means the file beside the note. Obsidian, GitHub and editors all render it.
- Money is shown to the cent with a sign (+$12.34), R to two decimals; the JSON keeps
  the exact values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from core.reports.brief import Brief, EventWindow, SymbolBrief
from core.reports.model import LABEL_CHOICES, EodReport, Trade

NONE = "–"


def money(value: Decimal | None) -> str:
    if value is None:
        return NONE
    sign = "-" if value < 0 else "+"
    return f"{sign}${abs(value):,.2f}"


def r_text(value: Decimal | None) -> str:
    return NONE if value is None else f"{value:+.2f}R"


def qty_text(value: Decimal) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,f}"


def price_text(value: Decimal | None) -> str:
    return NONE if value is None else f"{value:,.2f}"


def fill_text(value: Decimal) -> str:
    """At least cents, and every sub-cent digit a fill really had (191.5213)."""
    digits = max(2, -value.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{value:,.{digits}f}"


def hhmm(moment: datetime | None) -> str:
    return NONE if moment is None else f"{moment:%H:%M}"


def pct(value: Decimal | None) -> str:
    return NONE if value is None else f"{value:+.2f}%"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A GitHub/Obsidian pipe table followed by a blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    lines.append("")
    return lines


def _details(detail: object) -> str:
    if not isinstance(detail, dict) or not detail:
        return ""
    return ", ".join(f"{k}={v}" for k, v in detail.items())


def _answer(allowed: bool | None) -> str:
    if allowed is None:
        return "no answer (not allowed)"
    return "allowed" if allowed else "not today"


def _front_matter(report: EodReport) -> list[str]:
    # Plain numbers (cents, R to 0.01) so Dataview can sum them; JSON keeps exact values.
    r_total = report.pnl.r_total
    return [
        "---",
        f"date: {report.day.isoformat()}",
        f"account: {report.account}",
        f"net_pnl: {report.pnl.net:.2f}",
        f"r_total: {r_total:.2f}" if r_total is not None else "r_total: null",
        f"trades: {report.pnl.trades}",
        f"session: {report.session_kind}",
        "tags: [centaur, eod]",
        "---",
        "",
    ]


def _summary(report: EodReport) -> list[str]:
    p = report.pnl
    r_note = f" ({p.r_unknown} trade(s) without R)" if p.r_unknown else ""
    rows = [
        ["Net P&L", money(p.net)],
        ["R", r_text(p.r_total) + r_note],
        ["Trades", f"{p.trades} ({p.wins} won, {p.losses} lost)"],
        ["Gross / commissions", f"{money(p.gross)} / {money(-p.commissions)}"],
        ["Fees paid today", money(-p.fees_paid)],
        ["Session", report.session_kind],
    ]
    if p.unrealized:
        rows.append(["Unrealized (open shares)", money(p.unrealized)])
    status = report.day_status
    if status is not None:
        rows.append(["Day answer", _answer(status.trading_allowed)])
        if status.locked_reason:
            rows.append(["Locked", status.locked_reason])
        if status.safe_mode_reason:
            rows.append(["SAFE MODE", status.safe_mode_reason])
    return ["## Summary", "", *table(["Day", report.day.isoformat()], rows)]


def _trade_rows(trades: Sequence[Trade]) -> list[list[object]]:
    rows: list[list[object]] = []
    for t in trades:
        entry = f"{hhmm(t.entry_time)} @ {price_text(t.entry_price)}"
        if not t.exits:
            rows.append([t.symbol, entry, "open", qty_text(t.qty), NONE, NONE, "still open"])
        for leg in t.exits:
            exit_ = f"{hhmm(leg.at)} @ {price_text(leg.price)}"
            pnl, r = money(leg.pnl), r_text(leg.r_multiple)
            rows.append([t.symbol, entry, exit_, qty_text(leg.qty), pnl, r, leg.reason.value])
    return rows


def _trades(report: EodReport) -> list[str]:
    if not report.trades:
        return ["## Trades", "", "No trades today.", ""]
    header = ["Symbol", "Entry", "Exit", "Qty", "P&L", "R", "Exit reason"]
    out = ["## Trades", "", *table(header, _trade_rows(report.trades))]
    rows = [
        [
            t.symbol,
            price_text(d.trigger),
            fill_text(d.fill),
            f"{'+' if d.per_share >= 0 else '-'}{fill_text(abs(d.per_share))}",
            f"{d.bps:+.2f}",
            money(d.total),
        ]
        for t in report.trades
        if (d := t.deviation) is not None
    ]
    if rows:
        header = ["Symbol", "Trigger", "Fill", "Slippage/sh", "bps", "Total"]
        out += ["### Execution (fill vs trigger)", "", *table(header, rows)]
    return out


def _regimes(report: EodReport) -> list[str]:
    out = ["## Regimes", ""]
    if report.regimes:
        rows = [
            [
                r.symbol,
                r.label.value,
                hhmm(r.at),
                " → ".join(label.value for _, label in r.changes),
                _details(r.evidence),
            ]
            for r in report.regimes
        ]
        out += table(["Symbol", "Regime", "Since", "Changes", "Evidence"], rows)
    else:
        out += ["No regime recorded.", ""]
    if report.sessions:
        rows = [
            [
                s.symbol,
                price_text(s.open),
                price_text(s.high),
                price_text(s.low),
                price_text(s.close),
                price_text(s.vwap_close),
                pct(s.close_vs_vwap_pct),
                NONE if s.or15_low is None else f"{s.or15_low:,.2f}–{s.or15_high:,.2f}",
            ]
            for s in report.sessions
        ]
        header = ["Symbol", "Open", "High", "Low", "Close", "VWAP", "vs VWAP", "OR15"]
        out += ["### Sessions", "", *table(header, rows)]
    return out


def _risk_and_session(report: EodReport) -> list[str]:
    out = ["## Risk events", ""]
    if report.risk_events:
        rows = [
            [hhmm(e.at), e.kind, "yes" if e.blocking else "no", _details(e.detail)]
            for e in report.risk_events
        ]
        out += table(["Time", "Kind", "Blocking", "Detail"], rows)
    else:
        out += ["None.", ""]
    out += ["## Session", ""]
    if report.transitions:
        rows = [
            [hhmm(s.at), s.from_state or NONE, s.to_state, s.trigger or NONE, s.cause]
            for s in report.transitions
        ]
        out += table(["Time", "From", "To", "Trigger", "Cause"], rows)
    else:
        out += ["No transition recorded.", ""]
    return out


def _reconcile(report: EodReport) -> list[str]:
    rec = report.reconcile
    if rec is None:
        line = "No reconciliation result given and no mismatch recorded today."
    elif rec.source == "notification":
        # Only mismatches reach the outbox: this is history, not the state at the close.
        verdict = "In sync" if rec.in_sync else "A mismatch was recorded"
        line = f"{verdict} at {hhmm(rec.at)} ET. {_details(rec.summary)}".rstrip()
    else:
        verdict = "In sync" if rec.in_sync else "MISMATCH"
        line = f"{verdict} at {hhmm(rec.at)} ET. {_details(rec.summary)}".rstrip()
    return ["## Reconciliation", "", line, ""]


def _labels(report: EodReport) -> list[str]:
    if not report.labels:
        return []
    choices = " / ".join(LABEL_CHOICES)
    out = ["## Label the day", ""]
    for prompt in report.labels:
        traded = " (traded)" if prompt.traded else ""
        classifier = prompt.regime.value if prompt.regime else NONE
        out.append(f"- {prompt.symbol}{traded}: classifier {classifier}; you: {choices}")
    return [*out, ""]


def eod_markdown(report: EodReport, charts: Sequence[str] = ()) -> str:
    """The report as Markdown; `charts` are PNG file names beside the note."""
    title = f"# {report.day.isoformat()} end of day · {report.account}"
    out = [*_front_matter(report), title, ""]
    out += _summary(report) + _trades(report) + _regimes(report)
    out += _risk_and_session(report) + _reconcile(report)
    if charts:
        out += ["## Charts", ""]
        for name in charts:
            out += [f"![{name.removesuffix('.png')}]({name})", ""]
    out += _labels(report)
    return "\n".join(out)


def _event_row(e: EventWindow) -> list[object]:
    when = e.at.strftime("%H:%M") if e.at else "all day"
    blocked = f"{hhmm(e.block_start)}–{hhmm(e.block_end)}" if e.at else "all day"
    return [e.kind, when, "all" if e.symbols is None else ", ".join(e.symbols), blocked]


def _symbol_row(s: SymbolBrief) -> list[object]:
    vs_ma = NONE
    if s.close_vs_ma20_pct is not None:
        vs_ma = f"{pct(s.close_vs_ma20_pct)} ({'above' if s.above_ma20 else 'below'})"
    atr = NONE
    if s.atr20 is not None:
        atr = f"${s.atr20:,.2f}" + (f" ({s.atr20_pct:.2f}%)" if s.atr20_pct is not None else "")
    events = ", ".join(s.events) or NONE
    return [s.symbol, price_text(s.prior_close), vs_ma, pct(s.gap_pct), atr, events]


def brief_markdown(brief: Brief) -> str:
    out = [
        "---",
        f"date: {brief.day.isoformat()}",
        f"session: {brief.session_kind}",
        "tags: [centaur, brief]",
        "---",
        "",
        f"# {brief.day.isoformat()} pre-market brief",
        "",
        brief.headline,
        "",
    ]
    if brief.next_session is not None:
        out += [f"Next session: {brief.next_session.isoformat()}", ""]
    out += ["## Events", ""]
    if brief.events:
        out += table(["Event", "Time", "Symbols", "Blocked"], map(_event_row, brief.events))
    else:
        out += ["None.", ""]
    header = ["Symbol", "Prior close", "vs MA20", "Gap", "ATR20", "Events"]
    out += ["## Symbols", "", *table(header, map(_symbol_row, brief.symbols))]
    return "\n".join(out)
