"""The buttons under a pushed entry signal: [Draft it] [Skip] [Mute symbol today]."""

from __future__ import annotations

from telegram import Message, Update
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
    edit_query,
    query_ids,
)
from bot.handlers.drafts_card import open_card
from bot.handlers.drafts_new import claim_picker
from bot.render.fmt import label, price
from bot.text import esc
from core.clock import NEW_YORK
from core.ledger import SignalStatus


def _shown(update: Update) -> str:
    """The pressed message's own text, as HTML (to keep it while changing its buttons)."""
    query = update.callback_query
    message = query.message if query is not None else None
    return message.text_html if isinstance(message, Message) and message.text else ""


@button("signal_draft")
async def draft_it(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    signal_id = cb.integer(0)
    services, data = context.services, context.bot_data
    signal = next((s for s in services.signals() if s.id == signal_id), None)
    if signal is None:
        await answer("This signal is not from today's session: it expired.", alert=True)
        await edit_query(update, context, Screen(_shown(update) + "\n<i>Expired.</i>"))
        return Result(False, "signal expired")
    chat_id, message_id = query_ids(update)
    if signal.status is not SignalStatus.NEW:
        await answer(f"This signal was {label(signal.status)} already.")
        return Result(False, f"signal {signal.status}")
    bar = services.last_bar(signal.symbol)
    if bar is not None and bar.close >= signal.trigger:
        await answer(
            f"{signal.symbol} trades at {price(bar.close)}, already past the trigger "
            f"{price(signal.trigger)}: no draft made.",
            alert=True,
        )
        return Result(False, "price past the trigger")
    if (done := claim_picker(context, chat_id, message_id)) is not None:
        await answer("This signal was drafted already.")
        return done
    with data.picking.holding([(chat_id, message_id)]):
        await answer("Drafting…")
        review = await services.create_buy_draft(
            signal.symbol, signal.trigger, signal.stop, signal_id=signal.id, actor=actor_of(update)
        )
        data.drafted_from[(chat_id, message_id)] = review.draft_id
    await edit_query(
        update, context, Screen(_shown(update) + f"\n<i>→ Draft #{review.draft_id} below.</i>")
    )
    await open_card(context, review, chat_id)
    return f"draft {review.draft_id}"


@button("signal_skip")
async def skip(update: Update, context: CentaurContext, cb: Callback, answer: Answer) -> Outcome:
    await answer("Skipped")
    await edit_query(update, context, Screen(_shown(update) + "\n<i>Skipped.</i>"))
    return f"signal {cb.integer(0)} skipped"


@button("signal_mute")
async def mute_symbol(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    symbol = cb.text(0)
    today = context.now().astimezone(NEW_YORK).date()
    context.bot_data.alerts.mute_symbol(symbol, today)
    await answer(f"{symbol} signals muted until tomorrow.")
    await edit_query(
        update, context, Screen(_shown(update) + f"\n<i>{esc(symbol)} signals muted today.</i>")
    )
    return f"{symbol} muted today"


def register(app: CentaurApp) -> None:
    app.add_handler(CallbackQueryHandler(draft_it, pattern=pattern(Action.SIGNAL_DRAFT)))
    app.add_handler(CallbackQueryHandler(skip, pattern=pattern(Action.SIGNAL_SKIP)))
    app.add_handler(CallbackQueryHandler(mute_symbol, pattern=pattern(Action.SIGNAL_MUTE)))


__all__ = ["register"]
