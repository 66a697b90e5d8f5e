"""/kill: the preview, the second confirmation and the verified report (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.render.fmt import label, plural, price, qty
from bot.text import esc
from core.kill import KillPreview, KillReport

_OUTCOME = {"canceled": "canceled ✔", "filled_before_cancel": "filled before the cancel"}


def _counts(previews: Sequence[KillPreview]) -> tuple[int, int]:
    return sum(len(p.orders) for p in previews), sum(len(p.positions) for p in previews)


def nothing_to_kill(previews: Sequence[KillPreview]) -> bool:
    return _counts(previews) == (0, 0)


def render_kill_preview(previews: Sequence[KillPreview]) -> str:
    orders, positions = _counts(previews)
    lines = [
        "🧨 <b>Kill</b>: exactly what it will do",
        f"Cancel {plural(orders, 'order')}, then flatten {plural(positions, 'position')}.",
    ]
    for p in previews:
        lines.append("")
        lines.append(f"<b>{esc(p.account)}</b>")
        if not p.orders and not p.positions:
            lines.append("nothing open")
        for o in p.orders:
            filled = f" (filled {qty(o.filled_qty)})" if o.filled_qty > 0 else ""
            lines.append(
                f"✖ cancel {esc(o.symbol)} {esc(o.side)} {esc(label(o.order_type))} "
                f"{qty(o.qty)}{filled} · {esc(label(o.role))} · {esc(label(o.status))}"
            )
        for pos in p.positions:
            mark = f", last {price(pos.market_price)}" if pos.market_price is not None else ""
            lines.append(
                f"⬇ flatten {esc(pos.symbol)} {qty(pos.qty)} "
                f"(avg {price(pos.avg_entry_price)}{mark})"
            )
        lines += [f"<i>{esc(n)}</i>" for n in p.notes]
    if orders == positions == 0:
        lines.append("")
        lines.append("Nothing is open: there is nothing to kill.")
    return "\n".join(lines)


def render_kill_second(previews: Sequence[KillPreview]) -> str:
    orders, positions = _counts(previews)
    return (
        "⚠️ <b>Really flatten everything?</b>\n"
        f"This cancels {plural(orders, 'order')} and sells {plural(positions, 'position')} "
        f"at market on {plural(len(previews), 'account')}. There is no undo."
    )


def render_kill_running() -> str:
    return "🧨 <b>Kill running</b>: canceling, confirming each cancel, then flattening…"


def render_kill_reports(reports: Sequence[KillReport]) -> str:
    flat = all(r.all_flat for r in reports)
    head = (
        "✅ <b>Kill done: all flat</b> (verified at the broker)"
        if flat
        else "❌ <b>Kill done, NOT all flat</b>: see below"
    )
    lines = [head]
    for r in reports:
        lines.append("")
        state = "flat" if r.all_flat else "<b>NOT flat</b>"
        lines.append(f"<b>{esc(r.account)}</b>: {state}")
        for o in r.orders:
            outcome = _OUTCOME.get(o.outcome, o.outcome)
            detail = f" ({esc(o.detail)})" if o.detail and o.outcome != "canceled" else ""
            lines.append(f"✖ {esc(o.symbol)} {esc(outcome)}{detail}")
        for f in r.positions:
            if f.flat:
                lines.append(f"⬇ {esc(f.symbol)} {qty(f.qty_before)} → flat")
            else:
                left = "unknown" if f.qty_after is None else qty(f.qty_after)
                lines.append(f"⚠️ {esc(f.symbol)} still open: {left} — {esc(f.detail)}")
        lines += [f"<i>{esc(n)}</i>" for n in r.notes]
    return "\n".join(lines)


def render_kill_payload(account: str, all_flat: bool, report: Mapping[str, object]) -> str:
    """A KillCompleted alert (e.g. the end-of-day flatten) from its JSON report."""
    head = "✅ all flat (verified)" if all_flat else "❌ NOT all flat"
    lines = [f"🧨 <b>Flatten/kill on {esc(account)}</b>: {head}"]
    positions = report.get("positions")
    if isinstance(positions, Sequence) and not isinstance(positions, str):
        for item in positions:
            if not isinstance(item, Mapping):
                continue
            symbol = esc(item.get("symbol", "?"))
            if item.get("flat"):
                lines.append(f"⬇ {symbol} → flat")
            else:
                lines.append(f"⚠️ {symbol} still open: {esc(item.get('detail', ''))}")
    return "\n".join(lines)


__all__ = [
    "nothing_to_kill",
    "render_kill_payload",
    "render_kill_preview",
    "render_kill_reports",
    "render_kill_running",
    "render_kill_second",
]
