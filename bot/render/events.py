"""Pushed alerts: one domain event -> one HTML message (or a line on its draft's card).

`render_event` returns None for an event not worth a message of its own (routine session
steps, a protection order's own "accepted" when ProtectionPlaced says it better): the
notifier marks those silenced, so they stay on record without buzzing the phone.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.render.fmt import hhmm, label, pct, price, qty
from bot.render.kill import render_kill_payload
from bot.text import esc
from core.domain import OrderRole, Side
from core.events import (
    DomainEvent,
    KillCompleted,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    PositionUnprotected,
    ProtectionFailed,
    ProtectionFallback,
    ProtectionKind,
    ProtectionPlaced,
    ReconcileCompleted,
    RegimeChanged,
    RiskLocked,
    RiskRefused,
    SafeModeCleared,
    SafeModeEntered,
    SessionStateChanged,
    SignalRaised,
)
from core.session import SessionState

_FALLBACK = {
    ProtectionFallback.PLAIN_STOP: "a plain stop at the initial stop was placed instead",
    ProtectionFallback.FLATTEN: "the position was flattened",
    ProtectionFallback.ALERT_ONLY: "nothing was accepted: the position is UNPROTECTED",
}
# A session step worth a message of its own; the others are visible in /status, and
# LOCKED / SAFE MODE come with their own, more precise alerts (RiskLocked, SafeMode*).
_SESSION_NEWS = (SessionState.COOLDOWN, SessionState.DONE)
# Order steps that another alert already tells better (see the module docstring).
_QUIET_ORDER_STEPS = {
    (OrderRole.PROTECTION, OrderAccepted),
    (OrderRole.PROTECTION, OrderCanceled),
    (OrderRole.FLATTEN, OrderAccepted),
}


def _evidence(evidence: Mapping[str, object], limit: int = 4) -> str:
    items = [
        f"{k} {v}" for k, v in evidence.items() if isinstance(v, (str, int, float)) and k != "note"
    ]
    return ", ".join(items[:limit])


def _protection_terms(e: ProtectionPlaced) -> str:
    if e.protection_kind is ProtectionKind.TRAILING:
        now = f" (stop now {price(e.stop_price)})" if e.stop_price is not None else ""
        return f"trailing stop {pct(e.trail_pct)} accepted{now}"
    if e.protection_kind is ProtectionKind.ATTACHED:
        return f"attached stop {price(e.stop_price)} in place"
    return f"stop {price(e.stop_price)} accepted"


def _order_terms(e: OrderEvent) -> str:
    at = f" @ {price(e.stop_price)}" if e.stop_price is not None else ""
    kind = label(e.order_type) if e.order_type is not None else "order"
    return f"{e.side} {kind} {qty(e.qty)}{at}"


def _order_message(e: OrderEvent) -> str | None:
    if (e.role, type(e)) in _QUIET_ORDER_STEPS:
        return None
    who = f"<b>{esc(e.symbol)}</b>"
    role = esc(label(e.role))
    if isinstance(e, OrderFilled):
        verb = "bought" if e.side is Side.BUY else "sold"
        why = {
            OrderRole.PROTECTION: " · stop hit",
            OrderRole.FLATTEN: " · flattened",
        }.get(e.role, f" · {role}")
        return f"💰 {who} {verb} {qty(e.filled_qty)} @ {price(e.avg_fill_price)}{why}"
    if isinstance(e, OrderPartiallyFilled):
        return (
            f"◐ {who} {esc(_order_terms(e))} partially filled {qty(e.filled_qty)}/{qty(e.qty)}"
            f" @ {price(e.avg_fill_price)} · {role}"
        )
    if isinstance(e, OrderAccepted):
        return f"✅ {who} {esc(_order_terms(e))} accepted · {role}"
    if isinstance(e, OrderCanceled):
        reason = f" ({esc(e.reason)})" if e.reason else ""
        return f"✖ {who} {esc(_order_terms(e))} canceled{reason} · {role}"
    if isinstance(e, OrderRejected):
        return f"❌ {who} {esc(_order_terms(e))} <b>rejected</b>: {esc(e.reason or 'no reason')}"
    return None


def render_signal(e: SignalRaised) -> str:
    return (
        f"📈 <b>Signal {esc(e.symbol)}</b> {hhmm(e.signal_time)} ET · {esc(label(e.regime))}\n"
        f"Stop-buy <b>{price(e.trigger)}</b> · stop {price(e.stop)} · "
        f"R {price(e.risk_per_share)}/share\n"
        f"Size {qty(e.suggested_qty)} from the risk budget"
    )


def render_event(event: DomainEvent) -> str | None:
    """The alert for `event`, or None when it does not deserve a message of its own."""
    if isinstance(event, SignalRaised):
        return render_signal(event)
    if isinstance(event, RegimeChanged):
        was = f" (was {esc(label(event.previous))})" if event.previous is not None else ""
        why = _evidence(event.evidence)
        return f"🧭 <b>{esc(event.symbol)}</b>: {esc(label(event.current))}{was}" + (
            f"\n<i>{esc(why)}</i>" if why else ""
        )
    if isinstance(event, OrderEvent):
        return _order_message(event)
    if isinstance(event, ProtectionPlaced):
        entry = f" @ {price(event.entry_price)}" if event.entry_price is not None else ""
        return (
            f"🛡 <b>{esc(event.symbol)}</b> {qty(event.qty)}{entry} filled; "
            f"{esc(_protection_terms(event))}"
        )
    if isinstance(event, ProtectionFailed):
        then = (
            _FALLBACK.get(event.fallback, str(event.fallback))
            if event.fallback is not None
            else "retrying"
        )
        return (
            f"⚠️ <b>Protection refused</b> for {esc(event.symbol)} {qty(event.qty)} "
            f"({esc(label(event.attempted))}): {esc(event.reason)}\n→ {esc(then)}"
        )
    if isinstance(event, PositionUnprotected):
        then = (
            "Flattening it automatically."
            if event.auto_flatten
            else "Flatten it, or retry the protection:"
        )
        return (
            f"🚨 <b>UNPROTECTED: {esc(event.symbol)} {qty(event.qty)} shares</b> "
            f"({esc(event.account)})\n{esc(event.reason)}\n{then}"
        )
    if isinstance(event, RiskLocked):
        return (
            f"🔒 <b>Trading locked</b> on {esc(event.account)}: {esc(event.detail)}\n"
            "No new entries today; protection, cancels and /kill still work."
        )
    if isinstance(event, RiskRefused):
        reasons = "".join(f"\n• {esc(r.message)}" for r in event.reasons)
        draft = f" (draft #{event.draft_id})" if event.draft_id is not None else ""
        return f"⛔ <b>Refused</b> {esc(event.symbol)}{draft}:{reasons}"
    if isinstance(event, SessionStateChanged):
        if event.current not in _SESSION_NEWS:
            return None
        return f"⏱ {esc(event.account)}: <b>{esc(label(event.current))}</b> · {esc(event.cause)}"
    if isinstance(event, SafeModeEntered):
        detail = f": {esc(event.detail)}" if event.detail else ""
        return (
            f"🛑 <b>SAFE MODE</b> on {esc(event.account)} ({esc(label(event.reason))}){detail}\n"
            "No new entries; cancels, protection and flattening still work. "
            "/resume once the cause is gone."
        )
    if isinstance(event, SafeModeCleared):
        return f"🟢 SAFE MODE cleared on {esc(event.account)}: {esc(event.reason)}"
    if isinstance(event, KillCompleted):
        return render_kill_payload(event.account, event.all_flat, event.report)
    if isinstance(event, ReconcileCompleted):
        problems = event.summary.get("mismatches") or event.summary.get("errors") or ()
        listed = (
            "; ".join(str(p) for p in problems)
            if isinstance(problems, (list, tuple))
            else str(problems)
        )
        return f"⚠️ <b>Reconcile</b> on {esc(event.account)}: not in sync\n{esc(listed)}"
    return None


def card_line(event: DomainEvent, draft_side: Side) -> str | None:
    """The line this event adds to its draft's card (None: nothing to add)."""
    at = hhmm(event.at)
    if isinstance(event, OrderEvent):
        own = event.role is OrderRole.ENTRY or (
            draft_side is Side.SELL and event.role is OrderRole.PROTECTION
        )
        if isinstance(event, OrderFilled) and not own and event.side is Side.SELL:
            return f"{at} 🏁 closed: sold {qty(event.filled_qty)} @ {price(event.avg_fill_price)}"
        if not own:
            return None
        if isinstance(event, OrderAccepted):
            return f"{at} ✅ accepted at the broker"
        if isinstance(event, OrderPartiallyFilled):
            return (
                f"{at} ◐ filled {qty(event.filled_qty)}/{qty(event.qty)} @ "
                f"{price(event.avg_fill_price)}"
            )
        if isinstance(event, OrderFilled):
            verb = "filled" if draft_side is Side.BUY else "🏁 stop hit, sold"
            return f"{at} 💰 {verb} {qty(event.filled_qty)} @ {price(event.avg_fill_price)}"
        if isinstance(event, OrderCanceled):
            reason = f" ({esc(event.reason)})" if event.reason else ""
            return f"{at} ✖ canceled{reason}"
        if isinstance(event, OrderRejected):
            return f"{at} ❌ rejected: {esc(event.reason or 'no reason')}"
        return None
    if isinstance(event, ProtectionPlaced):
        return f"{at} 🛡 protected: {esc(_protection_terms(event))}"
    if isinstance(event, ProtectionFailed):
        return f"{at} ⚠️ protection refused: {esc(event.reason)}"
    if isinstance(event, RiskRefused):
        return f"{at} ⛔ refused: " + esc("; ".join(r.message for r in event.reasons))
    return None


__all__ = ["card_line", "render_event", "render_signal"]
