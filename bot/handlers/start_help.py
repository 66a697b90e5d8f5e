"""/start, /help and the menu of buttons they carry; [Close]; unknown commands and
buttons this version does not know (an old message's button still gets an answer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, MessageHandler, filters

from bot.callbacks import Action, Callback, pattern
from bot.context import CentaurApp, CentaurContext
from bot.handlers import day, drafts_list, drafts_new, info, kill, orders, status
from bot.handlers.common import (
    Answer,
    Outcome,
    Result,
    Screen,
    button,
    command,
    command_handler,
    first_name,
    query_ids,
    reply,
    send,
)
from bot.keyboards import menu_keyboard
from bot.render import render_help, render_start

# The command menu (set_my_commands) and /help, in the order a trader needs them.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", "account, session, positions, orders, day P&L"),
    ("buy", "SYM [trigger] [qty|$risk]: stop-buy draft (no args: watchlist)"),
    ("sell", "SYM [trigger] [qty]: stop-sell replacing the protection"),
    ("drafts", "pending drafts, confirm several at once"),
    ("positions", "open positions with their protection"),
    ("orders", "working orders"),
    ("cancel", "pick a working order to cancel"),
    ("trail", "SYM PCT%: re-set a position's trailing stop"),
    ("pnl", "[day|week|month] realized P&L"),
    ("regime", "[SYM] today's regime verdicts"),
    ("signals", "[date] entry signals"),
    ("report", "[date] re-send a day report with its charts"),
    ("allow", "allow trading today"),
    ("deny", "no trading today"),
    ("resume", "leave SAFE MODE once the cause is gone"),
    ("kill", "cancel everything and flatten, with two confirmations"),
    ("account", "[name] show or switch the active account"),
    ("live", "how live trading is enabled"),
    ("mute", "[kind] silence or switch off a kind of alert"),
    ("unmute", "[kind] turn alerts back on"),
    ("whoami", "your Telegram ids"),
    ("help", "this list"),
)

MenuFn = Callable[[Update, CentaurContext], Awaitable[Screen]]


async def _help_screen(_update: Update, _context: CentaurContext) -> Screen:
    return Screen(render_help(COMMANDS), menu_keyboard())


async def _drafts_screen(update: Update, context: CentaurContext) -> Screen:
    return await drafts_list.list_screen(context, set())


async def _allow(update: Update, context: CentaurContext) -> Screen:
    return await day.answer_day(update, context, True)


async def _deny(update: Update, context: CentaurContext) -> Screen:
    return await day.answer_day(update, context, False)


def _sync(fn: Callable[[CentaurContext], Screen]) -> MenuFn:
    async def run(_update: Update, context: CentaurContext) -> Screen:
        return fn(context)

    return run


def _async(fn: Callable[[CentaurContext], Awaitable[Screen]]) -> MenuFn:
    async def run(_update: Update, context: CentaurContext) -> Screen:
        return await fn(context)

    return run


MENU_ACTIONS: dict[str, MenuFn] = {
    "status": _async(status.status_screen),
    "positions": _async(info.positions_screen),
    "orders": _sync(info.orders_screen),
    "buy": _sync(drafts_new.watchlist_screen),
    "sell": _async(drafts_new.sell_screen),
    "drafts": _drafts_screen,
    "pnl": _sync(info.pnl_screen),
    "regime": _sync(info.regime_screen),
    "signals": _sync(info.signals_screen),
    "allow": _allow,
    "deny": _deny,
    "mute": _sync(info.levels_screen),
    "kill": _async(kill.kill_screen),
    "help": _help_screen,
    "cancel": _sync(orders.cancel_screen),
}


@command("start")
async def start(update: Update, context: CentaurContext) -> Outcome:
    # /start may carry a deep-link payload: ignored on purpose, not an error.
    services = context.services
    active = next(a for a in services.accounts() if a.active)
    text = render_start(first_name(update), active.name, active.mode)
    await reply(update, context, Screen(text, menu_keyboard()))
    return "menu"


@command("help")
async def help_command(update: Update, context: CentaurContext) -> Outcome:
    await reply(update, context, await _help_screen(update, context))
    return "help"


@button("menu")
async def menu(update: Update, context: CentaurContext, cb: Callback, answer: Answer) -> Outcome:
    name = cb.text(0)
    action = MENU_ACTIONS.get(name)
    if action is None:
        await answer("This button no longer works: see /help.")
        return Result(False, f"unknown menu entry {name}")
    await answer()
    chat_id, _ = query_ids(update)
    screen = await action(update, context)
    message = await send(context, chat_id, screen)
    if name == "drafts":
        context.state.selections[message.message_id] = set()
    return f"menu {name}"


@button("close")
async def close(update: Update, context: CentaurContext, _cb: Callback, answer: Answer) -> Outcome:
    await answer()
    query = update.callback_query
    assert query is not None and query.message is not None
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except BadRequest as exc:  # closed twice (a double tap): already without buttons
        if "not modified" not in str(exc).lower():
            raise
    return "closed"


@command("unknown")
async def unknown(update: Update, context: CentaurContext) -> Outcome:
    await reply(update, context, Screen("Unknown command: see /help."))
    return Result(False, "unknown command")


@button("unknown")
async def stray_button(
    update: Update, context: CentaurContext, _cb: Callback, answer: Answer
) -> Outcome:
    """Only callback data nobody else took: the envelope answers garbage and old versions;
    a well-formed button no handler claims is answered here."""
    await answer("This button no longer works: send the command again.")
    return Result(False, "stray button")


def register(app: CentaurApp) -> None:
    app.add_handler(command_handler("start", start))
    app.add_handler(command_handler("help", help_command))
    app.add_handler(CallbackQueryHandler(menu, pattern=pattern(Action.MENU)))
    app.add_handler(CallbackQueryHandler(close, pattern=pattern(Action.CLOSE)))


def register_fallbacks(app: CentaurApp) -> None:
    """Last in group 0: only what no other handler took reaches these."""
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.COMMAND, unknown))
    app.add_handler(CallbackQueryHandler(stray_button))


__all__ = ["COMMANDS", "MENU_ACTIONS", "register", "register_fallbacks"]
