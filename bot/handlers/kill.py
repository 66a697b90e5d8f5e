"""/kill: preview per account -> [Flatten everything] -> a second card -> verified report.

Works in every session state (core's kill does). Both confirmations carry the time they
were issued: a preview older than a few minutes no longer describes what is open, so
its button answers "send /kill again" instead of acting on stale information.
"""

from __future__ import annotations

from datetime import timedelta

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
    edit,
    edit_query,
    query_ids,
    reply,
    send,
)
from bot.keyboards import kill_first_keyboard, kill_second_keyboard
from bot.parsing import no_args
from bot.render import (
    nothing_to_kill,
    render_kill_preview,
    render_kill_reports,
    render_kill_running,
    render_kill_second,
)

PREVIEW_VALID = timedelta(minutes=5)
SECOND_VALID = timedelta(minutes=2)


def _token(context: CentaurContext) -> int:
    return int(context.now().timestamp())


def _expired(context: CentaurContext, issued: int, valid: timedelta) -> bool:
    age = context.now().timestamp() - issued
    return age < -60 or age > valid.total_seconds()


async def kill_screen(context: CentaurContext) -> Screen:
    previews = await context.services.kill_preview()
    keyboard = None if nothing_to_kill(previews) else kill_first_keyboard(_token(context))
    return Screen(render_kill_preview(previews), keyboard)


@command("kill")
async def kill(update: Update, context: CentaurContext) -> Outcome:
    no_args(context.args or [], "kill")
    await reply(update, context, await kill_screen(context))
    return "previewed"


@button("kill_first")
async def kill_first(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    if _expired(context, cb.integer(0), PREVIEW_VALID):
        await answer("This preview is too old: send /kill again.", alert=True)
        await edit_query(update, context, Screen("🧨 Kill preview expired: send /kill again."))
        return Result(False, "preview expired")
    await answer()
    previews = await context.services.kill_preview()
    await edit_query(
        update, context, Screen(render_kill_preview(previews) + "\n\n⬇ Confirm below.")
    )
    chat_id, _ = query_ids(update)
    second = Screen(render_kill_second(previews), kill_second_keyboard(_token(context)))
    await send(context, chat_id, second)
    return "asked again"


@button("kill_sure")
async def kill_sure(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    data, token = context.bot_data, cb.integer(0)
    if token in data.kills_done:
        await answer("Already done: this kill ran once.")
        return Result(False, "double tap")
    if data.kill_running:
        await answer("A kill is already running.")
        return Result(False, "already running")
    if _expired(context, token, SECOND_VALID):
        await answer("This confirmation expired: send /kill again.", alert=True)
        await edit_query(update, context, Screen("🧨 Confirmation expired: nothing was done."))
        return Result(False, "confirmation expired")
    # Taken before the first await: updates run concurrently, and a twin tap handled at
    # the same moment must find these set, not a gap between the checks and here.
    data.kills_done.add(token)
    data.kill_running = True
    chat_id, message_id = query_ids(update)
    started = context.now()
    for summary in context.services.accounts():
        data.kill_cards[summary.name] = (chat_id, message_id, started)
    try:
        await answer("Killing…")
        await edit(context, chat_id, message_id, Screen(render_kill_running()))
        reports = await context.services.kill(actor=actor_of(update))
    except BaseException:
        data.kill_cards.clear()
        raise
    finally:
        data.kill_running = False
    await edit(context, chat_id, message_id, Screen(render_kill_reports(reports)))
    flat = all(r.all_flat for r in reports)
    return Result(flat, "all flat" if flat else "NOT all flat")


@button("kill_abort")
async def kill_abort(
    update: Update, context: CentaurContext, _cb: Callback, answer: Answer
) -> Outcome:
    await answer("Aborted")
    await edit_query(update, context, Screen("🧨 Kill aborted: nothing was done."))
    return "aborted"


def register(app: CentaurApp) -> None:
    app.add_handler(command_handler("kill", kill))
    app.add_handler(CallbackQueryHandler(kill_first, pattern=pattern(Action.KILL_PREVIEWED)))
    app.add_handler(CallbackQueryHandler(kill_sure, pattern=pattern(Action.KILL_SURE)))
    app.add_handler(CallbackQueryHandler(kill_abort, pattern=pattern(Action.KILL_ABORT)))


__all__ = ["kill", "kill_screen", "register"]
