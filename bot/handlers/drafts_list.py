"""/drafts: the pending drafts, ticked one by one and confirmed in one go (a batch).

[Confirm all N] carries the id range it listed, so it confirms exactly the drafts shown
(ids only grow: a draft made later cannot fall inside the range), even after a restart.
Ticks are kept per list message in the user's state (in memory); a list whose ticks were
lost to a restart says so instead of confirming a guess.
"""

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
)
from bot.handlers.drafts_card import past_trigger
from bot.keyboards import drafts_list_keyboard
from bot.parsing import no_args
from bot.render import render_batch_results, render_confirm_result, render_drafts_list
from bot.render.fmt import hhmm
from bot.text import esc


async def list_screen(context: CentaurContext, selected: set[int]) -> Screen:
    drafts = await context.services.list_drafts()
    selected.intersection_update(d.draft_id for d in drafts)
    keyboard = drafts_list_keyboard(drafts, selected) if drafts else None
    return Screen(render_drafts_list(drafts, selected), keyboard)


@command("drafts")
async def drafts(update: Update, context: CentaurContext) -> Outcome:
    no_args(context.args or [], "drafts")
    selected: set[int] = set()
    message = await reply(update, context, await list_screen(context, selected))
    context.state.selections[message.message_id] = selected
    return "listed"


@button("drafts_toggle")
async def toggle(update: Update, context: CentaurContext, cb: Callback, answer: Answer) -> Outcome:
    await answer()
    _, message_id = query_ids(update)
    selected = context.state.selections.setdefault(message_id, set())
    selected ^= {cb.integer(0)}
    await edit_query(update, context, await list_screen(context, selected))
    return f"selected {sorted(selected)}"


async def _confirm(
    update: Update,
    context: CentaurContext,
    answer: Answer,
    ids: list[int] | None = None,
    window: tuple[int, int] = (0, 0),
) -> Outcome:
    """Confirm `ids`, or every pending draft whose id is within `window`."""
    data = context.bot_data
    pending = {d.draft_id: d for d in await context.services.list_drafts()}
    if ids is None:
        ids = [i for i in pending if window[0] <= i <= window[1]]
    ids = [i for i in ids if i in pending]
    if not ids:
        await answer("Nothing to confirm: these drafts are no longer pending.", alert=True)
        return Result(False, "nothing pending")
    moved = {i: why for i in ids if (why := past_trigger(context, pending[i])) is not None}
    go = [i for i in ids if i not in moved]
    # Checked and claimed with no await in between: a twin tap, or a draft's own
    # [Confirm] handled at the same moment, finds the claim (updates run concurrently).
    if not data.confirming.claim(*ids):
        await answer("Already confirming these drafts…")
        return Result(False, "double tap while confirming")
    with data.confirming.holding(ids):
        # Read again under the claim: a confirm that ended between the first read and
        # the claim has made its drafts non-pending, and they are not sent again.
        still = {d.draft_id for d in await context.services.list_drafts()}
        go = [i for i in go if i in still]
        await answer(f"Confirming {len(go)}…")
        results = await context.services.confirm_drafts(go, actor=actor_of(update)) if go else []
    for result in results:  # each draft's own card, if it has one, tells its story too
        if result.ok:
            line = f"{hhmm(context.now())} {render_confirm_result(result)}"
            await data.cards.add_line(result.draft_id, line, first=True)
    text = render_batch_results(results)
    text += "".join(f"\n#{i}: ⛔ not sent: {esc(why)}" for i, why in moved.items())
    await edit_query(update, context, Screen(text))
    summary = ", ".join(f"{r.draft_id}:{r.outcome}" for r in results)
    return Result(bool(results) and all(r.ok for r in results) and not moved, summary)


@button("drafts_confirm")
async def confirm(update: Update, context: CentaurContext, cb: Callback, answer: Answer) -> Outcome:
    if cb.action is Action.LIST_CONFIRM_RANGE:
        return await _confirm(update, context, answer, window=(cb.integer(0), cb.integer(1)))
    _, message_id = query_ids(update)
    selected = context.state.selections.get(message_id)
    if selected is None:
        await answer("The ticks on this list were lost (restart): send /drafts again.", alert=True)
        return Result(False, "selection lost")
    return await _confirm(update, context, answer, ids=sorted(selected))


def register(app: CentaurApp) -> None:
    app.add_handler(command_handler("drafts", drafts))
    app.add_handler(CallbackQueryHandler(toggle, pattern=pattern(Action.LIST_TOGGLE)))
    app.add_handler(
        CallbackQueryHandler(
            confirm, pattern=pattern(Action.LIST_CONFIRM_SELECTED, Action.LIST_CONFIRM_RANGE)
        )
    )


__all__ = ["drafts", "list_screen", "register"]
