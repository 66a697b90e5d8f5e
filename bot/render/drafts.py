"""Draft cards, the pickers that build a draft, /drafts and confirm outcomes (pure)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.render.fmt import hhmm, label, money, pct, plural, price, qty
from bot.text import esc
from core.domain import Side
from core.drafts import ConfirmOutcome, ConfirmResult, DraftReview
from core.ledger import DraftStatus, SignalRow
from core.marketdata.bar import Bar
from core.status import PositionView

OUTCOME_ICON: Mapping[ConfirmOutcome, str] = {
    ConfirmOutcome.PLACED: "✅",
    ConfirmOutcome.SENT: "⏳",
    ConfirmOutcome.QUEUED: "🕘",
    ConfirmOutcome.ALREADY_CONFIRMED: "ℹ️",
    ConfirmOutcome.NOT_PENDING: "ℹ️",
    ConfirmOutcome.EXPIRED: "⌛",
    ConfirmOutcome.NOT_FOUND: "❓",
    ConfirmOutcome.REFUSED_RISK: "⛔",
    ConfirmOutcome.REFUSED_CAPABILITY: "⛔",
    ConfirmOutcome.REJECTED: "❌",
    ConfirmOutcome.NEVER_REACHED: "❌",
    ConfirmOutcome.UNKNOWN: "❓",
}


@dataclass(frozen=True, slots=True)
class TriggerOption:
    """One trigger preset button: what it is called and the levels it uses."""

    name: str
    trigger: Decimal
    stop: Decimal


def _what(r: DraftReview) -> str:
    return "stop-buy" if r.side is Side.BUY else "stop-sell"


def render_card_head(r: DraftReview) -> str:
    """One line that names the draft (the top of its card for its whole life)."""
    stop = f", stop {price(r.stop)}" if r.side is Side.BUY else ""
    risk = f", risk {money(r.risk_usd)}" if r.risk_usd is not None else ""
    return (
        f"📝 <b>Draft #{r.draft_id}</b> · {_what(r)} <b>{esc(r.symbol)}</b> "
        f"{qty(r.qty)} @ {price(r.trigger)}{stop}{risk} · {esc(r.account)}"
    )


def _budget_r(r: DraftReview, budget: Decimal | None) -> str:
    if budget is None or budget <= 0 or r.risk_usd is None:
        return ""
    return f" = {(r.risk_usd / budget).quantize(Decimal('0.01'))}R of the {money(budget)} budget"


def render_draft_card(r: DraftReview, *, budget: Decimal | None = None, note: str = "") -> str:
    """The review card: every figure the trader decides on, and why a rule would refuse."""
    lines = [
        f"📝 <b>Draft #{r.draft_id}</b> · {_what(r)} <b>{esc(r.symbol)}</b> · {esc(r.account)}"
    ]
    if r.side is Side.BUY:
        lines.append(
            f"Trigger <b>{price(r.trigger)}</b> · stop <b>{price(r.stop)}</b> · "
            f"qty <b>{qty(r.qty)}</b>"
        )
        per_share = f" (R {price(r.r_per_share)}/share)" if r.r_per_share is not None else ""
        lines.append(f"Risk <b>{money(r.risk_usd)}</b>{per_share}{_budget_r(r, budget)}")
        lines.append(f"Notional {money(r.notional)} · {pct(r.pct_of_equity)} of equity")
    else:
        lines.append(
            f"Stop <b>{price(r.trigger)}</b> · qty <b>{qty(r.qty)}</b> of "
            f"{qty(r.position_qty)} held"
        )
        lines.append("Replaces this position's protection order.")
    lines.append(f"Buying power {money(r.buying_power)} · session: {esc(label(r.session_state))}")
    if r.queued:
        lines.append(f"🕘 Queued until the open: {esc(r.capability_note)}")
    lines += [f"📅 {esc(w)}" for w in r.event_warnings]
    event_texts = set(r.event_warnings)
    lines += [f"⚠️ {esc(w.message)}" for w in r.warnings if w.message not in event_texts]
    if r.refusals:
        lines.append("⛔ <b>Risk rules would refuse it:</b>")
        lines += [f"• {esc(w.message)}" for w in r.refusals]
    if r.status is DraftStatus.PENDING:
        if r.expires_at is not None:
            lines.append(f"<i>Expires {hhmm(r.expires_at)} ET</i>")
    else:
        lines.append(f"Status: <b>{esc(label(r.status))}</b>")
    if note:
        lines.append(note)
    return "\n".join(lines)


def render_confirm_result(result: ConfirmResult) -> str:
    icon = OUTCOME_ICON.get(result.outcome, "")
    text = f"{icon} {esc(result.message)}".strip()
    if result.reasons and result.outcome is not ConfirmOutcome.REFUSED_RISK:
        text += "".join(f"\n• {esc(r.message)}" for r in result.reasons)
    return text


def render_card(head: str, lines: Sequence[str]) -> str:
    """A confirmed draft's card: its head, then one line per step of its life."""
    return "\n".join([head, *lines])


