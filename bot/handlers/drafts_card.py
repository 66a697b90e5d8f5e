"""The draft card's buttons: [Confirm] [Edit] [Cancel], and the edit choices.

Every button first re-reads the draft from the ledger: a card tapped after its draft was
confirmed, canceled or expired (or after a restart) answers with why and acts on nothing.
Confirm also refuses when the price is already past the trigger (a stop-buy there would
fill at once), and a second tap while the first confirm is in flight is turned away here,
on top of core's own idempotent confirm. Updates run concurrently (bot/app.py): while a
draft is being confirmed its other buttons wait for the result instead of editing it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot.callbacks import Action, Callback, pattern
from bot.context import CentaurApp, CentaurContext, PendingInput
from bot.handlers.common import (
    Answer,
    Outcome,
    Result,
    Screen,
    actor_of,
    button,
    edit,
    edit_query,
    query_ids,
    send,
)
from bot.handlers.lookup import find_draft
from bot.keyboards import draft_edit_keyboard, draft_keyboard
from bot.render import render_card_head, render_confirm_result, render_draft_card, render_prompt
from bot.render.fmt import hhmm, label, price
from core.domain import Side
from core.drafts import ConfirmOutcome, DraftReview
from core.ledger import DraftStatus

INPUT_TIMEOUT = timedelta(minutes=5)
# Outcomes after which the draft is out of the trader's hands: the card becomes a timeline.
SETTLED = (
    ConfirmOutcome.PLACED,
    ConfirmOutcome.SENT,
    ConfirmOutcome.QUEUED,
    ConfirmOutcome.UNKNOWN,
    ConfirmOutcome.ALREADY_CONFIRMED,
)


def review_screen(
    context: CentaurContext, review: DraftReview, *, note: str = "", editing: bool = False
) -> Screen:
    budget = context.deps.settings.risk.risk_per_trade_usd
    text = render_draft_card(review, budget=budget, note=note)
    keyboard = None
    if review.status is DraftStatus.PENDING:
        keyboard = draft_edit_keyboard(review) if editing else draft_keyboard(review.draft_id)
    return Screen(text, keyboard)


async def open_card(
    context: CentaurContext, review: DraftReview, chat_id: int, message_id: int | None = None
) -> int:
    """Show `review` as its card (editing `message_id` in place, or as a new message) and
    remember where the card lives; returns the card's message id."""
    screen = review_screen(context, review)
    if message_id is None:
        message_id = (await send(context, chat_id, screen)).message_id
    else:
        await edit(context, chat_id, message_id, screen)
    context.bot_data.cards.remember(review, chat_id, message_id)
    return message_id


def past_trigger(context: CentaurContext, review: DraftReview) -> str | None:
    """Why confirming now would be wrong because the market already moved past the level."""
    bar = context.services.last_bar(review.symbol, account=review.account)
    if bar is None or review.trigger is None:
        return None
    if review.side is Side.BUY and bar.close >= review.trigger:
        return (
            f"{review.symbol} trades at {price(bar.close)}, already at or above the trigger "
            f"{price(review.trigger)}: a stop-buy would fill at once. Edit the trigger."
        )
    if review.side is Side.SELL and bar.close <= review.trigger:
        return (
            f"{review.symbol} trades at {price(bar.close)}, already at or below the stop "
            f"{price(review.trigger)}: the stop-sell would fill at once. Edit the stop."
        )
    return None


async def _pending_review(
    update: Update, context: CentaurContext, draft_id: int, answer: Answer, *, claimed: bool = False
) -> DraftReview | None:
    """The draft if it is still pending; otherwise answer why and show it as it is.

    A draft being confirmed right now (by another tap, or a /drafts batch) is not open to
    edits or a cancel: its card would be redrawn as pending under the confirm's result,
    and what was sent would not be what the card shows. `claimed`: the caller is that
    confirm."""
    if not claimed and draft_id in context.bot_data.confirming:
        await answer(f"Draft #{draft_id} is being confirmed: wait for its result.")
        return None
    review = await find_draft(context.services, draft_id)
    if review is None:
        await answer(f"Draft #{draft_id} does not exist any more.", alert=True)
        return None
    expired = review.expires_at is not None and review.expires_at <= context.now()
    if review.status is DraftStatus.PENDING and not expired:
        return review
    if expired and review.status is DraftStatus.PENDING:
        # Core expires it on its next tick; the tap must not wait for that to be told.
        await answer(f"Draft #{draft_id} expired: start a new one with /buy.", alert=True)
        await edit_query(update, context, Screen(render_draft_card(review) + "\n⌛ Expired."))
        return None
    why = {
        DraftStatus.CONFIRMED: "was confirmed already: nothing was sent again",
        DraftStatus.EXPIRED: "expired: start a new one with /buy",
        DraftStatus.CANCELED: "was canceled",
    }.get(review.status, f"is {label(review.status)}")
    await answer(f"Draft #{draft_id} {why}.", alert=review.status is not DraftStatus.CONFIRMED)
    card = context.bot_data.cards.card(draft_id)
    if review.status is DraftStatus.CONFIRMED and card is not None:
        await context.bot_data.cards.show(card)
    else:
        await edit_query(update, context, review_screen(context, review))
    return None


