"""Typed answers: when the bot asked for a price ("Custom price", "Trigger…", "Stop…"),
the next plain text message is the answer. The question lives in the user's typed state
(`UserData.pending`) with a timeout on the injected clock; a wrong answer explains the
format and keeps the question open until it times out or /cancel drops it."""

from __future__ import annotations

from decimal import Decimal

from telegram import Update
from telegram.ext import MessageHandler, filters

from bot.context import CentaurApp, CentaurContext, PendingInput
from bot.handlers.common import (
    USER_ERRORS,
    Outcome,
    Result,
    Screen,
    actor_of,
    command,
    edit,
    reply,
)
from bot.handlers.drafts_card import open_card, review_screen
from bot.handlers.drafts_new import default_stop, size_screen
from bot.handlers.lookup import find_draft
from bot.parsing import parse_price_reply

NOTHING_ASKED = "I did not ask for anything: see /help for the commands."


@command("input")
async def typed(update: Update, context: CentaurContext) -> Outcome:
    message = update.message
    assert message is not None
    text = message.text or ""
    state = context.state
    pending = state.pending
    if pending is None:
        await reply(update, context, Screen(NOTHING_ASKED))
        return Result(False, "nothing asked")
    if context.now() > pending.expires_at:
        state.pending = None
        await reply(update, context, Screen("That question timed out: start again."))
        return Result(False, "question timed out")
    # Parse first (a wrong answer keeps the question open), then take the question before
    # the first await: two answers typed in quick succession run concurrently, and only
    # the first may act on it; the second finds nothing asked.
    level, stop = parse_price_reply(text, with_stop=pending.kind == "buy_trigger")
    state.pending = None
    try:
        return await _answer(update, context, pending, level, stop)
    except USER_ERRORS:
        if state.pending is None:  # refused by core: the same question is still open
            state.pending = pending
        raise


async def _answer(
    update: Update,
    context: CentaurContext,
    pending: PendingInput,
    level: Decimal,
    stop: Decimal | None,
) -> Outcome:
    services = context.services
    if pending.kind == "buy_trigger":
        assert pending.symbol is not None
        stop = stop if stop is not None else default_stop(context, pending.symbol, level)
        screen = await size_screen(context, pending.symbol, level, stop)
        await edit(context, pending.chat_id, pending.message_id, screen)
        return f"{pending.symbol} trigger {level} stop {stop}"
    if pending.kind == "sell_stop":
        assert pending.symbol is not None
        review = await services.create_sell_draft(pending.symbol, level, actor=actor_of(update))
        await open_card(context, review, pending.chat_id, pending.message_id)
        return f"draft {review.draft_id}"
    assert pending.draft_id is not None
    current = await find_draft(services, pending.draft_id)
    if current is None:
        await reply(update, context, Screen(f"Draft #{pending.draft_id} is gone."))
        return Result(False, "draft gone")
    if pending.draft_id in context.bot_data.confirming:
        await reply(
            update, context, Screen(f"Draft #{pending.draft_id} is being confirmed: not changed.")
        )
        return Result(False, "draft being confirmed")
    if pending.kind == "draft_stop":
        after = await services.edit_draft(pending.draft_id, stop=level, account=current.account)
    else:
        after = await services.edit_draft(pending.draft_id, trigger=level, account=current.account)
    await edit(context, pending.chat_id, pending.message_id, review_screen(context, after))
    await reply(update, context, Screen(f"✔ Draft #{after.draft_id} updated (card above)."))
    return f"draft {after.draft_id}: {pending.kind} {level}"


def register(app: CentaurApp) -> None:
    # Registered after every command: commands never reach it (~filters.COMMAND anyway).
    app.add_handler(
        MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, typed)
    )


__all__ = ["register", "typed"]
