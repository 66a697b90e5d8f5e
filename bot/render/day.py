"""The day's scheduled pushes: the 09:00 brief, the 09:45 snapshot with "Allow trading
today?", and the end-of-day report (its charts follow as photos with `chart_caption`).

Pure functions: core's data in, Telegram HTML out (escaped). `/report [date]` renders a
stored report through `render_report` too, so a re-sent report reads like the first one.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from bot.render.fmt import hhmm, label, pct, price, qty, r_multiple, signed_money
from bot.text import esc
from core.events import AllowPrompt, SymbolVerdict

if TYPE_CHECKING:
    from core.reports import Brief, EodReport, SymbolBrief, Trade

NO_ANSWER = "No answer means not allowed."


def _brief_symbol(s: SymbolBrief) -> str:
    parts: list[str] = []
    if s.prior_close is None:
        parts.append("no prior close")
    else:
        vs = ""
        if s.close_vs_ma20_pct is not None:
            side = "above" if s.above_ma20 else "below"
            vs = f" ({pct(abs(s.close_vs_ma20_pct))} {side} MA20)"
        parts.append(f"prior close {price(s.prior_close)}{vs}")
    if s.gap_pct is not None:
        parts.append(f"gap {'+' if s.gap_pct >= 0 else ''}{pct(s.gap_pct)}")
    if s.atr20 is not None:
        atr = f" ({pct(s.atr20_pct)})" if s.atr20_pct is not None else ""
        parts.append(f"ATR20 {price(s.atr20)}{atr}")
    else:
        parts.append("ATR20 n/a (warm-up)")
    events = f" · ⚠️ {esc(', '.join(s.events))}" if s.events else ""
    return f"• <b>{esc(s.symbol)}</b>: {esc(', '.join(parts))}{events}"


def render_brief(brief: Brief) -> str:
    """09:00: session type, the day's event windows, and per symbol the daily levels."""
    lines = [f"☀️ <b>Brief {brief.day.isoformat()}</b> · {esc(brief.headline)}"]
    if not brief.market_open:
        following = brief.next_session.isoformat() if brief.next_session else "unknown"
        lines.append(f"Market closed today; next session {esc(following)}.")
    if brief.events:
        lines.append("<b>Events</b>")
        for e in brief.events:
            at = f"{e.at:%H:%M}" if e.at is not None else "all day"
            who = "all symbols" if e.symbols is None else ", ".join(e.symbols)
            window = f"blocks {hhmm(e.block_start)}-{hhmm(e.block_end)}"
            lines.append(f"• {esc(e.kind)} {esc(at)} ({esc(who)}; {esc(window)})")
    else:
        lines.append("No scheduled events.")
    if brief.market_open and brief.symbols:
        lines.append("<b>Watchlist</b>")
        lines += [_brief_symbol(s) for s in brief.symbols]
    return "\n".join(lines)


def _verdict_line(v: SymbolVerdict) -> str:
    mark = "✅" if v.tradable else "⛔"
    verdict = "tradable" if v.tradable else "not today"
    return f"{mark} <b>{esc(v.symbol)}</b>: {verdict}, {esc(v.reason)}"


def render_allow_prompt(event: AllowPrompt) -> str:
    """09:45: a definite verdict per symbol, then the day's master switch."""
    lines = [f"🧭 <b>Regime snapshot {hhmm(event.at)} ET</b> · {esc(event.account)}"]
    lines += [_verdict_line(v) for v in event.verdicts] or ["(no symbols watched)"]
    lines.append("")
    if event.allowed is True:
        lines.append("<b>Allow trading today?</b> Already allowed; you can still change it.")
    elif event.allowed is False:
        lines.append("<b>Allow trading today?</b> You said not today; you can still change it.")
    else:
        lines.append(f"<b>Allow trading today?</b> {NO_ANSWER}")
    return "\n".join(lines)