def card_data(head: str, account: str, lines: Sequence[str]) -> dict[str, Any]:
    return {"head": head, "account": account, "lines": list(lines)}


def render_buy_picker(symbols: Sequence[str]) -> str:
    if not symbols:
        return "<b>Buy</b>: the watchlist is empty. Use /buy SYM."
    return "<b>Buy</b>: pick a symbol for a stop-buy draft."


def render_trigger_picker(
    symbol: str, bar: Bar | None, signal: SignalRow | None, options: Sequence[TriggerOption]
) -> str:
    lines = [f"<b>{esc(symbol)}</b> stop-buy: pick the trigger."]
    if bar is not None:
        lines.append(
            f"Last bar {hhmm(bar.end)} ET: high {price(bar.high)} · low {price(bar.low)} · "
            f"close {price(bar.close)}"
        )
    else:
        lines.append("No bar seen yet for this symbol today.")
    if signal is not None:
        lines.append(
            f"Signal {hhmm(signal.signal_time)} ET: trigger {price(signal.trigger)}, "
            f"stop {price(signal.stop)}"
        )
    if not options:
        lines.append("No preset available: choose Custom and type the price.")
    lines.append("<i>Custom: type a trigger, optionally followed by the stop.</i>")
    return "\n".join(lines)


def render_size_picker(symbol: str, trigger: Decimal, stop: Decimal, presets: int) -> str:
    lines = [
        f"<b>{esc(symbol)}</b> stop-buy @ <b>{price(trigger)}</b>, stop {price(stop)} "
        f"(R {price(trigger - stop)}/share)"
    ]
    lines.append(
        "Pick the size (from the risk budget)."
        if presets
        else "⛔ No size fits the risk budget between these levels."
    )
    return "\n".join(lines)


def render_sell_picker(positions: Sequence[PositionView]) -> str:
    if not positions:
        return "<b>Sell</b>: no open position to protect with a stop-sell."
    return "<b>Sell</b>: pick the position for a stop-sell (it replaces its protection)."


def render_sell_stop_picker(position: PositionView, bar: Bar | None) -> str:
    lines = [
        f"<b>{esc(position.symbol)}</b> {qty(position.qty)} @ "
        f"{price(position.avg_entry_price)}: pick the stop-sell level."
    ]
    if bar is not None:
        lines.append(
            f"Last bar {hhmm(bar.end)} ET: low {price(bar.low)} · close {price(bar.close)}"
        )
    return "\n".join(lines)


def render_drafts_list(drafts: Sequence[DraftReview], selected: Collection[int]) -> str:
    if not drafts:
        return "No pending drafts. Start one with /buy."
    lines = [f"<b>Pending drafts</b> ({len(drafts)}): tap to select, then confirm."]
    for r in drafts:
        mark = "☑️" if r.draft_id in selected else "▫️"
        risk = f" · risk {money(r.risk_usd)}" if r.risk_usd is not None else ""
        refused = " · ⛔ would be refused" if r.refusals else ""
        lines.append(
            f"{mark} #{r.draft_id} {_what(r)} <b>{esc(r.symbol)}</b> {qty(r.qty)} @ "
            f"{price(r.trigger)}{risk}{refused}"
        )
    return "\n".join(lines)


def render_batch_results(results: Sequence[ConfirmResult]) -> str:
    placed = sum(1 for r in results if r.ok)
    lines = [f"<b>Batch confirm</b>: {placed} of {plural(len(results), 'draft')} placed"]
    lines += [f"#{r.draft_id}: {render_confirm_result(r)}" for r in results]
    return "\n".join(lines)


def render_prompt(what: str, example: str) -> str:
    return f"✏️ Type {esc(what)} (e.g. <code>{esc(example)}</code>), or /cancel to stop."


__all__ = [
    "TriggerOption",
    "card_data",
    "render_batch_results",
    "render_buy_picker",
    "render_card",
    "render_card_head",
    "render_confirm_result",
    "render_draft_card",
    "render_drafts_list",
    "render_prompt",
    "render_sell_picker",
    "render_sell_stop_picker",
    "render_size_picker",
    "render_trigger_picker",
]
