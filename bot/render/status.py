"""/status, /positions, /orders and /pnl as HTML (pure functions of core's read models)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.render.fmt import hhmm, label, money, pct, plural, price, qty, r_multiple, signed_money
from bot.text import esc
from core.domain import OrderType
from core.ledger import AccountMode
from core.order_views import OrderView
from core.session import SessionState
from core.status import BadgeKind, PnlReport, PositionView, ProtectionBadge, StatusSnapshot


def mode_badge(mode: AccountMode) -> str:
    return "🔴 <b>LIVE</b>" if mode is AccountMode.LIVE else "PAPER"


def protection_text(badge: ProtectionBadge) -> str:
    if badge.kind is BadgeKind.NONE:
        return "⚠️ <b>UNPROTECTED</b>"
    queued = " (active at the open)" if badge.queued else ""
    if badge.kind is BadgeKind.TRAILING:
        # "≈": worked out from the high-water mark; without it, the broker's own level.
        approx = "≈ " if badge.estimated else ""
        level = f", stop {approx}{price(badge.level)}" if badge.level is not None else ""
        return f"🛡 trail {pct(badge.trail_pct)}{level}{queued}"
    return f"🛡 stop {price(badge.level)}{queued}"


def position_line(p: PositionView) -> str:
    now = f" → {price(p.market_price)}" if p.market_price is not None else ""
    pnl = f"  {signed_money(p.unrealized)}" if p.unrealized is not None else ""
    partial = ""
    if p.protection.complete and p.protection.qty < p.qty:
        partial = f" ⚠️ covers {qty(p.protection.qty)} of {qty(p.qty)}"
    return (
        f"<b>{esc(p.symbol)}</b> {qty(p.qty)} @ {price(p.avg_entry_price)}{now}{pnl}\n"
        f"   {protection_text(p.protection)}{partial}"
    )


def order_terms(o: OrderView) -> str:
    """ "buy stop 50 @ 101.00" / "sell trailing 1% 50"."""
    kind = o.order_type
    if kind is OrderType.TRAILING_STOP:
        return f"{o.side} trailing {pct(o.trail_percent)} {qty(o.qty)}"
    if kind is OrderType.STOP:
        return f"{o.side} stop {qty(o.qty)} @ {price(o.stop_price)}"
    if kind is OrderType.STOP_LIMIT:
        return f"{o.side} stop-limit {qty(o.qty)} @ {price(o.stop_price)}/{price(o.limit_price)}"
    if kind is OrderType.LIMIT:
        return f"{o.side} limit {qty(o.qty)} @ {price(o.limit_price)}"
    return f"{o.side} market {qty(o.qty)}"


def order_line(o: OrderView) -> str:
    filled = f" · filled {qty(o.filled_qty)}/{qty(o.qty)}" if o.filled_qty > 0 else ""
    return (
        f"<b>{esc(o.symbol)}</b> {esc(order_terms(o))} · {esc(label(o.role))} · "
        f"{esc(label(o.status))}{filled}"
    )


def _state_lines(s: StatusSnapshot) -> list[str]:
    lines = [
        f"Session: <b>{esc(label(s.session_state))}</b> ({s.session_date.isoformat()}) · "
        f"today: {esc(s.day_switch)}"
    ]
    if s.session_state is SessionState.SAFE_MODE or s.safe_mode_reasons:
        reasons = ", ".join(label(r) for r in s.safe_mode_reasons) or "unknown"
        lines.append(
            f"🛑 <b>SAFE MODE</b>: {esc(reasons)}. No new entries; /resume once the cause is gone."
        )
    if s.locked_reason:
        lines.append(f"🔒 <b>Locked</b>: {esc(s.locked_reason)}")
    if s.cooldown_until is not None and s.cooldown_until > s.as_of:
        lines.append(f"⏸ Cooldown until {hhmm(s.cooldown_until)} ET")
    if not s.broker_ok:
        lines.append("⚠️ The broker is not answering: last known figures.")
    reconcile = s.last_reconcile
    if reconcile is not None and not reconcile.in_sync:
        problems = "; ".join(reconcile.mismatches or reconcile.errors) or "see the logs"
        lines.append(f"⚠️ Last reconcile ({hhmm(reconcile.at)}): {esc(problems)}")
    return lines


def render_status(s: StatusSnapshot) -> str:
    lines = [f"<b>{esc(s.account)}</b> · {mode_badge(s.mode)} · {esc(s.broker)}"]
    lines += _state_lines(s)
    lines.append(f"Equity {money(s.equity)} · buying power {money(s.buying_power)}")
    lines.append(
        f"Day P&amp;L <b>{signed_money(s.day_pnl)}</b> (realized {signed_money(s.realized_pnl)}"
        f" / {r_multiple(s.day_r)}, open {signed_money(s.open_pnl)}) · "
        f"{plural(s.trades_today, 'trade')}"
    )
    lines.append("")
    lines.append(f"<b>Positions</b> ({len(s.positions)})")
    lines += [position_line(p) for p in s.positions] or ["none"]
    lines.append(f"<b>Working orders</b> ({len(s.working_orders)})")
    lines += [order_line(o) for o in s.working_orders] or ["none"]
    lines.append(f"<i>as of {hhmm(s.as_of)} ET</i>")
    return "\n".join(lines)


def render_positions(positions: Sequence[PositionView], account: str) -> str:
    if not positions:
        return f"<b>{esc(account)}</b>: no open positions."
    head = f"<b>{esc(account)}</b>: {plural(len(positions), 'position')}"
    return "\n".join([head, *(position_line(p) for p in positions)])


def render_orders(orders: Sequence[OrderView], account: str) -> str:
    if not orders:
        return f"<b>{esc(account)}</b>: no working orders."
    head = f"<b>{esc(account)}</b>: {plural(len(orders), 'working order')}"
    return "\n".join([head, *(order_line(o) for o in orders)])


def render_pnl(p: PnlReport) -> str:
    span = (
        p.first_day.isoformat()
        if p.first_day == p.last_day
        else f"{p.first_day.isoformat()} → {p.last_day.isoformat()}"
    )
    lines = [
        f"<b>P&amp;L {esc(p.period)}</b> · {esc(p.account)} · {span}",
        f"Realized <b>{signed_money(p.realized)}</b> ({r_multiple(p.realized_r)}) · "
        f"{plural(p.exits, 'exit')}",
    ]
    if len(p.by_day) > 1:
        lines += [f"{d.isoformat()}  {signed_money(v)}" for d, v in p.by_day]
    return "\n".join(lines)


__all__ = [
    "mode_badge",
    "order_line",
    "order_terms",
    "position_line",
    "protection_text",
    "render_orders",
    "render_pnl",
    "render_positions",
    "render_status",
]