def _trade_line(t: Trade) -> str:
    entry = f"{hhmm(t.entry_time)} {qty(t.qty)} @ {price(t.entry_price)}"
    if t.exits:
        reason = label(t.exit_reason) if t.exit_reason is not None else "exit"
        out = f"{hhmm(t.exit_time)} @ {price(t.exit_price)} ({esc(reason)})"
    else:
        out = "still open"
    r = f" {r_multiple(t.r_multiple)}" if t.r_multiple is not None else ""
    line = f"• <b>{esc(t.symbol)}</b> {entry} → {out}: {signed_money(t.pnl)}{r}"
    d = t.deviation
    if d is not None:
        sign = "+" if d.per_share >= 0 else "-"
        line += (
            f"\n  fill vs trigger {price(d.trigger)}: {sign}{price(abs(d.per_share))}/sh "
            f"({d.bps:+.2f} bps, {signed_money(d.total)})"
        )
    return line


def _risk_lines(report: EodReport) -> list[str]:
    shown = [e for e in report.risk_events if e.kind not in ("kill_started",)]
    if not shown:
        return ["Risk: no events."]
    out = ["<b>Risk</b>"]
    for e in shown[:8]:
        detail = ""
        if isinstance(e.detail, dict):
            text = e.detail.get("message") or e.detail.get("reason") or e.detail.get("cause")
            detail = f": {text}" if text else ""
        out.append(f"• {hhmm(e.at)} {esc(label(e.kind))}{esc(str(detail))}")
    if len(shown) > 8:
        out.append(f"• … and {len(shown) - 8} more (see the Markdown report)")
    return out


def _reconcile_line(report: EodReport) -> str:
    r = report.reconcile
    if r is None:
        return "Reconcile: no result recorded."
    if r.in_sync:
        return f"Reconcile {hhmm(r.at)}: ✅ ledger and broker agree."
    problems = r.summary.get("mismatches") if isinstance(r.summary, dict) else None
    listed = "; ".join(str(p) for p in problems) if isinstance(problems, list) else ""
    return f"Reconcile {hhmm(r.at)}: ⚠️ <b>not in sync</b> {esc(listed)}".rstrip()


def render_report(report: EodReport, charts: Iterable[Path | str] = ()) -> str:
    """The end-of-day report: P&L in $ and R, trades with execution deviation, regime
    per symbol, risk events, the reconciliation result."""
    p = report.pnl
    r_total = r_multiple(p.r_total) if p.r_total is not None else "R n/a"
    lines = [
        f"📊 <b>Day report {report.day.isoformat()}</b> · {esc(report.account)} "
        f"({esc(report.session_kind)})",
        f"P&L <b>{signed_money(p.net)}</b> · {r_total} · {p.trades} trade(s): "
        f"{p.wins} won, {p.losses} lost",
    ]
    if p.commissions:
        lines.append(f"Commissions {signed_money(-p.commissions)}")
    if p.unrealized:
        lines.append(f"Unrealized (still open): {signed_money(p.unrealized)}")
    if report.trades:
        lines.append("<b>Trades</b>")
        lines += [_trade_line(t) for t in report.trades]
    else:
        lines.append("No trades today.")
    if report.regimes:
        lines.append("<b>Regimes</b>")
        for r in report.regimes:
            path = " → ".join(label(c[1]) for c in r.changes) or label(r.label)
            lines.append(f"• {esc(r.symbol)}: <b>{esc(label(r.label))}</b> ({esc(path)})")
    lines += _risk_lines(report)
    lines.append(_reconcile_line(report))
    names = [Path(c).name for c in charts]
    if names:
        lines.append(f"Charts: {esc(', '.join(names))} below.")
    return "\n".join(lines)


def chart_caption(report: EodReport, chart: Path | str) -> str:
    """The caption under one symbol's chart photo."""
    symbol = Path(chart).stem
    trades = report.trades_for(symbol)
    pnl = sum((t.pnl for t in trades), start=Decimal(0))
    return f"{esc(symbol)} {report.day.isoformat()} · {len(trades)} trade(s) · {signed_money(pnl)}"


def render_no_report(day: str | None, known: Iterable[str]) -> str:
    have = ", ".join(known)
    when = f"for {esc(day)}" if day else "yet"
    tail = f" Reports stored: {esc(have)}." if have else ""
    return f"📊 No day report {when}.{tail}"


__all__ = [
    "chart_caption",
    "render_allow_prompt",
    "render_brief",
    "render_no_report",
    "render_report",
]