@button("draft_confirm")
async def confirm(update: Update, context: CentaurContext, cb: Callback, answer: Answer) -> Outcome:
    draft_id = cb.integer(0)
    data = context.bot_data
    # Claimed before the first await: a twin tap (or a batch holding this draft) handled
    # at the same moment must find the claim, not a gap between check and add.
    if not data.confirming.claim(draft_id):
        await answer("Already confirming this draft…")
        return Result(False, "double tap while confirming")
    with data.confirming.holding([draft_id]):
        review = await _pending_review(update, context, draft_id, answer, claimed=True)
        if review is None:
            return Result(False, "not pending")
        moved = past_trigger(context, review)
        if moved is not None:
            await answer(moved, alert=True)
            return Result(False, "price past the trigger")
        await answer("Confirming…")
        chat_id, message_id = query_ids(update)
        data.cards.remember(review, chat_id, message_id)
        result = await context.services.confirm_draft(
            draft_id, account=review.account, actor=actor_of(update)
        )
    line = f"{hhmm(context.now())} {render_confirm_result(result)}"
    if result.outcome in SETTLED:
        await data.cards.add_line(draft_id, line, first=True, head=render_card_head(review))
    else:
        after = await find_draft(context.services, draft_id) or review
        await edit(context, chat_id, message_id, review_screen(context, after, note=line))
    return Result(result.ok, f"{result.outcome}: {result.message}")


@button("draft_cancel")
async def cancel(update: Update, context: CentaurContext, cb: Callback, answer: Answer) -> Outcome:
    review = await _pending_review(update, context, cb.integer(0), answer)
    if review is None:
        return Result(False, "not pending")
    done = await context.services.cancel_draft(
        review.draft_id, account=review.account, actor=actor_of(update)
    )
    await answer("Draft canceled" if done else "It changed meanwhile: see the card")
    after = await find_draft(context.services, review.draft_id) or review
    await edit_query(update, context, review_screen(context, after))
    return Result(done, "canceled" if done else "not pending any more")


@button("draft_edit")
async def edit_menu(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    review = await _pending_review(update, context, cb.integer(0), answer)
    if review is None:
        return Result(False, "not pending")
    await answer()
    editing = cb.action is Action.DRAFT_EDIT
    await edit_query(update, context, review_screen(context, review, editing=editing))
    return "editing" if editing else "viewing"


@button("draft_qty")
async def set_qty(update: Update, context: CentaurContext, cb: Callback, answer: Answer) -> Outcome:
    review = await _pending_review(update, context, cb.integer(0), answer)
    if review is None:
        return Result(False, "not pending")
    qty: Decimal = cb.decimal(1)
    after = await context.services.edit_draft(review.draft_id, qty=qty, account=review.account)
    await answer(f"Size: {qty}")
    await edit_query(update, context, review_screen(context, after))
    return f"qty {qty}"


@button("draft_level")
async def ask_level(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    review = await _pending_review(update, context, cb.integer(0), answer)
    if review is None:
        return Result(False, "not pending")
    await answer()
    chat_id, message_id = query_ids(update)
    stop = cb.action is Action.DRAFT_STOP
    if review.side is Side.SELL:
        kind, what, example = "draft_trigger", "the new stop-sell level", "189.90"
    elif stop:
        kind, what, example = "draft_stop", "the new initial stop", "189.90"
    else:
        kind, what, example = "draft_trigger", "the new trigger", "191.52"
    context.state.pending = PendingInput(
        kind, chat_id, message_id, context.now() + INPUT_TIMEOUT, draft_id=review.draft_id
    )
    await send(
        context, chat_id, Screen(render_prompt(f"{what} for draft #{review.draft_id}", example))
    )
    return f"asked {kind}"


def register(app: CentaurApp) -> None:
    app.add_handler(CallbackQueryHandler(confirm, pattern=pattern(Action.DRAFT_CONFIRM)))
    app.add_handler(CallbackQueryHandler(cancel, pattern=pattern(Action.DRAFT_CANCEL)))
    app.add_handler(
        CallbackQueryHandler(edit_menu, pattern=pattern(Action.DRAFT_EDIT, Action.DRAFT_VIEW))
    )
    app.add_handler(CallbackQueryHandler(set_qty, pattern=pattern(Action.DRAFT_QTY)))
    app.add_handler(
        CallbackQueryHandler(ask_level, pattern=pattern(Action.DRAFT_TRIGGER, Action.DRAFT_STOP))
    )


__all__ = ["INPUT_TIMEOUT", "open_card", "past_trigger", "register", "review_screen"]
