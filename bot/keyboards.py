"""Inline keyboards. Every button's callback data comes from `bot.callbacks.encode`."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import Action, Value, encode
from bot.render.drafts import TriggerOption
from bot.render.fmt import price, qty
from core.config_models import NotificationLevel
from core.drafts import DraftReview, SizePreset
from core.order_views import OrderView
from core.services import AccountSummary
from core.status import PositionView

Rows = list[list[InlineKeyboardButton]]

# What /start and /help offer as buttons (label, command).
MENU: tuple[tuple[tuple[str, str], ...], ...] = (
    (("📊 Status", "status"), ("📦 Positions", "positions"), ("🧾 Orders", "orders")),
    (("🟢 Buy", "buy"), ("🔻 Sell", "sell"), ("📝 Drafts", "drafts")),
    (("💵 P&L", "pnl"), ("🧭 Regime", "regime"), ("📈 Signals", "signals")),
    (("✅ Allow today", "allow"), ("🚫 Not today", "deny"), ("🔔 Alerts", "mute")),
    (("🧨 Kill", "kill"), ("❓ Help", "help")),
)


def button(text: str, action: Action, *args: Value) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=encode(action, *args))


def markup(rows: Iterable[Sequence[InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([list(r) for r in rows if r])


def _grid(buttons: Sequence[InlineKeyboardButton], width: int) -> Rows:
    return [list(buttons[i : i + width]) for i in range(0, len(buttons), width)]


def close_row() -> list[InlineKeyboardButton]:
    return [button("✖ Close", Action.CLOSE)]


def menu_keyboard() -> InlineKeyboardMarkup:
    return markup([button(text, Action.MENU, cmd) for text, cmd in row] for row in MENU)


def status_keyboard() -> InlineKeyboardMarkup:
    return markup([[button("🔄 Refresh", Action.STATUS_REFRESH)]])


def watchlist_keyboard(symbols: Sequence[str]) -> InlineKeyboardMarkup:
    buttons = [button(s, Action.BUY_SYMBOL, s) for s in symbols]
    return markup([*_grid(buttons, 3), close_row()])


def trigger_keyboard(symbol: str, options: Sequence[TriggerOption]) -> InlineKeyboardMarkup:
    rows: Rows = [
        [
            button(
                f"{o.name} {price(o.trigger)} (stop {price(o.stop)})",
                Action.BUY_TRIGGER,
                symbol,
                o.trigger,
                o.stop,
            )
        ]
        for o in options
    ]
    rows.append([button("✏️ Custom price", Action.BUY_CUSTOM, symbol)])
    rows.append(close_row())
    return markup(rows)


def size_keyboard(
    symbol: str, trigger: Decimal, stop: Decimal, presets: Sequence[SizePreset]
) -> InlineKeyboardMarkup:
    buttons = [
        button(f"{p.label}: {qty(p.qty)} sh", Action.BUY_SIZE, symbol, trigger, stop, p.qty)
        for p in presets
    ]
    return markup([*_grid(buttons, 2), close_row()])


def draft_keyboard(draft_id: int) -> InlineKeyboardMarkup:
    return markup(
        [
            [
                button("✅ Confirm", Action.DRAFT_CONFIRM, draft_id),
                button("✏️ Edit", Action.DRAFT_EDIT, draft_id),
                button("✖ Cancel", Action.DRAFT_CANCEL, draft_id),
            ]
        ]
    )


def draft_edit_keyboard(review: DraftReview) -> InlineKeyboardMarkup:
    d = review.draft_id
    rows: Rows = []
    if review.trigger is not None and review.stop is not None and review.side.value == "buy":
        rows.append(
            [button("Trigger…", Action.DRAFT_TRIGGER, d), button("Stop…", Action.DRAFT_STOP, d)]
        )
        sizes = [
            button(f"{p.label}: {qty(p.qty)}", Action.DRAFT_QTY, d, p.qty)
            for p in review.size_presets
            if p.qty != review.qty
        ]
        rows += _grid(sizes, 2)
    else:
        rows.append([button("Stop…", Action.DRAFT_TRIGGER, d)])
    rows.append([button("↩ Back", Action.DRAFT_VIEW, d)])
    return markup(rows)


def drafts_list_keyboard(
    drafts: Sequence[DraftReview], selected: Collection[int]
) -> InlineKeyboardMarkup:
    toggles = [
        button(
            f"{'☑️' if r.draft_id in selected else '▫️'} #{r.draft_id} {r.symbol}",
            Action.LIST_TOGGLE,
            r.draft_id,
        )
        for r in drafts
    ]
    rows = _grid(toggles, 2)
    if drafts:
        ids = [r.draft_id for r in drafts]
        actions = [
            button(f"✅ Confirm all {len(ids)}", Action.LIST_CONFIRM_RANGE, min(ids), max(ids))
        ]
        if selected:
            actions.insert(
                0, button(f"✅ Confirm selected ({len(selected)})", Action.LIST_CONFIRM_SELECTED)
            )
        rows.append(actions)
    rows.append(close_row())
    return markup(rows)


def cancel_orders_keyboard(orders: Sequence[OrderView]) -> InlineKeyboardMarkup:
    rows: Rows = []
    for o in orders:
        at = f" @ {price(o.stop_price)}" if o.stop_price is not None else ""
        rows.append(
            [
                button(
                    f"✖ {o.symbol} {o.side} {qty(o.qty)}{at} ({o.role})", Action.ORDER_CANCEL, o.id
                )
            ]
        )
    rows.append(close_row())
    return markup(rows)


def cancel_protection_keyboard(order_id: int) -> InlineKeyboardMarkup:
    return markup([[button("Cancel it anyway", Action.ORDER_CANCEL_SURE, order_id)], close_row()])


def unprotected_keyboard(symbol: str, account: str) -> InlineKeyboardMarkup:
    return markup(
        [
            [
                button(f"⬇ Flatten {symbol}", Action.FLATTEN, symbol, account),
                button("🔁 Retry protection", Action.PROTECT_RETRY, symbol, account),
            ]
        ]
    )


def flatten_keyboard(symbol: str, account: str) -> InlineKeyboardMarkup:
    return markup(
        [[button(f"Yes, flatten {symbol}", Action.FLATTEN_SURE, symbol, account)], close_row()]
    )


def kill_first_keyboard(issued: int) -> InlineKeyboardMarkup:
    return markup(
        [
            [
                button("🧨 Flatten everything", Action.KILL_PREVIEWED, issued),
                button("Abort", Action.KILL_ABORT),
            ]
        ]
    )


def kill_second_keyboard(issued: int) -> InlineKeyboardMarkup:
    return markup(
        [
            [
                button("🧨 Yes, flatten now", Action.KILL_SURE, issued),
                button("Abort", Action.KILL_ABORT),
            ]
        ]
    )


def allow_keyboard() -> InlineKeyboardMarkup:
    return markup([[button("✅ Allow", Action.DAY_ALLOW), button("🚫 Not today", Action.DAY_DENY)]])


def signal_keyboard(signal_id: int | None, symbol: str) -> InlineKeyboardMarkup:
    rows: Rows = []
    if signal_id is not None:
        rows.append(
            [
                button("📝 Draft it", Action.SIGNAL_DRAFT, signal_id),
                button("Skip", Action.SIGNAL_SKIP, signal_id),
            ]
        )
    rows.append([button(f"🔕 Mute {symbol} today", Action.SIGNAL_MUTE, symbol)])
    return markup(rows)


def sell_positions_keyboard(positions: Sequence[PositionView]) -> InlineKeyboardMarkup:
    buttons = [button(f"{p.symbol} {qty(p.qty)}", Action.SELL_SYMBOL, p.symbol) for p in positions]
    return markup([*_grid(buttons, 3), close_row()])


def sell_stop_keyboard(symbol: str, options: Sequence[TriggerOption]) -> InlineKeyboardMarkup:
    rows: Rows = [
        [button(f"{o.name} {price(o.trigger)}", Action.SELL_STOP, symbol, o.trigger)]
        for o in options
    ]
    rows.append([button("✏️ Custom price", Action.SELL_CUSTOM, symbol)])
    rows.append(close_row())
    return markup(rows)


def accounts_keyboard(accounts: Sequence[AccountSummary]) -> InlineKeyboardMarkup:
    buttons = [
        button(("▶️ " if a.active else "") + a.name, Action.ACCOUNT_USE, a.name) for a in accounts
    ]
    return markup(_grid(buttons, 2))


NEXT_LEVEL = {
    NotificationLevel.ON: NotificationLevel.SILENT,
    NotificationLevel.SILENT: NotificationLevel.OFF,
    NotificationLevel.OFF: NotificationLevel.ON,
}


def levels_keyboard(
    levels: Mapping[str, NotificationLevel], always: Collection[str]
) -> InlineKeyboardMarkup:
    buttons = []
    for kind, level in levels.items():
        nxt = NEXT_LEVEL[level]
        if kind in always and nxt is NotificationLevel.OFF:
            nxt = NotificationLevel.ON  # money-protecting kinds: on <-> silent only
        buttons.append(button(f"{kind}: {level.value}", Action.MUTE_SET, kind, nxt.value))
    return markup([*_grid(buttons, 2), close_row()])


__all__ = [
    "MENU",
    "NEXT_LEVEL",
    "accounts_keyboard",
    "allow_keyboard",
    "button",
    "cancel_orders_keyboard",
    "cancel_protection_keyboard",
    "close_row",
    "draft_edit_keyboard",
    "draft_keyboard",
    "drafts_list_keyboard",
    "flatten_keyboard",
    "kill_first_keyboard",
    "kill_second_keyboard",
    "levels_keyboard",
    "markup",
    "menu_keyboard",
    "sell_positions_keyboard",
    "sell_stop_keyboard",
    "signal_keyboard",
    "size_keyboard",
    "status_keyboard",
    "trigger_keyboard",
    "unprotected_keyboard",
    "watchlist_keyboard",
]
