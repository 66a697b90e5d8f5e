"""Everything else the chat shows: /start, /help, /regime, /signals, accounts, /live,
/whoami, notification levels, and the one-line results of actions (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.render.fmt import hhmm, label, price, qty
from bot.render.status import mode_badge, order_terms
from bot.text import esc
from core.config_models import NotificationLevel
from core.kill import FlattenResult
from core.ledger import AccountMode, RegimeRow, SignalRow
from core.order_views import OrderView
from core.protection import ProtectionResult
from core.services import AccountSummary

LEVEL_ICON = {
    NotificationLevel.ON: "🔔",
    NotificationLevel.SILENT: "🔕",
    NotificationLevel.OFF: "⛔",
}


def render_start(first_name: str, account: str, mode: AccountMode) -> str:
    return (
        f"👋 Hi {esc(first_name)}. <b>Centaur</b> watches the market, proposes entries, "
        "guards the account and protects every fill; you decide every entry.\n"
        f"Active account: <b>{esc(account)}</b> · {mode_badge(mode)}\n"
        "Tap a button, or see /help for every command."
    )


def render_help(commands: Sequence[tuple[str, str]]) -> str:
    lines = ["<b>Commands</b>"]
    lines += [f"/{name} — {esc(text)}" for name, text in commands]
    lines.append("")
    lines.append("<i>/kill works in every state, SAFE MODE and LOCKED included.</i>")
    return "\n".join(lines)


def render_usage(reason: str, usage: str) -> str:
    return f"⚠️ {esc(reason)}\nUsage: <code>{esc(usage)}</code>"


def render_problem(reason: str) -> str:
    return f"⚠️ {esc(reason)}"


def render_regimes(rows: Mapping[str, RegimeRow], symbol: str | None) -> str:
    if not rows:
        which = f" for {esc(symbol)}" if symbol else ""
        return f"No regime verdict{which} yet today."
    lines = ["<b>Regime</b> (latest verdict per symbol)"]
    for name in sorted(rows):
        row = rows[name]
        evidence = row.evidence or {}
        bits = [
            f"{k} {v}"
            for k, v in evidence.items()
            if isinstance(v, (str, int, float)) and not isinstance(v, bool)
        ][:3]
        extra = f" · <i>{esc(', '.join(bits))}</i>" if bits else ""
        lines.append(f"<b>{esc(name)}</b>: {esc(label(row.label))} ({hhmm(row.at)} ET){extra}")
    return "\n".join(lines)


def render_signals(rows: Sequence[SignalRow], day: str) -> str:
    if not rows:
        return f"No entry signals on {esc(day)}."
    lines = [f"<b>Signals</b> {esc(day)} ({len(rows)})"]
    for s in rows:
        regime = f" · {esc(label(s.regime))}" if s.regime is not None else ""
        lines.append(
            f"{hhmm(s.signal_time)} <b>{esc(s.symbol)}</b> trigger {price(s.trigger)} · "
            f"stop {price(s.stop)}{regime} · {esc(label(s.status))}"
        )
    return "\n".join(lines)


def render_accounts(accounts: Sequence[AccountSummary]) -> str:
    lines = ["<b>Accounts</b> (tap to switch)"]
    for a in accounts:
        mark = "▶️" if a.active else "▫️"
        lines.append(f"{mark} <b>{esc(a.name)}</b> · {mode_badge(a.mode)} · {esc(a.broker)}")
    return "\n".join(lines)


def render_account_switched(account: AccountSummary) -> str:
    return f"Active account: <b>{esc(account.name)}</b> · {mode_badge(account.mode)}"


def render_live(accounts: Sequence[AccountSummary], live_enabled: bool) -> str:
    live = [a for a in accounts if a.mode is AccountMode.LIVE]
    switch = "on" if live_enabled else "off"
    lines = [f"<b>Live trading</b>: the process switch CENTAUR_LIVE is <b>{switch}</b>."]
    if live:
        names = ", ".join(esc(a.name) for a in live)
        lines.append(f"Live accounts: {names}.")
    else:
        lines.append("Every account is paper.")
    lines.append(
        "Live orders need all three at once: <code>CENTAUR_LIVE=1</code> when the process "
        "starts, an account with <code>mode: live</code> in config/accounts.yaml (and its "
        "broker keys), and the confirmation in this chat. The chat confirmation is not "
        "built yet, so a live account refuses to start; paper accounts run."
    )
    return "\n".join(lines)


def render_whoami(user_id: int | None, chat_id: int | None, username: str | None) -> str:
    name = f"\nusername: @{esc(username)}" if username else ""
    return f"user id: <code>{user_id}</code>\nchat id: <code>{chat_id}</code>{name}"


def render_levels(
    levels: Mapping[str, NotificationLevel], muted_symbols: Sequence[str] = ()
) -> str:
    lines = ["<b>Notifications</b> (tap to change: on → silent → off)"]
    lines += [f"{LEVEL_ICON[level]} {esc(kind)}: {level.value}" for kind, level in levels.items()]
    if muted_symbols:
        lines.append(f"Signals muted today for: {esc(', '.join(muted_symbols))}")
    return "\n".join(lines)


def render_level_changed(kind: str, level: NotificationLevel, note: str = "") -> str:
    extra = f" ({esc(note)})" if note else ""
    return f"{LEVEL_ICON[level]} <b>{esc(kind)}</b> alerts: {level.value}{extra}"


def render_trail_results(
    symbol: str, pct_value: object, results: Sequence[ProtectionResult]
) -> str:
    head = f"🛡 <b>{esc(symbol)}</b> trail set to {esc(pct_value)}%"
    if not results:
        return head + ": no open position to re-protect; it applies to the next fill today."
    lines = [head]
    for r in results:
        icon = "✅" if r.protected else "⚠️"
        what = r.message or ("protected" if r.protected else "not protected")
        lines.append(f"{icon} {qty(r.qty)} shares: {esc(what)}")
    return "\n".join(lines)


def render_protect_results(symbol: str, results: Sequence[ProtectionResult]) -> str:
    if not results:
        return f"🛡 {esc(symbol)}: nothing to protect (no uncovered shares)."
    return "\n".join(
        f"{'✅' if r.protected else '⚠️'} {esc(r.symbol)} {qty(r.qty)}: "
        f"{esc(r.message or ('protected' if r.protected else 'still unprotected'))}"
        for r in results
    )


def render_flatten_result(result: FlattenResult) -> str:
    if result.flat:
        return f"⬇ <b>{esc(result.symbol)}</b> flattened ({qty(result.qty_before)} sold): flat ✔"
    left = "unknown" if result.qty_after is None else qty(result.qty_after)
    return f"⚠️ <b>{esc(result.symbol)}</b> NOT flat: {left} left" + (
        f" — {esc(result.detail)}" if result.detail else ""
    )


def render_cancel_result(view: OrderView) -> str:
    terms = esc(order_terms(view))
    if view.is_terminal:
        filled = f" after {qty(view.filled_qty)} filled" if view.filled_qty > 0 else ""
        return f"✖ <b>{esc(view.symbol)}</b> {terms}: {esc(label(view.status))}{filled} ✔"
    return (
        f"⚠️ <b>{esc(view.symbol)}</b> {terms}: cancel requested, the broker still says "
        f"{esc(label(view.status))}. Check /orders."
    )


def render_cancel_picker(orders: Sequence[OrderView]) -> str:
    if not orders:
        return "No working orders to cancel."
    return "<b>Cancel</b>: pick the working order."


def render_protection_warning(view: OrderView) -> str:
    return (
        f"⚠️ This is <b>{esc(view.symbol)}</b>'s protection ({esc(order_terms(view))}). "
        "Canceling it leaves the position <b>unprotected</b>. Cancel anyway?"
    )


def render_flatten_question(symbol: str) -> str:
    return f"⬇ Flatten <b>{esc(symbol)}</b> now at market? This sells the whole position."


def render_day_answer(allowed: bool, state: str) -> str:
    if allowed:
        return f"✅ Trading <b>allowed</b> today (session: {esc(label(state))})."
    return f"🚫 <b>Not today</b>: no new entries (session: {esc(label(state))})."


def render_resume(ok: bool, message: str) -> str:
    return f"{'🟢' if ok else '🛑'} {esc(message)}"


__all__ = [
    "render_account_switched",
    "render_accounts",
    "render_cancel_picker",
    "render_cancel_result",
    "render_day_answer",
    "render_flatten_question",
    "render_flatten_result",
    "render_help",
    "render_level_changed",
    "render_levels",
    "render_live",
    "render_problem",
    "render_protect_results",
    "render_protection_warning",
    "render_regimes",
    "render_resume",
    "render_signals",
    "render_start",
    "render_trail_results",
    "render_usage",
    "render_whoami",
]
