"""Working orders and protection: /cancel, /trail, and the [Flatten SYM] [Retry] buttons
under an UNPROTECTED alert. Canceling a protection order or flattening always asks once
more: both leave the account in a state the trader must mean."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot.callbacks import Action, Callback, pattern
from bot.context import CentaurApp, CentaurContext
from bot.handlers.common import (
    Answer,
    Outcome,
    Result,
    Screen,
    actor_of,
    button,
    command,
    command_handler,
    edit_query,
    query_ids,
    reply,
    send,
)
from bot.handlers.lookup import find_working_order
from bot.keyboards import cancel_orders_keyboard, cancel_protection_keyboard, flatten_keyboard
from bot.parsing import parse_optional_symbol, parse_trail
from bot.render import (
    render_cancel_picker,
    render_cancel_result,
    render_flatten_question,
    render_flatten_result,
    render_protect_results,
    render_protection_warning,
    render_trail_results,
)
from core.domain import OrderRole


def cancel_screen(context: CentaurContext, symbol: str | None = None) -> Screen:
    orders = [o for o in context.services.orders() if symbol is None or o.symbol == symbol]
    keyboard = cancel_orders_keyboard(orders) if orders else None
    return Screen(render_cancel_picker(orders), keyboard)


@command("cancel")
async def cancel(update: Update, context: CentaurContext) -> Outcome:
    symbol = parse_optional_symbol(context.args or [], "cancel")
    if context.state.pending is not None:
        # The conventional Telegram meaning first: stop the question being asked.
        context.state.pending = None
        await reply(update, context, Screen("Stopped: nothing was changed."))
        return "pending input dropped"
    await reply(update, context, cancel_screen(context, symbol))
    return "listed"


async def _cancel_order(
    update: Update, context: CentaurContext, order_id: int, answer: Answer, *, sure: bool
) -> Outcome:
    found = find_working_order(context.services, order_id)
    if found is None:
        await answer("That order is no longer working.", alert=True)
        await edit_query(update, context, cancel_screen(context))
        return Result(False, "not working any more")
    account, view = found
    if view.role is OrderRole.PROTECTION and not sure:
        await answer()
        await edit_query(
            update,
            context,
            Screen(render_protection_warning(view), cancel_protection_keyboard(view.id)),
        )
        return "asked: protection order"
    await answer("Canceling…")
    ended = await context.services.cancel_order(
        view.client_order_id, account=account, actor=actor_of(update)
    )
    await edit_query(update, context, Screen(render_cancel_result(ended)))
    return Result(ended.is_terminal, str(ended.status))


@button("order_cancel")
async def order_cancel(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    sure = cb.action is Action.ORDER_CANCEL_SURE
    return await _cancel_order(update, context, cb.integer(0), answer, sure=sure)


@command("trail")
async def trail(update: Update, context: CentaurContext) -> Outcome:
    symbol, pct = parse_trail(context.args or [])
    results = await context.services.set_trail(symbol, pct, actor=actor_of(update))
    await reply(update, context, Screen(render_trail_results(symbol, pct, results)))
    return Result(all(r.protected for r in results), f"{symbol} {pct}%")


@button("flatten")
async def flatten(update: Update, context: CentaurContext, cb: Callback, answer: Answer) -> Outcome:
    symbol, account = cb.text(0), cb.text(1)
    await answer()
    chat_id, _ = query_ids(update)
    question = Screen(render_flatten_question(symbol), flatten_keyboard(symbol, account))
    await send(context, chat_id, question)
    return "asked"


@button("flatten_sure")
async def flatten_sure(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    symbol, account = cb.text(0), cb.text(1)
    # Two flattens of one symbol at once could each send a sell for the whole position
    # (a short): the second tap is turned away while the first is in flight. Claimed
    # before the first await (updates run concurrently).
    flattening = context.bot_data.flattening
    if not flattening.claim((account, symbol)):
        await answer(f"Already flattening {symbol}…")
        return Result(False, "double tap while flattening")
    with flattening.holding([(account, symbol)]):
        await answer(f"Flattening {symbol}…")
        await edit_query(update, context, Screen(f"⬇ Flattening {symbol}…"))
        result = await context.services.flatten(symbol, account=account, actor=actor_of(update))
    await edit_query(update, context, Screen(render_flatten_result(result)))
    return Result(result.flat, result.detail or ("flat" if result.flat else "not flat"))


@button("protect_retry")
async def protect_retry(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    symbol, account = cb.text(0), cb.text(1)
    # Two retries at once could each place a stop for the whole position (protection
    # larger than the position): one at a time per symbol, claimed before the first await.
    protecting = context.bot_data.protecting
    if not protecting.claim((account, symbol)):
        await answer(f"Already protecting {symbol}…")
        return Result(False, "double tap while protecting")
    with protecting.holding([(account, symbol)]):
        await answer(f"Retrying the protection of {symbol}…")
        results = await context.services.protect(symbol, account=account, actor=actor_of(update))
    chat_id, _ = query_ids(update)
    await send(context, chat_id, Screen(render_protect_results(symbol, results)))
    return Result(all(r.protected for r in results), f"{len(results)} result(s)")


def register(app: CentaurApp) -> None:
    app.add_handler(command_handler("cancel", cancel))
    app.add_handler(command_handler("trail", trail))
    app.add_handler(
        CallbackQueryHandler(
            order_cancel, pattern=pattern(Action.ORDER_CANCEL, Action.ORDER_CANCEL_SURE)
        )
    )
    app.add_handler(CallbackQueryHandler(flatten, pattern=pattern(Action.FLATTEN)))
    app.add_handler(CallbackQueryHandler(flatten_sure, pattern=pattern(Action.FLATTEN_SURE)))
    app.add_handler(CallbackQueryHandler(protect_retry, pattern=pattern(Action.PROTECT_RETRY)))


__all__ = ["cancel", "cancel_screen", "register", "trail"]
